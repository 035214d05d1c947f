//! The platform API, for platform operators only: onboard, list and offboard agencies.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use writ_auth_mfa::Permission;

use crate::auth::Operator;
use crate::error::Problem;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_agency)
        .service(list_agencies)
        .service(unlock_agency_user)
        .service(offboard_agency)
        .service(get_offboarding)
        .service(cancel_offboarding);
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

/// Onboard an agency
///
/// Creates the agency's schema, database role, row-level security and keys, and optionally its
/// first agency_admin, all or nothing (platform operators; recorded as
/// `platform.agency.onboarded`). Creating the administrator (`adminUsername`) needs step-up:
/// 401 `step-up-required` without it.
#[utoipa::path(tag = "platform",
    request_body(content = CreateAgencyRequest, example = json!({
        "slug": "springfield-pd", "name": "Springfield Police Department",
        "adminUsername": "m.chen", "adminDisplayName": "Lt. May Chen", "keyProvider": "local"})),
    security(("bearer" = [])),
    responses((status = 201, description = "The agency, and the first administrator's enrollment token when asked for", body = OnboardedAgency,
            example = json!({"id": "0190f4a0-0000-7000-8000-00000000a001", "slug": "springfield-pd",
                "name": "Springfield Police Department", "keyProvider": "local", "status": "active",
                "createdAt": "2026-01-05T09:00:00Z",
                "adminEnrollmentToken": "wen.0190f4a000007000800000000000a001.Zk3mQ9vT1xW5bN7cR2pL8sH4jD6fG0aE3uY5iO7kM1n",
                "adminUserId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01"})),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid slug, username or key provider settings (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/platform/agencies")]
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
    if admin.is_some() {
        op.require(Permission::AgencyAdminsOnboard)?;
    }
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
    let (mut tx, agency) = writ_tenancy::onboard_open(
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
    // Recorded in the same transaction: an onboarding is never without its platform event, and
    // never answered with an error (losing the one-time enrollment token) after it committed.
    record_onboarded(tx.conn(), op.caller(), &agency).await?;
    let mut tx = tx.enter(&agency).await?;
    let created = match admin {
        Some(username) => Some(
            writ_auth_mfa::create_user(
                &mut writ_auth_mfa::Realm::Agency(&mut tx),
                auth,
                op.caller(),
                writ_auth_mfa::NewUser {
                    username: &username,
                    display_name: body.admin_display_name.as_deref().unwrap_or(&username),
                    role: writ_auth_mfa::Role::AgencyAdmin,
                    badge_or_judicial_id: None,
                },
            )
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    let view = OnboardedAgency {
        admin_enrollment_token: created.as_ref().map(|c| c.enrollment_token.to_string()),
        admin_user_id: created.as_ref().map(|c| c.user.id),
        agency: AgencyView::from(agency),
    };
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(view))
}

/// List agencies
///
/// Every onboarded agency (platform operators).
#[utoipa::path(tag = "platform", security(("bearer" = [])),
    responses((status = 200, description = "The agencies", body = [AgencyView]),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/platform/agencies")]
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

/// Unlock an agency user
///
/// Ends the lockout of an agency account after failed logins — the way back when the locked
/// account is the agency's only administrator (platform operators, with a fresh step-up: it is a
/// way into the agency's administration). Operators learn nothing of the account (the answer is
/// empty); the unlock is recorded in the agency's audit chain as `admin.user.unlocked` with the
/// operator as actor, and in the platform events.
#[utoipa::path(tag = "platform",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agency"), ("username" = String, Path, description = "The locked user")),
    responses((status = 204, description = "Unlocked (also when it was not locked)"),
        (status = 401, description = "No step-up in the last minutes (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such active agency, or no such user in it (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/platform/agencies/{id}/users/{username}/unlock")]
pub async fn unlock_agency_user(
    op: Operator,
    state: web::Data<AppState>,
    path: crate::json::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    op.require(Permission::AgencyAccountsUnlock)?;
    let (agency_id, username) = path.into_inner();
    // The agency is read on the connection that then enters it: one transaction.
    let (agency, mut tx) = writ_tenancy::TenantTx::begin_active(&state.pool, agency_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let user = writ_auth_mfa::unlock_username(
        &mut writ_auth_mfa::Realm::Agency(&mut tx),
        op.caller(),
        &username,
    )
    .await?;
    tx.commit().await?;
    // The unlock has committed, with its entry in the agency's chain naming the operator: a
    // failure to add the platform's own record is logged, not answered as if nothing happened.
    // (It cannot share the transaction: the agency's role may not write the control plane.)
    if let Err(e) = writ_auth_mfa::record_platform_event(
        &state.pool,
        op.caller()
            .event("platform.user.unlocked")
            .resource("agencyId", agency.id.to_string())
            .resource("userId", user.id.to_string()),
    )
    .await
    {
        tracing::error!(error = %e, agency_id = %agency.id, "could not record platform.user.unlocked");
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffboardRequest {
    /// Why the agency leaves: recorded in its audit chain and the platform events, and certified.
    reason: String,
    /// The agency's slug, typed again: an offboarding cannot be undone once the waiting period
    /// is over, so a mistaken id is refused.
    confirm_slug: String,
}

/// Records `platform.agency.onboarded` in the onboarding's transaction (the API's and the
/// command line's alike).
pub(crate) async fn record_onboarded(
    conn: &mut sqlx::PgConnection,
    caller: &writ_audit_log::Caller,
    agency: &writ_tenancy::Agency,
) -> Result<(), writ_auth_mfa::AuthError> {
    writ_auth_mfa::Realm::Platform(conn)
        .audit(
            caller
                .event("platform.agency.onboarded")
                .resource("agencyId", agency.id.to_string())
                .detail(serde_json::json!({ "slug": agency.slug })),
        )
        .await
}

/// The agency `id`, in any status, as the owner reads it (the offboarding routes).
async fn agency_of(state: &AppState, id: Uuid) -> Result<writ_tenancy::Agency, ApiError> {
    writ_tenancy::agency_by_id(&state.owner_pool, id)
        .await?
        .ok_or(ApiError::NotFound)
}

fn offboarder(state: &AppState) -> crate::offboarding::Offboarder<'_> {
    crate::offboarding::Offboarder {
        pool: &state.owner_pool,
        keys: &state.keys,
        documents: &state.documents,
        export_dir: &state.export_dir,
    }
}

/// Offboard an agency
///
/// The agency stops being served at once (its users' sessions end); its audit chain records
/// `agency.offboarding` and the platform events `platform.agency.offboarding`. The rest runs in
/// the background, each step committed: the final signed export of the audit chain and the
/// certificate of offboarding (both written to the server's export directory for handing over),
/// then every key version scheduled for deletion after 30 days (crypto-shredding). When the
/// waiting period is over, the server drops the agency's schema and role. Follow it with
/// `GET …/offboarding`. Needs step-up; asked again, it resumes an offboarding that stopped.
#[utoipa::path(tag = "platform",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agency")),
    request_body(content = OffboardRequest, example = json!({
        "reason": "Contract ended; records handed over to the county", "confirmSlug": "springfield-pd"})),
    responses((status = 202, description = "Started (or resumed): the offboarding as it stands", body = crate::offboarding::OffboardingView,
            headers(("Location" = String, description = "Where to follow the offboarding"))),
        (status = 401, description = "Step-up needed (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such agency (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The agency is offboarded already (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No reason, or `confirmSlug` is not the agency's slug (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/platform/agencies/{id}/offboarding")]
pub async fn offboard_agency(
    op: Operator,
    state: web::Data<AppState>,
    path: crate::json::Path<Uuid>,
    body: crate::json::Json<OffboardRequest>,
) -> Result<HttpResponse, ApiError> {
    op.require(Permission::AgenciesOffboard)?;
    let agency = agency_of(&state, path.into_inner()).await?;
    if body.confirm_slug != agency.slug {
        return Err(ApiError::Validation {
            field: "confirmSlug".into(),
            reason: "is not the slug of the agency to offboard".into(),
        });
    }
    offboarder(&state)
        .start(&agency, op.caller(), Some(&body.reason))
        .await?;
    let view = offboarder(&state)
        .view(&agency)
        .await?
        .ok_or(ApiError::NotFound)?;
    // The export may take minutes for a large chain: the steps go on after the answer, and the
    // server's offboarding loop resumes them should this process stop first.
    let (state, caller) = (state.clone(), op.caller().clone());
    actix_web::rt::spawn(async move {
        // A failure is logged and recorded by `resume`.
        let _ = offboarder(&state).resume(&agency, &caller).await;
    });
    Ok(HttpResponse::Accepted()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/platform/agencies/{}/offboarding", view.agency_id()),
        ))
        .json(view))
}

/// Follow an offboarding
///
/// Where an agency's offboarding stands: its final export (file, size, SHA-256, seqs), the
/// signed certificate of offboarding once issued (`writ-verify offboarding` checks it with the
/// agency's public key), when its keys were scheduled and when it completed.
#[utoipa::path(tag = "platform",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agency")),
    responses((status = 200, description = "The offboarding", body = crate::offboarding::OffboardingView),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such agency, or it was never offboarded (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/platform/agencies/{id}/offboarding")]
pub async fn get_offboarding(
    _op: Operator,
    state: web::Data<AppState>,
    path: crate::json::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let agency = agency_of(&state, path.into_inner()).await?;
    let view = offboarder(&state)
        .view(&agency)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(view))
}

/// Call an offboarding off
///
/// Within the waiting period (before `deletionAfter`): no step of the offboarding runs any more,
/// every key version it scheduled for deletion is usable again at its provider (one revoked
/// before stays revoked), and the agency is served again. Recorded as
/// `agency.offboarding.cancelled` in its chain and `platform.agency.offboarding`
/// (`step: cancelled`, keeping the certificate) in the platform events; the final export and
/// certificate files are removed. Needs step-up. Asked again after a failure, it resumes.
#[utoipa::path(tag = "platform",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agency")),
    responses((status = 200, description = "Called off: the agency, active again", body = AgencyView),
        (status = 401, description = "Step-up needed (`step-up-required`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not a platform operator (`forbidden`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such agency (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Nothing to call off: not offboarding, finished, or past its deletion date; or a step is running (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[delete("/v1/platform/agencies/{id}/offboarding")]
pub async fn cancel_offboarding(
    op: Operator,
    state: web::Data<AppState>,
    path: crate::json::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    op.require(Permission::AgenciesOffboard)?;
    let agency = agency_of(&state, path.into_inner()).await?;
    offboarder(&state).cancel(&agency, op.caller()).await?;
    // A completed call-off made it active again.
    Ok(
        HttpResponse::Ok().json(AgencyView::from(writ_tenancy::Agency {
            status: "active".into(),
            ..agency
        })),
    )
}
