//! Agency policies (agency_admin): read all or one (its default while unset), set, and reset to
//! the default. Only names a crate registered are accepted; each is validated by its owner and
//! changing a security policy needs step-up (the permission matrix says so).

use actix_web::{HttpResponse, delete, get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use writ_auth_mfa::{AuthError, Permission, Role};
use writ_tenancy::{PolicyRegistry, PolicyValue};

use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_policies)
        .service(get_policy)
        .service(set_policy)
        .service(delete_policy);
}

/// Every policy this server knows, from the crates that own them, with the deployment's defaults
/// for the rate limits.
pub fn registry(state: &AppState) -> PolicyRegistry {
    let mut registry = PolicyRegistry::new(&[
        writ_auth_mfa::POLICIES,
        writ_audit_log::POLICIES,
        writ_agency_keys::POLICIES,
        writ_warrant_workflow::POLICIES,
        writ_warrant_workflow::oncall::POLICIES,
        writ_documents::POLICIES,
    ]);
    for role in Role::AGENCY {
        registry = registry.with_default(
            format!("{}{role}", writ_auth_mfa::RATE_LIMIT_PREFIX),
            serde_json::json!(state.rate_limits.default_for(role)),
        );
    }
    let destinations = state.archive_destinations.clone();
    registry.with_check(writ_audit_log::ARCHIVE_POLICY, move |value| {
        destinations.check_policy(value)
    })
}

/// The permission a change of `name` needs: a security policy's needs step-up. A name no crate
/// registered controls nothing: the role check alone, then 422 (or, for a value stored under it
/// before names were checked, its removal).
fn change_permission(registry: &PolicyRegistry, name: &str) -> Permission {
    match registry.def(name) {
        Ok(def) if def.needs_step_up => Permission::SecurityPolicyManage,
        _ => Permission::PolicyManage,
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    name: String,
    /// Any JSON value; its shape depends on the policy (e.g. `{"days": 400}` for
    /// `audit.retention`, `200` or `{"perMinute": 200}` for `ratelimit.officer`).
    #[schema(value_type = Value)]
    value: serde_json::Value,
    /// True when the agency has not set this policy and the default is in force.
    default: bool,
    /// When the agency last set it; absent for a default.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<PolicyValue> for PolicyView {
    fn from(p: PolicyValue) -> Self {
        Self {
            name: p.name,
            value: p.value,
            default: p.default,
            updated_at: p.updated_at,
        }
    }
}

/// List policies
///
/// The agency's policies: those it set, and the default of each known one it did not
/// (agency_admin).
#[utoipa::path(tag = "policies", security(("bearer" = [])),
    responses((status = 200, description = "Every known policy, by name", body = [PolicyView],
        example = json!([
            {"name": "audit.retention", "value": {"days": 2555}, "default": false,
                "updatedAt": "2026-02-11T10:15:00Z"},
            {"name": "auth.lockout", "value": {"unlockAfterMinutes": null}, "default": true},
            {"name": "ratelimit.officer", "value": 500, "default": true}
        ]))))]
#[get("/v1/policies")]
pub async fn list_policies(
    user: AgencyUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::PolicyRead).await?;
    let registry = registry(&state);
    let mut tx = user.begin().await?;
    let list = writ_tenancy::list_policies(&mut tx, &registry).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(PolicyView::from).collect::<Vec<_>>()))
}

/// Read a policy
///
/// The value the agency set, or the default (`default: true`) while unset (agency_admin). An
/// unknown name is 422.
#[utoipa::path(tag = "policies", security(("bearer" = [])),
    params(("name" = String, Path, description = "e.g. audit.retention, ratelimit.officer")),
    responses((status = 200, description = "The policy in force", body = PolicyView,
            example = json!({"name": "audit.retention", "value": {"days": 2555}, "default": false,
                "updatedAt": "2026-02-11T10:15:00Z"})),
        (status = 422, description = "Unknown policy name (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/policies/{name}")]
pub async fn get_policy(
    user: AgencyUser,
    state: web::Data<AppState>,
    name: Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::PolicyRead).await?;
    let registry = registry(&state);
    let mut tx = user.begin().await?;
    let p = writ_tenancy::get_policy(&mut tx, &registry, &name).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PolicyView::from(p)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPolicyRequest {
    /// Any JSON value the policy accepts, e.g. `{"perMinute": 200}` for `ratelimit.officer`,
    /// `{"days": 400}` for `audit.retention`, `{"unlockAfterMinutes": 30}` for `auth.lockout`.
    #[schema(value_type = Value)]
    value: serde_json::Value,
}

/// Commits a policy change, or turns the domain's refusal (raising one's own rate limit) into an
/// audited 403 after giving up the change.
async fn finish(
    user: &AgencyUser,
    permission: Permission,
    tx: writ_tenancy::TenantTx,
    outcome: Result<PolicyValue, AuthError>,
) -> Result<PolicyValue, ApiError> {
    match outcome {
        Ok(p) => {
            tx.commit().await?;
            Ok(p)
        }
        Err(AuthError::Forbidden(reason)) => {
            tx.rollback().await?;
            Err(user.refuse(permission, reason).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// Set a policy
///
/// Audited as `admin.policy.changed` with the previous value (agency_admin). Only known names;
/// security policies (all of today's) need a step-up (`POST /v1/auth/reauth`). A caller may lower
/// the rate limit of its own role but not raise it. Rate limits take effect within 30 seconds. A
/// value holds at most 256 KiB as compact JSON (422 `value`).
#[utoipa::path(tag = "policies",
    request_body(content = SetPolicyRequest, example = json!({"value": {"days": 2555}})),
    security(("bearer" = [])),
    params(("name" = String, Path, description = "`audit.retention`, `audit.archive`, `auth.lockout`, `keys.rotation` or `ratelimit.<role>`")),
    responses((status = 200, description = "The policy now in force", body = PolicyView,
            example = json!({"name": "audit.retention", "value": {"days": 2555}, "default": false,
                "updatedAt": "2026-03-02T15:04:05Z"})),
        (status = 401, description = "no step-up in the last minutes (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an agency_admin, or raising the own role's rate limit (`forbidden`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown name, or a value the policy does not accept (`validation`)",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "urn:writ:problem:validation", "title": "Unprocessable Entity", "status": 422,
                "detail": "value: audit.retention is {\"days\": N}, a whole number of days from 365 (CJIS AU-11: at least one year) to 36500",
                "instance": "/v1/policies/audit.retention",
                "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f",
                "errors": [{"field": "value",
                    "reason": "audit.retention is {\"days\": N}, a whole number of days from 365 (CJIS AU-11: at least one year) to 36500"}]}))))]
#[put("/v1/policies/{name}")]
pub async fn set_policy(
    user: AgencyUser,
    state: web::Data<AppState>,
    name: Path<String>,
    body: Json<SetPolicyRequest>,
) -> Result<HttpResponse, ApiError> {
    let registry = registry(&state);
    let permission = change_permission(&registry, &name);
    user.require(permission).await?;
    let mut tx = user.begin().await?;
    let outcome = writ_auth_mfa::set_policy(
        &mut tx,
        user.caller(),
        &registry,
        &name,
        body.into_inner().value,
    )
    .await;
    let p = finish(&user, permission, tx, outcome).await?;
    state.rate_limits.forget_policies(user.agency.id);
    Ok(HttpResponse::Ok().json(PolicyView::from(p)))
}

/// Reset a policy
///
/// Back to its default (agency_admin; audited as `admin.policy.changed` with `reset: true` when a
/// value was set). Needs a step-up like setting it.
#[utoipa::path(tag = "policies", security(("bearer" = [])),
    params(("name" = String, Path, description = "e.g. audit.retention")),
    responses((status = 200, description = "The default, now in force", body = PolicyView,
            example = json!({"name": "audit.retention", "value": {"days": 365}, "default": true})),
        (status = 401, description = "no step-up in the last minutes (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown policy name (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[delete("/v1/policies/{name}")]
pub async fn delete_policy(
    user: AgencyUser,
    state: web::Data<AppState>,
    name: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let registry = registry(&state);
    let permission = change_permission(&registry, &name);
    user.require(permission).await?;
    let mut tx = user.begin().await?;
    let outcome = writ_auth_mfa::delete_policy(&mut tx, user.caller(), &registry, &name).await;
    let p = finish(&user, permission, tx, outcome).await?;
    state.rate_limits.forget_policies(user.agency.id);
    Ok(HttpResponse::Ok().json(PolicyView::from(p)))
}
