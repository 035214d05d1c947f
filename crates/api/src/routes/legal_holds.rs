//! Legal holds on the agency's audit log: while one is active, retention prunes nothing. Placed
//! and released by agency_admin (audited as `audit.legal_hold.placed` / `.released`); auditors
//! read them with the audit log.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_audit_log::RetentionError;
use writ_auth_mfa::Permission;

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/audit/legal-holds")
            .get(list_legal_holds)
            .post(place_legal_hold),
    )
    .service(web::resource("/v1/audit/legal-holds/{id}/release").post(release_legal_hold));
}

impl From<RetentionError> for ApiError {
    fn from(e: RetentionError) -> Self {
        match e {
            RetentionError::LegalHold(_) | RetentionError::HoldAlreadyReleased => {
                ApiError::Conflict(e.to_string())
            }
            RetentionError::HoldNotFound => ApiError::NotFound,
            RetentionError::Invalid { field, reason } => ApiError::Validation {
                field: field.into(),
                reason,
            },
            RetentionError::InvalidPolicy(reason) => ApiError::Validation {
                field: writ_audit_log::RETENTION_POLICY.into(),
                reason,
            },
            RetentionError::Audit(a) => a.into(),
            RetentionError::Archive(m) => ApiError::Internal(m),
        }
    }
}

/// A legal hold on the audit log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegalHoldView {
    id: Uuid,
    /// The matter, case or order the hold is for.
    reason: String,
    /// The user who placed it.
    placed_by: Uuid,
    placed_at: DateTime<Utc>,
    /// Null while the hold is active.
    released_at: Option<DateTime<Utc>>,
    released_by: Option<Uuid>,
    active: bool,
}

impl From<writ_audit_log::LegalHold> for LegalHoldView {
    fn from(h: writ_audit_log::LegalHold) -> Self {
        Self {
            active: h.is_active(),
            id: h.id,
            reason: h.reason,
            placed_by: h.placed_by,
            placed_at: h.placed_at,
            released_at: h.released_at,
            released_by: h.released_by,
        }
    }
}

/// The agency's legal holds, active and released, newest first.
#[utoipa::path(get, path = "/v1/audit/legal-holds", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = [LegalHoldView]),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_legal_holds(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let mut tx = user.begin().await?;
    let holds = writ_audit_log::list_legal_holds(&mut tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(
        holds
            .into_iter()
            .map(LegalHoldView::from)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaceLegalHoldRequest {
    /// 1 to 2000 characters: the matter, case or order the hold is for.
    reason: String,
}

/// Place a legal hold: no audit entry is pruned while it is active (audited as
/// `audit.legal_hold.placed`).
#[utoipa::path(post, path = "/v1/audit/legal-holds", tag = "audit", request_body = PlaceLegalHoldRequest,
    security(("bearer" = [])),
    responses((status = 201, body = LegalHoldView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn place_legal_hold(
    user: AgencyUser,
    body: Json<PlaceLegalHoldRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::LegalHoldManage).await?;
    let mut tx = user.begin().await?;
    let hold = writ_audit_log::place_legal_hold(
        &mut tx,
        &user.actor(),
        &body.reason,
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(LegalHoldView::from(hold)))
}

/// Release an active legal hold; pruning resumes once no hold is active (audited as
/// `audit.legal_hold.released`). Releasing lets entries be deleted again, so it needs a step-up
/// (`POST /v1/auth/reauth`) within the last minutes.
#[utoipa::path(post, path = "/v1/audit/legal-holds/{id}/release", tag = "audit", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = LegalHoldView),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "step-up-required"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already released", body = Problem, content_type = "application/problem+json")))]
pub async fn release_legal_hold(
    user: AgencyUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::LegalHoldRelease).await?;
    let mut tx = user.begin().await?;
    let hold =
        writ_audit_log::release_legal_hold(&mut tx, &user.actor(), *id, user.source_ip.clone())
            .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(LegalHoldView::from(hold)))
}
