//! Agency policies (rate limits `ratelimit.<role>`, and later retention and others): agency_admin.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use writ_auth_mfa::Permission;

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/policies").get(list_policies))
        .service(web::resource("/v1/policies/{name}").put(set_policy));
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    name: String,
    #[schema(value_type = Object)]
    value: serde_json::Value,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<writ_auth_mfa::Policy> for PolicyView {
    fn from(p: writ_auth_mfa::Policy) -> Self {
        Self {
            name: p.name,
            value: p.value,
            updated_at: p.updated_at,
        }
    }
}

/// The agency's policies.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", security(("bearer" = [])),
    responses((status = 200, body = [PolicyView]), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_policies(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::PolicyManage).await?;
    let mut tx = user.begin().await?;
    let list = writ_auth_mfa::list_policies(&mut tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(PolicyView::from).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPolicyRequest {
    /// e.g. `{"perMinute": 200}` for `ratelimit.officer`.
    #[schema(value_type = Object)]
    value: serde_json::Value,
}

/// Set a policy (audited as `admin.policy.changed` with the previous value). Rate limits take
/// effect within 30 seconds.
#[utoipa::path(put, path = "/v1/policies/{name}", tag = "policies", request_body = SetPolicyRequest, security(("bearer" = [])),
    params(("name" = String, Path, description = "e.g. ratelimit.officer")),
    responses((status = 200, body = PolicyView), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_policy(
    user: AgencyUser,
    state: web::Data<crate::AppState>,
    name: web::Path<String>,
    body: web::Json<SetPolicyRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::PolicyManage).await?;
    let mut tx = user.begin().await?;
    let p = writ_auth_mfa::set_policy(
        &mut tx,
        user.actor(),
        &name,
        body.into_inner().value,
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    state.rate_limits.forget_policies(user.agency_id);
    Ok(HttpResponse::Ok().json(PolicyView::from(p)))
}
