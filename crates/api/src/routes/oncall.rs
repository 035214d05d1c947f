//! On-call judges: a court's roster (`PUT/GET /v1/courts/{court}/roster`, with who is on call at
//! an instant) and a warrant's routing (`GET /v1/warrants/{id}/routing`: who holds it, every hop
//! and how its alerts were delivered). The rules — DST, overlaps, escalation — are the warrant
//! workflow's (`writ_warrant_workflow::oncall`); nothing here decides one.

use actix_web::{HttpRequest, HttpResponse, get, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::Permission;
use writ_warrant_workflow::oncall::{self, RosterInput, ShiftInput, ShiftRole};

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path, query_pairs};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(put_roster)
        .service(get_roster)
        .service(warrant_routing);
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
    ApiError::Validation {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftRequest {
    /// An active user with the role judge.
    judge_id: Uuid,
    /// `primary` or `backup`.
    role: String,
    /// Local wall-clock time in the court's time zone, `YYYY-MM-DDTHH:MM` (no offset).
    start: String,
    /// Local, exclusive; may be on a later day (an overnight shift).
    end: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RosterRequest {
    /// The last resort of every escalation: an active judge.
    presiding_judge_id: Uuid,
    /// Primary and backup shifts; shifts of one role must not overlap.
    #[serde(default)]
    shifts: Vec<ShiftRequest>,
}

impl RosterRequest {
    fn input(&self) -> Result<RosterInput, ApiError> {
        let mut shifts = Vec::with_capacity(self.shifts.len());
        for (i, s) in self.shifts.iter().enumerate() {
            let role = match s.role.as_str() {
                "primary" => ShiftRole::Primary,
                "backup" => ShiftRole::Backup,
                _ => return Err(invalid(format!("shifts[{i}].role"), "primary or backup")),
            };
            let local = |field: &str, v: &str| {
                oncall::roster::parse_local(v).ok_or_else(|| {
                    invalid(
                        format!("shifts[{i}].{field}"),
                        "a local time YYYY-MM-DDTHH:MM in the court's time zone, without offset",
                    )
                })
            };
            shifts.push(ShiftInput {
                judge_id: s.judge_id,
                role,
                start: local("start", &s.start)?,
                end: local("end", &s.end)?,
            });
        }
        Ok(RosterInput {
            presiding_judge_id: self.presiding_judge_id,
            shifts,
        })
    }
}

const ROSTER_EXAMPLE: fn() -> serde_json::Value = || {
    json!({
        "court": "d-minn",
        "timeZone": "America/Chicago",
        "presidingJudgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e09",
        "shifts": [{
            "judgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e07", "role": "primary",
            "start": "2026-03-07T17:00", "end": "2026-03-08T08:00",
            "startsAt": "2026-03-07T23:00:00Z", "endsAt": "2026-03-08T13:00:00Z"
        }],
        "version": 3,
        "updatedAt": "2026-03-01T10:00:00Z",
        "updatedBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "onCall": {"at": "2026-03-08T04:00:00Z", "primary": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e07",
            "backup": null, "presiding": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e09"}
    })
};

fn with_on_call(roster: &oncall::Roster, at: DateTime<Utc>) -> Result<serde_json::Value, ApiError> {
    let on_call = oncall::roster::on_call(&roster.shifts, roster.presiding_judge_id, at);
    let mut v =
        serde_json::to_value(roster).map_err(|_| ApiError::Internal("roster view".into()))?;
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "onCall".into(),
            serde_json::to_value(on_call).map_err(|_| ApiError::Internal("roster view".into()))?,
        );
    }
    Ok(v)
}

/// Set a court's roster
///
/// Replaces the court's on-call roster (agency_admin; audited as `court.roster.updated`). Shift
/// times are local wall-clock times in the court's time zone (from the `warrant-types` policy):
/// a time in the spring-forward gap is the first instant after it, a repeated fall-back time its
/// first occurrence (docs/NOTIFICATIONS.md). Every judge must be an active judge of the agency.
#[utoipa::path(tag = "on-call", security(("bearer" = [])),
    params(("court" = String, Path, description = "A court key of the warrant-types policy")),
    request_body(content = RosterRequest, example = json!({
        "presidingJudgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e09",
        "shifts": [{"judgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e07", "role": "primary",
            "start": "2026-03-07T17:00", "end": "2026-03-08T08:00"}]})),
    responses((status = 200, description = "The roster as stored, with who is on call now",
            body = serde_json::Value, example = ROSTER_EXAMPLE),
        (status = 404, description = "No such court (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A judge unknown, inactive or not a judge; a shift ending before it starts or overlapping another of its role (`validation`, naming the field)",
            body = Problem, content_type = "application/problem+json")))]
#[put("/v1/courts/{court}/roster")]
pub async fn put_roster(
    user: AgencyUser,
    court: Path<String>,
    body: Json<RosterRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::RostersManage).await?;
    let input = body.input()?;
    let mut tx = user.begin().await?;
    let roster = oncall::put_roster(&mut tx, user.caller(), &court, &input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(with_on_call(&roster, Utc::now())?))
}

/// Read a court's roster
///
/// The roster and who is on call (`onCall`) now, or at `at` (judges, agency_admin). 404 when the
/// court is unknown or has no roster.
#[utoipa::path(tag = "on-call", security(("bearer" = [])),
    params(("court" = String, Path, description = "A court key of the warrant-types policy"),
        ("at" = Option<DateTime<Utc>>, Query, description = "Resolve the on-call judges at this instant (RFC 3339); default now")),
    responses((status = 200, description = "The roster and who is on call", body = serde_json::Value,
            example = ROSTER_EXAMPLE),
        (status = 404, description = "No such court, or no roster (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`at` is not an RFC 3339 time (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/courts/{court}/roster")]
pub async fn get_roster(
    user: AgencyUser,
    req: HttpRequest,
    court: Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::RostersRead).await?;
    let mut at = Utc::now();
    for (name, value) in query_pairs(&req)? {
        match name.as_str() {
            "at" => {
                at = DateTime::parse_from_rfc3339(&value)
                    .map_err(|_| invalid("at", "an RFC 3339 time, e.g. 2026-03-08T08:30:00Z"))?
                    .to_utc();
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; known: at"
                )));
            }
        }
    }
    let mut tx = user.begin().await?;
    let roster = oncall::roster(&mut tx, &court).await?;
    tx.commit().await?;
    let roster = roster.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(with_on_call(&roster, at)?))
}

/// A warrant's routing
///
/// Who holds the warrant now (the claiming judge, else the last judge alerted), when it is
/// escalated next unless opened, and every hop of the on-call chain with its alerts and their
/// delivery state (why one failed is in the outbox, for agency admins: a provider's reply can
/// quote the judge's address). Whoever may read the warrant may read its routing; a sealed one is
/// 404 as usual. Recorded as `warrant.viewed` (`detail.read: routing`).
#[utoipa::path(tag = "on-call", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The routing", body = serde_json::Value,
            example = json!({
                "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e", "number": "W-2026-000847",
                "court": "d-minn", "urgency": "exigent", "state": "pending_judge",
                "queuedAt": "2026-03-08T04:00:00Z", "firstOpenedAt": null, "openedAt": null,
                "holder": {"judgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e08", "judgeName": "Hon. B. Backup",
                    "as": "backup", "since": "2026-03-08T04:05:00Z"},
                "nextEscalationAt": "2026-03-08T04:10:00Z",
                "hops": [{"hop": 0, "level": "primary", "judgeId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e07",
                    "judgeName": "Hon. A. Primary", "reason": "queued for a judge",
                    "at": "2026-03-08T04:00:00Z", "queuedAt": "2026-03-08T04:00:00Z",
                    "alerts": [{"notificationId": "0190f4d2-7000-7000-8000-000000000001", "channel": "sms",
                        "state": "sent", "attempts": 1}]}]
            })),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/routing")]
pub async fn warrant_routing(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let mut tx = user.begin().await?;
    let view = oncall::routing(&mut tx, user.caller(), *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
