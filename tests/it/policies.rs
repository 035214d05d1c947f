//! Agency policies through the real server (only registered names, one policy read and reset,
//! step-up for security policies, admin grants and changes to admins' accounts, no raising one's own rate limit, timed unlock
//! by the `auth.lockout` policy) and NUL characters refused wherever a request carries text.

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_testkit::audit::entries_with_action as entries;
use writ_testkit::{TestDb, TestServer, TestUser, audit_actions, seed_user, sequence};

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// The 422 field of a validation problem.
fn field(body: &Value) -> &str {
    assert_eq!(body["type"], "urn:writ:problem:validation", "{body}");
    body["errors"][0]["field"].as_str().unwrap_or_default()
}

fn step_up_required(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:step-up-required", "{body}");
}

async fn post_login(server: &TestServer, body: Value) -> (u16, Value) {
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Five wrong passwords from anyone lock the account.
async fn lock(server: &TestServer, user: &TestUser) {
    for i in 0..5 {
        let mut b = user.body_with_code("123456");
        b["password"] = json!(format!("not the password {i}"));
        let (status, _) = post_login(server, b).await;
        assert_eq!(status, 401);
    }
    let (status, body) = post_login(server, user.login_body()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:account-locked", "{body}");
}

#[tokio::test]
async fn only_registered_policies_are_stored_and_one_can_be_read_and_reset() {
    let db = TestDb::new().await;
    let agency = db.onboard("registry-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;

    // A misspelt name is refused, naming the field, and nothing is stored.
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/audit.retension",
            &token,
            Some(json!({ "value": { "days": 400 } })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "name");
    assert!(body["detail"].as_str().unwrap().contains("audit.retention"));
    let (status, body) = server
        .call("GET", "/v1/policies/audit.retension", &token, None)
        .await;
    assert_eq!((status, field(&body)), (422, "name"), "{body}");
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/ratelimit.platform_operator",
            &token,
            Some(json!({ "value": 10 })),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "name"), "{body}");

    // Unset: the default, marked as such.
    let (status, p) = server
        .call("GET", "/v1/policies/audit.retention", &token, None)
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["value"], json!({ "days": 365 }));
    assert_eq!(p["default"], true);
    assert!(p.get("updatedAt").is_none(), "{p}");
    let (_, p) = server
        .call("GET", "/v1/policies/ratelimit.officer", &token, None)
        .await;
    assert_eq!(
        (p["value"].clone(), p["default"].clone()),
        (json!(500), json!(true))
    );
    let (_, p) = server
        .call("GET", "/v1/policies/auth.lockout", &token, None)
        .await;
    assert_eq!(p["value"], json!({ "unlockAfterMinutes": null }));

    // Set, read back, reset.
    let (status, p) = server
        .call(
            "PUT",
            "/v1/policies/audit.retention",
            &token,
            Some(json!({ "value": { "days": 400 } })),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["default"].clone(), p["value"]["days"].clone()),
        (json!(false), json!(400))
    );
    let (_, p) = server
        .call("GET", "/v1/policies/audit.retention", &token, None)
        .await;
    assert_eq!(p["value"], json!({ "days": 400 }));
    assert!(p["updatedAt"].is_string(), "{p}");
    let (status, p) = server
        .call("DELETE", "/v1/policies/audit.retention", &token, None)
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["value"].clone(), p["default"].clone()),
        (json!({ "days": 365 }), json!(true))
    );
    let (_, p) = server
        .call("GET", "/v1/policies/audit.retention", &token, None)
        .await;
    assert_eq!(p["default"], true);
    // Resetting what is not set changes nothing and records nothing.
    let (status, _) = server
        .call("DELETE", "/v1/policies/audit.retention", &token, None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .call("DELETE", "/v1/policies/audit.retension", &token, None)
        .await;
    assert_eq!((status, field(&body)), (422, "name"), "{body}");

    // A name stored before names were checked is listed, and can be removed.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.policies (agency_id, name, value) VALUES ($1, 'audit.retension', '{{\"days\": 400}}')",
        agency.ident.quoted()
    )))
    .bind(agency.id)
    .execute(&db.pool)
    .await
    .unwrap();
    let (status, list) = server.call("GET", "/v1/policies", &token, None).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for known in [
        "audit.archive",
        "audit.retension",
        "audit.retention",
        "auth.lockout",
        "keys.rotation",
        "ratelimit.officer",
    ] {
        assert!(names.contains(&known), "{known}: {names:?}");
    }
    let (status, _) = server
        .call("DELETE", "/v1/policies/audit.retension", &token, None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .call("GET", "/v1/policies/audit.retension", &token, None)
        .await;
    assert_eq!((status, field(&body)), (422, "name"));

    let changes = entries(&db, &agency, "admin.policy.changed").await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0]["detail"]["previous"], Value::Null);
    assert_eq!(changes[0]["detail"]["value"], json!({ "days": 400 }));
    assert_eq!(changes[1]["detail"]["previous"], json!({ "days": 400 }));
    assert_eq!(changes[1]["detail"]["value"], json!({ "days": 365 }));
    assert_eq!(changes[1]["detail"]["reset"], true);
    assert_eq!(changes[2]["detail"]["name"], "audit.retension");
}

#[tokio::test]
async fn admin_grants_and_security_policies_need_a_fresh_step_up() {
    let db = TestDb::new().await;
    let agency = db.onboard("stepup-policy-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &agency, "officer.kim", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let new_admin =
        json!({ "username": "second.admin", "displayName": "Second", "role": "agency_admin" });
    let grant = json!({ "role": "agency_admin" });
    let grant_path = format!("/v1/users/{}", officer.id);
    let policy_changes: [(&str, &str, Option<Value>); 6] = [
        (
            "PUT",
            "/v1/policies/audit.retention",
            Some(json!({ "value": { "days": 400 } })),
        ),
        (
            "PUT",
            "/v1/policies/ratelimit.officer",
            Some(json!({ "value": 200 })),
        ),
        (
            "PUT",
            "/v1/policies/ratelimit.agency_admin",
            Some(json!({ "value": 900 })),
        ),
        (
            "PUT",
            "/v1/policies/auth.lockout",
            Some(json!({ "value": { "unlockAfterMinutes": 30 } })),
        ),
        (
            "PUT",
            "/v1/policies/keys.rotation",
            Some(json!({ "value": { "days": 30 } })),
        ),
        ("DELETE", "/v1/policies/audit.archive", None),
    ];

    // Without step-up: refused, and nothing changes.
    let (status, body) = server
        .call("POST", "/v1/users", &token, Some(new_admin.clone()))
        .await;
    step_up_required(status, &body);
    let (status, body) = server
        .call("PATCH", &grant_path, &token, Some(grant.clone()))
        .await;
    step_up_required(status, &body);
    for (method, path, body) in &policy_changes {
        let (status, resp) = server.call(method, path, &token, body.clone()).await;
        step_up_required(status, &resp);
    }
    // A name no crate registered controls nothing: refused as such, step-up or not.
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/audit.retension",
            &token,
            Some(json!({ "value": { "days": 400 } })),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "name"), "{body}");
    // What is not privileged needs none.
    let (status, body) = server
        .call(
            "POST",
            "/v1/users",
            &token,
            Some(json!({ "username": "officer.new", "displayName": "New", "role": "officer" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = server.call("GET", "/v1/policies", &token, None).await;
    assert_eq!(status, 200);
    let (_, users) = server.call("GET", "/v1/users", &token, None).await;
    let users = users.as_array().unwrap();
    assert!(users.iter().all(|u| u["username"] != "second.admin"));
    assert!(
        users
            .iter()
            .any(|u| u["username"] == "officer.kim" && u["role"] == "officer")
    );
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(count(&actions, "admin.policy.changed"), 0, "{actions:?}");

    // After POST /v1/auth/reauth, each goes through.
    server.step_up(&admin, &token).await;
    let (status, body) = server
        .call("POST", "/v1/users", &token, Some(new_admin))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["role"], "agency_admin");
    let (status, body) = server.call("PATCH", &grant_path, &token, Some(grant)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "agency_admin");
    for (method, path, body) in &policy_changes {
        let (status, resp) = server.call(method, path, &token, body.clone()).await;
        assert_eq!(status, 200, "{method} {path}: {resp}");
    }
    let actions = audit_actions(&db, &agency).await;
    // The archive policy was never set: resetting it records nothing.
    assert_eq!(count(&actions, "admin.policy.changed"), 5, "{actions:?}");
}

/// Whatever is done to an agency_admin's account (rename, contact, re-enable, unlock,
/// deactivate) takes the step-up that making one does: a stolen admin session without the
/// second factor cannot remove the other admins. Refusals change nothing.
#[tokio::test]
async fn acting_on_another_admins_account_needs_a_fresh_step_up() {
    let db = TestDb::new().await;
    let agency = db.onboard("admin-target-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let other = seed_user(&db, &agency, "other.admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &agency, "officer.kim", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    lock(&server, &other).await;
    let other_path = format!("/v1/users/{}", other.id);
    let attempts: [(&str, String, Option<Value>); 4] = [
        ("POST", format!("{other_path}/unlock"), None),
        (
            "PATCH",
            other_path.clone(),
            Some(json!({ "displayName": "Renamed" })),
        ),
        (
            "PATCH",
            other_path.clone(),
            Some(json!({ "email": "someone.else@example.test" })),
        ),
        ("POST", format!("{other_path}/deactivate"), None),
    ];
    for (method, path, body) in &attempts {
        let (status, resp) = server.call(method, path, &token, body.clone()).await;
        step_up_required(status, &resp);
    }
    let (_, after) = server.call("GET", &other_path, &token, None).await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["locked"], true, "{after}");
    assert_ne!(after["displayName"], "Renamed");
    assert!(after["email"].is_null(), "{after}");
    let actions = audit_actions(&db, &agency).await;
    for action in [
        "admin.user.unlocked",
        "admin.user.modified",
        "admin.user.deactivated",
    ] {
        assert_eq!(count(&actions, action), 0, "{action}: {actions:?}");
    }
    // Another role's account needs no step-up.
    let (status, body) = server
        .call(
            "PATCH",
            &format!("/v1/users/{}", officer.id),
            &token,
            Some(json!({ "displayName": "Officer Kim" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    server.step_up(&admin, &token).await;
    for (method, path, body) in &attempts {
        let (status, resp) = server.call(method, path, &token, body.clone()).await;
        assert_eq!(status, 200, "{method} {path}: {resp}");
    }
    let (_, after) = server.call("GET", &other_path, &token, None).await;
    assert_eq!(after["status"], "deactivated", "{after}");
    assert_eq!(after["displayName"], "Renamed");
}

#[tokio::test]
async fn an_admin_may_lower_but_not_raise_its_own_roles_rate_limit() {
    let db = TestDb::new().await;
    let agency = db.onboard("own-limit-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;
    let put = |value: Value| {
        server.call(
            "PUT",
            "/v1/policies/ratelimit.agency_admin",
            &token,
            Some(json!({ "value": value })),
        )
    };
    // Over the deployment default of 1000.
    let (status, body) = put(json!(2000)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("may not raise"),
        "{body}"
    );
    let (status, body) = put(json!({ "perMinute": 300 })).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = put(json!(300)).await;
    assert_eq!(status, 200);
    let (status, _) = put(json!(301)).await;
    assert_eq!(status, 403);
    // Resetting to the default of 1000 raises it too.
    let (status, _) = server
        .call(
            "DELETE",
            "/v1/policies/ratelimit.agency_admin",
            &token,
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, p) = server
        .call("GET", "/v1/policies/ratelimit.agency_admin", &token, None)
        .await;
    assert_eq!(p["value"], json!(300));
    // Another role's limit is the administrator's to set.
    let (status, _) = server
        .call(
            "PUT",
            "/v1/policies/ratelimit.officer",
            &token,
            Some(json!({ "value": 2000 })),
        )
        .await;
    assert_eq!(status, 200);

    let denied = entries(&db, &agency, "authz.denied").await;
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert_eq!(denied[0]["actor"]["userId"], admin.id.to_string());
    assert_eq!(denied[0]["detail"]["permission"], "securityPolicyManage");
    let changes = entries(&db, &agency, "admin.policy.changed").await;
    assert_eq!(changes.len(), 3, "{changes:?}");
}

#[tokio::test]
async fn a_lockout_ends_after_the_agency_lockout_period_only_when_the_policy_says_so() {
    let db = TestDb::new().await;
    let agency = db.onboard("timed-unlock-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &agency, "officer.ray", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let locked_ago = |minutes: i32| {
        let pool = db.pool.clone();
        let sql = format!(
            "UPDATE {}.users SET locked_at = now() - make_interval(mins => $1) WHERE id = $2",
            agency.ident.quoted()
        );
        let id = officer.id;
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(minutes)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };

    // The CJIS default: only an administrator unlocks, however long ago the lock was.
    lock(&server, &officer).await;
    locked_ago(3 * 24 * 60).await;
    let (status, body) = post_login(&server, officer.login_body()).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("urn:writ:problem:account-locked"))
    );

    server.step_up(&admin, &token).await;
    for bad in [json!(14), json!(1441), json!("15"), json!(20.5)] {
        let (status, body) = server
            .call(
                "PUT",
                "/v1/policies/auth.lockout",
                &token,
                Some(json!({ "value": { "unlockAfterMinutes": bad } })),
            )
            .await;
        assert_eq!((status, field(&body)), (422, "value"), "{bad}: {body}");
    }
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/auth.lockout",
            &token,
            Some(json!({ "value": { "unlockAfterMinutes": 15 } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Within the period: still locked, even with both factors.
    locked_ago(14).await;
    let (status, body) = post_login(&server, officer.login_body()).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("urn:writ:problem:account-locked"))
    );
    // Past it: the lock has ended, and the attempt counts afresh.
    locked_ago(16).await;
    let (status, body) = post_login(&server, officer.login_body()).await;
    assert_eq!(status, 200, "{body}");
    let unlocked = entries(&db, &agency, "admin.user.unlocked").await;
    assert_eq!(unlocked.len(), 1, "{unlocked:?}");
    assert_eq!(unlocked[0]["actor"]["role"], "system");
    assert_eq!(unlocked[0]["resource"]["userId"], officer.id.to_string());
    // Five new failures lock it again.
    lock(&server, &officer).await;
    let actions = audit_actions(&db, &agency).await;
    assert_eq!(count(&actions, "auth.lockout"), 2, "{actions:?}");
}

#[tokio::test]
async fn a_nul_character_in_any_text_is_refused_naming_the_field_and_nothing_is_written() {
    let db = TestDb::new().await;
    let agency = db.onboard("nul-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;
    sequence(&db, &agency).await;
    let before = audit_actions(&db, &agency).await;

    // Login: username, agency.
    for (member, field_name) in [("username", "username"), ("agency", "agency")] {
        let mut b = admin.body_with_code("123456");
        b[member] = json!(format!("{}\u{0}x", b[member].as_str().unwrap()));
        let (status, body) = post_login(&server, b).await;
        assert_eq!((status, field(&body)), (422, field_name), "{body}");
    }
    let res = server
        .http
        .post(server.url("/v1/platform/auth/login"))
        .json(&json!({ "username": "op\u{0}", "password": "x", "bannerAck": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // A legal hold's reason.
    let (status, body) = server
        .call(
            "POST",
            "/v1/audit/legal-holds",
            &token,
            Some(json!({ "reason": "order\u{0}26-CV-1" })),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "reason"), "{body}");
    // A policy value, however deep, and a member name.
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/audit.archive",
            &token,
            Some(json!({ "value": { "url": "file:///srv/a\u{0}b" } })),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "value.url"), "{body}");
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/auth.lockout",
            &token,
            Some(json!({ "value": { "unlockAfterMinutes": 15, "a\u{0}": [1] } })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(field(&body).starts_with("value.a"), "{body}");
    // A user's fields.
    let (status, body) = server
        .call(
            "POST",
            "/v1/users",
            &token,
            Some(json!({ "username": "new.user", "displayName": "N\u{0}", "role": "officer" })),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "displayName"), "{body}");
    // A query parameter and a path parameter.
    let (status, body) = server
        .call("GET", "/v1/audit/events?action=auth%00login", &token, None)
        .await;
    assert_eq!((status, field(&body)), (422, "action"), "{body}");
    let (status, body) = server
        .call("GET", "/v1/policies/audit%00retention", &token, None)
        .await;
    assert_eq!((status, field(&body)), (422, "name"), "{body}");

    // Nothing was written: no hold, no policy, no user, no audit entry.
    let (_, holds) = server
        .call("GET", "/v1/audit/legal-holds", &token, None)
        .await;
    assert_eq!(holds, json!([]));
    let (_, list) = server.call("GET", "/v1/policies", &token, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["default"] == true),
        "{list}"
    );
    let (_, users) = server.call("GET", "/v1/users", &token, None).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    // The refusals themselves leave at most one sampled `validation.failed` (recorded off the
    // request's path, so perhaps not yet).
    sequence(&db, &agency).await;
    let (failed, rest): (Vec<String>, Vec<String>) = audit_actions(&db, &agency)
        .await
        .into_iter()
        .partition(|a| a == "validation.failed");
    assert_eq!(rest, before);
    assert!(failed.len() <= 1, "{failed:?}");
}
