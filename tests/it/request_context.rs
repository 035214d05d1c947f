//! One request context: an authenticated request runs in one transaction (the agency's read, the
//! session check, the handler's work and its audit entries commit together), and what it records
//! names the caller, the caller's address and the request's id.

use std::collections::BTreeMap;
use writ_testkit::audit::entries_with_action as entries;

use serde_json::json;
use sqlx::PgPool;
use writ_auth_mfa::Role;
use writ_testkit::{TestDb, TestServer, own_cluster, seed_user};

#[tokio::test]
async fn an_audit_entry_carries_the_requests_id_and_source_address() {
    let db = TestDb::new().await;
    let agency = db.onboard("ctx-pd").await;
    let admin = seed_user(&db, &agency, "admin.ctx", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;

    let res = server
        .http
        .post(server.url("/v1/users"))
        .bearer_auth(&token)
        .header("x-request-id", "case-2026-114.create-user")
        .json(
            &json!({ "username": "j.alvarez", "displayName": "Jamie Alvarez", "role": "officer" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-request-id"], "case-2026-114.create-user");

    let created = entries(&db, &agency, "admin.user.created").await;
    let entry = created
        .iter()
        .find(|e| e["detail"]["username"] == "j.alvarez")
        .expect("admin.user.created for j.alvarez");
    assert_eq!(entry["actor"]["userId"], admin.id.to_string());
    assert_eq!(entry["actor"]["role"], "agency_admin");
    assert_eq!(entry["sourceIp"], "127.0.0.1");
    assert_eq!(entry["detail"]["requestId"], "case-2026-114.create-user");

    // A denial, committed on its own, carries them as well; a request without an id of its own
    // gets the one the server made, and that is the one recorded.
    let officer = seed_user(&db, &agency, "officer.ctx", Role::Officer).await;
    let officer_token = server.token(&officer).await;
    let res = server
        .http
        .get(server.url("/v1/users"))
        .bearer_auth(&officer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let denied = entries(&db, &agency, "authz.denied").await;
    let entry = denied
        .iter()
        .find(|e| e["actor"]["userId"] == officer.id.to_string())
        .expect("authz.denied for the officer");
    assert_eq!(entry["sourceIp"], "127.0.0.1");
    assert_eq!(entry["detail"]["requestId"], made.as_str());
    assert_eq!(entry["detail"]["route"], "GET /v1/users");
    assert_eq!(entry["detail"]["path"], "/v1/users");
    assert!(
        entry["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("officer")),
        "{entry}"
    );

    // Before anyone is known: a failed and a successful login carry the request's id too.
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .header("x-request-id", "login.wrong-code")
        .json(&officer.body_with_code("000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = server
        .http
        .post(server.url("/v1/auth/login"))
        .header("x-request-id", "login.right-code")
        .json(&officer.body_with_code(&officer.next_code()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let logins = entries(&db, &agency, "auth.login").await;
    for (id, outcome) in [
        ("login.wrong-code", "failure"),
        ("login.right-code", "success"),
    ] {
        let entry = logins
            .iter()
            .find(|e| e["detail"]["requestId"] == id)
            .unwrap_or_else(|| panic!("auth.login with requestId {id}: {logins:?}"));
        assert_eq!(entry["outcome"], outcome);
        assert_eq!(entry["sourceIp"], "127.0.0.1");
        assert_eq!(entry["actor"]["userId"], officer.id.to_string());
    }
}

/// One statement PostgreSQL logged for the database under test.
struct Logged {
    backend: String,
    vxid: String,
    text: String,
}

/// The statements of `database` in `log` (written with the prefix `%d|%p|%v|`).
fn statements(log: &str, database: &str) -> Vec<Logged> {
    log.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, '|');
            let (db, pid, vxid, rest) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let text = rest.strip_prefix("LOG:  statement: ").or_else(|| {
                rest.strip_prefix("LOG:  execute ")?
                    .split_once(": ")
                    .map(|(_, s)| s)
            })?;
            (db == database).then(|| Logged {
                backend: pid.to_owned(),
                vxid: vxid.to_owned(),
                text: text.to_owned(),
            })
        })
        .collect()
}

#[tokio::test]
async fn an_authenticated_request_runs_in_one_transaction() {
    // A cluster of the test's own, logging every statement with its virtual transaction id.
    let (_dir, mut cluster) = own_cluster();
    let admin = PgPool::connect(&cluster.url("postgres")).await.unwrap();
    for sql in [
        "CREATE DATABASE writ",
        "ALTER SYSTEM SET log_statement = 'all'",
        "ALTER SYSTEM SET log_line_prefix = '%d|%p|%v|'",
    ] {
        sqlx::raw_sql(sql).execute(&admin).await.unwrap();
    }
    admin.close().await;
    cluster.stop();
    cluster.start().unwrap();
    let db = TestDb::at(cluster.url("writ")).await;
    let agency = db.onboard("one-tx-pd").await;
    let user = seed_user(&db, &agency, "admin.onetx", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&user).await;
    // The first request also loads what the server caches (rate-limit policies).
    assert_eq!(server.call("GET", "/v1/users", &token, None).await.0, 200);

    let log_path = cluster.dir().join("postgres.log");
    let from = std::fs::metadata(&log_path).unwrap().len() as usize;
    const REQUESTS: usize = 5;
    for _ in 0..REQUESTS {
        assert_eq!(server.call("GET", "/v1/users", &token, None).await.0, 200);
    }
    // PostgreSQL writes a statement's line before running it, so every line of these requests
    // is in the file once their answers are in.
    let log = std::fs::read(&log_path).unwrap();
    let log = String::from_utf8_lossy(&log[from..]);

    let mut transactions: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in statements(&log, "writ") {
        transactions
            .entry((s.backend, s.vxid))
            .or_default()
            .push(s.text);
    }
    let has = |tx: &[String], needle: &str| tx.iter().any(|s| s.contains(needle));
    // The session check, the agency's read and the handler's query (`list_users`).
    let session_checks: Vec<_> = transactions
        .values()
        .filter(|tx| has(tx, "WITH cur AS"))
        .collect();
    let listings: Vec<_> = transactions
        .values()
        .filter(|tx| has(tx, "ORDER BY username"))
        .collect();
    assert_eq!(session_checks.len(), REQUESTS, "{log}");
    assert_eq!(listings.len(), REQUESTS, "{log}");
    for tx in session_checks {
        assert_eq!(tx.first().map(String::as_str), Some("BEGIN"), "{tx:?}");
        assert!(has(tx, "FROM control.agencies WHERE id"), "{tx:?}");
        assert!(has(tx, "ORDER BY username"), "{tx:?}");
        assert_eq!(tx.last().map(String::as_str), Some("COMMIT"), "{tx:?}");
    }
}
