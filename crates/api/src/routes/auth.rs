//! Login, enrollment, refresh, logout, step-up and the published token keys.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use writ_auth_mfa::Permission;

use crate::auth::{AgencyUser, Operator, origin};
use crate::error::Problem;
use crate::json::Json;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(jwks)
        .service(login)
        .service(platform_login)
        .service(refresh)
        .service(logout)
        .service(reauth)
        .service(session)
        .service(platform_refresh)
        .service(platform_logout)
        .service(platform_reauth)
        .service(platform_session)
        .service(enroll)
        .service(enroll_confirm);
}

/// Token verification keys
///
/// The public keys that verify access tokens: a JWK set of ES256 keys, by `kid`.
#[utoipa::path(tag = "auth",
    responses((status = 200, description = "The JWK set", body = Object,
        example = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": "writ-9931996c0a5f8f51", "x": "B9skmqqVYNE1iLKJLmAg6hhsPjq2IGOkwRWdLFK7D4c",
            "y": "PPE62jlTOZg9ymUNWFibvxlCP-iyRfJXNhiP0z3iwZI"}]}))))]
#[get("/.well-known/jwks.json")]
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

/// Log in
///
/// An agency user logs in with password and TOTP. Without `bannerAck: true` the answer is 400
/// carrying the system-use banner to show. Failures never say whether the user exists; five in
/// 15 minutes lock the account.
#[utoipa::path(tag = "auth",
    request_body(content = LoginRequest, example = json!({
        "agency": "springfield-pd", "username": "j.alvarez", "password": "correct horse battery staple",
        "totp": "492039", "bannerAck": true})),
    responses(
        (status = 200, description = "Logged in: an access token and a single-use refresh token", body = TokenResponse,
            example = json!({
                "accessToken": "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6IndyaXQtOTkzMTk5NmMwYTVmOGY1MSJ9.eyJpc3MiOiJ3cml0Iiwic3ViIjoiMDE5MGY0YjctM2MyZC03ZTFmLWEwYjEtYzJkM2U0ZjVhNmI3IiwiYWlkIjoiMDE5MGY0YTAtMDAwMC03MDAwLTgwMDAtMDAwMDAwMDBhMDAxIiwicm9sZSI6Im9mZmljZXIiLCJzaWQiOiIwMTkwZjRkMy04ZTlmLTdhMGItYjFjMi1kM2U0ZjVhNmI3YzgiLCJhdXRoX3RpbWUiOjE3NzI0NjM4NDUsImlhdCI6MTc3MjQ2Mzg0NSwiZXhwIjoxNzcyNDY0NzQ1fQ.SAQINiADmjTdZEnkGP-b4DnxI7MWgj_9BzFLZblvrMoNzrw5wmE_hkB1mxY0h0MauM-Cjz-MxIiay0HgGyE2PA",
                "tokenType": "Bearer",
                "expiresIn": 900,
                "refreshToken": "wrt.0190f4a01b2c7d3e8f405a6b7c8d9e01.q3Jm0Vb5Q2xVtq2k9mW8Yc1nZ7aR4pL6sT0uX3eH5dG",
                "sessionId": "0190f4d3-8e9f-7a0b-b1c2-d3e4f5a6b7c8"
            })),
        (status = 400, description = "The banner was not acknowledged (`banner-acknowledgement-required`; the `banner` member carries its text)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong agency, username, password or code (`invalid-credentials`), or the account is locked (`account-locked`)",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "urn:writ:problem:invalid-credentials", "title": "Unauthorized", "status": 401,
                "detail": "the agency, username, password or one-time code is not correct",
                "instance": "/v1/auth/login",
                "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f"}))))]
#[post("/v1/auth/login")]
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
            origin: origin(&req),
        },
    )
    .await
}

/// Operator login
///
/// Platform operators log in here (no agency), with password and TOTP like agency users. Their
/// tokens reach `/v1/platform/*` only.
#[utoipa::path(tag = "platform",
    request_body(content = PlatformLoginRequest, example = json!({
        "username": "ops.kim", "password": "a long operator passphrase", "totp": "118204", "bannerAck": true})),
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "The banner was not acknowledged (`banner-acknowledgement-required`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid-credentials` or `account-locked`", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/platform/auth/login")]
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
            origin: origin(&req),
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

/// Refresh tokens
///
/// Exchange an agency user's refresh token for new tokens. The refresh token rotates: each is
/// good once, and presenting a spent one revokes the session.
#[utoipa::path(tag = "auth",
    request_body(content = RefreshRequest, example = json!({
        "refreshToken": "wrt.0190f4a01b2c7d3e8f405a6b7c8d9e01.q3Jm0Vb5Q2xVtq2k9mW8Yc1nZ7aR4pL6sT0uX3eH5dG"})),
    responses((status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid-token`, `session-revoked` (a spent token revokes the session) or `reauthentication-required` (the session ended)",
            body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    refresh_in(&req, &state, &body.refresh_token, false).await
}

/// Refresh operator tokens
///
/// Exchange a platform operator's refresh token for new tokens; it rotates like an agency
/// user's.
#[utoipa::path(tag = "platform", request_body = RefreshRequest,
    responses((status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid-token`, `session-revoked` or `reauthentication-required`",
            body = Problem, content_type = "application/problem+json")))]
#[post("/v1/platform/auth/refresh")]
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
    let tokens = writ_auth_mfa::refresh(&state.pool, auth, token, platform, origin(req)).await?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse::from(tokens)))
}

/// Log out
///
/// Ends the caller's session at once: its access and refresh tokens stop working.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "The session has ended")))]
#[post("/v1/auth/logout")]
pub async fn logout(
    user: AgencyUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    // Logout revokes the session in a transaction of its own; the request's may hold the row.
    user.release().await?;
    let ip = user.caller().origin();
    writ_auth_mfa::logout(&state.pool, user.principal(), ip).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Operator logout
///
/// Ends the operator's session at once.
#[utoipa::path(tag = "platform", security(("bearer" = [])),
    responses((status = 204, description = "The session has ended")))]
#[post("/v1/platform/auth/logout")]
pub async fn platform_logout(
    op: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ip = op.caller().origin();
    writ_auth_mfa::logout(&state.pool, op.principal(), ip).await?;
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

/// Step up
///
/// Re-enter a TOTP code: the session counts as stepped-up for 5 minutes (`WRIT_STEP_UP_SECS`),
/// which signing, key rotation, security policies and other sensitive operations need. A wrong
/// code counts towards the lockout.
#[utoipa::path(tag = "auth",
    request_body(content = ReauthRequest, example = json!({"totp": "730512"})),
    security(("bearer" = [])),
    responses((status = 200, description = "Stepped up until the time given", body = ReauthResponse,
            example = json!({"steppedUpUntil": "2026-03-02T15:09:05Z"})),
        (status = 401, description = "a wrong code (`invalid-code`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/auth/reauth")]
pub async fn reauth(
    user: AgencyUser,
    state: web::Data<AppState>,
    body: Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    // Step-up updates the session in a transaction of its own; the request's may hold the row.
    user.release().await?;
    let ip = user.caller().origin();
    step_up(&state, user.principal(), &body.totp, ip).await
}

/// Operator step-up
///
/// Re-enter a TOTP code to step up an operator's session, as `POST /v1/auth/reauth` does for
/// agency users.
#[utoipa::path(tag = "platform", request_body = ReauthRequest, security(("bearer" = [])),
    responses((status = 200, description = "Stepped up until the time given", body = ReauthResponse),
        (status = 401, description = "a wrong code (`invalid-code`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/platform/auth/reauth")]
pub async fn platform_reauth(
    op: Operator,
    state: web::Data<AppState>,
    body: Json<ReauthRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = op.caller().origin();
    step_up(&state, op.principal(), &body.totp, ip).await
}

async fn step_up(
    state: &AppState,
    principal: &writ_auth_mfa::Principal,
    code: &str,
    ip: writ_audit_log::Origin,
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

/// Current session
///
/// Who the caller is, checking the session like every authenticated route.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller's session", body = SessionInfo,
        example = json!({"userId": "0190f4b7-3c2d-7e1f-a0b1-c2d3e4f5a6b7",
            "agencyId": "0190f4a0-0000-7000-8000-00000000a001", "role": "officer",
            "sessionId": "0190f4d3-8e9f-7a0b-b1c2-d3e4f5a6b7c8", "steppedUpUntil": null}))))]
#[get("/v1/auth/session")]
pub async fn session(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::OwnSession).await?;
    // Nothing to do in the agency but commit the session check (and its touch).
    user.release().await?;
    Ok(HttpResponse::Ok().json(SessionInfo::from(user.principal())))
}

/// Current operator session
///
/// Who the operator is (`agencyId` is absent).
#[utoipa::path(tag = "platform", security(("bearer" = [])),
    responses((status = 200, description = "The operator's session", body = SessionInfo)))]
#[get("/v1/platform/auth/session")]
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

/// Enroll: set the password
///
/// Enrollment step 1, with the one-time token from `POST /v1/users` (or `writ operator create`):
/// set the password and receive the TOTP secret, also as an otpauth URI and a QR code.
/// Repeatable until confirmed.
#[utoipa::path(tag = "auth",
    request_body(content = EnrollRequest, example = json!({
        "token": "wen.0190f4a01b2c7d3e8f405a6b7c8d9e01.Zk3mQ9vT1xW5bN7cR2pL8sH4jD6fG0aE3uY5iO7kM1n",
        "password": "correct horse battery staple"})),
    responses((status = 200, description = "The TOTP secret to add to an authenticator app", body = EnrollResponse),
        (status = 401, description = "Unknown, used or expired token (`invalid-token`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The password is rejected, with the reason (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/auth/enroll")]
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

/// Enroll: confirm the code
///
/// Enrollment step 2: a valid code from the new secret activates the account and spends the
/// enrollment token.
#[utoipa::path(tag = "auth",
    request_body(content = EnrollConfirmRequest, example = json!({
        "token": "wen.0190f4a01b2c7d3e8f405a6b7c8d9e01.Zk3mQ9vT1xW5bN7cR2pL8sH4jD6fG0aE3uY5iO7kM1n",
        "totp": "492039"})),
    responses((status = 200, description = "The account, now active", body = crate::routes::users::UserView),
        (status = 401, description = "Unknown, used or expired token (`invalid-token`) or a wrong code (`invalid-code`)",
            body = Problem, content_type = "application/problem+json")))]
#[post("/v1/auth/enroll/confirm")]
pub async fn enroll_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<EnrollConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth().await?;
    let user =
        writ_auth_mfa::enroll_confirm(&state.pool, auth, &body.token, &body.totp, origin(&req))
            .await?;
    Ok(HttpResponse::Ok().json(crate::routes::users::UserView::from(user)))
}
