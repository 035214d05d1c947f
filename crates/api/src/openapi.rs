use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Writ API",
        description = "Electronic-warrant lifecycle for law-enforcement agencies. Every error is \
                       RFC 9457 application/problem+json.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::auth::jwks,
        crate::routes::auth::login,
        crate::routes::auth::refresh,
        crate::routes::auth::logout,
        crate::routes::auth::reauth,
        crate::routes::auth::session,
        crate::routes::auth::enroll,
        crate::routes::auth::enroll_confirm,
        crate::routes::users::create_user,
        crate::routes::users::list_users,
        crate::routes::users::get_user,
        crate::routes::users::update_user,
        crate::routes::users::unlock_user,
        crate::routes::users::deactivate_user,
        crate::routes::auth::platform_login,
        crate::routes::auth::platform_refresh,
        crate::routes::auth::platform_logout,
        crate::routes::auth::platform_reauth,
        crate::routes::auth::platform_session,
        crate::routes::platform::create_agency,
        crate::routes::platform::list_agencies,
        crate::routes::platform::unlock_agency_user,
        crate::routes::policies::list_policies,
        crate::routes::policies::get_policy,
        crate::routes::policies::set_policy,
        crate::routes::policies::delete_policy,
        crate::routes::keys::list_keys,
        crate::routes::keys::rotate_keys,
        crate::routes::keys::get_rewrap,
        crate::routes::keys::disable_version,
        crate::routes::audit::list_events,
        crate::routes::audit::checkpoint,
        crate::routes::audit::inclusion_proof,
        crate::routes::audit::consistency_proof,
        crate::routes::audit::create_export,
        crate::routes::audit::get_export,
        crate::routes::audit::download_export,
        crate::routes::audit::signing_keys,
        crate::routes::legal_holds::list_legal_holds,
        crate::routes::legal_holds::place_legal_hold,
        crate::routes::legal_holds::release_legal_hold,
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "auth", description = "Login (password + TOTP), enrollment, sessions, step-up"),
        (name = "users", description = "The agency's users (agency_admin)"),
        (name = "platform", description = "Platform operators: agency onboarding"),
        (name = "policies", description = "Agency policies (agency_admin)"),
        (name = "keys", description = "The agency's keys: versions, rotation, revocation, re-wrap progress"),
        (name = "audit", description = "The agency's audit chain: entries, checkpoints, proofs, signed exports, signing keys (auditor, agency_admin)")
    )
)]
pub struct ApiDoc;

/// Declares the bearer access token (ES256 JWT from `/v1/auth/login`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document as served and as committed to openapi/openapi.json.
pub fn document_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into());
    json.push('\n');
    json
}
