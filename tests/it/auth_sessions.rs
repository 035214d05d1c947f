//! How a request marks its session used: `last_seen_at` is written at most once a minute per
//! session (so most requests write nothing), never while another transaction holds the row, and
//! the idle limit still ends the session.

use serde_json::Value;
use sqlx::Row;
use writ_auth_mfa::Role;
use writ_tenancy::Agency;
use writ_testkit::{TestDb, TestServer, audit_actions, seed_user};

/// Seconds since the session's recorded last use, and its revocation reason.
async fn last_use(db: &TestDb, agency: &Agency) -> (f64, Option<String>) {
    let sql = format!(
        "SELECT extract(epoch FROM now() - last_seen_at)::float8 AS age, revoke_reason \
         FROM {}.sessions",
        agency.ident.quoted()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (row.get("age"), row.get("revoke_reason"))
}

async fn used_ago(db: &TestDb, agency: &Agency, seconds: i32) {
    let sql = format!(
        "UPDATE {}.sessions SET last_seen_at = now() - make_interval(secs => $1)",
        agency.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(f64::from(seconds))
        .execute(&db.pool)
        .await
        .unwrap();
}

async fn session(server: &TestServer, token: &str) -> (u16, Value) {
    server.call("GET", "/v1/auth/session", token, None).await
}

#[tokio::test]
async fn sessions_are_marked_used_once_a_minute_and_still_end_idle() {
    let db = TestDb::new().await;
    let agency = db.onboard("touch-pd").await;
    let user = seed_user(&db, &agency, "officer.touch", Role::Officer).await;
    let server = TestServer::start(&db);
    let token = server.token(&user).await;

    // Used 10 s ago, within the minute: the request answers and writes nothing.
    used_ago(&db, &agency, 10).await;
    assert_eq!(session(&server, &token).await.0, 200);
    let (age, _) = last_use(&db, &agency).await;
    assert!(age >= 10.0, "touched although used {age} s ago");

    // Used two minutes ago: the request marks it used now.
    used_ago(&db, &agency, 120).await;
    assert_eq!(session(&server, &token).await.0, 200);
    let (age, _) = last_use(&db, &agency).await;
    assert!(age < 60.0, "not touched: last use {age} s ago");

    // While another transaction holds the session row, a request neither waits for it nor
    // touches it; once the row is free, the next request does.
    used_ago(&db, &agency, 120).await;
    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {}.sessions FOR UPDATE",
        agency.ident.quoted()
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    assert_eq!(session(&server, &token).await.0, 200);
    holder.rollback().await.unwrap();
    let (age, _) = last_use(&db, &agency).await;
    assert!(age >= 120.0, "touched through another's row lock: {age} s");
    assert_eq!(session(&server, &token).await.0, 200);
    let (age, _) = last_use(&db, &agency).await;
    assert!(age < 60.0, "not touched once the row was free: {age} s");

    // Unused for 31 minutes (the limit is 30): ended, audited once, its last use left as it was.
    used_ago(&db, &agency, 31 * 60).await;
    let (status, body) = session(&server, &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:reauthentication-required");
    let (age, reason) = last_use(&db, &agency).await;
    assert!(age >= 31.0 * 60.0, "an ended session was touched: {age} s");
    assert_eq!(reason.as_deref(), Some("idle timeout"));
    assert_eq!(session(&server, &token).await.0, 401);
    let timeouts = audit_actions(&db, &agency)
        .await
        .into_iter()
        .filter(|a| a == "auth.session.timeout")
        .count();
    assert_eq!(timeouts, 1);
}

/// What a client does on its own is not the user's activity (CJIS session lock): renewing its
/// tokens and (re)opening the event stream leave the session's last use as it was, so an
/// unattended screen still reaches the idle limit.
#[tokio::test]
async fn refreshing_tokens_and_opening_the_event_stream_are_not_activity() {
    let db = TestDb::new().await;
    let agency = db.onboard("unattended-pd").await;
    let user = seed_user(&db, &agency, "officer.screen", Role::Officer).await;
    let server = TestServer::start(&db);
    let login = server.login(&user).await;
    let token = login["accessToken"].as_str().unwrap().to_owned();

    used_ago(&db, &agency, 120).await;
    let res = server
        .http
        .post(server.url("/v1/auth/refresh"))
        .json(&serde_json::json!({ "refreshToken": login["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (age, _) = last_use(&db, &agency).await;
    assert!(
        age >= 120.0,
        "a refresh counted as activity: last use {age} s ago"
    );

    // Opening the stream: its first frame arrives, the session is not marked used.
    let stream = server
        .http
        .get(server.url("/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    drop(stream);
    let (age, _) = last_use(&db, &agency).await;
    assert!(
        age >= 120.0,
        "opening the stream counted as activity: {age} s"
    );

    // A request of the user's own is.
    assert_eq!(session(&server, &token).await.0, 200);
    let (age, _) = last_use(&db, &agency).await;
    assert!(age < 60.0, "a request did not count: {age} s");
}
