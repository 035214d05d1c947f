//! Electronic signatures: requests to sign a warrant's document, the signer's pending list,
//! signing with step-up, signature records and their verification. The rules are `writ_esign`'s
//! (who signs what, which bytes) and `writ_warrant_workflow::signing`'s (what a warrant needs
//! signed); the matrix says who may use each route. docs/ESIGN.md describes the flow.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_agency_keys::Keyring;
use writ_auth_mfa::Permission;
use writ_esign::{
    NewRequest, SignerSession, certificate, certificate_pdf, requests, signing, verification,
};
use writ_warrant_workflow::signing::{IssueTerms, SignedKind};

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path, query_pairs};
use crate::routes::{answered, settled};
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_request)
        .service(warrant_requests)
        .service(pending_requests)
        .service(sign_request)
        .service(cancel_request)
        .service(get_signature)
        .service(verify_signature)
        .service(warrant_certificate);
}

fn keyring(state: &AppState) -> Keyring {
    Keyring::new(state.pool.clone(), state.keys.clone())
}

/// A request to sign a document of the warrant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureRequestBody {
    /// One of the warrant's documents.
    document_id: Option<Uuid>,
    /// Or the document the server makes from the warrant as it stands: `affidavit` (signed by
    /// the affiant before submission) or `warrant` (signed by the judge before issue).
    #[schema(value_type = Option<String>, example = "affidavit")]
    document: Option<SignedKind>,
    /// Who must sign. Default: the affiant for the affidavit, the claiming judge (or the caller)
    /// for the warrant; required for an uploaded document.
    signer_id: Option<Uuid>,
    /// The statement the signer accepts by signing, exactly as shown. Default for a made
    /// document: its standard oath or approval text; required for an uploaded document.
    intent: Option<String>,
    /// For `document: "warrant"`: the terms the judge will issue it on, which the signed
    /// warrant states — `nightService` (default false) and, for a tracking device,
    /// `trackingUseDays` (default the type's maximum). Issuing on other terms needs a new
    /// signature (409 `judge-signature-required`).
    #[schema(value_type = Option<Object>, example = json!({"nightService": true}))]
    terms: Option<IssueTerms>,
}

const REQUEST_EXAMPLE: fn() -> serde_json::Value = || {
    json!({
        "id": "0190f6a1-1b2c-7d3e-8f40-5a6b7c8d9e0f",
        "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "documentId": "0190f6a0-7c1d-7e2f-8a30-4b5c6d7e8f90",
        "documentKind": "affidavit",
        "documentSha256": "3b9c3e0f2d7a4b51c6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0",
        "signerId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "intent": "I swear or affirm, under penalty of perjury, that the facts stated in this affidavit are true and correct to the best of my knowledge, and I sign it electronically.",
        "requestedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "requestedAt": "2026-03-02T03:12:44.001Z",
        "status": "pending",
        "signedAt": null,
        "signatureId": null
    })
};

/// Request a signature
///
/// Names who must sign which document of the warrant under which intent statement. With
/// `document: "affidavit"` or `"warrant"` the server makes the document from the warrant as it
/// stands (RFC 8785 JSON, stored encrypted like an upload; the same warrant gives the same
/// bytes, so an unchanged warrant reuses it): the affidavit while the warrant is a draft, the
/// warrant while it is before the judge. Recorded as `esign.requested`.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    request_body(content = SignatureRequestBody,
        example = json!({"document": "affidavit"})),
    responses((status = 201, description = "Requested; `Location` names it", body = serde_json::Value,
            example = REQUEST_EXAMPLE),
        (status = 404, description = "No such warrant or document, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The document cannot be signed in the warrant's state (`not-signable-now`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad document, signer or intent (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/signature-requests")]
pub async fn create_request(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<SignatureRequestBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignatureRequestsCreate;
    user.require(permission).await?;
    let body = body.into_inner();
    let new = NewRequest {
        document_id: body.document_id,
        document: body.document,
        signer_id: body.signer_id,
        intent: body.intent,
        terms: body.terms,
    };
    let warrant_id = *id;
    let keys = keyring(&state);
    let mut tx = user.begin().await?;
    let outcome = async {
        // Everything about the request is checked before a made document is stored.
        let plan = requests::plan(&mut tx, user.caller(), warrant_id, &new).await?;
        // A made document is stored in a transaction of its own (it streams through the sealer
        // like an upload); an unchanged warrant finds it there already.
        let document = match (&plan.made, new.document_id) {
            (Some(m), _) => {
                let generated = writ_documents::Generated {
                    warrant_id,
                    kind: m.kind.as_str(),
                    filename: m.filename.clone(),
                    bytes: m.bytes.clone(),
                };
                writ_documents::store_generated(
                    &state.pool,
                    &user.agency,
                    &keys,
                    &state.documents,
                    user.caller(),
                    generated,
                )
                .await?
            }
            (None, Some(document_id)) => {
                writ_documents::store::for_signing(&mut tx, user.caller(), document_id).await?
            }
            (None, None) => {
                return Err(writ_esign::EsignError::invalid("documentId", "required"));
            }
        };
        requests::create(&mut tx, user.caller(), warrant_id, &plan, &document).await
    }
    .await;
    let request = crate::routes::settle(&user, permission, tx, outcome).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/signature-requests/{}", request.id),
        ))
        .json(request))
}

/// List a warrant's signature requests
///
/// Every request on the warrant's documents, oldest first, with its status and signature.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The requests", body = serde_json::Value,
            example = json!([REQUEST_EXAMPLE()])),
        (status = 404, description = "No such warrant, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/signature-requests")]
pub async fn warrant_requests(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesRead;
    user.require(permission).await?;
    let list = settled!(user, permission, |tx| requests::for_warrant(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(list))
}

/// My pending signature requests
///
/// The requests waiting for the caller's signature, oldest first (`status=pending`, the only
/// status listed here).
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("status" = Option<String>, Query, description = "`pending` (the default and only value)")),
    responses((status = 200, description = "The caller's pending requests", body = serde_json::Value,
            example = json!([REQUEST_EXAMPLE()])),
        (status = 400, description = "Unknown parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/signature-requests")]
pub async fn pending_requests(
    user: AgencyUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesRead;
    user.require(permission).await?;
    for (name, value) in query_pairs(&req)? {
        match (name.as_str(), value.as_str()) {
            ("status", "pending") => {}
            ("status", _) => {
                return Err(ApiError::Validation {
                    field: "status".into(),
                    reason: "only pending requests are listed here; a warrant's requests are at \
                             /v1/warrants/{id}/signature-requests"
                        .into(),
                });
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; known: status"
                )));
            }
        }
    }
    let list = settled!(user, permission, |tx| requests::pending_for(
        &mut tx,
        user.caller()
    ));
    Ok(HttpResponse::Ok().json(list))
}

/// Cancelling a request (`{}` when there is no reason to give).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// Why (kept in the audit entry).
    reason: Option<String>,
}

/// Cancel a signature request
///
/// Withdraws a pending request — the wrong signer, a document replaced — by whoever made it or
/// the signer it names; it can no longer be signed. Recorded as `esign.cancelled`.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The signature request")),
    request_body(content = CancelBody, example = json!({"reason": "requested from the wrong judge"})),
    responses((status = 200, description = "Cancelled", body = serde_json::Value, example = REQUEST_EXAMPLE),
        (status = 404, description = "No such request, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Signed or cancelled already (`signature-request-not-pending`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `reason` (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/signature-requests/{id}/cancel")]
pub async fn cancel_request(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<CancelBody>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignatureRequestsCreate;
    user.require(permission).await?;
    let reason = body.into_inner().reason;
    let request = settled!(user, permission, |tx| requests::cancel(
        &mut tx,
        user.caller(),
        *id,
        reason
    ));
    Ok(HttpResponse::Ok().json(request))
}

/// Signing a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignBody {
    /// The signer accepts the request's intent statement: must be `true`.
    intent_accepted: bool,
}

const SIGNATURE_EXAMPLE: fn() -> serde_json::Value = || {
    json!({
        "id": "0190f6b2-3c4d-7e5f-8a60-7b8c9d0e1f2a",
        "requestId": "0190f6a1-1b2c-7d3e-8f40-5a6b7c8d9e0f",
        "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "documentId": "0190f6a0-7c1d-7e2f-8a30-4b5c6d7e8f90",
        "signerId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "signedAt": "2026-03-02T03:13:02.417Z",
        "complete": true,
        "record": {"record": {"format": "writ.signature.v1", "…": "see docs/ESIGN-FORMAT.md"},
                   "signature": {"algorithm": "ecdsa-p256-sha256", "keyId": "3f2a9c01",
                                 "keyVersion": 1, "value": "MEUCIQ…"}}
    })
};

/// Sign
///
/// Signs a request the caller is named in, having accepted its intent statement; needs a
/// step-up (TOTP re-entry within the last 5 minutes: `POST /v1/auth/reauth`). The signature
/// record holds the signer, how they authenticated and when they stepped up, the intent text
/// and its hash, the document id and the SHA-256 of its exact stored bytes, the server time,
/// source IP and user agent, the oath it was sworn under, and the audit entry that recorded it
/// (`esign.applied`) — signed with the agency's P-256 key (docs/ESIGN-FORMAT.md).
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The signature request")),
    request_body(content = SignBody, example = json!({"intentAccepted": true})),
    responses((status = 201, description = "Signed; `Location` names the signature", body = serde_json::Value,
            example = SIGNATURE_EXAMPLE),
        (status = 404, description = "No such request, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending (`signature-request-not-pending`), the made document is \
            outdated (`document-outdated`), erased (`document-unavailable`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`intentAccepted` is not true (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/signature-requests/{id}/sign")]
pub async fn sign_request(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
    body: Json<SignBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesSign;
    user.require(permission).await?;
    let session = signer_session(&user, &req, &state).await?;
    let keys = keyring(&state);
    let signature_id = settled!(user, permission, |tx| signing::sign(
        &mut tx,
        &keys,
        user.caller(),
        &session,
        *id,
        body.intent_accepted
    ));
    // The signature is taken (committed); completing its record may wait for the KMS or the
    // sequencer. If that fails now, the answer is the signature as taken (`complete: false`),
    // and the next read completes it — a retry must not find a signed request and think it lost.
    let completed = signing::complete(
        &state.pool,
        &user.agency,
        &keys,
        state.timestamp_authority.as_deref(),
        signature_id,
    )
    .await;
    let signature = match completed {
        Ok(signature) => signature,
        Err(e) => {
            tracing::warn!(signature = %signature_id, error = %e, "completing a signature record failed; it completes on the next read");
            signing::stored(&state.pool, &user.agency, signature_id).await?
        }
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/signatures/{signature_id}")))
        .json(signature))
}

/// How the caller authenticated: both factors at login (AAL2), and the step-up just checked.
async fn signer_session(
    user: &AgencyUser,
    req: &HttpRequest,
    state: &AppState,
) -> Result<SignerSession, ApiError> {
    let auth = state.auth().await?;
    let window = chrono::Duration::from_std(auth.config.step_up_window)
        .map_err(|e| ApiError::internal(format!("step-up window: {e}")))?;
    let until = user
        .stepped_up_until
        .ok_or(writ_auth_mfa::AuthError::StepUpRequired)?;
    let auth_time = DateTime::<Utc>::from_timestamp(user.principal().auth_time, 0)
        .ok_or_else(|| ApiError::internal("the session's auth time is out of range"))?;
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    Ok(SignerSession {
        methods: vec!["password".into(), "totp".into()],
        strength: "aal2".into(),
        auth_time,
        stepped_up_at: until - window,
        user_agent,
    })
}

/// Read a signature
///
/// The signature and its signature record (docs/ESIGN-FORMAT.md), the file `writ-verify
/// signature` checks offline with the document and the agency's public key.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The signature")),
    responses((status = 200, description = "The signature", body = serde_json::Value,
            example = SIGNATURE_EXAMPLE),
        (status = 404, description = "No such signature, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json")))]
#[get("/v1/signatures/{id}")]
pub async fn get_signature(
    user: AgencyUser,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesRead;
    user.require(permission).await?;
    user.release().await?;
    let found = signing::get(
        &state.pool,
        &user.agency,
        &keyring(&state),
        state.timestamp_authority.as_deref(),
        user.caller(),
        *id,
    )
    .await;
    let signature = answered(&user, permission, found).await?;
    Ok(HttpResponse::Ok().json(signature))
}

/// Verify a signature
///
/// Re-checks a stored signature: the record's form and intent hash, the agency's signature over
/// it, the audit entry that recorded it, and the stored document — decrypted and re-hashed —
/// against the SHA-256 the record names. Each check is reported; `valid` is true when all pass.
/// Recorded as `esign.verified` with its outcome.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The signature")),
    responses((status = 200, description = "The checks", body = serde_json::Value,
            example = json!({"signatureId": "0190f6b2-3c4d-7e5f-8a60-7b8c9d0e1f2a", "valid": true,
                "checks": [{"name": "record", "ok": true, "detail": "writ.signature.v1 record; the intent statement matches its SHA-256"},
                           {"name": "agencySignature", "ok": true, "detail": "signed by the agency's signing key version 1 (key id 3f2a9c01)"},
                           {"name": "auditEntry", "ok": true, "detail": "esign.applied at seq 412, hash sha256:…"},
                           {"name": "document", "ok": true, "detail": "document 0190f6a0-…: SHA-256 3b9c…, 2291 bytes, as signed"}],
                "signature": SIGNATURE_EXAMPLE()})),
        (status = 404, description = "No such signature, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json")))]
#[get("/v1/signatures/{id}/verification")]
pub async fn verify_signature(
    user: AgencyUser,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesRead;
    user.require(permission).await?;
    user.release().await?;
    let outcome = verification::verify(
        &state.pool,
        &user.agency,
        &keyring(&state),
        &state.documents,
        state.timestamp_authority.as_deref(),
        user.caller(),
        *id,
    )
    .await;
    let verification = answered(&user, permission, outcome).await?;
    Ok(HttpResponse::Ok().json(verification))
}

/// Whether the client asked for the PDF form (`Accept: application/pdf`).
fn wants_pdf(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/pdf"))
        })
}

/// A warrant's evidence certificate
///
/// The warrant's certificate of completion, signed with the agency's key: its documents and
/// their SHA-256, its affidavit versions, every step with who and when (reviews, decisions,
/// seal events), the oath records, every signature record with its authentication, the
/// execution window against the execution time, the return, and the audit entries that
/// recorded them with inclusion proofs to one signed checkpoint (docs/EVIDENCE-CERTIFICATE.md).
/// JSON by default, which `writ-verify certificate` checks offline; a readable PDF with
/// `Accept: application/pdf`, carrying the same hashes and the signed JSON as an embedded file.
/// Made afresh on each request; recorded as `esign.certificate`.
#[utoipa::path(tag = "signatures", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The signed certificate (JSON), or its PDF",
            content((serde_json::Value = "application/json",
                example = json!({"certificate": {"format": "writ.evidence.v1", "…": "see docs/EVIDENCE-CERTIFICATE.md"},
                    "signature": {"algorithm": "ecdsa-p256-sha256", "keyId": "3f2a9c01", "keyVersion": 1, "value": "MEUCIQ…"}})),
                (String = "application/pdf"))),
        (status = 404, description = "No such warrant, or not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No signed checkpoint covers the warrant's events yet (`certificate-unavailable`)",
            body = Problem, content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/certificate")]
pub async fn warrant_certificate(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::SignaturesRead;
    user.require(permission).await?;
    user.release().await?;
    let made = certificate::certificate(
        &state.pool,
        &user.agency,
        &keyring(&state),
        state.timestamp_authority.as_deref(),
        user.caller(),
        *id,
    )
    .await;
    let signed = answered(&user, permission, made).await?;
    let number = signed.certificate.warrant.number.clone();
    if wants_pdf(&req) {
        return Ok(HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{number}-evidence-certificate.pdf\""),
            ))
            .body(certificate_pdf::render(&signed)));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(signed.to_json()))
}
