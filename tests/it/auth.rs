//! Authentication through the real server: enrollment, login with password + TOTP, replay,
//! lockout, sessions (idle, lifetime, logout, deactivation), refresh rotation, forged tokens,
//! step-up.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_testkit::{TestDb, TestServer, TestUser, audit_actions, seed_user};

async fn problem(res: reqwest::Response, status: u16, kind: &str) -> Value {
    let got = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(body["type"], format!("urn:writ:problem:{kind}"), "{body}");
    body
}

async fn get(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    server
        .http
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn post(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut r = server.http.post(server.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// Creates a user through the API and enrolls them through the API.
async fn enroll_via_api(
    server: &TestServer,
    admin_token: &str,
    username: &str,
    role: &str,
) -> TestUser {
    let res = post(
        server,
        "/v1/users",
        Some(admin_token),
        json!({ "username": username, "displayName": username, "role": role }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let token = created["enrollmentToken"].as_str().unwrap().to_owned();
    let password = format!("{username} has a long passphrase");
    let res = post(
        server,
        "/v1/auth/enroll",
        None,
        json!({ "token": token, "password": password }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let e: Value = res.json().await.unwrap();
    let secret =
        writ_auth_mfa::totp::secret_from_base32(e["totpSecret"].as_str().unwrap()).unwrap();
    let agency = created["user"]["id"].as_str().unwrap().to_owned();
    let user = TestUser::new(agency.parse().unwrap(), "", username, &password, secret);
    let res = post(
        server,
        "/v1/auth/enroll/confirm",
        None,
        json!({ "token": token, "totp": user.next_code() }),
    )
    .await;
    assert_eq!(res.status(), 200);
    user
}

#[tokio::test]
async fn enrollment_sets_a_checked_password_and_a_confirmed_totp() {
    let db = TestDb::new().await;
    let agency = db.onboard("enroll-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let admin_token = server.token(&admin).await;

    let res = post(
        &server,
        "/v1/users",
        Some(&admin_token),
        json!({ "username": "Officer.Kim", "displayName": "Officer Kim", "role": "officer" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["user"]["username"], "officer.kim");
    assert_eq!(created["user"]["status"], "pending");
    let token = created["enrollmentToken"].as_str().unwrap().to_owned();
    let expires: chrono::DateTime<chrono::Utc> = created["enrollmentExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (expires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((71.5..=72.0).contains(&hours), "{hours}");

    // The password policy answers with the reason, and keeps nothing.
    for (bad, reason) in [
        ("short", "at least 8"),
        ("Password123", "commonly used"),
        ("SUNSHINE", "commonly used"),
        (&"x".repeat(257)[..], "at most 256"),
    ] {
        let res = post(
            &server,
            "/v1/auth/enroll",
            None,
            json!({ "token": token, "password": bad }),
        )
        .await;
        let body = problem(res, 422, "validation").await;
        assert!(
            body["detail"].as_str().unwrap().contains(reason),
            "{bad}: {body}"
        );
    }
    let password = "é".repeat(250) + "-tail";
    let res = post(
        &server,
        "/v1/auth/enroll",
        None,
        json!({ "token": token, "password": password }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let e: Value = res.json().await.unwrap();
    assert!(
        e["otpauthUri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(e["qrCodePng"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let secret =
        writ_auth_mfa::totp::secret_from_base32(e["totpSecret"].as_str().unwrap()).unwrap();
    let user = TestUser::new(
        uuid::Uuid::nil(),
        &agency.slug,
        "officer.kim",
        &password,
        secret,
    );

    // Not active before a code confirms the secret.
    let res = post(
        &server,
        "/v1/auth/login",
        None,
        user.body_with_code("123456"),
    )
    .await;
    problem(res, 401, "invalid-credentials").await;
    let res = post(
        &server,
        "/v1/auth/enroll/confirm",
        None,
        json!({ "token": token, "totp": "000000" }),
    )
    .await;
    problem(res, 401, "invalid-code").await;
    let res = post(
        &server,
        "/v1/auth/enroll/confirm",
        None,
        json!({ "token": token, "totp": user.next_code() }),
    )
    .await;
    assert_eq!(res.status(), 200);
    // The enrollment token is spent.
    let res = post(
        &server,
        "/v1/auth/enroll",
        None,
        json!({ "token": token, "password": "another good one" }),
    )
    .await;
    problem(res, 401, "invalid-token").await;

    // A long password is not truncated: a different tail fails.
    let mut wrong = user.body_with_code("123456");
    wrong["password"] = json!("é".repeat(250) + "-tale");
    problem(
        post(&server, "/v1/auth/login", None, wrong).await,
        401,
        "invalid-credentials",
    )
    .await;
    let tokens = server.login(&user).await;
    let access = tokens["accessToken"].as_str().unwrap();
    // ES256 with a kid published in the JWK set; at most 15 minutes.
    let header: Value =
        serde_json::from_slice(&B64.decode(access.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let claims: Value =
        serde_json::from_slice(&B64.decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 900);
    assert_eq!(claims["aid"], agency.id.to_string());
    let jwks: Value = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["crv"] == "P-256")
    );
    let me: Value = get(&server, "/v1/auth/session", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "officer");

    let actions = audit_actions(&db, &agency).await;
    for a in [
        "admin.user.created",
        "auth.mfa.failure",
        "admin.user.modified",
        "auth.login",
        "auth.mfa.success",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn login_needs_the_banner_and_both_factors_and_never_reveals_the_user() {
    let db = TestDb::new().await;
    let agency = db.onboard("login-pd").await;
    let user = seed_user(&db, &agency, "judge.ito", Role::Judge).await;
    let server = TestServer::start(&db);

    // No banner acknowledgement: 400 with the banner text (AC-8).
    let mut body = user.body_with_code("000000");
    body["bannerAck"] = json!(false);
    let p = problem(
        post(&server, "/v1/auth/login", None, body).await,
        400,
        "banner-acknowledgement-required",
    )
    .await;
    assert!(
        p["banner"]
            .as_str()
            .unwrap()
            .contains("criminal justice information")
    );

    // No code, wrong code: the same answer as a wrong password or an unknown user.
    let mut no_code = user.body_with_code("000000");
    no_code.as_object_mut().unwrap().remove("totp");
    let a = problem(
        post(&server, "/v1/auth/login", None, no_code).await,
        401,
        "invalid-credentials",
    )
    .await;
    let wrong_code = user.body_with_code("123456");
    let b = problem(
        post(&server, "/v1/auth/login", None, wrong_code).await,
        401,
        "invalid-credentials",
    )
    .await;
    let mut unknown = user.body_with_code("123456");
    unknown["username"] = json!("nobody.here");
    let c = problem(
        post(&server, "/v1/auth/login", None, unknown).await,
        401,
        "invalid-credentials",
    )
    .await;
    let mut wrong_agency = user.body_with_code("123456");
    wrong_agency["agency"] = json!("no-such-pd");
    let d = problem(
        post(&server, "/v1/auth/login", None, wrong_agency).await,
        401,
        "invalid-credentials",
    )
    .await;
    for p in [&b, &c, &d] {
        assert_eq!(p["detail"], a["detail"]);
        assert_eq!(p["title"], a["title"]);
    }

    // A code is accepted once: replaying it fails even with the right password (IA-2(8)).
    let good = user.login_body();
    assert_eq!(
        post(&server, "/v1/auth/login", None, good.clone())
            .await
            .status(),
        200
    );
    problem(
        post(&server, "/v1/auth/login", None, good).await,
        401,
        "invalid-credentials",
    )
    .await;

    let actions = audit_actions(&db, &agency).await;
    let failures = actions.iter().filter(|a| *a == "auth.mfa.failure").count();
    assert!(failures >= 3, "{actions:?}");
    assert!(
        actions.iter().filter(|a| *a == "auth.login").count() >= 5,
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_failed_login_takes_as_long_for_an_unknown_user_as_for_a_wrong_password() {
    let db = TestDb::new().await;
    let agency = db.onboard("timing-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    // Production-strength argon2 for this one, so the hash dominates the time; the user enrolls
    // through this server, so their hash has the same cost as the dummy one.
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[
            ("WRIT_ARGON2_MEMORY_KIB", "19456"),
            ("WRIT_ARGON2_ITERATIONS", "2"),
        ],
    );
    let admin_token = server.token(&admin).await;
    let mut user = enroll_via_api(&server, &admin_token, "timed", "officer").await;
    user.agency = agency.slug.clone();
    async fn attempt(server: &TestServer, body: Value) -> Duration {
        let t = Instant::now();
        let res = post(server, "/v1/auth/login", None, body).await;
        assert_eq!(res.status(), 401);
        t.elapsed()
    }
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Four known-user failures stay under the lockout threshold.
    for i in 0..4 {
        let mut k = user.body_with_code("123456");
        k["password"] = json!(format!("wrong password {i}"));
        known.push(attempt(&server, k).await);
        let mut u = user.body_with_code("123456");
        u["username"] = json!(format!("ghost{i}"));
        unknown.push(attempt(&server, u).await);
    }
    known.sort();
    unknown.sort();
    // The fastest of each is the least disturbed by other tests running alongside. Skipping the
    // dummy hash would make the unknown user's failure about 50 times faster, so a loose bound
    // catches it without depending on how loaded the machine is.
    let (k, u) = (known[0].as_secs_f64(), unknown[0].as_secs_f64());
    assert!(
        k.min(u) / k.max(u) > 0.2,
        "known {known:?} unknown {unknown:?}"
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_until_an_admin_unlocks_it() {
    let db = TestDb::new().await;
    let agency = db.onboard("lock-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let user = seed_user(&db, &agency, "officer.lee", Role::Officer).await;
    let server = TestServer::start(&db);
    for i in 0..5 {
        let mut b = user.body_with_code("123456");
        b["password"] = json!(format!("not the password {i}"));
        problem(
            post(&server, "/v1/auth/login", None, b).await,
            401,
            "invalid-credentials",
        )
        .await;
    }
    // The sixth attempt, with the right password and code, is refused: locked, and stays locked.
    let right = user.login_body();
    problem(
        post(&server, "/v1/auth/login", None, right.clone()).await,
        401,
        "account-locked",
    )
    .await;
    problem(
        post(&server, "/v1/auth/login", None, right).await,
        401,
        "account-locked",
    )
    .await;
    let admin_token = server.token(&admin).await;
    let listed: Value = get(&server, &format!("/v1/users/{}", user.id), &admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["locked"], true);

    let res = post(
        &server,
        &format!("/v1/users/{}/unlock", user.id),
        Some(&admin_token),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    server.login(&user).await;

    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.lockout").count(),
        1,
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "admin.user.unlocked"),
        "{actions:?}"
    );
}

/// Five failures within any 15 minutes lock the account, also across what a window fixed from
/// the first failure would have ended (one at 0:00, two at 10:00, three at 16:00); failures spread
/// wider (one every 14 minutes) never do.
#[tokio::test]
async fn failures_within_any_fifteen_minutes_lock_and_spread_wider_do_not() {
    let db = TestDb::new().await;
    let agency = db.onboard("straddle-pd").await;
    let kim = seed_user(&db, &agency, "officer.kim", Role::Officer).await;
    let ray = seed_user(&db, &agency, "officer.ray", Role::Officer).await;
    let server = TestServer::start(&db);
    let users = format!("{}.users", agency.ident.quoted());
    let fail = |user: &TestUser| {
        let mut b = user.body_with_code("123456");
        b["password"] = json!("not the password");
        let server = &server;
        async move {
            problem(
                post(server, "/v1/auth/login", None, b).await,
                401,
                "invalid-credentials",
            )
            .await;
        }
    };
    // Moves every recorded failure time back, as time passing would.
    let minutes_pass = |m: i64| {
        let sql = format!(
            "UPDATE {users} SET recent_failures = \
               ARRAY(SELECT f - make_interval(mins => {m}) FROM unnest(recent_failures) AS f)"
        );
        let pool = db.pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    fail(&kim).await;
    minutes_pass(10).await;
    fail(&kim).await;
    fail(&kim).await;
    minutes_pass(6).await;
    for _ in 0..3 {
        fail(&kim).await;
    }
    problem(
        post(&server, "/v1/auth/login", None, kim.login_body()).await,
        401,
        "account-locked",
    )
    .await;

    // Seven failures, never more than two within 15 minutes: no lock.
    for _ in 0..7 {
        fail(&ray).await;
        minutes_pass(14).await;
    }
    server.login(&ray).await;
    // A whole quiet window starts the count over.
    for _ in 0..4 {
        fail(&ray).await;
    }
    minutes_pass(16).await;
    fail(&ray).await;
    server.login(&ray).await;
}

#[tokio::test]
async fn idle_and_expired_sessions_need_reauthentication() {
    let db = TestDb::new().await;
    let agency = db.onboard("idle-pd").await;
    let user = seed_user(&db, &agency, "sgt.idle", Role::Supervisor).await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_SESSION_IDLE_SECS", "2")],
    );
    let token = server.token(&user).await;
    assert_eq!(get(&server, "/v1/auth/session", &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    problem(
        get(&server, "/v1/auth/session", &token).await,
        401,
        "reauthentication-required",
    )
    .await;
    // Still ended afterwards.
    problem(
        get(&server, "/v1/auth/session", &token).await,
        401,
        "reauthentication-required",
    )
    .await;

    // Twelve hours after login, however busy the session was.
    let token = server.token(&user).await;
    let schema = agency.ident.quoted();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {schema}.sessions SET created_at = now() - interval '12 hours 1 minute' WHERE revoked_at IS NULL"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    problem(
        get(&server, "/v1/auth/session", &token).await,
        401,
        "reauthentication-required",
    )
    .await;

    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "auth.session.timeout")
            .count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn logout_and_deactivation_end_sessions_at_once() {
    let db = TestDb::new().await;
    let agency = db.onboard("logout-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let user = seed_user(&db, &agency, "officer.out", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&user).await;
    let res = post(&server, "/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(res.status(), 204);
    problem(
        get(&server, "/v1/auth/session", &token).await,
        401,
        "session-revoked",
    )
    .await;

    let token = server.token(&user).await;
    let admin_token = server.token(&admin).await;
    assert_eq!(get(&server, "/v1/auth/session", &token).await.status(), 200);
    let res = post(
        &server,
        &format!("/v1/users/{}/deactivate", user.id),
        Some(&admin_token),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // The unexpired access token of the deactivated user fails on its next request.
    problem(
        get(&server, "/v1/auth/session", &token).await,
        401,
        "session-revoked",
    )
    .await;
    problem(
        post(
            &server,
            "/v1/auth/login",
            None,
            user.body_with_code("123456"),
        )
        .await,
        401,
        "invalid-credentials",
    )
    .await;

    let actions = audit_actions(&db, &agency).await;
    assert!(actions.iter().any(|a| a == "auth.logout"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a == "admin.user.deactivated"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let db = TestDb::new().await;
    let agency = db.onboard("refresh-pd").await;
    let user = seed_user(&db, &agency, "pros.ray", Role::Prosecutor).await;
    let server = TestServer::start(&db);
    let first = server.login(&user).await;
    let r1 = first["refreshToken"].as_str().unwrap();
    let res = post(
        &server,
        "/v1/auth/refresh",
        None,
        json!({ "refreshToken": r1 }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let r2 = second["refreshToken"].as_str().unwrap();
    assert_ne!(r1, r2);
    let access2 = second["accessToken"].as_str().unwrap();
    assert_eq!(
        get(&server, "/v1/auth/session", access2).await.status(),
        200
    );

    // The spent token again: refused, and the whole session with it.
    problem(
        post(
            &server,
            "/v1/auth/refresh",
            None,
            json!({ "refreshToken": r1 }),
        )
        .await,
        401,
        "session-revoked",
    )
    .await;
    problem(
        get(&server, "/v1/auth/session", access2).await,
        401,
        "session-revoked",
    )
    .await;
    problem(
        post(
            &server,
            "/v1/auth/refresh",
            None,
            json!({ "refreshToken": r2 }),
        )
        .await,
        401,
        "session-revoked",
    )
    .await;
    problem(
        post(
            &server,
            "/v1/auth/refresh",
            None,
            json!({ "refreshToken": "wrt.op.garbage" }),
        )
        .await,
        401,
        "invalid-token",
    )
    .await;
}

fn jwt(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let msg = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(header).unwrap()),
        B64.encode(serde_json::to_vec(claims).unwrap())
    );
    let sig = sign(msg.as_bytes());
    format!("{msg}.{}", B64.encode(sig))
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    use p256::ecdsa::signature::Signer;
    use sha2::Digest;
    let db = TestDb::new().await;
    let agency = db.onboard("forge-pd").await;
    let other = db.onboard("other-pd").await;
    let user = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let real = server.token(&user).await;
    let header: Value =
        serde_json::from_slice(&B64.decode(real.split('.').next().unwrap()).unwrap()).unwrap();
    let claims: Value =
        serde_json::from_slice(&B64.decode(real.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(get(&server, "/v1/users", &real).await.status(), 200);

    // alg none
    let none = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        real.split('.').nth(1).unwrap()
    );
    // our kid, someone else's key
    let stranger = p256::ecdsa::SigningKey::random(&mut rand_core_os());
    let wrong_key = jwt(&header, &claims, |m| {
        let s: p256::ecdsa::Signature = stranger.sign(m);
        s.to_bytes().to_vec()
    });
    // another agency's own signing key
    let keys = writ_tenancy::agency_keys(&db.pool, other.id, writ_keys::KeyPurpose::Signing)
        .await
        .unwrap();
    let mut signatures = Vec::new();
    {
        let msg = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).unwrap()),
            B64.encode(serde_json::to_vec(&claims).unwrap())
        );
        let digest: [u8; 32] = sha2::Sha256::digest(msg.as_bytes()).into();
        let der = db
            .keys
            .sign_digest(other.id, &keys[0].key, &digest)
            .await
            .unwrap();
        let sig = p256::ecdsa::Signature::from_der(der.as_bytes()).unwrap();
        signatures.push(format!("{msg}.{}", B64.encode(sig.to_bytes())));
    }
    // HS256 with the public key as secret (algorithm confusion)
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let hs = jwt(&hs_header, &claims, |m| sha2::Sha256::digest(m).to_vec());
    // the real key, but expired
    let token_keys = writ_auth_mfa::TokenKeys::load_or_create(&db.pool, &db.keys)
        .await
        .unwrap();
    let mut expired: writ_auth_mfa::Claims = serde_json::from_value(claims.clone()).unwrap();
    expired.exp = chrono::Utc::now().timestamp() - 5;
    expired.iat = expired.exp - 900;
    let expired = token_keys.sign(&expired).unwrap();
    // the real key, claiming another agency
    let mut moved: writ_auth_mfa::Claims = serde_json::from_value(claims.clone()).unwrap();
    moved.aid = Some(other.id);
    let moved = token_keys.sign(&moved).unwrap();

    for (name, t) in [
        ("alg none", none.as_str()),
        ("wrong key", &wrong_key),
        ("another agency's key", &signatures[0]),
        ("hs256", &hs),
        ("expired", &expired),
        ("garbage", "not.a.jwt"),
    ] {
        let res = get(&server, "/v1/users", t).await;
        let body = problem(res, 401, "invalid-token").await;
        assert!(body.get("detail").is_some(), "{name}");
    }
    // A genuine signature over a session of another agency finds no session there.
    problem(
        get(&server, "/v1/users", &moved).await,
        401,
        "session-revoked",
    )
    .await;
    problem(
        server
            .http
            .get(server.url("/v1/users"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

fn rand_core_os() -> impl p256::elliptic_curve::rand_core::CryptoRngCore {
    p256::elliptic_curve::rand_core::OsRng
}

#[tokio::test]
async fn step_up_needs_a_fresh_code_and_lasts_five_minutes() {
    let db = TestDb::new().await;
    let agency = db.onboard("stepup-pd").await;
    let user = seed_user(&db, &agency, "judge.step", Role::Judge).await;
    let server = TestServer::start(&db);
    let token = server.token(&user).await;
    let me: Value = get(&server, "/v1/auth/session", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["steppedUpUntil"], Value::Null);
    problem(
        post(
            &server,
            "/v1/auth/reauth",
            Some(&token),
            json!({ "totp": "000000" }),
        )
        .await,
        401,
        "invalid-code",
    )
    .await;
    let code = user.next_code();
    let res = post(
        &server,
        "/v1/auth/reauth",
        Some(&token),
        json!({ "totp": code }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let until: Value = res.json().await.unwrap();
    let until: chrono::DateTime<chrono::Utc> =
        until["steppedUpUntil"].as_str().unwrap().parse().unwrap();
    let secs = (until - chrono::Utc::now()).num_seconds();
    assert!((290..=300).contains(&secs), "{secs}");
    // The same code again is a replay.
    problem(
        post(
            &server,
            "/v1/auth/reauth",
            Some(&token),
            json!({ "totp": code }),
        )
        .await,
        401,
        "invalid-code",
    )
    .await;
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.reauth").count(),
        3,
        "{actions:?}"
    );
}

#[tokio::test]
async fn users_enrolled_through_the_api_can_log_in() {
    let db = TestDb::new().await;
    let agency = db.onboard("api-enroll-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let admin_token = server.token(&admin).await;
    let mut user = enroll_via_api(&server, &admin_token, "auditor.ann", "auditor").await;
    user.agency = agency.slug.clone();
    let me: Value = get(&server, "/v1/auth/session", &server.token(&user).await)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "auditor");
}

/// A failed login records the username it was given, but never more of it than any username can
/// be: an anonymous caller can neither fill the audit log nor send an event too large to be
/// chained (which would hold up every later event of the agency).
#[tokio::test]
async fn an_oversized_username_is_recorded_cut_and_the_chain_goes_on() {
    let db = TestDb::new().await;
    let agency = db.onboard("long-name-pd").await;
    let user = seed_user(&db, &agency, "officer.long", Role::Officer).await;
    let server = TestServer::start(&db);
    let mut attempt = user.body_with_code("123456");
    attempt["username"] = json!("x".repeat(60_000));
    problem(
        post(&server, "/v1/auth/login", None, attempt.clone()).await,
        401,
        "invalid-credentials",
    )
    .await;
    // A login is at most 64 KiB: more is refused unread (and recorded nowhere).
    attempt["username"] = json!("x".repeat(1_040_000));
    problem(
        post(&server, "/v1/auth/login", None, attempt).await,
        413,
        "payload-too-large",
    )
    .await;
    // The agency's chain carries on: a login after it is chained behind it.
    assert_eq!(
        post(&server, "/v1/auth/login", None, user.login_body())
            .await
            .status(),
        200
    );
    let logins = writ_testkit::audit::entries_with_action(&db, &agency, "auth.login").await;
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(logins[0]["outcome"], "failure");
    let recorded = logins[0]["detail"]["username"].as_str().unwrap();
    assert_eq!(recorded, format!("{}…", "x".repeat(64)));
    assert_eq!(logins[1]["outcome"], "success");
}
