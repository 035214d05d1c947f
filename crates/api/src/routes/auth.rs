//! Login, enrollment, refresh, logout, step-up and the published token keys.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use writ_auth_mfa::Permission;

use crate::auth::{AgencyUser, Operator, source_ip};
use crate::error::Problem;
use crate::json::Json;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/jwks.json").get(jwks))
        .service(web::resource("/v1/auth/login").post(login))
        .service(web::resource("/v1/platform/auth/login").post(platform_login))
        .service(web::resource("/v1/auth/refresh").post(refresh))
        .service(web::resource("/v1/auth/logout").post(logout))
        .service(web::resource("/v1/auth/reauth").post(reauth))
        .service(web::resource("/v1/auth/session").get(session))
        .service(web::resource("/v1/platform/auth/refresh").post(platform_refresh))
        .service(web::resource("/v1/platform/auth/logout").post(platform_logout))
        .service(web::resource("/v1/platform/auth/reauth").post(platform_reauth))
        .service(web::resource("/v1/platform/auth/session").get(platform_session))
        .service(web::resource("/v1/auth/enroll").post(enroll))
        .service(web::resource("/v1/auth/enroll/confirm").post(enroll_confirm));
}

/// The public keys that verify access tokens (ES256, by `kid`).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK set", body = Object)))]
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.auth().await?.tokens.jwks()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// The agency's slug.
    agency: String,
    username: String,
    password: String,
    /// The current code of the authenticator app.
    totp: Option<String>,
    /// Must be `true`: the caller acknowledged the system-use banner (CJIS AC-8).
    #[serde(default)]
    banner_ack: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformLoginRequest {
    username: String,
    password: String,
    totp: Option<String>,
    #[serde(default)]
    banner_ack: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// ES256 JWT, at most 15 minutes.
    access_token: String,
    token_type: String,
    expires_in: u64,
    /// Single use; presenting a spent one revokes the session.
    refresh_token: String,
    session_id: Uuid,
}

impl From<writ_auth_mfa::IssuedTokens> for TokenResponse {
    fn from(t: writ_auth_mfa::IssuedTokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: t.token_type.into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            session_id: t.session_id,
        }
    }
}

/// Log in with password and TOTP. Without `bannerAck: true` the answer is 400 carrying the
/// system-use banner. Failures never say whether the user exists; five in 15 minutes lock the
/// account.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "banner not acknowledged (`banner` member)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid-credentials or account-locked", body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    login_in(
        &state,
        writ_auth_mfa::LoginAttempt {
            agency: Some(&body.agency),
            username: &body.username,
            password: &body.password,
            totp: body.totp.as_deref(),
            banner_ack: body.banner_ack,
            source_ip: source_ip(&req),
        },
    )
    .await
}

/// Platform operators log in here (no agency). Their tokens reach `/v1/platform/*` only.
#[utoipa::path(post, path = "/v1/platform/auth/login", tag = "platform", request_body = PlatformLoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn platform_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<PlatformLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    login_in(
        &state,
        writ_auth_mfa::LoginAttempt {
            agency: None,
            username: &body.username,
            password: &body.password,
            totp: body.totp.as_deref(),
            banner_ack: body.banner_ack,
            source_ip: source_ip(&req),
        },
    )
    .await
}

async fn login_in(
    state: &AppState,
    attempt: writ_auth_mfa::LoginAttempt<'_>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let tokens = writ_auth_mfa::login(&state.pool, auth, attempt).await?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse::from(tokens)))
}

fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    b
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchange an agency user's refresh token for new tokens (the refresh token rotates).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, description = "invalid-token, session-revoked (a spent token revokes the session) or reauthentication-required", body = Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    refresh_in(&req, &state, &body.refresh_token, false).await
}

/// Exchange a platform operator's refresh token for new tokens.
#[utoipa::path(post, path = "/v1/platform/auth/refresh", tag = "platform", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn platform_refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    refresh_in(&req, &state, &body.refresh_token, true).await
}

async fn refresh_in(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
    platform: bool,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let tokens = writ_auth_mfa::refresh(&state.pool, auth, token, platform, source_ip(req)).await?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse::from(tokens)))
}

/// End the caller's session at once.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn logout(
    user: AgencyUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    writ_auth_mfa::logout(&state.pool, user.principal(), user.source_ip.clone()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End the operator's session at once.
#[utoipa::path(post, path = "/v1/platform/auth/logout", tag = "platform", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn platform_logout(
    op: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    writ_auth_mfa::logout(&state.pool, op.principal(), op.source_ip.clone()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReauthRequest {
    totp: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReauthResponse {
    stepped_up_until: DateTime<Utc>,
}

/// Step-up: re-enter a TOTP code; the session counts as stepped-up for 5 minutes (signing,
/// erasure approval, key rotation need it). A wrong code counts towards the lockout.
#[utoipa::path(post, path = "/v1/auth/reauth", tag = "auth", request_body = ReauthRequest, security(("bearer" = [])),
    responses((status = 200, body = ReauthResponse),
        (status = 401, description = "invalid-code or session problems", body = Problem, content_type = "application/problem+json")))]
pub async fn reauth(
    user: AgencyUser,
    state: web::Data<AppState>,
    body: Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    step_up(&state, user.principal(), &body.totp, user.source_ip.clone()).await
}

/// Step-up for an operator's session.
#[utoipa::path(post, path = "/v1/platform/auth/reauth", tag = "platform", request_body = ReauthRequest, security(("bearer" = [])),
    responses((status = 200, body = ReauthResponse),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn platform_reauth(
    op: Operator,
    state: web::Data<AppState>,
    body: Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    step_up(&state, op.principal(), &body.totp, op.source_ip.clone()).await
}

async fn step_up(
    state: &AppState,
    principal: &writ_auth_mfa::Principal,
    code: &str,
    ip: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let until = writ_auth_mfa::step_up(&state.pool, auth, principal, code, ip).await?;
    Ok(HttpResponse::Ok().json(ReauthResponse {
        stepped_up_until: until,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    user_id: Uuid,
    /// Absent for platform operators.
    agency_id: Option<Uuid>,
    role: String,
    session_id: Uuid,
    stepped_up_until: Option<DateTime<Utc>>,
}

impl From<&writ_auth_mfa::Principal> for SessionInfo {
    fn from(p: &writ_auth_mfa::Principal) -> Self {
        Self {
            user_id: p.user_id,
            agency_id: p.agency_id,
            role: p.role.as_str().into(),
            session_id: p.session_id,
            stepped_up_until: p.stepped_up_until,
        }
    }
}

/// Who the caller is (checks the session like every authenticated route).
#[utoipa::path(get, path = "/v1/auth/session", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn session(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    Ok(HttpResponse::Ok().json(SessionInfo::from(user.principal())))
}

/// Who the operator is.
#[utoipa::path(get, path = "/v1/platform/auth/session", tag = "platform", security(("bearer" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn platform_session(op: Operator) -> HttpResponse {
    HttpResponse::Ok().json(SessionInfo::from(op.principal()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time enrollment token from `POST /v1/users` (or `writ operator create`).
    token: String,
    /// 8 to 256 characters, not a commonly used password.
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollResponse {
    /// Base32 TOTP secret for manual entry.
    totp_secret: String,
    otpauth_uri: String,
    /// The otpauth URI as a QR code: base64 PNG.
    qr_code_png: String,
}

/// Enrollment step 1: set the password and receive the TOTP secret (also as otpauth URI and QR
/// code). Repeatable until confirmed.
#[utoipa::path(post, path = "/v1/auth/enroll", tag = "auth", request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse),
        (status = 401, description = "unknown, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "password rejected, with the reason", body = Problem, content_type = "application/problem+json")))]
pub async fn enroll(
    state: web::Data<AppState>,
    body: Json<EnrollRequest>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let e = writ_auth_mfa::enroll(&state.pool, auth, &body.token, &body.password).await?;
    Ok(no_store(HttpResponse::Ok()).json(EnrollResponse {
        totp_secret: e.secret,
        otpauth_uri: e.otpauth_uri,
        qr_code_png: base64::engine::general_purpose::STANDARD.encode(&e.qr_png),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollConfirmRequest {
    token: String,
    /// A current code from the new secret.
    totp: String,
}

/// Enrollment step 2: a valid code activates the account and spends the enrollment token.
#[utoipa::path(post, path = "/v1/auth/enroll/confirm", tag = "auth", request_body = EnrollConfirmRequest,
    responses((status = 200, body = crate::routes::users::UserView),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn enroll_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<EnrollConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let user =
        writ_auth_mfa::enroll_confirm(&state.pool, auth, &body.token, &body.totp, source_ip(&req))
            .await?;
    Ok(HttpResponse::Ok().json(crate::routes::users::UserView::from(user)))
}
