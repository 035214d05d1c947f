//! The agency's keys: versions and their states, rotation and revocation (agency_admin with a
//! fresh step-up), and the progress of data-key re-wraps.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_agency_keys::{Disabled, RewrapJob, Rotated};
use writ_auth_mfa::Permission;
use writ_keys::KeyPurpose;

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_keys)
        .service(rotate_keys)
        .service(get_rewrap)
        .service(disable_version);
}

/// One version of one of the agency's keys. Never key material.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersionView {
    /// `kek` (wraps data keys) or `signing` (signs checkpoints).
    purpose: String,
    version: i32,
    /// `local`, `aws-kms` or `azure-keyvault`.
    provider: String,
    /// The provider's reference: an AWS key ARN, an Azure key version URL, a local id.
    key_id: String,
    /// `enabled`, `disabled` or `pending_deletion`.
    state: String,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    public_key_pem: Option<String>,
}

fn parse_purpose(s: &str) -> Result<KeyPurpose, ApiError> {
    KeyPurpose::parse(s).ok_or_else(|| ApiError::Validation {
        field: "purpose".into(),
        reason: "kek or signing".into(),
    })
}

/// List key versions
///
/// Every version of the agency's key-encryption and signing keys, with its state and validity
/// (auditor, agency_admin). Never key material.
#[utoipa::path(tag = "keys", security(("bearer" = [])),
    responses((status = 200, description = "Key-encryption key versions, then signing key versions", body = [KeyVersionView],
        example = json!([
            {"purpose": "kek", "version": 1, "provider": "local",
                "keyId": "local:0190f4a0-0000-7000-8000-00000000a001:kek:v1", "state": "disabled",
                "validFrom": "2026-01-05T09:00:00Z", "validTo": "2026-03-02T15:04:05Z", "publicKeyPem": null},
            {"purpose": "kek", "version": 2, "provider": "local",
                "keyId": "local:0190f4a0-0000-7000-8000-00000000a001:kek:v2", "state": "enabled",
                "validFrom": "2026-03-02T15:04:05Z", "validTo": null, "publicKeyPem": null},
            {"purpose": "signing", "version": 1, "provider": "local",
                "keyId": "local:0190f4a0-0000-7000-8000-00000000a001:signing:v1",
                "state": "enabled", "validFrom": "2026-01-05T09:00:00Z", "validTo": null,
                "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...\n-----END PUBLIC KEY-----\n"}
        ]))))]
#[get("/v1/keys")]
pub async fn list_keys(
    user: AgencyUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    // Key references live in the control plane, out of the agency's walls.
    user.release().await?;
    let mut out = Vec::new();
    for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
        for k in writ_tenancy::agency_keys(&state.pool, user.agency.id, purpose).await? {
            out.push(KeyVersionView {
                purpose: purpose.as_str().into(),
                version: k.key.version,
                provider: k.key.provider,
                key_id: k.key.key_id,
                state: k.key.state.as_str().to_owned(),
                valid_from: k.valid_from,
                valid_to: k.valid_to,
                public_key_pem: k.public_key_pem,
            });
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    /// `kek`, `signing` or `all` (the default).
    #[serde(default)]
    purpose: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedView {
    purpose: String,
    from_version: i32,
    to_version: i32,
    key_id: String,
    /// For a key-encryption key: the background re-wrap of data keys (`GET /v1/keys/rewraps/{id}`).
    rewrap_id: Option<Uuid>,
}

impl From<Rotated> for RotatedView {
    fn from(r: Rotated) -> Self {
        Self {
            purpose: r.purpose.into(),
            from_version: r.from_version,
            to_version: r.to_version,
            key_id: r.key_id,
            rewrap_id: r.rewrap_id,
        }
    }
}

/// Rotate keys
///
/// A new version of each chosen key, now (agency_admin; audited as `key.rotation`). Old versions
/// stay usable for decryption and verification; the old signing key co-signs the next
/// checkpoint. A key-encryption key rotation starts a background re-wrap of the data keys.
/// Needs a step-up (`POST /v1/auth/reauth`) within the last minutes.
#[utoipa::path(tag = "keys",
    request_body(content = RotateRequest, example = json!({"purpose": "kek"})),
    security(("bearer" = [])),
    responses((status = 200, description = "One entry per key rotated", body = [RotatedView],
            example = json!([{"purpose": "kek", "fromVersion": 1, "toVersion": 2,
                "keyId": "local:0190f4a0-0000-7000-8000-00000000a001:kek:v2",
                "rewrapId": "0190f4e1-2a3b-7c4d-9e5f-6a7b8c9d0e1f"}])),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "no step-up in the last minutes (`step-up-required`)"),
        (status = 503, body = Problem, content_type = "application/problem+json",
            description = "The agency's key provider is unavailable (`key-provider-unavailable`), or the database (`unavailable`). When `all` was asked for and the key-encryption key rotated before the signing key failed, the problem's `rotated` lists what did rotate (retry with `signing` only)")))]
#[post("/v1/keys/rotate")]
pub async fn rotate_keys(
    user: AgencyUser,
    state: web::Data<AppState>,
    body: crate::json::Json<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::KeyRotate).await?;
    let purposes = match body.purpose.as_deref().unwrap_or("all") {
        "all" => vec![KeyPurpose::KeyEncryption, KeyPurpose::Signing],
        p => vec![parse_purpose(p)?],
    };
    // Each rotation is a transaction of its own that starts in the control plane.
    user.release().await?;
    let mut out = Vec::new();
    for purpose in purposes {
        let rotated = writ_agency_keys::rotate(
            &state.pool,
            &state.keys,
            &user.agency,
            purpose,
            user.caller(),
            None,
        )
        .await;
        match rotated {
            Ok(Some(r)) => out.push(RotatedView::from(r)),
            Ok(None) => {}
            // A key that already rotated stays rotated: the problem says which, so that a retry
            // asks for the rest only rather than rotating that key a second time.
            Err(e) if !out.is_empty() => {
                let mut done = serde_json::Map::new();
                done.insert("rotated".into(), serde_json::json!(out));
                return Ok(ApiError::from(e).response_with(done));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewrapView {
    id: Uuid,
    to_version: i32,
    total: i64,
    done: i64,
    /// Data keys under a disabled version: unreadable by design, left as they are.
    failed: i64,
    /// `running`, `done`, `failed` or `superseded`.
    status: String,
    error: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<RewrapJob> for RewrapView {
    fn from(j: RewrapJob) -> Self {
        Self {
            id: j.id,
            to_version: j.to_version,
            total: j.total,
            done: j.done,
            failed: j.failed,
            status: j.status,
            error: j.error,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// Re-wrap progress
///
/// Progress of the data-key re-wrap a key-encryption key rotation started (auditor,
/// agency_admin).
#[utoipa::path(tag = "keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The `rewrapId` of the rotation")),
    responses((status = 200, description = "The re-wrap job", body = RewrapView,
            example = json!({"id": "0190f4e1-2a3b-7c4d-9e5f-6a7b8c9d0e1f", "toVersion": 2, "total": 18342,
                "done": 18342, "failed": 0, "status": "done", "error": null,
                "startedAt": "2026-03-02T15:04:06Z", "finishedAt": "2026-03-02T15:05:41Z"})),
        (status = 404, description = "No such re-wrap in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/keys/rewraps/{id}")]
pub async fn get_rewrap(
    user: AgencyUser,
    path: crate::json::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound)?;
    let mut tx = user.begin().await?;
    let job = writ_agency_keys::rewrap_job(&mut tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(RewrapView::from(job)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableRequest {
    /// Why (recorded in the `key.revocation` entry), e.g. "suspected compromise, incident 2026-114".
    reason: String,
    /// Revoke a key-encryption version even though data keys are still wrapped by it (the
    /// re-wrap has not finished): what they protect becomes unreadable for good.
    #[serde(default)]
    force: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisabledView {
    purpose: String,
    version: i32,
    key_id: String,
}

impl From<Disabled> for DisabledView {
    fn from(d: Disabled) -> Self {
        Self {
            purpose: d.purpose.into(),
            version: d.version,
            key_id: d.key_id,
        }
    }
}

/// Revoke a key version
///
/// The key provider disables the version, and whatever only it protects becomes unreadable: its
/// use answers 409 `key-disabled` (agency_admin; audited as `key.revocation`). The current
/// version cannot be disabled: rotate first. A key-encryption version that still wraps data keys
/// (the re-wrap after the rotation has not finished) is refused with 409 unless `force`. Needs a
/// step-up (`POST /v1/auth/reauth`).
#[utoipa::path(tag = "keys",
    request_body(content = DisableRequest, example = json!({"reason": "suspected compromise, incident 2026-114"})),
    security(("bearer" = [])),
    params(("purpose" = String, Path, description = "kek or signing"), ("version" = i32, Path, description = "The version to disable")),
    responses((status = 200, description = "The version, disabled", body = DisabledView,
            example = json!({"purpose": "kek", "version": 1,
                "keyId": "local:0190f4a0-0000-7000-8000-00000000a001:kek:v1"})),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "no step-up in the last minutes (`step-up-required`)"),
        (status = 404, description = "No such key version (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The current version, one already disabled, or a key-encryption version still wrapping data keys (`conflict`)")))]
#[post("/v1/keys/{purpose}/versions/{version}/disable")]
pub async fn disable_version(
    user: AgencyUser,
    state: web::Data<AppState>,
    path: crate::json::Path<(String, String)>,
    body: crate::json::Json<DisableRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::KeyRotate).await?;
    let (purpose, version) = path.into_inner();
    let purpose = parse_purpose(&purpose)?;
    let version: i32 = version.parse().map_err(|_| ApiError::NotFound)?;
    // The revocation is a transaction of its own that starts in the control plane.
    user.release().await?;
    let done = writ_agency_keys::disable_version(
        &state.pool,
        &state.keys,
        &user.agency,
        purpose,
        version,
        &body.reason,
        body.force,
        user.caller(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(DisabledView::from(done)))
}
