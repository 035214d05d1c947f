//! The notification outbox for agency admins: every alert with its state, attempts and last
//! error, so a failed delivery is visible (`GET /v1/notifications`).

use actix_web::{HttpRequest, HttpResponse, get};
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::Permission;
use writ_notify::outbox::{self, ListFilter, MAX_PAGE, State};

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::query_pairs;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_notifications);
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Validation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// List notifications
///
/// The agency's alerts, newest first (agency_admin): `pending` (queued or waiting for a retry,
/// with `nextAttemptAt`), `sent`, `failed` with the reason in `lastError`, or `cancelled` (not
/// sent: when its turn came the warrant no longer needed it — opened, decided, executed —
/// `lastError` says why). Messages are not stored: they are rendered at delivery from the
/// warrant's number, urgency and a link. The most urgent go out first.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, description = "pending, sent, failed or cancelled"),
        ("warrant" = Option<Uuid>, Query, description = "Only the alerts about this warrant"),
        ("before" = Option<Uuid>, Query, description = "The last id of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Per page (default 50)"),
    ),
    responses((status = 200, description = "`items`, newest first", body = serde_json::Value,
            example = json!({"items": [{
                "id": "0190f4d2-7000-7000-8000-000000000001", "kind": "warrant.offered", "channel": "sms",
                "recipientId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e07",
                "warrantId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e", "warrantNumber": "W-2026-000847",
                "state": "failed", "attempts": 8, "nextAttemptAt": null,
                "lastError": "sms provider answered 503 Service Unavailable",
                "createdAt": "2026-03-08T04:00:00Z", "sentAt": null, "failedAt": "2026-03-08T06:10:00Z",
                "cancelledAt": null}]})),
        (status = 400, description = "An unknown query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A parameter's value is invalid (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/notifications")]
pub async fn list_notifications(
    user: AgencyUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::NotificationsRead).await?;
    let mut filter = ListFilter {
        limit: 50,
        ..Default::default()
    };
    let uuid = |field: &str, v: &str| Uuid::parse_str(v).map_err(|_| invalid(field, "a UUID"));
    for (name, value) in query_pairs(&req)? {
        match name.as_str() {
            "state" => {
                filter.state = Some(
                    State::parse(&value)
                        .ok_or_else(|| invalid("state", "pending, sent, failed or cancelled"))?,
                );
            }
            "warrant" => filter.warrant_id = Some(uuid("warrant", &value)?),
            "before" => filter.before = Some(uuid("before", &value)?),
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid("limit", format!("an integer from 1 to {MAX_PAGE}")))?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; known: state, warrant, before, limit"
                )));
            }
        }
    }
    let mut tx = user.begin().await?;
    let items = outbox::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
