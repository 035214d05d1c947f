//! Remote oath: video sessions of a warrant under review, the participants' joins and leaves,
//! the oath record, transcript certification, sworn amendments ("four corners"), and the media
//! provider's signed webhook. The rules are `writ_warrant_workflow::video`'s; handlers extract,
//! call and answer. docs/VIDEO-OATH.md describes the whole, with the webhook's signing scheme.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::Permission;
use writ_tenancy::TenantTx;
use writ_warrant_workflow::WarrantError;
use writ_warrant_workflow::video::oath::{IdentityMethod, OathInput};
use writ_warrant_workflow::video::store::Presence;
use writ_warrant_workflow::video::webhook::{
    self, Delivery, MAX_BODY_BYTES, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use writ_warrant_workflow::video::{amendments, oath, store};

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};
use crate::routes::settled;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_session)
        .service(list_sessions)
        .service(get_session)
        .service(join_session)
        .service(leave_session)
        .service(administer_oath)
        .service(certify_transcript)
        .service(enter_amendment)
        .service(list_amendments)
        .service(swear_amendment)
        .service(withdraw_amendment)
        .service(video_webhook);
}

const SESSION_EXAMPLE: fn() -> Value = || {
    json!({
        "id": "0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f",
        "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "room": "0190f4a0-0000-7000-8000-000000000001.0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f",
        "state": "connected",
        "judgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e04",
        "affiantId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "createdAt": "2026-03-02T22:01:10Z",
        "connectedAt": "2026-03-02T22:01:42Z",
        "lastActivityAt": "2026-03-02T22:03:05Z",
        "endedAt": null,
        "endReason": null,
        "participants": [
            {"userId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e04", "role": "judge",
             "joinedAt": "2026-03-02T22:01:20Z", "leftAt": null, "joins": 1}
        ],
        "oath": null,
        "recording": null,
        "recordingMissing": false,
        "transcript": null
    })
};

/// Open an oath session
///
/// Opens the remote oath session of a warrant in `judge_review` (the judge who claimed it), with
/// the author as affiant; the answer names the provider's `room`. Audited as
/// `video.session.initiated`. One open session per warrant.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 201, description = "The session, `initiated`", body = serde_json::Value,
            example = SESSION_EXAMPLE),
        (status = 403, description = "Not the judge who claimed the warrant (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such warrant (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not under review (`warrant-not-in-review`), a session is open \
            (`session-open`), no provider configured (`video-not-configured`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/video-sessions")]
pub async fn create_session(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::VideoSessionsManage;
    user.require(p).await?;
    let configured = app_state(&req)?.video_webhook_secret.is_some();
    let s = settled!(user, p, |tx| store::create(
        &mut tx,
        user.caller(),
        *id,
        configured
    ));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/video-sessions/{}", s.id)))
        .json(s))
}

/// List a warrant's oath sessions
///
/// Every session of the warrant, oldest first, each with its oath record, recording and
/// transcript certification.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The sessions", body = serde_json::Value,
            example = json!([SESSION_EXAMPLE()])),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/video-sessions")]
pub async fn list_sessions(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let p = Permission::WarrantsRead;
    user.require(p).await?;
    let list = settled!(user, p, |tx| store::list(&mut tx, user.caller(), *id));
    Ok(HttpResponse::Ok().json(list))
}

/// Read an oath session
///
/// The session with its participants, oath record, recording (in the court's custody) and
/// transcript certification; `recordingMissing` when it ended after a connection without one.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, description = "The session", body = serde_json::Value, example = SESSION_EXAMPLE),
        (status = 404, description = "No such session, or its warrant is sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/video-sessions/{id}")]
pub async fn get_session(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let p = Permission::WarrantsRead;
    user.require(p).await?;
    let s = settled!(user, p, |tx| store::get(&mut tx, user.caller(), *id));
    Ok(HttpResponse::Ok().json(s))
}

async fn presence(user: AgencyUser, id: Uuid, what: Presence) -> Result<HttpResponse, ApiError> {
    let p = Permission::VideoSessionsJoin;
    user.require(p).await?;
    let s = settled!(user, p, |tx| store::presence(
        &mut tx,
        user.caller(),
        id,
        what
    ));
    Ok(HttpResponse::Ok().json(s))
}

/// Join an oath session
///
/// The session's judge or affiant records joining (`video.session.joined`); the provider
/// reports the media connection itself.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, description = "The session", body = serde_json::Value, example = SESSION_EXAMPLE),
        (status = 403, description = "Not the session's judge or affiant (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such session (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The session ended (`session-ended`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/video-sessions/{id}/join")]
pub async fn join_session(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    presence(user, *id, Presence::Join).await
}

/// Leave an oath session
///
/// The session's judge or affiant records leaving (`video.session.left`).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, description = "The session", body = serde_json::Value, example = SESSION_EXAMPLE),
        (status = 403, description = "Not the session's judge or affiant (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The session ended (`session-ended`), or not joined (`conflict`)",
            body = Problem, content_type = "application/problem+json")))]
#[post("/v1/video-sessions/{id}/leave")]
pub async fn leave_session(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    presence(user, *id, Presence::Leave).await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiantIdentity {
    /// `known_personally`, `government_id_on_video`, `agency_credential_on_video`,
    /// `agency_verified_login` or `other` (then `note` says what).
    #[schema(value_type = String)]
    method: IdentityMethod,
    note: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeLocation {
    /// Where the judge is, e.g. `Minnesota (Hennepin County)`.
    jurisdiction: String,
    /// The judge attests being within the court's jurisdiction.
    in_jurisdiction: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OathRequest {
    affiant_identity: AffiantIdentity,
    judge_location: JudgeLocation,
    /// The words of the oath as administered.
    oath_text: String,
}

/// Administer the oath
///
/// The session's judge records the oath while the session is connected: how the affiant's
/// identity was confirmed, where the judge is, the words; the server's time and the affidavit
/// version sworn to are added. Once per session; audited as `oath.administered`.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    request_body(content = OathRequest, example = json!({
        "affiantIdentity": {"method": "agency_credential_on_video", "note": "badge 4471 shown"},
        "judgeLocation": {"jurisdiction": "Minnesota", "inJurisdiction": true},
        "oathText": "Do you swear that the statements in your affidavit are true, so help you God?"})),
    responses((status = 200, description = "The session with its oath record", body = serde_json::Value,
            example = SESSION_EXAMPLE),
        (status = 403, description = "Not the session's judge (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not connected (`session-not-connected`), the judge or the \
            affiant not joined (`participant-absent`), administered already \
            (`oath-already-administered`), the judge outside the court's jurisdiction where it requires \
            otherwise (`judge-outside-jurisdiction`), the warrant not under review (`warrant-not-in-review`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or too long member (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/video-sessions/{id}/oath")]
pub async fn administer_oath(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<OathRequest>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::VideoSessionsManage;
    user.require(p).await?;
    let input = OathInput {
        identity_method: body.affiant_identity.method,
        identity_note: body.affiant_identity.note.clone(),
        judge_location: body.judge_location.jurisdiction.clone(),
        judge_in_jurisdiction: body.judge_location.in_jurisdiction,
        oath_text: body.oath_text.clone(),
    };
    let s = settled!(user, p, |tx| oath::administer(
        &mut tx,
        user.caller(),
        *id,
        &input
    ));
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscriptRequest {
    /// SHA-256 of the transcript (64 lowercase hex digits).
    transcript_sha256: String,
    /// Where the court keeps it.
    transcript_reference: Option<String>,
}

/// Certify a session's transcript
///
/// The session's judge, who took the testimony, certifies the transcript of its recording (after
/// the provider delivered it), once: who, when, and its SHA-256. Needs step-up. Audited as
/// `video.session.transcript_certified`; another judge is refused (403, `authz.denied`).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    request_body(content = TranscriptRequest, example = json!({
        "transcriptSha256": "3f1a5c0e9b7d2a4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d",
        "transcriptReference": "court-records://hennepin/2026/03/W-2026-000847-oath.txt"})),
    responses((status = 200, description = "The session", body = serde_json::Value, example = SESSION_EXAMPLE),
        (status = 401, description = "No recent step-up (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not the session's judge (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "No recording (`recording-missing`), certified already \
            (`transcript-already-certified`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a SHA-256 (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/video-sessions/{id}/transcript-certification")]
pub async fn certify_transcript(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<TranscriptRequest>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::TranscriptCertify;
    user.require(p).await?;
    let s = settled!(user, p, |tx| oath::certify_transcript(
        &mut tx,
        user.caller(),
        *id,
        &body.transcript_sha256,
        body.transcript_reference.as_deref()
    ));
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmendmentRequest {
    /// The facts beyond the affidavit the judge relies on.
    facts: String,
}

const AMENDMENT_EXAMPLE: fn() -> Value = || {
    json!({
        "id": "0190f4e3-0000-7000-8000-00000000a001",
        "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "sessionId": "0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f",
        "facts": "The affiant states the witness saw the handgun in the kitchen at 21:30.",
        "factsSha256": "8c3f0e…",
        "state": "pending",
        "enteredBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e04",
        "enteredAt": "2026-03-02T22:04:00Z",
        "swornBy": null, "swornAt": null, "swornSessionId": null,
        "affidavitVersion": null, "affidavitSha256": null,
        "withdrawnBy": null, "withdrawnAt": null, "withdrawnReason": null
    })
};

/// Enter an amendment
///
/// The session's judge enters facts beyond the affidavit during a connected session; the warrant
/// cannot be issued until the affiant swears to it (or the judge withdraws it). Audited as
/// `warrant.amendment.entered`.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    request_body(content = AmendmentRequest, example = json!({
        "facts": "The affiant states the witness saw the handgun in the kitchen at 21:30."})),
    responses((status = 201, description = "The amendment, `pending`", body = serde_json::Value,
            example = AMENDMENT_EXAMPLE),
        (status = 403, description = "Not the session's judge (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "No connected session (`session-not-connected`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/amendments")]
pub async fn enter_amendment(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<AmendmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::VideoSessionsManage;
    user.require(p).await?;
    let a = settled!(user, p, |tx| amendments::enter(
        &mut tx,
        user.caller(),
        *id,
        &body.facts
    ));
    Ok(HttpResponse::Created().json(a))
}

/// List a warrant's amendments
///
/// Every amendment entered during the warrant's oath sessions, oldest first: pending, sworn (with
/// the affidavit version it made) or withdrawn (with the reason).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The amendments, oldest first", body = serde_json::Value,
            example = json!([AMENDMENT_EXAMPLE()])),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/amendments")]
pub async fn list_amendments(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let p = Permission::WarrantsRead;
    user.require(p).await?;
    let list = settled!(user, p, |tx| amendments::list(&mut tx, user.caller(), *id));
    Ok(HttpResponse::Ok().json(list))
}

/// Swear to an amendment
///
/// The affiant swears to a pending amendment, in the connected session after the oath: the
/// affidavit with the amendment becomes a new immutable version (`amended`) with its SHA-256,
/// and the warrant's `version` moves on. Needs step-up. Audited as `warrant.amendment.sworn`.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant"),
        ("aid" = Uuid, Path, description = "The amendment")),
    responses((status = 200, description = "The amendment, `sworn`", body = serde_json::Value,
            example = AMENDMENT_EXAMPLE),
        (status = 401, description = "No recent step-up (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not the affiant (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not pending (`amendment-not-pending`), no connected session \
            (`session-not-connected`), no oath yet (`oath-missing`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/amendments/{aid}/swear")]
pub async fn swear_amendment(
    user: AgencyUser,
    path: Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::AmendmentsSwear;
    user.require(p).await?;
    let (id, aid) = path.into_inner();
    let a = settled!(user, p, |tx| amendments::swear(
        &mut tx,
        user.caller(),
        id,
        aid
    ));
    Ok(HttpResponse::Ok().json(a))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WithdrawRequest {
    reason: String,
}

/// Withdraw an amendment
///
/// The judge who claimed the warrant withdraws a pending amendment, with a reason; it stays on
/// record. Audited as `warrant.amendment.withdrawn`.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant"),
        ("aid" = Uuid, Path, description = "The amendment")),
    request_body(content = WithdrawRequest, example = json!({"reason": "not relied on"})),
    responses((status = 200, description = "The amendment, `withdrawn`", body = serde_json::Value,
            example = AMENDMENT_EXAMPLE),
        (status = 409, description = "Not pending (`amendment-not-pending`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants/{id}/amendments/{aid}/withdraw")]
pub async fn withdraw_amendment(
    user: AgencyUser,
    path: Path<(Uuid, Uuid)>,
    body: Json<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    let p = Permission::VideoSessionsManage;
    user.require(p).await?;
    let (id, aid) = path.into_inner();
    let a = settled!(user, p, |tx| amendments::withdraw(
        &mut tx,
        user.caller(),
        id,
        aid,
        &body.reason
    ));
    Ok(HttpResponse::Ok().json(a))
}

fn app_state(req: &HttpRequest) -> Result<AppState, ApiError> {
    Ok(req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?
        .get_ref()
        .clone())
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The media provider's webhook
///
/// No bearer token: a delivery is the provider's when `Writ-Webhook-Signature` (`v1=<hex>`) is
/// the HMAC-SHA256, under the shared secret, of `Writ-Webhook-Timestamp` (Unix seconds), `.` and
/// the raw body, signed within five minutes of the server's time. A delivery id (`eventId`) taken
/// before is answered `duplicate` when the body is the same (the provider resending it), and
/// refused as a replay when it is not. Events: `session.connected`, `session.disconnected`, `session.ended`,
/// `recording.ready` (`recording`: `reference`, `sha256`). A report the session's state has no
/// transition for is answered `ignored`. 404 on a server without a provider secret.
#[utoipa::path(tag = "warrants",
    params(("Writ-Webhook-Timestamp" = String, Header, description = "Unix seconds of signing"),
        ("Writ-Webhook-Signature" = String, Header, description = "`v1=` and the hex HMAC-SHA256")),
    request_body(content = serde_json::Value, example = json!({
        "eventId": "evt_01HQ3V7K2M", "type": "recording.ready",
        "room": "0190f4a0-0000-7000-8000-000000000001.0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f",
        "occurredAt": "2026-03-02T22:20:00Z",
        "recording": {"reference": "court-media://rec/8841",
            "sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"}})),
    responses((status = 200, description = "Taken: `applied`, `ignored`, or `duplicate` (taken before)", body = serde_json::Value,
            example = json!({"sessionId": "0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f", "outcome": "applied",
                "state": "connected"})),
        (status = 400, description = "Not JSON (`bad-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad signature (`webhook-signature-invalid`), missing or stale timestamp \
            (`webhook-timestamp-invalid`), a taken event id on another body (`webhook-replayed`); nothing changes", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such session, or no provider configured (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Over 64 KiB (`payload-too-large`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "An unknown event or a malformed member (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/webhooks/video")]
pub async fn video_webhook(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let state = app_state(&req)?;
    let Some(secret) = state.video_webhook_secret.clone() else {
        return Err(ApiError::NotFound);
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let now = Utc::now();
    let signed_at = match webhook::verify(
        &secret,
        header_str(&req, TIMESTAMP_HEADER),
        header_str(&req, SIGNATURE_HEADER),
        &body,
        now,
    ) {
        Ok(at) => at,
        Err(refusal) => {
            // Unauthenticated: no agency to record it in. The log keeps it for operators.
            tracing::warn!(reason = %refusal, source = ?crate::auth::source_ip(&req), "video webhook refused");
            return Err(ApiError::from(WarrantError::from(refusal)));
        }
    };
    let delivery = Delivery::parse(&body)?;
    if let Ok(value) = serde_json::from_slice::<Value>(&body)
        && let Some(field) = crate::json::nul_path(&value)
    {
        return Err(ApiError::Validation {
            field,
            reason: "must not contain a NUL character (U+0000)".into(),
        });
    }
    // Authenticated from here: the room names the agency and the session.
    let (agency_id, _) = delivery.room()?;
    let Some((_, mut tx)) = TenantTx::begin_active(&state.pool, agency_id).await? else {
        return Err(ApiError::NotFound);
    };
    let origin = crate::auth::origin(&req);
    let mut caller = writ_audit_log::Caller::system();
    caller.agency_id = Some(agency_id);
    caller.source_ip = origin.source_ip;
    caller.request_id = origin.request_id;
    match store::receive(&mut tx, &caller, &delivery, signed_at, now).await {
        Ok(received) => {
            tx.commit().await?;
            Ok(HttpResponse::Ok().json(received))
        }
        Err(e) => {
            tx.rollback().await?;
            if let WarrantError::Video(writ_warrant_workflow::video::VideoError::Webhook(r)) = &e {
                tracing::warn!(reason = %r, "video webhook refused");
            }
            Err(ApiError::from(e))
        }
    }
}
