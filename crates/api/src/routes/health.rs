use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

/// Liveness
///
/// The process answers. Touches nothing else, so a database outage does not get the server
/// restarted. Not rate limited.
#[utoipa::path(tag = "operations",
    responses((status = 200, description = "The process is up", body = Health,
        example = json!({"status": "ok"}))))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness
///
/// Ready when the database answers within a second and every migration has been applied; 503
/// `unavailable` otherwise. Not rate limited.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable or migrations are behind (`unavailable`)",
            body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let check = tokio::time::timeout(
        Duration::from_secs(1),
        writ_tenancy::migrations_current(&state.pool),
    )
    .await
    .map_err(|_| {
        ApiError::unavailable(
            writ_error_kind::Dependency::Database,
            "database did not answer within 1 s",
        )
    })?;
    match check {
        Ok(true) => Ok(HttpResponse::Ok().json(Health { status: "ready" })),
        Ok(false) => Err(ApiError::unavailable(
            writ_error_kind::Dependency::Database,
            "migrations are behind; run `writ migrate`",
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}
