//! `PATCH /v1/users/{id}`: what an administrator may change, what is refused and in which order,
//! and the `admin.user.modified` entry each change leaves.

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_tenancy::Agency;
use writ_testkit::{TestDb, TestServer, seed_user, sequence};

/// The detail of the newest `admin.user.modified` entry.
async fn last_modification(db: &TestDb, agency: &Agency) -> Value {
    sequence(db, agency).await;
    // The schema name is generated and validated (AgencyIdent), never input.
    let sql = format!(
        "SELECT entry::jsonb -> 'detail' FROM {}.audit_log \
         WHERE action = 'admin.user.modified' ORDER BY seq DESC LIMIT 1",
        agency.ident.quoted()
    );
    sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&db.pool)
        .await
        .expect("admin.user.modified entry")
}

#[tokio::test]
async fn changes_are_answered_with_the_new_row_and_refusals_keep_their_order() {
    let db = TestDb::new().await;
    let agency = db.onboard("update-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &agency, "officer", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let officer_token = server.token(&officer).await;
    let path = format!("/v1/users/{}", officer.id);

    // A rename answers with the row as changed, trimmed, and leaves its entry.
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "displayName": "  Officer Renamed " })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["displayName"], "Officer Renamed");
    assert_eq!(user["role"], "officer");
    assert_eq!(user["status"], "active");
    let detail = last_modification(&db, &agency).await;
    assert_eq!(detail["displayName"], "Officer Renamed");
    assert_eq!(detail["previousRole"], Value::Null);
    let (status, _) = server
        .call("GET", "/v1/auth/session", &officer_token, None)
        .await;
    assert_eq!(status, 200, "a rename leaves the sessions alone");

    // A new role: the entry names the old one, and the old role's sessions end.
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "role": "supervisor" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["role"], "supervisor");
    assert_eq!(user["displayName"], "Officer Renamed");
    let detail = last_modification(&db, &agency).await;
    assert_eq!(detail["role"], "supervisor");
    assert_eq!(detail["previousRole"], "officer");
    let (status, _) = server
        .call("GET", "/v1/auth/session", &officer_token, None)
        .await;
    assert_eq!(status, 401, "the session granted for the old role ended");

    // The same role again is no change of role.
    let (status, _) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "role": "supervisor" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        last_modification(&db, &agency).await["previousRole"],
        Value::Null
    );

    // The patch's own faults.
    for body in [
        json!({ "status": "deactivated" }),
        json!({ "displayName": "" }),
        json!({ "role": "platform_operator" }),
    ] {
        let (status, problem) = server.call("PATCH", &path, &token, Some(body)).await;
        assert_eq!(status, 422, "{problem}");
    }
    // An unknown account is not found before the patch is judged.
    let unknown = format!("/v1/users/{}", uuid::Uuid::new_v4());
    for body in [
        json!({ "displayName": "Nobody" }),
        json!({ "displayName": "" }),
    ] {
        let (status, problem) = server.call("PATCH", &unknown, &token, Some(body)).await;
        assert_eq!(status, 404, "{problem}");
    }

    // A pending account (not enrolled yet) can be renamed but not re-enabled.
    let (status, created) = server
        .call(
            "POST",
            "/v1/users",
            &token,
            Some(json!({ "username": "officer.new", "displayName": "New", "role": "officer" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let pending = format!("/v1/users/{}", created["user"]["id"].as_str().unwrap());
    let (status, problem) = server
        .call(
            "PATCH",
            &pending,
            &token,
            Some(json!({ "status": "active" })),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, user) = server
        .call(
            "PATCH",
            &pending,
            &token,
            Some(json!({ "displayName": "Newer" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["displayName"], "Newer");
    assert_eq!(user["status"], "pending");

    // A deactivated account is never changed again, and says so before any fault of the patch.
    let (status, _) = server
        .call("POST", &format!("{path}/deactivate"), &token, None)
        .await;
    assert_eq!(status, 200);
    let entries = writ_testkit::audit_actions(&db, &agency).await.len();
    for body in [
        json!({ "displayName": "Back" }),
        json!({ "displayName": "" }),
        json!({ "status": "active" }),
    ] {
        let (status, problem) = server.call("PATCH", &path, &token, Some(body)).await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "urn:writ:problem:conflict");
    }
    assert_eq!(
        writ_testkit::audit_actions(&db, &agency).await.len(),
        entries,
        "a refused change leaves no entry"
    );
    let (_, user) = server.call("GET", &path, &token, None).await;
    assert_eq!(user["displayName"], "Officer Renamed");
    assert_eq!(user["status"], "deactivated");
}
