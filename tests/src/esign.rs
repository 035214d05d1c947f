//! Signing over HTTP as a user would: request a signature on the document a warrant needs
//! (`affidavit` before submitting, `warrant` before issuing), step up, sign.

use serde_json::{Value, json};

use crate::{TestServer, TestUser};

/// The made document `action` needs signed first, if any.
pub fn document_for(action: &str) -> Option<&'static str> {
    match action {
        "submit" => Some("affidavit"),
        "issue" => Some("warrant"),
        _ => None,
    }
}

/// Requests a signature on the made document `kind` of warrant `warrant_id` and, when `user`
/// is the signer the request names, steps up and signs it. The signature, or `None` when the
/// request was refused or names someone else (the step that needed it then fails as it would).
pub async fn sign_made(
    server: &TestServer,
    user: &TestUser,
    token: &str,
    warrant_id: &str,
    kind: &str,
) -> Option<Value> {
    sign_made_on(server, user, token, warrant_id, kind, None).await
}

/// [`sign_made`] with the terms of issue the made warrant states.
pub async fn sign_made_on(
    server: &TestServer,
    user: &TestUser,
    token: &str,
    warrant_id: &str,
    kind: &str,
    terms: Option<Value>,
) -> Option<Value> {
    let mut body = json!({ "document": kind });
    if let Some(terms) = terms {
        body["terms"] = terms;
    }
    let (status, request) = server
        .call(
            "POST",
            &format!("/v1/warrants/{warrant_id}/signature-requests"),
            token,
            Some(body),
        )
        .await;
    if status != 201 || request["signerId"] != json!(user.id) {
        return None;
    }
    Some(sign_request(server, user, token, &request).await)
}

/// Signs `request` as `user`, stepping up first when the session is not; the signature (201
/// asserted).
pub async fn sign_request(
    server: &TestServer,
    user: &TestUser,
    token: &str,
    request: &Value,
) -> Value {
    let id = request["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{request}"));
    let path = format!("/v1/signature-requests/{id}/sign");
    let body = json!({ "intentAccepted": true });
    let (mut status, mut signature) = server.call("POST", &path, token, Some(body.clone())).await;
    // A step-up lasts five minutes and each one spends a TOTP time step: only when needed.
    if status == 401 {
        server.step_up(user, token).await;
        (status, signature) = server.call("POST", &path, token, Some(body)).await;
    }
    assert_eq!(status, 201, "signing {id}: {signature}");
    signature
}

/// Before `action` (with the action's `body`) on warrant `w` by `user`: signs what it needs when
/// `user` is the one who signs it (the author submitting, a judge issuing, on the terms `body`
/// issues it on); nothing otherwise.
pub async fn sign_before(
    server: &TestServer,
    user: &TestUser,
    token: &str,
    w: &Value,
    action: &str,
    body: &Value,
) {
    let Some(kind) = document_for(action) else {
        return;
    };
    let signer = match kind {
        "affidavit" => w["authorId"] == json!(user.id),
        _ => w["claimedBy"] == json!(user.id) || w["claimedBy"].is_null(),
    };
    let id = w["id"].as_str().unwrap_or_default();
    if signer && !id.is_empty() {
        let mut terms = serde_json::Map::new();
        for member in ["nightService", "trackingUseDays"] {
            if let Some(v) = body.get(member) {
                terms.insert(member.into(), v.clone());
            }
        }
        let terms = (kind == "warrant" && !terms.is_empty()).then_some(Value::Object(terms));
        sign_made_on(server, user, token, id, kind, terms).await;
    }
}

/// `action` on warrant `w` by `user` with `body`, after signing what it needs (see
/// [`sign_before`]): the status and the answer.
pub async fn act(
    server: &TestServer,
    user: &TestUser,
    token: &str,
    w: &Value,
    action: &str,
    body: Value,
) -> (u16, Value) {
    sign_before(server, user, token, w, action, &body).await;
    let id = w["id"].as_str().unwrap_or_default();
    let path = format!("/v1/warrants/{id}/actions/{action}");
    server.call("POST", &path, token, Some(body)).await
}
