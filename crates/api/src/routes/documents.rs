//! Documents of warrants: streamed, encrypted upload; metadata; streamed decryption of the
//! content; soft delete; legal holds; two-person erasure and certificates of deletion. The matrix
//! says who may use each route; who may see which document (the warrant's readers) and whether
//! an erasure may go ahead (two people, no legal hold) is the document store's
//! (`writ_documents`). Every access is recorded by the store in the request's transaction.

use std::io;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_agency_keys::Keyring;
use writ_auth_mfa::Permission;
use writ_documents::range::{RangeAsk, RangeRequest};
use writ_documents::{NewDocument, erasure, store};

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path, query_pairs};
use crate::routes::{answered, settled};
use crate::upload_pace::{NoSlot, UPLOADS_PER_USER};
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_document)
        .service(list_documents)
        .service(get_document)
        .service(document_content)
        .service(delete_document)
        .service(place_legal_hold)
        .service(release_legal_hold)
        .service(request_erasure)
        .service(list_erasure_requests)
        .service(get_erasure_request)
        .service(approve_erasure)
        .service(withdraw_erasure)
        .service(erasure_certificate);
}

fn keyring(state: &AppState) -> Keyring {
    Keyring::new(state.pool.clone(), state.keys.clone())
}

const DOCUMENT_EXAMPLE: fn() -> serde_json::Value = || {
    json!({
        "id": "0190f4e1-2b3c-7d4e-8f50-6a7b8c9d0e1f",
        "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "filename": "affidavit-exhibit-a.pdf",
        "contentType": "application/pdf",
        "classification": 4,
        "size": 183422,
        "documentHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "chunks": 3,
        "storage": "postgres",
        "uploadedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "uploadedAt": "2026-03-02T21:44:10.512Z",
        "legalHold": null,
        "erasedAt": null,
        "erasureId": null
    })
};

const ERASURE_EXAMPLE: fn() -> serde_json::Value = || {
    json!({
        "id": "0190f5a0-7c1d-7e2f-8a30-4b5c6d7e8f90",
        "documentId": "0190f4e1-2b3c-7d4e-8f50-6a7b8c9d0e1f",
        "reason": "Uploaded to the wrong warrant; contains a third party's records",
        "kind": "request",
        "status": "pending",
        "requestedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e03",
        "requestedAt": "2026-03-03T09:12:44.001Z",
        "approvedBy": null,
        "erasedAt": null
    })
};

/// Upload a document
///
/// Streams the body into the encrypted store under a fresh AES-256-GCM data key (the warrant's
/// author, an officer). The type is judged from the bytes: PDF, PNG, JPEG, MP4, DOCX or plain
/// text (UTF-8), else 415; a `Content-Type` other than `application/octet-stream` must agree.
/// Bodies over the agency's `documents.max_bytes` (100 MiB by default) are 413 with nothing
/// stored. Query: `classification` (1 to 4, default 4 = CJI), `filename`. One user streams at
/// most two uploads at once (429 beyond). Recorded as `document.upload` and `document.encrypt`.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant"),
        ("classification" = Option<i16>, Query, description = "1 public, 2 internal, 3 sensitive, 4 CJI (default)"),
        ("filename" = Option<String>, Query, description = "The original file name (no path)")),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The document's bytes, streamed"),
    responses((status = 201, description = "Stored; `Location` names it", body = serde_json::Value,
            example = DOCUMENT_EXAMPLE),
        (status = 404, description = "No such warrant, or one the caller may not see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Over the agency's limit; nothing stored (`payload-too-large`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not an accepted type (`unsupported-media-type`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad `classification` or `filename` (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/documents")]
pub async fn upload_document(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsUpload;
    user.require(permission).await?;
    let mut new = NewDocument {
        warrant_id: *id,
        ..Default::default()
    };
    for (name, value) in query_pairs(&req)? {
        match name.as_str() {
            "classification" => {
                new.classification = Some(value.parse().map_err(|_| ApiError::Validation {
                    field: "classification".into(),
                    reason: "a tier from 1 to 4".into(),
                })?)
            }
            "filename" => new.filename = Some(value),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; known: classification, filename"
                )));
            }
        }
    }
    let headers = req.headers();
    new.declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    new.declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    // Access and limit in the request's transaction, committed before the body streams: the
    // upload writes in a transaction of its own, held only while the bytes arrive.
    let plan = settled!(user, permission, |tx| store::prepare_upload(
        &mut tx,
        user.caller(),
        new
    ));
    // The upload holds a transaction while it streams: only so many at once, none that stall.
    let wait = state.pool.options().get_acquire_timeout();
    let _slot = match state.upload_slots.take(user.user_id, wait).await {
        Ok(slot) => slot,
        Err(NoSlot::UserBusy) => {
            return Err(ApiError::TooManyAtOnce {
                what: "uploads",
                limit: UPLOADS_PER_USER,
            });
        }
        Err(NoSlot::AllBusy) => {
            return Err(ApiError::Unavailable {
                dependency: writ_error_kind::Dependency::Database,
                detail: format!(
                    "all {} upload slots stayed busy for {} ms",
                    state.upload_slots.limit(),
                    wait.as_millis()
                ),
            });
        }
    };
    let body = body.map(|item| item.map_err(|e| io::Error::other(e.to_string())));
    let body = crate::upload_pace::Paced::new(body, state.upload_stall);
    let uploaded = store::upload(
        &state.pool,
        &user.agency,
        &keyring(&state),
        &state.documents,
        user.caller(),
        plan,
        body,
    )
    .await;
    let doc = answered(&user, permission, uploaded).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/documents/{}", doc.id)))
        .json(doc))
}

/// List a warrant's documents
///
/// Metadata of the warrant's documents, oldest first (soft-deleted ones are not listed).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The documents", body = serde_json::Value,
            example = json!([DOCUMENT_EXAMPLE()])),
        (status = 404, description = "No such warrant, or one the caller may not see (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/documents")]
pub async fn list_documents(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsRead;
    user.require(permission).await?;
    let docs = settled!(user, permission, |tx| store::list(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(docs))
}

/// Read a document's metadata
///
/// Type, classification, size, SHA-256, legal hold and erasure of one document; recorded as
/// `document.view`.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document")),
    responses((status = 200, description = "The document", body = serde_json::Value,
            example = DOCUMENT_EXAMPLE),
        (status = 404, description = "No such document, soft-deleted, or its warrant is not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json")))]
#[get("/v1/documents/{id}")]
pub async fn get_document(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsRead;
    user.require(permission).await?;
    let doc = settled!(user, permission, |tx| store::get(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(doc))
}

/// Download a document's content
///
/// The plaintext, decrypted as it streams (`Content-Length` is the plaintext size,
/// `X-Writ-Document-Sha256` its SHA-256). Each 64 KiB chunk is released only once it has
/// authenticated: a chunk that was altered, reordered or removed ends the response early, so a
/// body shorter than `Content-Length` is never the document. Recorded as `document.download`
/// and `document.decrypt`.
///
/// To resume, ask for one byte range (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`), optionally
/// with `If-Range` set to the `ETag` (the document's SHA-256, quoted): 206 with `Content-Range`.
/// The chunks before the range are still opened and authenticated; the whole document's
/// SHA-256 is checked only when the range reaches its end. Several ranges, another unit or an
/// `If-Range` naming another version get the whole document (200).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=1048576-`"),
        ("If-Range" = Option<String>, Header, description = "The `ETag` the range was computed against")),
    responses((status = 200, description = "The content, in the document's type", body = String,
            content_type = "application/octet-stream"),
        (status = 206, description = "The asked range of the content (`Content-Range`)", body = String,
            content_type = "application/octet-stream"),
        (status = 416, description = "The range names no byte of the document (`range-not-satisfiable`; `Content-Range: bytes */size`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document, or not the caller's to see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 410, description = "The document was erased (`erased`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/documents/{id}/content")]
pub async fn document_content(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsRead;
    user.require(permission).await?;
    let keys = keyring(&state);
    let range = asked_range(&req);
    let opened = settled!(user, permission, |tx| store::open_content(
        &mut tx,
        &keys,
        user.caller(),
        *id,
        range
    ));
    let doc = opened.document.clone();
    let served = opened.range;
    let plaintext = store::plaintext(&state.pool, &user.agency, &state.documents, opened).await;
    let stream = answered(&user, permission, plaintext).await?;
    let sha256 = doc.document_hash.trim_start_matches("sha256:").to_owned();
    let size = u64::try_from(doc.size).unwrap_or(0);
    let mut res = match served {
        Some(r) => {
            let mut res = HttpResponse::PartialContent();
            res.insert_header((header::CONTENT_RANGE, r.content_range(size)));
            res
        }
        None => HttpResponse::Ok(),
    };
    res.content_type(doc.content_type.as_str())
        .insert_header(("x-writ-document-sha256", sha256.clone()))
        // A document's content never changes: its hash is its strong validator.
        .insert_header((header::ETAG, doc.etag()))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    if let Some(name) = doc.filename.as_deref().filter(|n| {
        n.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    }) {
        res.insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    }
    let length = served.map_or(size, |r| r.len());
    Ok(res.no_chunking(length).streaming(stream))
}

/// The one byte range a `Range` header asks for, with its `If-Range` condition if any; anything
/// else, or nothing, means the whole document (RFC 9110 §14.2).
fn asked_range(req: &HttpRequest) -> Option<RangeAsk> {
    let range = req.headers().get(header::RANGE)?.to_str().ok()?;
    Some(RangeAsk {
        range: RangeRequest::parse(range)?,
        // Unreadable, it names no version: the whole document is served.
        if_range: req
            .headers()
            .get(header::IF_RANGE)
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
    })
}

/// Delete a document (soft)
///
/// Hides the document from every reader; it is kept (ciphertext, key, row), and retention and
/// legal holds still apply. Officers delete documents of their own warrants. A document that is
/// signed, or awaiting a signature, stays: it is part of the signing record (409
/// `document-in-signing-record`; cancel a pending request first). Recorded as `document.delete`.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document")),
    responses((status = 204, description = "Hidden"),
        (status = 404, description = "No such document, or not the caller's to see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Signed or awaiting a signature (`document-in-signing-record`)", body = Problem,
            content_type = "application/problem+json")))]
#[delete("/v1/documents/{id}")]
pub async fn delete_document(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsDelete;
    user.require(permission).await?;
    settled!(
        user,
        permission,
        |tx| writ_esign::requests::delete_document(&mut tx, user.caller(), *id)
    );
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why: the matter, case or order (1 to 1000 bytes).
    reason: String,
}

/// Place a legal hold on a document
///
/// While it stands the document is neither erased on request nor by retention (prosecutor,
/// agency_admin). Recorded as `document.legal_hold`.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document")),
    request_body(content = ReasonRequest, example = json!({"reason": "Preservation order 2026-CR-0193"})),
    responses((status = 200, description = "The document, held", body = serde_json::Value,
            example = DOCUMENT_EXAMPLE),
        (status = 404, description = "No such document, or not the caller's to see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Held already (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 410, description = "The document was erased (`erased`)", body = Problem,
            content_type = "application/problem+json")))]
#[put("/v1/documents/{id}/legal-hold")]
pub async fn place_legal_hold(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsLegalHold;
    user.require(permission).await?;
    let doc = settled!(user, permission, |tx| store::place_legal_hold(
        &mut tx,
        user.caller(),
        *id,
        &body.reason
    ));
    Ok(HttpResponse::Ok().json(doc))
}

/// Release a document's legal hold
///
/// The document may be erased again (prosecutor, agency_admin, with step-up). Recorded as
/// `document.legal_hold`.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document")),
    responses((status = 200, description = "The document, no longer held", body = serde_json::Value,
            example = DOCUMENT_EXAMPLE),
        (status = 404, description = "No such document, or not the caller's to see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not held (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[delete("/v1/documents/{id}/legal-hold")]
pub async fn release_legal_hold(
    user: AgencyUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsLegalHoldRelease;
    user.require(permission).await?;
    let doc = settled!(user, permission, |tx| store::release_legal_hold(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(doc))
}

/// Request a document's erasure
///
/// The first of two people (prosecutor, agency_admin): a prosecutor other than the requester
/// approves with `POST /v1/erasure-requests/{id}/approve`. Recorded as `document.erase`
/// (`detail.step: "requested"`).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The document")),
    request_body(content = ReasonRequest, example = json!({"reason": "Uploaded to the wrong warrant"})),
    responses((status = 201, description = "Requested; awaits a second person", body = serde_json::Value,
            example = ERASURE_EXAMPLE),
        (status = 404, description = "No such document, or not the caller's to see (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Under a legal hold (`legal-hold`), signed or awaiting a signature (`document-in-signing-record`), or a request is open (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 410, description = "Erased already (`erased`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/documents/{id}/erasure-requests")]
pub async fn request_erasure(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsEraseRequest;
    user.require(permission).await?;
    let request = settled!(user, permission, |tx| erasure::request_erasure(
        &mut tx,
        user.caller(),
        *id,
        &body.reason
    ));
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/erasure-requests/{}", request.id),
        ))
        .json(request))
}

/// List pending erasure requests
///
/// Requests awaiting a second person, oldest first (at most 200).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    responses((status = 200, description = "Pending requests", body = serde_json::Value,
        example = json!([ERASURE_EXAMPLE()]))))]
#[get("/v1/erasure-requests")]
pub async fn list_erasure_requests(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    let permission = Permission::ErasureCertificatesRead;
    user.require(permission).await?;
    let list = settled!(user, permission, |tx| erasure::pending_requests(&mut tx));
    Ok(HttpResponse::Ok().json(list))
}

/// Read an erasure request
///
/// One erasure request or retention erasure, pending or carried out.
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The erasure request")),
    responses((status = 200, description = "The request", body = serde_json::Value,
            example = ERASURE_EXAMPLE),
        (status = 404, description = "No such request (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/erasure-requests/{id}")]
pub async fn get_erasure_request(
    user: AgencyUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::ErasureCertificatesRead;
    user.require(permission).await?;
    let request = settled!(user, permission, |tx| erasure::get_request(&mut tx, *id));
    Ok(HttpResponse::Ok().json(request))
}

/// Approve an erasure
///
/// The second person (a prosecutor other than the requester, with step-up)
/// approves and the document is crypto-erased: its wrapped data key and its ciphertext are
/// destroyed, its content answers 410 from then on. Answers the request with the signed
/// certificate of deletion. Recorded as `document.erase` (`detail.step: "erased"`).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The erasure request")),
    responses((status = 200, description = "Erased; the request and the certificate", body = serde_json::Value,
            example = json!({"request": ERASURE_EXAMPLE(), "certificate": {"certificate": {}, "signature": {}}})),
        (status = 404, description = "No such request, or its document is not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Under a legal hold (`legal-hold`), signed or awaiting a signature since the request (`document-in-signing-record`), or not pending (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/erasure-requests/{id}/approve")]
pub async fn approve_erasure(
    user: AgencyUser,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsEraseApprove;
    user.require(permission).await?;
    let request = settled!(user, permission, |tx| erasure::approve_erasure(
        &mut tx,
        user.caller(),
        *id
    ));
    // Committed: the key and the database ciphertext are gone. An S3 object and the certificate
    // follow; if either fails now, the certificate route (and the retention job, for the object)
    // finish it later.
    let certificate = erasure::complete_erasure(
        &state.pool,
        &user.agency,
        &keyring(&state),
        &state.documents,
        request.id,
    )
    .await;
    let certificate = match certificate {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(erasure = %request.id, error = %e, "certificate of deletion not made yet");
            None
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "request": request, "certificate": certificate })))
}

/// Withdraw an erasure request
///
/// A pending request is withdrawn by its requester, or declined by a prosecutor, with a reason;
/// the document stays as it was and a new request may be made.
/// Recorded as `document.erase` (`detail.step: "withdrawn"`).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The erasure request")),
    request_body(content = ReasonRequest, example = json!({"reason": "The exhibit belongs to this warrant after all"})),
    responses((status = 200, description = "Withdrawn", body = serde_json::Value,
            example = json!({"id": "0190f4e9-1a2b-7c3d-8e4f-5a6b7c8d9e0f", "status": "withdrawn",
                "withdrawnBy": "0190f4c1-1111-7222-8333-944455566677", "withdrawnAt": "2026-03-02T10:15:00.000Z",
                "withdrawReason": "The exhibit belongs to this warrant after all"})),
        (status = 404, description = "No such request, or its document is not the caller's to see (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending: erased, superseded or withdrawn already (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/erasure-requests/{id}/withdraw")]
pub async fn withdraw_erasure(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<ReasonRequest>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::DocumentsEraseRequest;
    user.require(permission).await?;
    let request = settled!(user, permission, |tx| erasure::withdraw_erasure(
        &mut tx,
        user.caller(),
        *id,
        &body.reason
    ));
    Ok(HttpResponse::Ok().json(request))
}

/// Read a certificate of deletion
///
/// The erasure's certificate: document id, hash, size, requester, approver, time and the audit
/// `seq` and hash of the `document.erase` entry, as RFC 8785 canonical JSON signed with the
/// agency's P-256 key (`signature`: ECDSA over SHA-256, DER in base64; the public key is at
/// `/v1/audit/keys` under `keyId`).
#[utoipa::path(tag = "documents", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The erasure request")),
    responses((status = 200, description = "The signed certificate", body = serde_json::Value,
            example = json!({"certificate": {"format": "writ-document-erasure/1", "auditSeq": 4711},
                "signature": {"algorithm": "ecdsa-p256-sha256", "keyVersion": 1, "keyId": "5d2e0a17", "signature": "MEUCIQ…"}})),
        (status = 404, description = "No such request (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not erased yet (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/erasure-requests/{id}/certificate")]
pub async fn erasure_certificate(
    user: AgencyUser,
    id: Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permission = Permission::ErasureCertificatesRead;
    user.require(permission).await?;
    // The certificate is made (and an S3 object removed) in transactions of its own.
    user.release().await?;
    let completed = erasure::complete_erasure(
        &state.pool,
        &user.agency,
        &keyring(&state),
        &state.documents,
        *id,
    )
    .await;
    let certificate = answered(&user, permission, completed).await?;
    Ok(HttpResponse::Ok().json(certificate))
}
