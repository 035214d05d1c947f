//! Rate limits (headers, 429, agency policy, sampled audit), the inactivity job, username reuse.

use std::time::Duration;

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_testkit::{TestDb, TestServer, audit_actions, seed_user};

fn header(res: &reqwest::Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_follow_the_agency_policy() {
    let db = TestDb::new().await;
    let agency = db.onboard("limit-pd").await;
    let auditor = seed_user(&db, &agency, "auditor", Role::Auditor).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.policies (agency_id, name, value) VALUES ($1, 'ratelimit.auditor', '{{\"perMinute\": 3}}')",
        agency.ident.quoted()
    )))
    .bind(agency.id)
    .execute(&db.pool)
    .await
    .unwrap();
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[
            ("WRIT_RATE_LIMIT_ANONYMOUS", "3"),
            ("WRIT_RATE_LIMIT_AUDITOR", "100"),
        ],
    );
    // Unauthenticated: per source IP. The login is the first of three.
    let token = server.token(&auditor).await;
    let mut remaining = Vec::new();
    for _ in 0..2 {
        let res = server
            .http
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), Some(3));
        assert!(header(&res, "ratelimit-reset").is_some());
        remaining.push(header(&res, "ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, vec![1, 0]);
    let res = server
        .http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(header(&res, "retry-after").unwrap() >= 1);
    assert_eq!(header(&res, "ratelimit-remaining"), Some(0));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:writ:problem:rate-limited");
    // Probes are not limited.
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Authenticated: per user, with the agency's ratelimit.auditor policy (3) over the default.
    for expect in [2, 1, 0] {
        let res = server
            .http
            .get(server.url("/v1/auth/session"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), Some(3));
        assert_eq!(header(&res, "ratelimit-remaining"), Some(expect));
    }
    for _ in 0..3 {
        let res = server
            .http
            .get(server.url("/v1/auth/session"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429);
        assert!(res.headers().contains_key("retry-after"));
    }
    // Audited, but sampled: one entry for the burst.
    let mut hits = 0;
    for _ in 0..50 {
        hits = audit_actions(&db, &agency)
            .await
            .iter()
            .filter(|a| *a == "ratelimit.exceeded")
            .count();
        if hits > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits_later = audit_actions(&db, &agency)
        .await
        .iter()
        .filter(|a| *a == "ratelimit.exceeded")
        .count();
    assert_eq!((hits, hits_later), (1, 1));
}

#[tokio::test]
async fn accounts_inactive_for_90_days_are_disabled_and_can_be_reenabled() {
    let db = TestDb::new().await;
    let agency = db.onboard("idle-accounts-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let stale = seed_user(&db, &agency, "officer.stale", Role::Officer).await;
    let fresh = seed_user(&db, &agency, "officer.fresh", Role::Officer).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.users SET last_login_at = now() - interval '91 days' WHERE id = $1",
        agency.ident.quoted()
    )))
    .bind(stale.id)
    .execute(&db.pool)
    .await
    .unwrap();
    let auth = writ_auth_mfa::Auth::new(&db.pool, db.keys.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        writ_auth_mfa::disable_inactive_accounts(&db.pool, &auth)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        writ_auth_mfa::disable_inactive_accounts(&db.pool, &auth)
            .await
            .unwrap(),
        0
    );

    let server = TestServer::start(&db);
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .json(&stale.body_with_code("123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    server.login(&fresh).await;
    let token = server.token(&admin).await;
    let u: Value = server
        .http
        .get(server.url(&format!("/v1/users/{}", stale.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["status"], "disabled");
    let res = server
        .http
        .patch(server.url(&format!("/v1/users/{}", stale.id)))
        .bearer_auth(&token)
        .json(&json!({ "status": "active" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.login(&stale).await;
    let actions = audit_actions(&db, &agency).await;
    assert!(
        actions
            .iter()
            .filter(|a| *a == "admin.user.modified")
            .count()
            >= 2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn usernames_are_unique_and_never_reused() {
    let db = TestDb::new().await;
    let agency = db.onboard("names-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let create = |username: &str| {
        server
            .http
            .post(server.url("/v1/users"))
            .bearer_auth(&token)
            .json(&json!({ "username": username, "displayName": "Someone", "role": "officer" }))
            .send()
    };
    let res = create("reuse.me").await.unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(create("REUSE.ME").await.unwrap().status(), 409);
    let res = server
        .http
        .post(server.url(&format!("/v1/users/{id}/deactivate")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(create("reuse.me").await.unwrap().status(), 409);
    // Bad input is 422 and writes nothing.
    for body in [
        json!({ "username": "x", "displayName": "X", "role": "officer" }),
        json!({ "username": "valid.name", "displayName": "X", "role": "platform_operator" }),
        json!({ "username": "valid.name", "displayName": "", "role": "judge" }),
    ] {
        let res = server
            .http
            .post(server.url("/v1/users"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{body}");
    }
    let list: Value = server
        .http
        .get(server.url("/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn policies_are_validated_and_audited() {
    let db = TestDb::new().await;
    let agency = db.onboard("policy-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    // Rate limits are security policies: changed after step-up.
    server.step_up(&admin, &token).await;
    let put = |name: &str, value: Value| {
        server
            .http
            .put(server.url(&format!("/v1/policies/{name}")))
            .bearer_auth(&token)
            .json(&json!({ "value": value }))
            .send()
    };
    assert_eq!(
        put("ratelimit.agency_admin", json!(0))
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        put("ratelimit.nobody", json!(10)).await.unwrap().status(),
        422
    );
    assert_eq!(put("Bad Name", json!(10)).await.unwrap().status(), 422);
    // A change is recorded with its value before and after: a value too large for that is refused.
    let res = put(
        "ratelimit.agency_admin",
        json!({ "perMinute": 7, "note": "x".repeat(300_000) }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "value", "{problem}");
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("at most 262144"),
        "{problem}"
    );
    assert_eq!(
        put("ratelimit.agency_admin", json!({ "perMinute": 7 }))
            .await
            .unwrap()
            .status(),
        200
    );
    // The new limit applies to the next request.
    let res = server
        .http
        .get(server.url("/v1/policies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "ratelimit-limit"), Some(7));
    let list: Value = res.json().await.unwrap();
    let set: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default"] == false)
        .collect();
    assert_eq!(set.len(), 1, "{list}");
    assert_eq!(set[0]["name"], "ratelimit.agency_admin");
    assert_eq!(set[0]["value"], json!({ "perMinute": 7 }));
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "admin.policy.changed")
            .count(),
        1,
        "{actions:?}"
    );
}

#[tokio::test]
async fn per_ip_limits_use_the_trusted_proxys_forwarded_address_only_when_told() {
    let db = TestDb::new().await;
    let get = |server: &TestServer, ip: &'static str| {
        server
            .http
            .get(server.url("/.well-known/jwks.json"))
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .send()
    };
    let trusting = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[
            ("WRIT_RATE_LIMIT_ANONYMOUS", "1"),
            ("WRIT_TRUST_FORWARDED_FOR", "true"),
        ],
    );
    assert_eq!(get(&trusting, "10.0.0.1").await.unwrap().status(), 200);
    assert_eq!(get(&trusting, "10.0.0.1").await.unwrap().status(), 429);
    assert_eq!(get(&trusting, "10.0.0.2").await.unwrap().status(), 200);

    let plain = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_RATE_LIMIT_ANONYMOUS", "1")],
    );
    assert_eq!(get(&plain, "10.0.0.3").await.unwrap().status(), 200);
    assert_eq!(get(&plain, "10.0.0.4").await.unwrap().status(), 429);

    // With no agency to charge, the excess is a platform event carrying the source address.
    let mut recorded = Vec::new();
    for _ in 0..50 {
        recorded = sqlx::query_scalar::<_, Value>(
            "SELECT event FROM control.platform_events WHERE event->>'action' = 'ratelimit.exceeded'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!recorded.is_empty(), "no platform event for the 429");
    assert_eq!(recorded[0]["actor"]["role"], "anonymous", "{}", recorded[0]);
    assert_eq!(recorded[0]["outcome"], "failure", "{}", recorded[0]);
}

/// DESIGN §3: repeated validation failures from one caller tighten its limit. A refused request
/// (422 here) costs ten tokens: one spends a 3-a-minute bucket (a token comes back every 20 s),
/// and the refusals are recorded as `validation.failed` (sampled: one a minute per caller).
#[tokio::test]
async fn repeated_validation_failures_tighten_the_callers_limit() {
    let db = TestDb::new().await;
    let agency = db.onboard("fuzz-pd").await;
    let officer = seed_user(&db, &agency, "officer.fuzz", Role::Officer).await;
    let other = seed_user(&db, &agency, "officer.calm", Role::Officer).await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_RATE_LIMIT_STAFF", "3")],
    );
    let token = server.token(&officer).await;
    let calm = server.token(&other).await;
    let res = server
        .http
        .get(server.url("/v1/warrants?limit=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(header(&res, "ratelimit-remaining"), Some(0));
    let (status, body) = server.call("GET", "/v1/auth/session", &token, None).await;
    assert_eq!(status, 429, "{body}");
    // Another caller's bucket is untouched.
    let (status, _) = server.call("GET", "/v1/auth/session", &calm, None).await;
    assert_eq!(status, 200);
    // Recorded off the request's path: wait for it.
    let started = std::time::Instant::now();
    let failed = loop {
        let found =
            writ_testkit::audit::entries_with_action(&db, &agency, "validation.failed").await;
        if !found.is_empty() {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["actor"]["userId"], json!(officer.id));
    assert_eq!(failed[0]["outcome"], "failure");
    assert_eq!(failed[0]["detail"]["status"], 422);
    assert_eq!(failed[0]["detail"]["route"], "/v1/warrants");
    assert_eq!(failed[0]["detail"]["penaltyTokens"], 9);
}

/// A request whose body comes slowly, or never, holds no database connection while it waits:
/// more such requests than the pool has connections leave other agencies served, and each is
/// answered 408 `request-timeout` once the body deadline passes. Only a caller with a token the
/// server accepts gets its body waited for.
#[tokio::test]
async fn requests_whose_bodies_never_arrive_do_not_take_the_pool() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new().await;
    let a = db.onboard("slow-body-pd").await;
    let b = db.onboard("other-body-pd").await;
    let officer = seed_user(&db, &a, "slow.officer", Role::Officer).await;
    let other = seed_user(&db, &b, "other.officer", Role::Officer).await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[
            ("WRIT_DB_MAX_CONNECTIONS", "4"),
            ("WRIT_DB_ACQUIRE_TIMEOUT_MS", "500"),
            ("WRIT_BODY_TIMEOUT_SECS", "3"),
        ],
    );
    let token = server.token(&officer).await;
    let other_token = server.token(&other).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/auth/reauth HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 64\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        let (status, body) = server
            .call("GET", "/v1/auth/session", &other_token, None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for mut s in stalled {
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut answer))
            .await
            .expect("answered once the deadline passes")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("urn:writ:problem:request-timeout"),
            "{answer}"
        );
    }

    // Without a token the server accepts, nothing waits for the body: 401 at once. A login (no
    // token) has at most 64 KiB held for it.
    let forged = format!("{}x", &token[..token.len() - 1]);
    for (auth, length, expected) in [
        (
            format!("Authorization: Bearer {forged}\r\n"),
            64,
            "HTTP/1.1 401",
        ),
        (String::new(), 64, "HTTP/1.1 401"),
        (String::new(), 1024, "HTTP/1.1 401"),
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/auth/reauth HTTP/1.1\r\nHost: {addr}\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut answer))
            .await
            .expect("answered before the body deadline")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with(expected), "{answer}");
    }
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/auth/login HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        100 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut answer))
        .await
        .expect("refused without reading the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// The login is charged to the source address whatever token comes with it: a caller's own valid
/// token does not move password guessing to its role's far larger bucket.
#[tokio::test]
async fn a_token_sent_along_does_not_lift_the_login_limit_of_the_address() {
    let db = TestDb::new().await;
    let agency = db.onboard("guess-pd").await;
    let officer = seed_user(&db, &agency, "guess.officer", Role::Officer).await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_RATE_LIMIT_ANONYMOUS", "3")],
    );
    let token = server.token(&officer).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = server
            .http
            .post(server.url("/v1/auth/login"))
            .bearer_auth(&token)
            .json(&json!({ "agency": "guess-pd", "username": "guess.officer",
                "password": "not the password", "totp": "000000", "bannerAck": true }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    // The token's own login took the first of the address's three.
    assert_eq!(statuses, [401, 401, 429]);
}
