//! The real `writ serve` binary over HTTP: problem+json errors, readiness, OpenAPI and docs.

use std::time::{Duration, Instant};

use serde_json::Value;
use writ_testkit::{TestDb, TestServer, own_cluster};

async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:writ:problem:")
    );
    body
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_json() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    let res = server
        .http
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    let body = problem(res, 404).await;
    assert_eq!(body["type"], "urn:writ:problem:not-found");
    assert_eq!(body["instance"], "/no/such/route");
    let res = server
        .http
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    problem(res, 405).await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_minted() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    let res = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    let minted = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        minted.len(),
        36,
        "a fresh uuid replaces an unsafe id: {minted}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    server.http.get(server.url("/nope")).send().await.unwrap();
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"writ_http_requests_total{endpoint="/healthz",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"endpoint="unmatched""#),
        "unknown paths must not become label values"
    );
    assert!(text.contains("writ_http_requests_duration_seconds_bucket"));
}

#[tokio::test]
async fn readyz_follows_the_database_without_a_restart() {
    let (_dir, mut cluster) = own_cluster();
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE DATABASE writ")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let db = TestDb::at(cluster.url("writ")).await;
    let server = TestServer::start(&db);
    let ready = |server: &TestServer| {
        let req = server.http.get(server.url("/readyz"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&server).await, 200);
    db.pool.close().await;

    cluster.stop();
    let res = server.http.get(server.url("/readyz")).send().await.unwrap();
    let body = problem(res, 503).await;
    assert_eq!(body["type"], "urn:writ:problem:unavailable");

    cluster.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ready(&server).await == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readyz_is_503_while_migrations_are_behind() {
    let db = TestDb::new().await;
    sqlx::query("DELETE FROM control.schema_migrations")
        .execute(&db.pool)
        .await
        .unwrap();
    let server = TestServer::start(&db);
    let res = server.http.get(server.url("/readyz")).send().await.unwrap();
    let body = problem(res, 503).await;
    assert_eq!(body["type"], "urn:writ:problem:unavailable");
}

#[tokio::test]
async fn openapi_is_3_1_and_matches_the_committed_document() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    let served: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(served["paths"]["/readyz"]["get"].is_object());
    let committed: Value =
        serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    assert_eq!(
        served, committed,
        "openapi/openapi.json is stale: run `make openapi`"
    );
}

#[tokio::test]
async fn docs_serve_swagger_ui_from_the_binary() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db);
    let page = server.http.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    let script = server
        .http
        .get(server.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.unwrap().len() > 100_000);
    let init = server
        .http
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
}

/// Unreadable, oversized and mistyped bodies are refused before anything runs: no audit entry,
/// no session, nothing written.
#[tokio::test]
async fn bad_bodies_are_4xx_problems_and_write_nothing() {
    let db = TestDb::new().await;
    let agency = db.onboard("agency-a").await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_MAX_BODY_BYTES", "4096")],
    );
    let login = server.url("/v1/auth/login");
    let send = |body: Vec<u8>, ct: &'static str| {
        server
            .http
            .post(&login)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let malformed = send(
        b"{\"agency\": \"agency-a\", \"username\": ".to_vec(),
        "application/json",
    )
    .await
    .unwrap();
    problem(malformed, 400).await;
    let mut big = b"{\"agency\":\"agency-a\",\"username\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 10_000));
    big.extend(b"\",\"password\":\"x\",\"totp\":\"000000\",\"bannerAck\":true}");
    let body = problem(send(big, "application/json").await.unwrap(), 413).await;
    assert_eq!(body["type"], "urn:writ:problem:payload-too-large");
    let wrong_type = send(
        b"agency=agency-a".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    problem(wrong_type, 415).await;
    assert!(
        writ_testkit::audit_actions(&db, &agency).await.is_empty(),
        "a refused body must leave no trace in the agency's tables"
    );
}
