//! The agency's users: create (with a one-time enrollment token), list, read, change, unlock,
//! deactivate. agency_admin only (the permission matrix says so); every change is audited.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use writ_auth_mfa::{Permission, Realm, Role};

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/users").post(create_user).get(list_users))
        .service(
            web::resource("/v1/users/{id}")
                .get(get_user)
                .patch(update_user),
        )
        .service(web::resource("/v1/users/{id}/unlock").post(unlock_user))
        .service(web::resource("/v1/users/{id}/deactivate").post(deactivate_user));
}

/// An account as administrators see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    id: Uuid,
    username: String,
    display_name: String,
    role: String,
    /// `pending` (enrollment not finished), `active`, `disabled` (inactive 90 days) or `deactivated`.
    status: String,
    locked: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<writ_auth_mfa::User> for UserView {
    fn from(u: writ_auth_mfa::User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            status: u.status,
            locked: u.locked,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    match s.parse::<Role>() {
        Ok(r) if r != Role::PlatformOperator => Ok(r),
        _ => Err(ApiError::Validation {
            field: "role".into(),
            reason: "one of officer, supervisor, prosecutor, judge, agency_admin, auditor".into(),
        }),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 3 to 64 characters (letters, digits, `.`, `_`, `-`), stored lowercase; never reused.
    username: String,
    display_name: String,
    /// officer, supervisor, prosecutor, judge, agency_admin or auditor.
    role: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUserView {
    user: UserView,
    /// One-time token for `POST /v1/auth/enroll`; shown only here.
    enrollment_token: String,
    enrollment_expires_at: DateTime<Utc>,
}

/// Create a user; the answer carries the one-time enrollment token (valid 72 hours). Creating an
/// agency_admin needs a step-up (`POST /v1/auth/reauth`).
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest, security(("bearer" = [])),
    responses((status = 201, body = CreatedUserView),
        (status = 401, description = "step-up-required (creating an agency_admin)", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    user: AgencyUser,
    state: web::Data<crate::AppState>,
    body: Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let role = parse_role(&body.role)?;
    if role == Role::AgencyAdmin {
        user.require(Permission::AdminsManage).await?;
    }
    let auth = state.auth().await?;
    let mut tx = user.begin().await?;
    let created = writ_auth_mfa::create_user(
        &mut Realm::Agency(&mut tx),
        auth,
        user.actor(),
        writ_auth_mfa::NewUser {
            username: &body.username,
            display_name: &body.display_name,
            role,
        },
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedUserView {
            user: created.user.into(),
            enrollment_token: created.enrollment_token.to_string(),
            enrollment_expires_at: created.enrollment_expires_at,
        }))
}

/// List the agency's users.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [UserView]), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_users(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersRead).await?;
    let mut tx = user.begin().await?;
    let users = writ_auth_mfa::list_users(&mut Realm::Agency(&mut tx)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(users.into_iter().map(UserView::from).collect::<Vec<_>>()))
}

/// One user of the agency (404 for another agency's).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersRead).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::get_user(&mut Realm::Agency(&mut tx), *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(UserView::from(u)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserRequest {
    display_name: Option<String>,
    /// A new role takes effect at the next login: the user's sessions are revoked.
    role: Option<String>,
    /// Only `active`: re-enables an account disabled for inactivity.
    status: Option<String>,
}

/// Change a user's name or role, or re-enable a disabled account. Granting the agency_admin
/// role, or taking it away, needs a step-up (`POST /v1/auth/reauth`).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", request_body = UpdateUserRequest, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView),
        (status = 401, description = "step-up-required (agency_admin role change)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let mut tx = user.begin().await?;
    if let Some(role) = role {
        let current = writ_auth_mfa::get_user(&mut Realm::Agency(&mut tx), *id).await?;
        let admin = Role::AgencyAdmin.as_str();
        if role.as_str() != current.role && (role == Role::AgencyAdmin || current.role == admin) {
            user.require(Permission::AdminsManage).await?;
        }
    }
    let u = writ_auth_mfa::update_user(
        &mut Realm::Agency(&mut tx),
        user.actor(),
        *id,
        writ_auth_mfa::UserPatch {
            display_name: body.display_name.clone(),
            role,
            status: body.status.clone(),
        },
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(UserView::from(u)))
}

/// Unlock an account locked after failed logins (audited as `admin.user.unlocked`).
#[utoipa::path(post, path = "/v1/users/{id}/unlock", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unlock_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::unlock_user(
        &mut Realm::Agency(&mut tx),
        user.actor(),
        *id,
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(UserView::from(u)))
}

/// Deactivate a user for good; all their sessions end at once.
#[utoipa::path(post, path = "/v1/users/{id}/deactivate", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn deactivate_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::deactivate_user(
        &mut Realm::Agency(&mut tx),
        user.actor(),
        *id,
        user.source_ip.clone(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(UserView::from(u)))
}
