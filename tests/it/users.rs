//! Users' badge numbers and judicial ids (`badgeOrJudicialId`): what signature records name the
//! signer by. Set at creation, changed or removed by PATCH, checked, audited, and kept within
//! the agency.

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_tenancy::Agency;
use writ_testkit::{TestDb, TestServer, seed_user, sequence};

/// The details of the agency's audit entries with `action`, oldest first.
async fn details(db: &TestDb, agency: &Agency, action: &str) -> Vec<Value> {
    sequence(db, agency).await;
    // The schema name is generated and validated (AgencyIdent), never input.
    let sql = format!(
        "SELECT entry::jsonb -> 'detail' FROM {}.audit_log WHERE action = $1 ORDER BY seq",
        agency.ident.quoted()
    );
    sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(sql))
        .bind(action)
        .fetch_all(&db.pool)
        .await
        .expect("audit details")
}

#[tokio::test]
async fn badge_is_set_at_creation_changed_removed_and_audited() {
    let db = TestDb::new().await;
    let agency = db.onboard("badge-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;

    // Created with a badge (trimmed as stored), answered and read back with it.
    let (status, created) = server
        .call(
            "POST",
            "/v1/users",
            &token,
            Some(
                json!({ "username": "j.alvarez", "displayName": "Det. Jamie Alvarez",
                "role": "officer", "badgeOrJudicialId": "  4471 " }),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["badgeOrJudicialId"], "4471");
    let id = created["user"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/users/{id}");
    let (status, user) = server.call("GET", &path, &token, None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], "4471");
    let created_entry = details(&db, &agency, "admin.user.created").await;
    assert_eq!(
        created_entry.last().expect("admin.user.created")["badgeOrJudicialId"],
        "4471"
    );

    // Without one: present in the view, as null.
    let (status, judge) = server
        .call(
            "POST",
            "/v1/users",
            &token,
            Some(json!({ "username": "judge.kim", "displayName": "Hon. R. Kim", "role": "judge" })),
        )
        .await;
    assert_eq!(status, 201, "{judge}");
    assert!(
        judge["user"]
            .as_object()
            .expect("user")
            .get("badgeOrJudicialId")
            .is_some_and(Value::is_null),
        "{judge}"
    );
    let judge_path = format!("/v1/users/{}", judge["user"]["id"].as_str().expect("id"));

    // Set later by PATCH; the entry names the new and the previous value.
    let (status, user) = server
        .call(
            "PATCH",
            &judge_path,
            &token,
            Some(json!({ "badgeOrJudicialId": "JUD-0193" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], "JUD-0193");
    assert_eq!(user["displayName"], "Hon. R. Kim");
    let modified = details(&db, &agency, "admin.user.modified").await;
    let last = modified.last().expect("admin.user.modified");
    assert_eq!(last["badgeOrJudicialId"], "JUD-0193");
    assert_eq!(last["previousBadgeOrJudicialId"], Value::Null);

    // Changed: the previous one is kept in the chain.
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": "B-4472" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], "B-4472");
    let modified = details(&db, &agency, "admin.user.modified").await;
    let last = modified.last().expect("admin.user.modified");
    assert_eq!(last["badgeOrJudicialId"], "B-4472");
    assert_eq!(last["previousBadgeOrJudicialId"], "4471");

    // Another change leaves the badge alone, and its entry does not name it.
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "displayName": "Sgt. Jamie Alvarez" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], "B-4472");
    let modified = details(&db, &agency, "admin.user.modified").await;
    let last = modified.last().expect("admin.user.modified");
    assert!(last.get("badgeOrJudicialId").is_none(), "{last}");

    // The list shows it too.
    let (status, list) = server.call("GET", "/v1/users", &token, None).await;
    assert_eq!(status, 200, "{list}");
    let listed = list
        .as_array()
        .expect("list")
        .iter()
        .find(|u| u["id"] == id.as_str())
        .expect("listed");
    assert_eq!(listed["badgeOrJudicialId"], "B-4472");

    // `null` removes it.
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": null })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], Value::Null);
    let modified = details(&db, &agency, "admin.user.modified").await;
    let last = modified.last().expect("admin.user.modified");
    assert_eq!(last["badgeOrJudicialId"], Value::Null);
    assert_eq!(last["previousBadgeOrJudicialId"], "B-4472");
}

#[tokio::test]
async fn invalid_badge_is_422_naming_the_field_and_nothing_is_written() {
    let db = TestDb::new().await;
    let agency = db.onboard("badge-bad-pd").await;
    let admin = seed_user(&db, &agency, "admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &agency, "officer", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let path = format!("/v1/users/{}", officer.id);
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": "4471" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    let admin_entries = || async {
        writ_testkit::audit_actions(&db, &agency)
            .await
            .into_iter()
            .filter(|a| a.starts_with("admin.user."))
            .count()
    };
    let before = admin_entries().await;

    let too_long = "9".repeat(65);
    for bad in [
        "",
        "   ",
        too_long.as_str(),
        "44\u{7}71",
        "44\n71",
        "44\u{200b}71",
    ] {
        let (status, problem) = server
            .call(
                "POST",
                "/v1/users",
                &token,
                Some(
                    json!({ "username": "new.officer", "displayName": "New Officer",
                    "role": "officer", "badgeOrJudicialId": bad }),
                ),
            )
            .await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], "badgeOrJudicialId",
            "{problem}"
        );

        let (status, problem) = server
            .call(
                "PATCH",
                &path,
                &token,
                Some(json!({ "badgeOrJudicialId": bad, "displayName": "Renamed" })),
            )
            .await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(
            problem["errors"][0]["field"], "badgeOrJudicialId",
            "{problem}"
        );
    }
    // 64 characters is the most there may be.
    let longest = "9".repeat(64);
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": longest })),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["badgeOrJudicialId"], longest.as_str());
    let (status, _) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": "4471" })),
        )
        .await;
    assert_eq!(status, 200);

    // Nothing of the refused requests was kept: no account, no rename, no entry.
    let (_, list) = server.call("GET", "/v1/users", &token, None).await;
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .all(|u| u["username"] != "new.officer"),
        "{list}"
    );
    let (_, user) = server.call("GET", &path, &token, None).await;
    assert_eq!(user["badgeOrJudicialId"], "4471");
    assert_ne!(user["displayName"], "Renamed");
    assert_eq!(
        admin_entries().await,
        before + 2,
        "only the two accepted changes"
    );
}

#[tokio::test]
async fn another_agency_can_neither_see_nor_change_a_badge() {
    let db = TestDb::new().await;
    let home = db.onboard("badge-home-pd").await;
    let other = db.onboard("badge-other-pd").await;
    let admin = seed_user(&db, &home, "admin", Role::AgencyAdmin).await;
    let judge = seed_user(&db, &home, "judge", Role::Judge).await;
    let outsider = seed_user(&db, &other, "admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    let outsider_token = server.token(&outsider).await;
    let path = format!("/v1/users/{}", judge.id);
    let (status, user) = server
        .call(
            "PATCH",
            &path,
            &token,
            Some(json!({ "badgeOrJudicialId": "JUD-0193" })),
        )
        .await;
    assert_eq!(status, 200, "{user}");

    let (status, problem) = server.call("GET", &path, &outsider_token, None).await;
    assert_eq!(status, 404, "{problem}");
    assert!(!problem.to_string().contains("JUD-0193"), "{problem}");
    let (status, problem) = server
        .call(
            "PATCH",
            &path,
            &outsider_token,
            Some(json!({ "badgeOrJudicialId": "JUD-9999" })),
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, list) = server.call("GET", "/v1/users", &outsider_token, None).await;
    assert_eq!(status, 200, "{list}");
    assert!(!list.to_string().contains("JUD-0193"), "{list}");

    let (_, user) = server.call("GET", &path, &token, None).await;
    assert_eq!(user["badgeOrJudicialId"], "JUD-0193");
}
