//! The platform API, for platform operators only: onboard and list agencies.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_audit_log::Event;

use crate::auth::Operator;
use crate::error::Problem;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/platform/agencies")
            .post(create_agency)
            .get(list_agencies),
    );
    cfg.service(
        web::resource("/v1/platform/agencies/{id}/users/{username}/unlock")
            .post(unlock_agency_user),
    );
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgencyView {
    id: Uuid,
    slug: String,
    name: String,
    key_provider: String,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<writ_tenancy::Agency> for AgencyView {
    fn from(a: writ_tenancy::Agency) -> Self {
        Self {
            id: a.id,
            slug: a.slug,
            name: a.name,
            key_provider: a.key_provider,
            status: a.status,
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAgencyRequest {
    /// 3 to 40 characters: lowercase letters, digits and `-`.
    slug: String,
    name: String,
    /// The agency's first agency_admin; the answer carries their one-time enrollment token.
    admin_username: Option<String>,
    admin_display_name: Option<String>,
    /// `local` (the default), `aws-kms` or `azure-keyvault`; the server must be configured for it
    /// (`WRIT_KEY_PROVIDERS`).
    key_provider: Option<String>,
    /// aws-kms: an existing symmetric key (ARN) to adopt as the key-encryption key.
    kms_key_id: Option<String>,
    /// aws-kms: an existing ECC_NIST_P256 signing key (ARN) to adopt.
    kms_signing_key_id: Option<String>,
    /// azure-keyvault: the agency's vault URL (https).
    vault_url: Option<String>,
    /// azure-keyvault: base name of the agency's keys.
    key_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardedAgency {
    #[serde(flatten)]
    agency: AgencyView,
    /// Present when `adminUsername` was given: hand it to the agency's administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_enrollment_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_user_id: Option<Uuid>,
}

/// Onboard an agency: schema, role, row-level security and keys, all or nothing.
#[utoipa::path(post, path = "/v1/platform/agencies", tag = "platform", request_body = CreateAgencyRequest, security(("bearer" = [])),
    responses((status = 201, body = OnboardedAgency),
        (status = 403, description = "not a platform operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_agency(
    op: Operator,
    state: web::Data<AppState>,
    body: crate::json::Json<CreateAgencyRequest>,
) -> Result<HttpResponse, ApiError> {
    let admin = body
        .admin_username
        .as_deref()
        .map(writ_auth_mfa::normalize_username)
        .transpose()?;
    let key_spec = writ_keys::KeySpec::from_parts(
        body.key_provider.as_deref(),
        body.kms_key_id.clone(),
        body.kms_signing_key_id.clone(),
        body.vault_url.clone(),
        body.key_name.clone(),
    )?;
    let auth = state.auth().await?;
    // The agency and its first administrator commit together, or neither does. As the owner:
    // onboarding creates the agency's role and schema.
    let (tx, agency) = writ_tenancy::onboard_open(
        &state.owner_pool,
        &state.keys,
        writ_tenancy::NewAgency {
            slug: &body.slug,
            name: &body.name,
            key_spec,
        },
        writ_tenancy::tenant_migrations(),
    )
    .await?;
    let mut tx = writ_tenancy::TenantTx::enter(tx, agency.id, agency.ident.clone()).await?;
    let created = match admin {
        Some(username) => Some(
            writ_auth_mfa::create_user(
                &mut writ_auth_mfa::Realm::Agency(&mut tx),
                auth,
                op.actor(),
                writ_auth_mfa::NewUser {
                    username: &username,
                    display_name: body.admin_display_name.as_deref().unwrap_or(&username),
                    role: writ_auth_mfa::Role::AgencyAdmin,
                },
                op.source_ip.clone(),
            )
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    writ_auth_mfa::record_platform_event(
        &state.pool,
        Event::new("platform.agency.onboarded", op.actor())
            .resource("agencyId", agency.id.to_string())
            .source_ip(op.source_ip.clone())
            .detail(serde_json::json!({ "slug": agency.slug })),
    )
    .await?;
    let view = OnboardedAgency {
        admin_enrollment_token: created.as_ref().map(|c| c.enrollment_token.to_string()),
        admin_user_id: created.as_ref().map(|c| c.user.id),
        agency: AgencyView::from(agency),
    };
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(view))
}

/// List onboarded agencies.
#[utoipa::path(get, path = "/v1/platform/agencies", tag = "platform", security(("bearer" = [])),
    responses((status = 200, body = [AgencyView]),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_agencies(
    _op: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let agencies = writ_tenancy::list_agencies(&state.pool).await?;
    Ok(HttpResponse::Ok().json(
        agencies
            .into_iter()
            .map(AgencyView::from)
            .collect::<Vec<_>>(),
    ))
}

/// Unlock an agency account locked after failed logins — the way back when the locked account is
/// the agency's only administrator. Operators learn nothing of the account (the answer is empty);
/// the unlock is recorded in the agency's audit chain as `admin.user.unlocked` with the operator
/// as actor, and in the platform events.
#[utoipa::path(post, path = "/v1/platform/agencies/{id}/users/{username}/unlock", tag = "platform",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the agency"), ("username" = String, Path)),
    responses((status = 204, description = "unlocked (also when it was not locked)"),
        (status = 403, description = "not a platform operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such active agency, or no such user in it", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn unlock_agency_user(
    op: Operator,
    state: web::Data<AppState>,
    path: crate::json::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (agency_id, username) = path.into_inner();
    let agency = writ_tenancy::agency_by_id(&state.pool, agency_id)
        .await?
        .filter(|a| a.status == "active")
        .ok_or(ApiError::NotFound)?;
    let mut tx = writ_tenancy::TenantTx::begin(&state.pool, &agency).await?;
    let user = writ_auth_mfa::unlock_username(
        &mut writ_auth_mfa::Realm::Agency(&mut tx),
        op.actor(),
        &username,
        op.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    writ_auth_mfa::record_platform_event(
        &state.pool,
        Event::new("platform.user.unlocked", op.actor())
            .resource("agencyId", agency.id.to_string())
            .resource("userId", user.id.to_string())
            .source_ip(op.source_ip.clone()),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
