//! HTTP routes, one module per area. Handlers extract, call the domain, and map the result.

pub mod audit;
pub mod auth;
pub mod documents;
pub mod esign;
pub mod events;
pub mod health;
pub mod keys;
pub mod legal_holds;
pub mod notifications;
pub mod oncall;
pub mod platform;
pub mod policies;
pub mod users;
pub mod video;
pub mod warrants;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::http::header;
use actix_web::{App, HttpResponse, web};
use utoipa::openapi::OpenApi as Document;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every route of the API. A handler is registered with its `#[utoipa::path]` operation in the
/// same `service` call, so a route cannot be served undocumented nor documented unserved.
pub fn configure(cfg: &mut ServiceConfig) {
    health::configure(cfg);
    audit::configure(cfg);
    legal_holds::configure(cfg);
    auth::configure(cfg);
    users::configure(cfg);
    platform::configure(cfg);
    policies::configure(cfg);
    keys::configure(cfg);
    warrants::configure(cfg);
    events::configure(cfg);
    oncall::configure(cfg);
    notifications::configure(cfg);
    documents::configure(cfg);
    video::configure(cfg);
    esign::configure(cfg);
}

/// Commits the request's work, or rolls it back and answers why; a refusal of this caller (403)
/// is a denial, audited as `authz.denied`.
pub(crate) async fn settle<T, E>(
    user: &crate::auth::AgencyUser,
    permission: writ_auth_mfa::Permission,
    tx: writ_tenancy::TenantTx,
    outcome: Result<T, E>,
) -> Result<T, crate::ApiError>
where
    crate::ApiError: From<E>,
{
    match outcome {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            tx.rollback().await?;
            answered(user, permission, Err(e)).await
        }
    }
}

/// The outcome of work done outside the request's transaction, as the answer: a refusal of this
/// caller (403) is recorded as a denial of `permission` first.
pub(crate) async fn answered<T, E>(
    user: &crate::auth::AgencyUser,
    permission: writ_auth_mfa::Permission,
    outcome: Result<T, E>,
) -> Result<T, crate::ApiError>
where
    crate::ApiError: From<E>,
{
    match outcome.map_err(crate::ApiError::from) {
        Err(crate::ApiError::Forbidden(reason)) => Err(user.refuse(permission, reason).await),
        other => other,
    }
}

/// Runs `$call` in the request's transaction (`$tx`) and [`settle`]s it.
macro_rules! settled {
    ($user:expr, $permission:expr, |$tx:ident| $call:expr) => {{
        let mut $tx = $user.begin().await?;
        let outcome = $call.await;
        crate::routes::settle(&$user, $permission, $tx, outcome).await?
    }};
}
pub(crate) use settled;

/// Mounts the API on `app` and returns the OpenAPI document of exactly what was mounted.
pub fn mount<T>(app: App<T>) -> (App<T>, Document)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, openapi) = app
        .into_utoipa_app()
        .openapi(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .configure(configure)
        .split_for_parts();
    let app = app.configure(|cfg| method_not_allowed(cfg, &openapi));
    (app, crate::openapi::finish(openapi))
}

/// Each route macro guards its resource by method, so another method on a known path would fall
/// through to the 404 of the default service. One unguarded resource per path, registered after
/// the routes, answers 405 with `Allow` instead.
fn method_not_allowed(cfg: &mut web::ServiceConfig, openapi: &Document) {
    for (path, item) in &openapi.paths.paths {
        let allow = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ]
        .into_iter()
        .filter_map(|(method, present)| present.then_some(method))
        .collect::<Vec<_>>()
        .join(", ");
        cfg.service(web::resource(path.as_str()).to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, allow))
                    .finish()
            }
        }));
    }
}
