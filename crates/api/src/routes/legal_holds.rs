//! Legal holds on the agency's audit log: while one is active, retention prunes nothing. Placed
//! and released by agency_admin (audited as `audit.legal_hold.placed` / `.released`); auditors
//! read them with the audit log.

use actix_web::{HttpResponse, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::Permission;

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_legal_holds)
        .service(place_legal_hold)
        .service(release_legal_hold);
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

/// List legal holds
///
/// The agency's legal holds, active and released, newest first (auditor, agency_admin).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The holds, newest first", body = [LegalHoldView],
        example = json!([{
            "id": "0190f4c2-7a51-7c3e-9a0b-2f4d8e1c6b11",
            "reason": "Litigation hold, Doe v. County, case 2026-CV-0412",
            "placedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
            "placedAt": "2026-03-02T15:04:05Z",
            "releasedAt": null,
            "releasedBy": null,
            "active": true
        }]))))]
#[get("/v1/audit/legal-holds")]
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

/// Place a legal hold
///
/// While any hold is active, retention prunes no audit entry (agency_admin; audited as
/// `audit.legal_hold.placed`).
#[utoipa::path(tag = "audit",
    request_body(content = PlaceLegalHoldRequest,
        example = json!({"reason": "Litigation hold, Doe v. County, case 2026-CV-0412"})),
    security(("bearer" = [])),
    responses((status = 201, description = "The hold, active", body = LegalHoldView,
            example = json!({
                "id": "0190f4c2-7a51-7c3e-9a0b-2f4d8e1c6b11",
                "reason": "Litigation hold, Doe v. County, case 2026-CV-0412",
                "placedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
                "placedAt": "2026-03-02T15:04:05Z",
                "releasedAt": null,
                "releasedBy": null,
                "active": true
            })),
        (status = 422, description = "`reason` empty or over 2000 characters (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/audit/legal-holds")]
pub async fn place_legal_hold(
    user: AgencyUser,
    body: Json<PlaceLegalHoldRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::LegalHoldManage).await?;
    let mut tx = user.begin().await?;
    let hold = writ_audit_log::place_legal_hold(&mut tx, user.caller(), &body.reason).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(LegalHoldView::from(hold)))
}

/// Release a legal hold
///
/// Pruning resumes once no hold is active (agency_admin; audited as
/// `audit.legal_hold.released`). Releasing lets entries be deleted again, so it needs a step-up
/// (`POST /v1/auth/reauth`) within the last minutes.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The hold")),
    responses((status = 200, description = "The hold, released", body = LegalHoldView,
            example = json!({
                "id": "0190f4c2-7a51-7c3e-9a0b-2f4d8e1c6b11",
                "reason": "Litigation hold, Doe v. County, case 2026-CV-0412",
                "placedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
                "placedAt": "2026-03-02T15:04:05Z",
                "releasedAt": "2026-09-14T09:30:00Z",
                "releasedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
                "active": false
            })),
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "no step-up in the last minutes (`step-up-required`)"),
        (status = 404, description = "No such hold in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Already released (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/audit/legal-holds/{id}/release")]
pub async fn release_legal_hold(
    user: AgencyUser,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::LegalHoldRelease).await?;
    let mut tx = user.begin().await?;
    let hold = writ_audit_log::release_legal_hold(&mut tx, user.caller(), *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(LegalHoldView::from(hold)))
}
