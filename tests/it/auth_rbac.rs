//! Authorisation through the real server: every role against every route of the matrix, agency
//! isolation (another agency's ids are 404), platform operators kept to the platform API.

use std::process::Command;

use serde_json::{Value, json};
use writ_auth_mfa::{Permission, Role};
use writ_testkit::{TestDb, TestServer, TestUser, audit_actions, ok, seed_user, writ_bin};

/// `writ operator create`, then enrollment over HTTP, then the platform login.
async fn operator(db: &TestDb, server: &TestServer, username: &str) -> String {
    operator_tokens(db, server, username).await.0
}

/// (access token, refresh token) of a freshly created and enrolled operator.
/// An enrolled operator's access and refresh tokens, and the operator (for TOTP codes).
pub(crate) async fn operator_tokens(
    db: &TestDb,
    server: &TestServer,
    username: &str,
) -> (String, String, TestUser) {
    let stdout = ok(db.writ(&["operator", "create", "--username", username]));
    let token = stdout.lines().nth(1).unwrap().trim().to_owned();
    assert!(token.starts_with("wen.op."), "{stdout}");
    let password = "operator passphrase of some length";
    let res = server
        .http
        .post(server.url("/v1/auth/enroll"))
        .json(&json!({ "token": token, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let e: Value = res.json().await.unwrap();
    let secret =
        writ_auth_mfa::totp::secret_from_base32(e["totpSecret"].as_str().unwrap()).unwrap();
    let user = TestUser::new(uuid::Uuid::nil(), "", username, password, secret);
    let res = server
        .http
        .post(server.url("/v1/auth/enroll/confirm"))
        .json(&json!({ "token": token, "totp": user.next_code() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The agency login knows no operators.
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .json(&user.body_with_code("123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = server
        .http
        .post(server.url("/v1/platform/auth/login"))
        .json(&json!({ "username": username, "password": password, "totp": user.next_code(), "bannerAck": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["accessToken"].as_str().unwrap().to_owned(),
        body["refreshToken"].as_str().unwrap().to_owned(),
        user,
    )
}

#[tokio::test]
async fn every_role_against_every_route_of_the_matrix() {
    let db = TestDb::new().await;
    let agency = db.onboard("matrix-pd").await;
    let target = seed_user(&db, &agency, "target.user", Role::Officer).await;
    let server = TestServer::start(&db);
    let mut tokens: Vec<(Role, String)> = Vec::new();
    // agency_admin last: its deactivate call succeeds and ends the target.
    for role in [
        Role::Officer,
        Role::Supervisor,
        Role::Prosecutor,
        Role::Judge,
        Role::Auditor,
        Role::AgencyAdmin,
    ] {
        let u = seed_user(
            &db,
            &agency,
            &format!("matrix.{}", role.as_str().replace('_', "-")),
            role,
        )
        .await;
        tokens.push((role, server.token(&u).await));
    }
    // Stepped up: the operators' unlock of an agency account needs it.
    let (op, _, operator_user) = operator_tokens(&db, &server, "ops.matrix").await;
    server.operator_step_up(&operator_user, &op).await;
    tokens.push((Role::PlatformOperator, op));

    let t = target.id;
    let routes: Vec<(&str, String, Option<Value>, Permission)> = vec![
        (
            "GET",
            "/v1/auth/session".into(),
            None,
            Permission::OwnSession,
        ),
        (
            "GET",
            "/v1/platform/auth/session".into(),
            None,
            Permission::AgenciesManage,
        ),
        ("GET", "/v1/users".into(), None, Permission::UsersRead),
        (
            "GET",
            "/v1/audit/events".into(),
            None,
            Permission::AuditRead,
        ),
        ("GET", "/v1/audit/keys".into(), None, Permission::AuditRead),
        ("GET", "/v1/keys".into(), None, Permission::AuditRead),
        ("GET", format!("/v1/users/{t}"), None, Permission::UsersRead),
        (
            "POST",
            "/v1/users".into(),
            Some(json!({ "displayName": "New", "role": "officer" })),
            Permission::UsersManage,
        ),
        (
            "PATCH",
            format!("/v1/users/{t}"),
            Some(json!({ "displayName": "Renamed" })),
            Permission::UsersManage,
        ),
        (
            "POST",
            format!("/v1/users/{t}/unlock"),
            None,
            Permission::UsersManage,
        ),
        (
            "POST",
            format!("/v1/users/{t}/deactivate"),
            None,
            Permission::UsersManage,
        ),
        (
            "GET",
            "/v1/platform/agencies".into(),
            None,
            Permission::AgenciesManage,
        ),
        (
            "POST",
            "/v1/platform/agencies".into(),
            Some(json!({ "name": "Created PD" })),
            Permission::AgenciesManage,
        ),
        (
            "POST",
            format!(
                "/v1/platform/agencies/{}/users/target.user/unlock",
                agency.id
            ),
            None,
            Permission::AgencyAccountsUnlock,
        ),
    ];
    let mut agency_denials = 0;
    for (role, token) in &tokens {
        for (i, (method, path, body, permission)) in routes.iter().enumerate() {
            let body = body.clone().map(|mut b| {
                // Unique names per call.
                let tag = format!("r{}x{i}", role.as_str().replace('_', ""));
                if path == "/v1/users" {
                    b["username"] = json!(tag);
                } else if path == "/v1/platform/agencies" {
                    b["slug"] = json!(tag.replace('_', "-"));
                }
                b
            });
            let (status, resp) = server.call(method, path, token, body).await;
            let allowed = permission.roles().contains(role);
            if allowed {
                assert!(
                    (200..300).contains(&status),
                    "{role} {method} {path}: {status} {resp}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path}: {resp}");
                assert_eq!(resp["type"], "urn:writ:problem:forbidden", "{resp}");
                if *role != Role::PlatformOperator {
                    agency_denials += 1;
                }
            }
        }
    }
    let actions = audit_actions(&db, &agency).await;
    let denied = actions.iter().filter(|a| *a == "authz.denied").count();
    assert_eq!(denied, agency_denials, "{actions:?}");
}

#[tokio::test]
async fn another_agencys_ids_are_not_found() {
    let db = TestDb::new().await;
    let a = db.onboard("alpha-pd").await;
    let b = db.onboard("bravo-pd").await;
    let admin_a = seed_user(&db, &a, "admin", Role::AgencyAdmin).await;
    let user_b = seed_user(&db, &b, "officer.b", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin_a).await;
    let id = user_b.id;
    for (method, path, body) in [
        ("GET", format!("/v1/users/{id}"), None),
        (
            "PATCH",
            format!("/v1/users/{id}"),
            Some(json!({ "displayName": "hijacked" })),
        ),
        ("POST", format!("/v1/users/{id}/unlock"), None),
        ("POST", format!("/v1/users/{id}/deactivate"), None),
    ] {
        let (status, resp) = server.call(method, &path, &token, body).await;
        assert_eq!(status, 404, "{method} {path}: {resp}");
        assert_eq!(resp["type"], "urn:writ:problem:not-found");
    }
    let (_, list) = server.call("GET", "/v1/users", &token, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|u| u["username"] != "officer.b")
    );
    // B's user is untouched and still logs in.
    server.login(&user_b).await;
}

#[tokio::test]
async fn operators_onboard_agencies_and_reach_nothing_else() {
    let db = TestDb::new().await;
    let agency = db.onboard("home-pd").await;
    let officer = seed_user(&db, &agency, "officer.o", Role::Officer).await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let (op, op_refresh, operator) = operator_tokens(&db, &server, "ops.one").await;
    let (status, me) = server
        .call("GET", "/v1/platform/auth/session", &op, None)
        .await;
    assert_eq!(
        (status, me["role"].as_str()),
        (200, Some("platform_operator"))
    );
    // Refresh tokens are served only by their own realm's endpoint.
    let refresh = |path: &'static str, token: String| {
        server
            .http
            .post(server.url(path))
            .json(&json!({ "refreshToken": token }))
            .send()
    };
    assert_eq!(
        refresh("/v1/auth/refresh", op_refresh.clone())
            .await
            .unwrap()
            .status(),
        401
    );
    let res = refresh("/v1/platform/auth/refresh", op_refresh)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let op = res.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // Onboarding through HTTP, with the agency's first administrator: creating an administrator
    // needs step-up, as it does inside an agency; nothing is created without it.
    let first_admin =
        json!({ "slug": "new-county-so", "name": "New County SO", "adminUsername": "chief.admin" });
    let (status, p) = server
        .call(
            "POST",
            "/v1/platform/agencies",
            &op,
            Some(first_admin.clone()),
        )
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (401, Some("urn:writ:problem:step-up-required")),
        "{p}"
    );
    let (_, list) = server.call("GET", "/v1/platform/agencies", &op, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|a| a["slug"] != "new-county-so"),
        "{list}"
    );
    server.operator_step_up(&operator, &op).await;
    let (status, created) = server
        .call("POST", "/v1/platform/agencies", &op, Some(first_admin))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["adminEnrollmentToken"]
            .as_str()
            .unwrap()
            .starts_with("wen.")
    );
    let (status, again) = server
        .call(
            "POST",
            "/v1/platform/agencies",
            &op,
            Some(json!({ "slug": "new-county-so", "name": "Again" })),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    // Key settings that do not fit are the operator's to fix: 422 naming them.
    let (status, bad) = server
        .call(
            "POST",
            "/v1/platform/agencies",
            &op,
            Some(
                json!({ "slug": "keyless-so", "name": "Keyless SO", "keyProvider": "vault-9000" }),
            ),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "keys", "{bad}");
    let (_, list) = server.call("GET", "/v1/platform/agencies", &op, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["slug"] == "new-county-so")
    );
    // The onboarding committed with its platform event, and the refused one left none.
    let onboarded: Vec<Value> = sqlx::query_scalar(
        "SELECT event FROM control.platform_events \
         WHERE event->>'action' = 'platform.agency.onboarded' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(onboarded.len(), 1, "{onboarded:?}");
    assert_eq!(
        onboarded[0]["resource"]["agencyId"], created["id"],
        "{onboarded:?}"
    );

    // Operator tokens on agency routes: 403.
    for path in [
        "/v1/users",
        &format!("/v1/users/{}", officer.id),
        "/v1/auth/session",
    ] {
        let (status, resp) = server.call("GET", path, &op, None).await;
        assert_eq!(status, 403, "{resp}");
    }
    // Agency tokens never reach the platform API, admins included; the denial is audited.
    for user in [&officer, &admin] {
        let token = server.token(user).await;
        let (status, _) = server
            .call("GET", "/v1/platform/agencies", &token, None)
            .await;
        assert_eq!(status, 403);
    }
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "authz.denied").count(),
        2,
        "{actions:?}"
    );
}

#[test]
fn writ_totp_prints_the_current_code() {
    let secret = writ_auth_mfa::totp::generate_secret();
    let b32 = writ_auth_mfa::totp::secret_base32(&secret);
    let out = Command::new(writ_bin())
        .args(["totp", &b32])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Either side of a step boundary.
    let candidates =
        [now - 5, now, now + 5].map(|t| writ_auth_mfa::totp::code_at(&secret, t).unwrap());
    assert!(candidates.contains(&printed), "{printed}");
    let bad = Command::new(writ_bin())
        .args(["totp", "not base32!"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// Five failed logins by anyone lock the account; the right credentials are then refused.
async fn lock_out(server: &TestServer, user: &TestUser) {
    for i in 0..5 {
        let mut b = user.body_with_code("123456");
        b["password"] = json!(format!("guess {i}"));
        let res = server
            .http
            .post(server.url("/v1/auth/login"))
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .json(&user.login_body())
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:writ:problem:account-locked", "{body}");
}

#[tokio::test]
async fn a_locked_out_sole_admin_is_unlocked_from_the_command_line_or_by_an_operator() {
    let db = TestDb::new().await;
    let agency = db.onboard("sole-admin-pd").await;
    let admin = seed_user(&db, &agency, "chief", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);

    // Anonymous guesses lock the only administrator; the command line lets them back in.
    lock_out(&server, &admin).await;
    let out = db.writ(&["user", "unlock", "--agency", "sole-admin-pd", "chief"]);
    assert!(ok(out).contains("chief unlocked"));
    server.login(&admin).await;
    let missing = db.writ(&["user", "unlock", "--agency", "sole-admin-pd", "nobody"]);
    assert!(!missing.status.success());
    assert!(writ_testkit::text(&missing).contains("no user"));

    // Locked again; a platform operator unlocks without seeing the account, with a fresh
    // second factor.
    lock_out(&server, &admin).await;
    let (op, _, operator_user) = operator_tokens(&db, &server, "ops.unlock").await;
    let path = format!("/v1/platform/agencies/{}/users/chief/unlock", agency.id);
    let (status, p) = server.call("POST", &path, &op, None).await;
    assert_eq!(status, 401, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:step-up-required", "{p}");
    server.operator_step_up(&operator_user, &op).await;
    let res = server
        .http
        .post(server.url(&path))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.text().await.unwrap(), "");
    let token = server.token(&admin).await;
    for (path, status) in [
        (
            format!("/v1/platform/agencies/{}/users/nobody/unlock", agency.id),
            404,
        ),
        (
            format!(
                "/v1/platform/agencies/{}/users/chief/unlock",
                uuid::Uuid::new_v4()
            ),
            404,
        ),
    ] {
        let (got, body) = server.call("POST", &path, &op, None).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    // Agency users, administrators included, never reach it.
    let (status, _) = server.call("POST", &path, &token, None).await;
    assert_eq!(status, 403);
    // Operators themselves are unlocked from the command line.
    let locked_op = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT locked_at IS NOT NULL FROM control.operators WHERE username = 'ops.unlock'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    sqlx::query("UPDATE control.operators SET locked_at = now() WHERE username = 'ops.unlock'")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(locked_op().await);
    assert!(ok(db.writ(&["user", "unlock", "--platform", "ops.unlock"])).contains("unlocked"));
    assert!(!locked_op().await);
    let both = db.writ(&[
        "user",
        "unlock",
        "--platform",
        "--agency",
        "sole-admin-pd",
        "chief",
    ]);
    assert!(!both.status.success());

    writ_testkit::sequence(&db, &agency).await;
    let sql = format!(
        "SELECT entry FROM {}.audit_log WHERE action = 'admin.user.unlocked' ORDER BY seq",
        agency.ident.quoted()
    );
    let unlocked: Vec<Value> = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(unlocked.len(), 2, "{unlocked:?}");
    for e in &unlocked {
        assert_eq!(e["resource"]["userId"], admin.id.to_string());
        assert_eq!(e["detail"]["wasLocked"], true);
    }
    assert_eq!(unlocked[0]["actor"]["role"], "system");
    assert_eq!(unlocked[1]["actor"]["role"], "platform_operator");
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.lockout").count(),
        2,
        "{actions:?}"
    );
}

/// An operator who leaves is shut out from the command line at once (operators have no route
/// that ends another's account), and the command names who ran it; so does an onboarding run
/// from the command line.
#[tokio::test]
async fn command_line_deactivation_and_onboarding_are_on_the_platform_record() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    let op = operator(&db, &server, "ops.leaver").await;
    let (status, _) = server.call("GET", "/v1/platform/agencies", &op, None).await;
    assert_eq!(status, 200);
    let out = ok(db.writ(&["user", "deactivate", "--platform", "ops.leaver"]));
    assert!(out.contains("deactivated"), "{out}");
    let (status, p) = server.call("GET", "/v1/platform/agencies", &op, None).await;
    assert_eq!(status, 401, "{p}");
    let missing = db.writ(&["user", "deactivate", "--platform", "ops.nobody"]);
    assert!(!missing.status.success());

    ok(db.writ(&[
        "agency",
        "create",
        "--slug",
        "cli-made-pd",
        "--name",
        "CLI Made PD",
    ]));
    let events: Vec<Value> = sqlx::query_scalar(
        "SELECT event FROM control.platform_events \
         WHERE event->>'action' IN ('admin.user.deactivated', 'platform.agency.onboarded') \
         ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["admin.user.deactivated", "platform.agency.onboarded"],
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e["detail"]["invokedBy"]["via"], "cli", "{e}");
    }
    assert_eq!(events[1]["detail"]["slug"], "cli-made-pd");
}
