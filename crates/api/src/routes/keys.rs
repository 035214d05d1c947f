//! The agency's keys: versions and their states, rotation and revocation (agency_admin with a
//! fresh step-up), and the progress of data-key re-wraps.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_agency_keys::{Disabled, RewrapJob, Rotated};
use writ_auth_mfa::Permission;
use writ_keys::KeyPurpose;
use writ_tenancy::Agency;

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/keys").get(list_keys))
        .service(web::resource("/v1/keys/rotate").post(rotate_keys))
        .service(web::resource("/v1/keys/rewraps/{id}").get(get_rewrap))
        .service(
            web::resource("/v1/keys/{purpose}/versions/{version}/disable").post(disable_version),
        );
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

async fn agency_of(state: &AppState, user: &AgencyUser) -> Result<Agency, ApiError> {
    writ_tenancy::agency_by_id(&state.pool, user.agency_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Every version of the agency's key-encryption and signing keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = [KeyVersionView]), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_keys(
    user: AgencyUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let mut out = Vec::new();
    for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
        for k in writ_tenancy::agency_keys(&state.pool, user.agency_id, purpose).await? {
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

/// Rotate now: a new version of each chosen key (audited as `key.rotation`). Old versions stay
/// usable for decryption and verification; the old signing key co-signs the next checkpoint.
/// Needs a step-up (`POST /v1/auth/reauth`) within the last minutes.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys", request_body = RotateRequest, security(("bearer" = [])),
    responses((status = 200, body = [RotatedView]),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "step-up-required"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "key provider unavailable")))]
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
    let agency = agency_of(&state, &user).await?;
    let mut out = Vec::new();
    for purpose in purposes {
        if let Some(r) = writ_agency_keys::rotate(
            &state.pool,
            &state.keys,
            &agency,
            purpose,
            user.actor(),
            user.source_ip.clone(),
            None,
        )
        .await?
        {
            out.push(RotatedView::from(r));
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

/// Progress of a data-key re-wrap started by a key-encryption key rotation.
#[utoipa::path(get, path = "/v1/keys/rewraps/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = RewrapView), (status = 404, body = Problem, content_type = "application/problem+json")))]
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

/// Revoke one key version: the provider disables it, and whatever only it protects becomes
/// unreadable (409 `key-disabled` on use). The current version cannot be disabled: rotate first.
/// Needs a step-up.
#[utoipa::path(post, path = "/v1/keys/{purpose}/versions/{version}/disable", tag = "keys", request_body = DisableRequest,
    security(("bearer" = [])),
    params(("purpose" = String, Path, description = "kek or signing"), ("version" = i32, Path)),
    responses((status = 200, body = DisabledView),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "step-up-required"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "current version, or already disabled")))]
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
    let agency = agency_of(&state, &user).await?;
    let done = writ_agency_keys::disable_version(
        &state.pool,
        &state.keys,
        &agency,
        purpose,
        version,
        &body.reason,
        user.actor(),
        user.source_ip.clone(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(DisabledView::from(done)))
}
