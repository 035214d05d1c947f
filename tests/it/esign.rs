//! E-signatures through the real server: the affiant signs the affidavit before submitting, the
//! judge the warrant before issuing; the record names the exact bytes, the authentication and
//! the audit entry, verifies on the server and offline with `writ-verify signature`; a document
//! changed after signing fails verification naming it, and a signed or requested one cannot be
//! hidden. Signing needs a step-up, only the named signer signs, and another agency sees nothing.

use std::process::Command;

use serde_json::{Value, json};
use writ_testkit::esign::{sign_made, sign_request};
use writ_testkit::{as_attacker, sha256_hex, text, writ_verify_bin, write_agency_pem};

use crate::warrants::{Env, Who, env};

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))
}

impl Env {
    async fn request(&self, who: &Who, w: &Value, body: Value) -> (u16, Value) {
        let path = format!("/v1/warrants/{}/signature-requests", id(w));
        self.server
            .call("POST", &path, &who.token, Some(body))
            .await
    }

    /// A new draft of the officer's with its affidavit signed: the warrant, the signature
    /// request and the signature.
    async fn signed_affidavit(&self) -> (Value, Value, Value) {
        let w = self.create(&self.officer, json!({})).await;
        let (_, request) = self
            .request(&self.officer, &w, json!({ "document": "affidavit" }))
            .await;
        let signature = sign_request(
            &self.server,
            &self.officer.user,
            &self.officer.token,
            &request,
        )
        .await;
        (w, request, signature)
    }

    async fn sign(&self, who: &Who, request: &Value, body: Value) -> (u16, Value) {
        let path = format!("/v1/signature-requests/{}/sign", id(request));
        self.server
            .call("POST", &path, &who.token, Some(body))
            .await
    }

    async fn content(&self, who: &Who, document_id: &str) -> Vec<u8> {
        let res = self
            .server
            .http
            .get(
                self.server
                    .url(&format!("/v1/documents/{document_id}/content")),
            )
            .bearer_auth(&who.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.bytes().await.unwrap().to_vec()
    }

    async fn verification(&self, who: &Who, signature_id: &str) -> (u16, Value) {
        let path = format!("/v1/signatures/{signature_id}/verification");
        self.server.call("GET", &path, &who.token, None).await
    }
}

fn check<'a>(verification: &'a Value, name: &str) -> &'a Value {
    verification["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {verification}"))
}

fn verify_offline(
    dir: &std::path::Path,
    record: &Value,
    document: &[u8],
    pem: &std::path::Path,
) -> std::process::Output {
    let record_path = dir.join("signature.json");
    let document_path = dir.join("document.bin");
    std::fs::write(&record_path, serde_json::to_vec_pretty(record).unwrap()).unwrap();
    std::fs::write(&document_path, document).unwrap();
    Command::new(writ_verify_bin())
        .args([
            "signature",
            record_path.to_str().unwrap(),
            "--document",
            document_path.to_str().unwrap(),
            "--public-key",
            pem.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_affiant_signs_the_exact_affidavit_and_the_record_verifies_online_and_offline() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;

    // Submitting needs the affiant's signature on the affidavit as it stands.
    let (status, p) = e.act_unsigned(&e.officer, &w, "submit", json!({})).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:affidavit-unsigned")),
        "{p}"
    );

    let (status, request) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["signerId"], json!(e.officer.user.id));
    assert_eq!(request["documentKind"], "affidavit");
    assert_eq!(request["status"], "pending");
    assert!(
        request["intent"]
            .as_str()
            .unwrap()
            .contains("penalty of perjury")
    );
    // The same warrant gives the same document: a second request reuses it.
    let (_, again) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    assert_eq!(again["documentId"], request["documentId"]);

    // The signer's pending list.
    let (status, pending) = e
        .server
        .call("GET", "/v1/signature-requests", &e.officer.token, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");
    let (_, others) = e
        .server
        .call("GET", "/v1/signature-requests", &e.officer2.token, None)
        .await;
    assert_eq!(others, json!([]));

    // Without a step-up: 401. Someone else: 403, recorded. Not accepting the intent: 422.
    let (status, p) = e
        .sign(&e.officer, &request, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (401, Some("urn:writ:problem:step-up-required")),
        "{p}"
    );
    e.server.step_up(&e.officer2.user, &e.officer2.token).await;
    let (status, p) = e
        .sign(&e.officer2, &request, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(status, 403, "{p}");
    let denied = e.entries().await.into_iter().any(|x| {
        x["action"] == "authz.denied" && x["actor"]["userId"] == json!(e.officer2.user.id)
    });
    assert!(denied, "the refusal is audited");
    e.server.step_up(&e.officer.user, &e.officer.token).await;
    let (status, p) = e
        .sign(&e.officer, &request, json!({ "intentAccepted": false }))
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("intentAccepted")),
        "{p}"
    );

    let (status, signature) = e
        .sign(&e.officer, &request, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(status, 201, "{signature}");
    assert_eq!(signature["complete"], true);
    let record = &signature["record"]["record"];
    assert_eq!(record["format"], "writ.signature.v1");
    assert_eq!(record["signer"]["userId"], json!(e.officer.user.id));
    assert_eq!(record["signer"]["role"], "officer");
    assert_eq!(
        record["authentication"]["methods"],
        json!(["password", "totp"])
    );
    assert_eq!(record["authentication"]["strength"], "aal2");
    assert_eq!(record["intent"]["text"], request["intent"]);
    assert_eq!(
        record["intent"]["sha256"],
        sha256_hex(request["intent"].as_str().unwrap().as_bytes())
    );
    assert_eq!(record["document"]["id"], request["documentId"]);
    assert_eq!(record["sourceIp"], "127.0.0.1");
    assert!(
        record["oathReference"].is_null(),
        "no oath yet: the member is absent"
    );
    // The audit entry that recorded it, by seq and hash.
    let seq = record["audit"]["seq"].as_u64().unwrap();
    let entry = e
        .entries()
        .await
        .into_iter()
        .find(|x| x["seq"] == json!(seq))
        .unwrap();
    assert_eq!(entry["action"], "esign.applied");
    assert_eq!(entry["hash"], record["audit"]["entryHash"]);
    assert_eq!(entry["resource"]["signatureId"], signature["id"]);

    // The exact bytes: what the content route serves hashes to the record's SHA-256.
    let document = e
        .content(&e.officer, id(&json!({"id": request["documentId"]})))
        .await;
    assert_eq!(record["document"]["sha256"], sha256_hex(&document));
    assert_eq!(record["document"]["size"], json!(document.len()));
    let made: Value = serde_json::from_slice(&document).unwrap();
    assert_eq!(made["format"], "writ-affidavit/1");
    assert_eq!(made["warrantId"], w["id"]);

    // A request is signed once.
    let (status, p) = e
        .sign(&e.officer, &request, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:signature-request-not-pending"))
    );

    // Verified on the server, check by check, and recorded.
    let (status, v) = e.verification(&e.supervisor, id(&signature)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    for name in ["record", "agencySignature", "auditEntry", "document"] {
        assert_eq!(check(&v, name)["ok"], true, "{v}");
    }
    assert!(
        e.entries()
            .await
            .iter()
            .any(|x| x["action"] == "esign.verified" && x["outcome"] == "success")
    );

    // Offline: the record as served, the document, the agency key.
    let dir = tempfile::tempdir().unwrap();
    let pem = write_agency_pem(&e.db, &e.agency, dir.path()).await;
    let out = verify_offline(dir.path(), &signature["record"], &document, &pem);
    assert!(out.status.success(), "{}", text(&out));
    let mut changed = document.clone();
    changed.extend_from_slice(b" ");
    let out = verify_offline(dir.path(), &signature["record"], &changed, &pem);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Now it may be submitted; the submission names the signature.
    let (status, after) = e.act_unsigned(&e.officer, &w, "submit", json!({})).await;
    assert_eq!(
        (status, after["state"].as_str()),
        (200, Some("supervisor_review")),
        "{after}"
    );
    let submitted = e
        .entries()
        .await
        .into_iter()
        .find(|x| x["action"] == "warrant.submitted")
        .unwrap();
    assert_eq!(submitted["detail"]["affidavitSignatureId"], signature["id"]);
}

#[tokio::test]
async fn an_affidavit_edited_after_signing_and_a_warrant_without_the_judges_signature_are_refused()
{
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    sign_made(
        &e.server,
        &e.officer.user,
        &e.officer.token,
        id(&w),
        "affidavit",
    )
    .await
    .unwrap();
    // The draft changes after signing: the signature is on other bytes now.
    let path = format!("/v1/warrants/{}", id(&w));
    let mut content = w["content"].clone();
    content["affidavit"] = json!("On 2 March 2026 at 21:40 the affiant saw a second person …\n");
    let (status, edited) = e
        .server
        .call(
            "PATCH",
            &path,
            &e.officer.token,
            Some(json!({ "version": 1, "content": content })),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    let (status, p) = e.act_unsigned(&e.officer, &w, "submit", json!({})).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:affidavit-unsigned")),
        "{p}"
    );
    // A pending request made before the edit cannot be signed any more.
    let (_, stale) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    let patch = json!({ "version": 2, "content": { "affidavit": "Shorter.\n", "place": content["place"], "itemsSought": content["itemsSought"], "offense": content["offense"] } });
    let (status, _) = e
        .server
        .call("PATCH", &path, &e.officer.token, Some(patch))
        .await;
    assert_eq!(status, 200);
    let (status, p) = e
        .sign(&e.officer, &stale, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:document-outdated")),
        "{p}"
    );

    // Only the affiant signs the affidavit; the warrant is not signable in draft.
    let (status, p) = e
        .request(
            &e.supervisor,
            &w,
            json!({ "document": "affidavit", "signerId": e.supervisor.user.id }),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("signerId")),
        "{p}"
    );
    let (status, p) = e
        .request(&e.judge, &w, json!({ "document": "warrant" }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:not-signable-now")),
        "{p}"
    );
    let (status, p) = e
        .request(
            &e.officer,
            &w,
            json!({ "document": "affidavit", "documentId": w["id"] }),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    // The affidavit is signed under the oath, and requested by its kind, not by id.
    let (status, p) = e
        .request(
            &e.officer,
            &w,
            json!({ "document": "affidavit", "intent": "Received." }),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("intent")),
        "{p}"
    );
    let (status, p) = e
        .request(
            &e.officer,
            &w,
            json!({ "documentId": stale["documentId"], "signerId": e.officer.user.id, "intent": "Received." }),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("documentId")),
        "{p}"
    );

    // Queued, claimed: the judge cannot issue without signing the warrant.
    e.step(&e.officer, &w, "submit", json!({})).await;
    e.step(&e.supervisor, &w, "supervisor-approve", json!({}))
        .await;
    e.step(&e.prosecutor, &w, "prosecutor-approve", json!({}))
        .await;
    e.step(&e.judge, &w, "claim", json!({})).await;
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    let (status, p) = e.act_unsigned(&e.judge, &w, "issue", json!({})).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:judge-signature-required")),
        "{p}"
    );
    // Another judge may not sign the claimed warrant in the claimant's place.
    let (status, p) = e
        .request(
            &e.judge2,
            &w,
            json!({ "document": "warrant", "signerId": e.judge2.user.id }),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("signerId")),
        "{p}"
    );
    // Terms of issue belong to the made warrant, checked as issuing checks them.
    for (body, field) in [
        (
            json!({ "document": "affidavit", "terms": { "nightService": true } }),
            "terms",
        ),
        (
            json!({ "document": "warrant", "terms": { "trackingUseDays": 5 } }),
            "trackingUseDays",
        ),
    ] {
        let (status, p) = e.request(&e.judge, &w, body).await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{p}"
        );
    }
    let (status, p) = e
        .request(
            &e.judge,
            &w,
            json!({ "document": "warrant", "terms": { "night": true } }),
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {p}");
    // Signed for daytime service only, the warrant is not issued for night service.
    let daytime = sign_made(&e.server, &e.judge.user, &e.judge.token, id(&w), "warrant")
        .await
        .unwrap();
    let (status, p) = e
        .act_unsigned(&e.judge, &w, "issue", json!({ "nightService": true }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:judge-signature-required")),
        "{p}"
    );
    // The warrant the judge signs states the terms: signed with night service, it issues so.
    let (status, request) = e
        .request(
            &e.judge,
            &w,
            json!({ "document": "warrant", "terms": { "nightService": true } }),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["terms"], json!({ "nightService": true }));
    assert_ne!(
        request["documentSha256"],
        daytime["record"]["record"]["document"]["sha256"]
    );
    let signature =
        writ_testkit::esign::sign_request(&e.server, &e.judge.user, &e.judge.token, &request).await;
    assert_eq!(signature["record"]["record"]["signer"]["role"], "judge");
    let (status, issued) = e
        .act_unsigned(&e.judge, &w, "issue", json!({ "nightService": true }))
        .await;
    assert_eq!(
        (status, issued["state"].as_str()),
        (200, Some("issued")),
        "{issued}"
    );
    let approved = e
        .entries()
        .await
        .into_iter()
        .find(|x| x["action"] == "warrant.approved")
        .unwrap();
    assert_eq!(approved["detail"]["judgeSignatureId"], signature["id"]);
    // The service copy carries the proof of signature: the canonical document names it.
    let res = e
        .server
        .http
        .get(
            e.server
                .url(&format!("/v1/warrants/{}/service-copy", id(&w))),
        )
        .bearer_auth(&e.officer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let pdf = String::from_utf8_lossy(&res.bytes().await.unwrap()).into_owned();
    let signature_id = signature["id"].as_str().unwrap();
    assert!(
        pdf.contains(&format!("\"signatureId\":\"{signature_id}\"")),
        "the embedded issued document names the judge's signature"
    );
    // For the people at the premises: the court by its name, and the affiant.
    assert!(
        pdf.contains("Court: U.S. District Court, D. Minn. \\(d-minn\\)"),
        "the court's name on the copy"
    );
    assert!(pdf.contains("Affiant: "), "the affiant on the copy");
    assert!(
        pdf.contains(
            signature["record"]["record"]["document"]["sha256"]
                .as_str()
                .unwrap()
        )
    );
}

/// An officer may hide a mistaken upload of their own warrant, but not one that is part of a
/// signing record: awaiting a signature (until the request is cancelled), or signed (for good).
#[tokio::test]
async fn a_document_awaiting_or_bearing_a_signature_is_not_hidden() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let upload = |name: &'static str| {
        e.server
            .http
            .post(e.server.url(&format!(
                "/v1/warrants/{}/documents?filename={name}&classification=3",
                id(&w)
            )))
            .bearer_auth(&e.officer.token)
            .body(format!("{name}: photographs 1-12 of the kitchen.\n"))
            .send()
    };
    let e = &e;
    let delete = |doc: &Value| {
        let path = format!("/v1/documents/{}", id(doc));
        async move { e.server.call("DELETE", &path, &e.officer.token, None).await }
    };
    let in_signing = |(status, p): (u16, Value)| {
        assert_eq!(status, 409, "{p}");
        assert_eq!(p["type"], "urn:writ:problem:document-in-signing-record");
        p
    };
    let mut docs = Vec::new();
    for name in ["exhibit-a.txt", "exhibit-b.txt"] {
        let res = upload(name).await.unwrap();
        assert_eq!(res.status().as_u16(), 201);
        docs.push(res.json::<Value>().await.unwrap());
    }
    let intent = "I attest that this exhibit is a true copy of the photographs I took.";
    let mut requests = Vec::new();
    for doc in &docs {
        let (status, request) = e
            .request(
                &e.officer,
                &w,
                json!({ "documentId": doc["id"], "signerId": e.officer.user.id, "intent": intent }),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        requests.push(request);
    }
    // Awaiting a signature: refused until the request is cancelled.
    let p = in_signing(delete(&docs[0]).await);
    assert!(p["detail"].as_str().unwrap().contains("cancel"), "{p}");
    let (status, _) = e
        .server
        .call(
            "POST",
            &format!("/v1/signature-requests/{}/cancel", id(&requests[0])),
            &e.officer.token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(delete(&docs[0]).await.0, 204);
    // Signed: refused for good, and the signature still verifies.
    let signature = sign_request(&e.server, &e.officer.user, &e.officer.token, &requests[1]).await;
    in_signing(delete(&docs[1]).await);
    let (_, v) = e.verification(&e.officer, id(&signature)).await;
    assert_eq!(v["valid"], true, "{v}");
    // Nor is it destroyed: not on request, not by retention, which takes the other exhibit.
    in_signing(
        e.server
            .call(
                "POST",
                &format!("/v1/documents/{}/erasure-requests", id(&docs[1])),
                &e.prosecutor.token,
                Some(json!({ "reason": "uploaded twice" })),
            )
            .await,
    );
    let (status, p) = e
        .server
        .call(
            "PUT",
            "/v1/policies/documents.retention",
            &e.admin.token,
            Some(json!({ "value": { "tier1Days": null, "tier2Days": null, "tier3Days": 1 } })),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    let mut tx = writ_tenancy::TenantTx::begin(&e.db.pool, &e.agency)
        .await
        .unwrap();
    let report =
        writ_documents::retention::run_due(&mut tx, chrono::Utc::now() + chrono::Duration::days(2))
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((report.erased, report.held), (1, 1), "{report:?}");
    let (_, v) = e.verification(&e.officer, id(&signature)).await;
    assert_eq!(v["valid"], true, "{v}");
    // The made affidavit, once requested, too; a refusal records no deletion.
    let (status, affidavit) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    assert_eq!(status, 201, "{affidavit}");
    in_signing(delete(&json!({ "id": affidavit["documentId"] })).await);
    let deletions = e
        .entries()
        .await
        .into_iter()
        .filter(|x| x["action"] == "document.delete")
        .count();
    assert_eq!(deletions, 1);
}

#[tokio::test]
async fn a_document_changed_after_signing_fails_verification_naming_it() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    // An uploaded exhibit, signed by its author under a statement of their own.
    let res = e
        .server
        .http
        .post(e.server.url(&format!(
            "/v1/warrants/{}/documents?filename=exhibit-a.txt",
            id(&w)
        )))
        .bearer_auth(&e.officer.token)
        .body("Exhibit A: photographs 1-12 of the kitchen, taken 2 March 2026.\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let doc: Value = res.json().await.unwrap();
    let (status, p) = e
        .request(&e.officer, &w, json!({ "documentId": doc["id"] }))
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("signerId")),
        "{p}"
    );
    let intent = "I attest that this exhibit is a true copy of the photographs I took.";
    let (status, request) = e
        .request(
            &e.officer,
            &w,
            json!({ "documentId": doc["id"], "signerId": e.officer.user.id, "intent": intent }),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["documentKind"], "attachment");
    let signature = sign_request(&e.server, &e.officer.user, &e.officer.token, &request).await;
    assert_eq!(signature["record"]["record"]["intent"]["text"], intent);
    let (_, v) = e.verification(&e.officer, id(&signature)).await;
    assert_eq!(v["valid"], true, "{v}");

    // Someone with the database changes the stored bytes.
    let chunks = format!("{}.document_chunks", e.agency.ident.quoted());
    let doc_id = id(&doc);
    as_attacker(
        &e.db,
        &format!(
            "UPDATE {chunks} SET bytes = overlay(bytes placing \
             set_byte(substring(bytes from 11 for 1), 0, get_byte(bytes, 10) # 1) from 11 for 1) \
             WHERE document_id = '{doc_id}' AND idx = 0"
        ),
    )
    .await;
    let (status, v) = e.verification(&e.officer, id(&signature)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], false, "{v}");
    let document = check(&v, "document");
    assert_eq!(document["ok"], false);
    assert!(
        document["detail"].as_str().unwrap().contains(doc_id),
        "{document}"
    );
    assert_eq!(check(&v, "agencySignature")["ok"], true);
    let failed = e
        .entries()
        .await
        .into_iter()
        .rev()
        .find(|x| x["action"] == "esign.verified")
        .unwrap();
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["detail"]["failed"], json!(["document"]));
}

/// A record finished after a rotation (the server stopped between the signature's commit and
/// its completion) is finished by the key version that signed it first, which was valid at its
/// `signedAt`, not by the newer one.
#[tokio::test]
async fn a_record_completed_after_a_rotation_keeps_the_key_it_was_signed_with() {
    let e = env().await;
    let (_, _, signature) = e.signed_affidavit().await;
    let first = signature["record"]["signature"]["keyVersion"].clone();
    as_attacker(
        &e.db,
        &format!(
            "UPDATE {}.signatures SET record = NULL, completed_at = NULL WHERE id = '{}'",
            e.agency.ident.quoted(),
            id(&signature)
        ),
    )
    .await;
    writ_testkit::ok(e.db.writ(&[
        "keys",
        "rotate",
        "--agency",
        &e.agency.slug,
        "--purpose",
        "signing",
    ]));
    let (status, completed) = e
        .server
        .call(
            "GET",
            &format!("/v1/signatures/{}", id(&signature)),
            &e.officer.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["complete"], true, "{completed}");
    assert_eq!(completed["record"]["signature"]["keyVersion"], first);
    assert!(completed["record"]["record"]["audit"]["seq"].is_u64());
    let (status, v) = e
        .server
        .call(
            "GET",
            &format!("/v1/signatures/{}/verification", id(&signature)),
            &e.officer.token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test]
async fn another_agency_sees_no_signature_and_cannot_sign() {
    let e = env().await;
    let (w, request, signature) = e.signed_affidavit().await;

    let other = e.db.onboard("other-pd").await;
    let outsider =
        writ_testkit::seed_user(&e.db, &other, "officer.out", writ_auth_mfa::Role::Officer).await;
    let token = e.server.token(&outsider).await;
    e.server.step_up(&outsider, &token).await;
    for path in [
        format!("/v1/signatures/{}", id(&signature)),
        format!("/v1/signatures/{}/verification", id(&signature)),
        format!("/v1/warrants/{}/signature-requests", id(&w)),
    ] {
        let (status, _) = e.server.call("GET", &path, &token, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = e
        .server
        .call(
            "POST",
            &format!("/v1/warrants/{}/signature-requests", id(&w)),
            &token,
            Some(json!({"document": "affidavit"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = e
        .server
        .call(
            "POST",
            &format!("/v1/signature-requests/{}/sign", id(&request)),
            &token,
            Some(json!({"intentAccepted": true})),
        )
        .await;
    assert_eq!(status, 404);
    // Auditors and admins of the agency: admins read signatures, auditors do not.
    let (status, _) = e
        .server
        .call(
            "GET",
            &format!("/v1/signatures/{}", id(&signature)),
            &e.admin.token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = e
        .server
        .call(
            "GET",
            &format!("/v1/signatures/{}", id(&signature)),
            &e.auditor.token,
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Malformed bodies are problems, never half-written.
    let (status, _) = e
        .request(&e.officer, &w, json!({ "document": "memo" }))
        .await;
    assert!(status == 400 || status == 422, "{status}");
    let (status, _) = e
        .request(
            &e.officer,
            &w,
            json!({ "document": "affidavit", "intent": "x".repeat(4001) }),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = e
        .request(
            &e.officer,
            &w,
            json!({ "document": "affidavit", "intent": "a\u{0}b" }),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_evidence_certificate_verifies_offline_and_its_pdf_carries_the_same_hashes() {
    let e = env().await;
    let w = e.issued().await;
    // An extension names its parent in its creation entry; it is not the parent's event.
    let (status, child) = e.act_unsigned(&e.officer, &w, "extend", json!({})).await;
    assert_eq!(status, 201, "{child}");
    e.step(&e.officer2, &w, "execute", json!({})).await;
    e.step(
        &e.officer2,
        &w,
        "file-return",
        json!({"return": {"kind": "inventory", "inventory": ["Glock 19, serial ABC123"]}}),
    )
    .await;
    e.step(
        &e.judge,
        &w,
        "seal",
        json!({"orderReference": "SO-2026-17", "reason": "ongoing investigation"}),
    )
    .await;

    let (_, docs) = e
        .server
        .call(
            "GET",
            &format!("/v1/warrants/{}/documents", id(&w)),
            &e.prosecutor.token,
            None,
        )
        .await;
    let affidavit_doc = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "affidavit")
        .unwrap()
        .clone();

    let path = format!("/v1/warrants/{}/certificate", id(&w));
    // A signed document is not hidden (it stays with its signatures) ...
    let (status, refused) = e
        .server
        .call(
            "DELETE",
            &format!("/v1/documents/{}", id(&affidavit_doc)),
            &e.admin.token,
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "urn:writ:problem:document-in-signing-record"
    );
    // ... and one hidden before that rule is still accounted for.
    as_attacker(
        &e.db,
        &format!(
            "UPDATE {}.documents SET deleted_at = now() WHERE id = '{}'",
            e.agency.ident.quoted(),
            id(&affidavit_doc)
        ),
    )
    .await;
    let (status, cert) = e.server.call("GET", &path, &e.prosecutor.token, None).await;
    assert_eq!(status, 200, "{cert}");
    let c = &cert["certificate"];
    assert_eq!(c["format"], "writ.evidence.v1");
    assert_eq!(c["warrant"]["number"], w["number"]);
    assert_eq!(c["warrant"]["state"], "returned");
    let kinds: Vec<&str> = c["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["affidavit", "warrant"]);
    let signers: Vec<&str> = c["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["record"]["signer"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(signers, ["officer", "judge"]);
    let steps: Vec<&str> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    for action in [
        "warrant.submitted",
        "warrant.reviewed",
        "warrant.queued",
        "warrant.claimed",
        "warrant.approved",
        "warrant.executed",
        "warrant.returned",
        "warrant.sealed",
    ] {
        assert!(steps.contains(&action), "{action} in {steps:?}");
    }
    // Steps name their people for the reader (by id in the audit entry).
    let approved = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "warrant.approved")
        .unwrap();
    assert_eq!(approved["by"], json!(e.judge.user.id));
    assert!(
        approved["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{approved}"
    );
    assert_eq!(c["execution"]["withinDeadline"], true);
    assert_eq!(c["execution"]["nightService"], true);
    assert_eq!(c["return"]["inventory"], json!(["Glock 19, serial ABC123"]));
    let entries = c["audit"]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|x| x["inclusionProof"]["treeSize"] == c["audit"]["treeSize"])
    );
    assert!(
        entries
            .iter()
            .all(|x| x["entry"]["action"] != "warrant.viewed"),
        "reads are not events of the warrant"
    );

    // Offline: the JSON as served, the agency key, and a document file that is listed.
    let dir = tempfile::tempdir().unwrap();
    let pem = write_agency_pem(&e.db, &e.agency, dir.path()).await;
    let cert_path = dir.path().join("certificate.json");
    std::fs::write(&cert_path, serde_json::to_vec_pretty(&cert).unwrap()).unwrap();
    assert_eq!(c["documents"][0]["id"], affidavit_doc["id"]);
    assert!(
        c["documents"][0]["deletedAt"].is_string(),
        "{}",
        c["documents"][0]
    );
    let warrant_doc = e
        .content(&e.prosecutor, c["documents"][1]["id"].as_str().unwrap())
        .await;
    let doc_path = dir.path().join("warrant.json");
    std::fs::write(&doc_path, &warrant_doc).unwrap();
    let verify = |certificate: &std::path::Path| {
        Command::new(writ_verify_bin())
            .args([
                "certificate",
                certificate.to_str().unwrap(),
                "--public-key",
                pem.to_str().unwrap(),
                "--document",
                doc_path.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let out = verify(&cert_path);
    assert!(out.status.success(), "{}", text(&out));
    // A step's time changed: the signature no longer holds.
    let mut tampered = cert.clone();
    tampered["certificate"]["execution"]["executedAt"] = json!("2020-01-01T00:00:00.000Z");
    let tampered_path = dir.path().join("tampered.json");
    std::fs::write(
        &tampered_path,
        serde_json::to_vec_pretty(&tampered).unwrap(),
    )
    .unwrap();
    let out = verify(&tampered_path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The PDF: it renders, and its text carries the JSON's hashes and record ids.
    let res = e
        .server
        .http
        .get(e.server.url(&path))
        .bearer_auth(&e.prosecutor.token)
        .header("accept", "application/pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let pdf_path = dir.path().join("certificate.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "40"])
        .arg(&pdf_path)
        .arg(dir.path().join("page"))
        .output()
        .expect("pdftoppm (poppler-utils) renders the PDF");
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("page-1.png").exists() || dir.path().join("page-01.png").exists());
    let out = Command::new("pdftotext")
        .arg(&pdf_path)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pdf_text = String::from_utf8_lossy(&out.stdout).replace(['\n', ' '], "");
    for d in c["documents"].as_array().unwrap() {
        let sha = d["sha256"].as_str().unwrap();
        assert!(pdf_text.contains(sha), "document hash {sha} in the PDF");
    }
    for s in c["signatures"].as_array().unwrap() {
        let rid = s["record"]["recordId"].as_str().unwrap();
        assert!(pdf_text.contains(rid), "record {rid} in the PDF");
    }
    // Made on request, recorded.
    assert!(
        e.entries()
            .await
            .iter()
            .any(|x| x["action"] == "esign.certificate")
    );
    // Officers who may not read the (now sealed) warrant get nothing.
    let (status, _) = e.server.call("GET", &path, &e.officer2.token, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_time_stamping_authority_stamps_each_record_and_both_verifiers_check_it() {
    let e = env().await;
    let tsa = writ_fake_tsa::FakeTsa::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tsa_pem = dir.path().join("tsa.pem");
    std::fs::write(&tsa_pem, tsa.certificate_pem()).unwrap();
    // The same agency served by a server with the TSA configured.
    let stamped = writ_testkit::TestServer::start_with(
        &e.db.url,
        &e.db.master_key_file,
        &[
            ("WRIT_TSA_URL", tsa.url().as_str()),
            ("WRIT_TSA_CERT", tsa_pem.to_str().unwrap()),
        ],
    );
    let w = e.create(&e.officer, json!({})).await;
    let signature = sign_made(
        &stamped,
        &e.officer.user,
        &e.officer.token,
        id(&w),
        "affidavit",
    )
    .await
    .unwrap();
    assert_eq!(signature["timestamped"], true, "{signature}");
    assert!(signature["record"]["timestamp"]["token"].is_string());
    assert_eq!(tsa.requests(), 1);

    let path = format!("/v1/signatures/{}/verification", id(&signature));
    let (status, v) = stamped.call("GET", &path, &e.officer.token, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(check(&v, "timestamp")["ok"], true, "{v}");
    // A server that trusts no TSA cannot vouch for the timestamp: it says so.
    let (_, v) = e.server.call("GET", &path, &e.officer.token, None).await;
    assert_eq!(check(&v, "timestamp")["ok"], false, "{v}");

    // Offline, with the TSA's certificate.
    let pem = write_agency_pem(&e.db, &e.agency, dir.path()).await;
    let document_id = signature["documentId"].as_str().unwrap();
    let document = e.content(&e.officer, document_id).await;
    let record_path = dir.path().join("signature.json");
    std::fs::write(
        &record_path,
        serde_json::to_vec_pretty(&signature["record"]).unwrap(),
    )
    .unwrap();
    let document_path = dir.path().join("affidavit.json");
    std::fs::write(&document_path, &document).unwrap();
    let out = Command::new(writ_verify_bin())
        .args([
            "signature",
            record_path.to_str().unwrap(),
            "--document",
            document_path.to_str().unwrap(),
            "--public-key",
            pem.to_str().unwrap(),
            "--tsa-cert",
            tsa_pem.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Timestamp"), "{}", text(&out));

    // The TSA down: the signature is still taken, without a timestamp.
    tsa.set_failing(true);
    let w2 = e.create(&e.officer, json!({})).await;
    let unstamped = sign_made(
        &stamped,
        &e.officer.user,
        &e.officer.token,
        id(&w2),
        "affidavit",
    )
    .await
    .unwrap();
    assert_eq!(unstamped["timestamped"], false, "{unstamped}");
    assert!(unstamped["record"].get("timestamp").is_none());
}

#[tokio::test]
async fn a_pending_request_is_cancelled_by_its_requester_or_signer_and_then_cannot_be_signed() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let (_, request) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    let cancel = format!("/v1/signature-requests/{}/cancel", id(&request));
    // Someone who neither made it nor signs it: 403, audited.
    let (status, _) = e
        .server
        .call("POST", &cancel, &e.supervisor.token, Some(json!({})))
        .await;
    assert_eq!(status, 403);
    let (status, p) = e
        .server
        .call(
            "POST",
            &cancel,
            &e.officer.token,
            Some(json!({ "reason": "a\u{7}b" })),
        )
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("reason")),
        "{p}"
    );
    let (status, cancelled) = e
        .server
        .call(
            "POST",
            &cancel,
            &e.officer.token,
            Some(json!({ "reason": "the draft is being rewritten" })),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, p) = e
        .server
        .call("POST", &cancel, &e.officer.token, Some(json!({})))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:signature-request-not-pending"))
    );
    e.server.step_up(&e.officer.user, &e.officer.token).await;
    let (status, _) = e
        .sign(&e.officer, &request, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(status, 409);
    let (_, pending) = e
        .server
        .call("GET", "/v1/signature-requests", &e.officer.token, None)
        .await;
    assert_eq!(pending, json!([]));
    let entry = e
        .entries()
        .await
        .into_iter()
        .find(|x| x["action"] == "esign.cancelled")
        .unwrap();
    assert_eq!(entry["detail"]["reason"], "the draft is being rewritten");
    assert_eq!(entry["actor"]["userId"], json!(e.officer.user.id));
}

#[tokio::test]
async fn a_request_on_a_warrant_sealed_afterwards_leaves_the_pending_list_of_those_who_may_not_read_it()
 {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let (status, request) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    assert_eq!(status, 201, "{request}");
    let (_, pending) = e
        .server
        .call("GET", "/v1/signature-requests", &e.officer.token, None)
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    e.step(
        &e.judge,
        &w,
        "seal",
        json!({"orderReference": "SO-2026-18", "reason": "ongoing investigation"}),
    )
    .await;
    let (_, pending) = e
        .server
        .call("GET", "/v1/signature-requests", &e.officer.token, None)
        .await;
    assert_eq!(
        pending,
        json!([]),
        "an officer does not see sealed warrants"
    );
    // Nor may a sealed warrant's document be put before an officer to sign.
    let (status, p) = e
        .request(&e.judge, &w, json!({ "document": "affidavit" }))
        .await;
    assert!(status == 409 || status == 422, "{status} {p}");
    // And to the officer it is a warrant that does not exist: nothing says it is sealed.
    let sealed = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    let missing = e
        .request(
            &e.officer,
            &json!({ "id": uuid::Uuid::now_v7() }),
            json!({ "document": "affidavit" }),
        )
        .await;
    assert_eq!(sealed.0, 404, "{}", sealed.1);
    assert_eq!(sealed.1["type"], missing.1["type"]);
}

#[tokio::test]
async fn a_request_the_warrant_has_moved_past_leaves_the_pending_list_and_cannot_be_signed() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let (status, early) = e
        .request(&e.officer, &w, json!({ "document": "affidavit" }))
        .await;
    assert_eq!(status, 201, "{early}");
    let mine = "/v1/signature-requests";
    let (_, list) = e.server.call("GET", mine, &e.officer.token, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The affiant signs through another request and submits: the draft stage is over.
    sign_made(
        &e.server,
        &e.officer.user,
        &e.officer.token,
        id(&w),
        "affidavit",
    )
    .await
    .unwrap();
    let (status, p) = e.act_unsigned(&e.officer, &w, "submit", json!({})).await;
    assert_eq!(status, 200, "{p}");
    let (_, list) = e.server.call("GET", mine, &e.officer.token, None).await;
    assert_eq!(list, json!([]), "the affidavit is no longer signed now");
    let (status, p) = e
        .sign(&e.officer, &early, json!({ "intentAccepted": true }))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:not-signable-now")),
        "{p}"
    );
    // The warrant's own list still shows it, as it was left.
    let path = format!("/v1/warrants/{}/signature-requests", id(&w));
    let (_, all) = e.server.call("GET", &path, &e.officer.token, None).await;
    let listed = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == early["id"])
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(listed["status"], "pending");
}

/// A warrant whose older entries retention has pruned from the log gets no certificate: it
/// would prove only the part of its history still there, though nothing it names is missing.
#[tokio::test]
async fn a_warrant_whose_creation_was_pruned_gets_no_certificate() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    writ_audit_log::checkpoint_agency(
        &e.db.pool,
        &e.db.keys,
        &e.agency,
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let boundary = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, edited) = e
        .server
        .call(
            "PATCH",
            &format!("/v1/warrants/{}", id(&w)),
            &e.officer.token,
            Some(json!({"version": 1, "urgency": "exigent"})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    let path = format!("/v1/warrants/{}/certificate", id(&w));
    let (status, cert) = e.server.call("GET", &path, &e.prosecutor.token, None).await;
    assert_eq!(status, 200, "{cert}");
    writ_testkit::sequence(&e.db, &e.agency).await;
    writ_audit_log::checkpoint_agency(
        &e.db.pool,
        &e.db.keys,
        &e.agency,
        std::time::Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    let report = writ_audit_log::prune_agency(
        &e.db.pool,
        &e.db.keys,
        &e.agency,
        boundary + chrono::Duration::days(365),
        writ_audit_log::PruneMode::Prune,
    )
    .await
    .unwrap();
    assert!(report.pruned > 0, "{report:?}");
    let (status, p) = e.server.call("GET", &path, &e.prosecutor.token, None).await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:certificate-unavailable", "{p}");
}
