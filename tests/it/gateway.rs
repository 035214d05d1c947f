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
    // A known path with another method: 405 naming the methods it takes.
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/healthz", "GET"),
        (reqwest::Method::PUT, "/v1/users", "GET, POST"),
        (
            reqwest::Method::GET,
            "/v1/audit/legal-holds/x/release",
            "POST",
        ),
    ] {
        let res = server
            .http
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body = problem(res, 405).await;
        assert_eq!(body["type"], "urn:writ:problem:method-not-allowed");
    }
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
    let deadline = Instant::now() + Duration::from_secs(60);
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

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn every_operation_documents_the_errors_it_can_answer() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    let ops = operations(&doc);
    assert!(ops.len() > 40, "{} operations", ops.len());
    for (method, path, op) in &ops {
        let responses = op["responses"].as_object().unwrap();
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        // The rate limiter leaves the health routes alone; liveness touches nothing that can be
        // down.
        let mut expected = vec!["500"];
        if path != "/healthz" && path != "/readyz" {
            expected.push("429");
        }
        if path != "/healthz" {
            expected.push("503");
        }
        if secured {
            expected.extend(["401", "403"]);
        }
        if op["requestBody"].is_object() {
            expected.extend(["400", "413", "415", "422"]);
        }
        for status in expected {
            let response = &responses
                .get(status)
                .unwrap_or_else(|| panic!("{method} {path}: no {status}"));
            let response = match response["$ref"].as_str() {
                Some(r) => {
                    let name = r.strip_prefix("#/components/responses/").unwrap();
                    &doc["components"]["responses"][name]
                }
                None => response,
            };
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{method} {path}: summary {summary:?}"
        );
        assert!(
            op["description"]
                .as_str()
                .is_some_and(|d| d.len() > summary.len()),
            "{method} {path}: no description"
        );
    }
    // The problem types, listed with status and meaning, and the members a problem carries.
    let problem = &doc["components"]["schemas"]["Problem"];
    let types = problem["x-problem-types"].as_array().unwrap();
    let slugs: Vec<&str> = types
        .iter()
        .map(|t| {
            assert!(t["status"].is_string() && t["meaning"].is_string(), "{t}");
            t["type"]
                .as_str()
                .unwrap()
                .strip_prefix("urn:writ:problem:")
                .unwrap()
        })
        .collect();
    for slug in [
        "validation",
        "not-found",
        "method-not-allowed",
        "unauthorized",
        "invalid-token",
        "step-up-required",
        "forbidden",
        "rate-limited",
        "unavailable",
        "key-provider-unavailable",
        "key-disabled",
        "payload-too-large",
        "unsupported-media-type",
        "internal",
    ] {
        assert!(slugs.contains(&slug), "{slug} missing from {slugs:?}");
        let description = problem["description"].as_str().unwrap();
        assert!(description.contains(&format!("`{slug}`")), "{slug}");
    }
    let field_error = &problem["properties"]["errors"]["items"];
    assert_eq!(
        field_error["required"],
        serde_json::json!(["field", "reason"])
    );
    assert!(problem["properties"]["requestId"].is_object());
}

/// Each documented operation, called without credentials (and without a body), is routed to its
/// handler — never the 404 of the default service nor a 405 — and answers a status it documents
/// with a problem whose members the `Problem` schema describes.
#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented() {
    let db = TestDb::new().await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_RATE_LIMIT_ANONYMOUS", "100000")],
    );
    let doc: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members: Vec<String> = doc["components"]["schemas"]["Problem"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let ops = operations(&doc);
    for (method, path, op) in &ops {
        // Each path parameter gets a value of its type; without credentials nothing is looked up.
        let mut concrete = path.clone();
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] != "path" {
                continue;
            }
            let value = match (
                param["schema"]["type"].as_str(),
                param["schema"]["format"].as_str(),
            ) {
                (_, Some("uuid")) => "00000000-0000-0000-0000-000000000000",
                (Some("integer"), _) => "1",
                _ => "x",
            };
            concrete = concrete.replace(&format!("{{{}}}", param["name"].as_str().unwrap()), value);
        }
        assert!(
            !concrete.contains('{'),
            "{method} {path}: undocumented path parameter"
        );
        let res = server
            .http
            .request(method.parse().unwrap(), server.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            op["responses"][status.to_string()].is_object(),
            "{method} {path} answered {status}, which it does not document"
        );
        if status >= 400 {
            let body = problem(res, status).await;
            for member in body.as_object().unwrap().keys() {
                assert!(
                    members.contains(member),
                    "{method} {path}: member {member} is not in the Problem schema"
                );
            }
        }
    }
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (method, path, _) in &ops {
        let series = format!(r#"writ_http_requests_total{{endpoint="{path}",method="{method}","#);
        assert!(metrics.contains(&series), "{method} {path} was not routed");
    }
    assert!(
        !metrics.contains(r#"endpoint="unmatched""#),
        "a documented operation fell through to the default service"
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
    assert_eq!(
        writ_testkit::audit_actions(&db, &agency).await,
        ["system.start"],
        "a refused body must leave no trace in the agency's tables (the server's start is there)"
    );
}
