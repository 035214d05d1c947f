use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::{ApiError, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz));
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

/// Liveness: the process answers. Touches nothing else, so a database outage does not get the
/// server restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers within a second and every migration has been applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "database unreachable or migrations behind", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let check = tokio::time::timeout(
        Duration::from_secs(1),
        writ_tenancy::migrations_current(&state.pool),
    )
    .await
    .map_err(|_| ApiError::Unavailable("database did not answer within 1 s".into()))?;
    match check {
        Ok(true) => Ok(HttpResponse::Ok().json(Health { status: "ready" })),
        Ok(false) => Err(ApiError::Unavailable(
            "migrations are behind; run `writ migrate`".into(),
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}
