//! The agency's users: create (with a one-time enrollment token), list, read, change, unlock,
//! deactivate. agency_admin only (the permission matrix says so); every change is audited.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::{Permission, Realm, Role};

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, Path};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_user)
        .service(list_users)
        .service(get_user)
        .service(update_user)
        .service(unlock_user)
        .service(deactivate_user);
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
    /// The officer's badge number or the judge's judicial id, as signature records name the
    /// signer (`signer.badgeOrJudicialId`); `null` when unset.
    #[schema(example = "4471")]
    badge_or_judicial_id: Option<String>,
    /// Where e-mail alerts go (on-call, reminders); absent when none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// Where texts and calls go: E.164, e.g. `+16125550123`; absent when none is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

impl UserView {
    fn new(u: writ_auth_mfa::User, contact: Option<&writ_auth_mfa::Contact>) -> Self {
        Self {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            status: u.status,
            locked: u.locked,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            badge_or_judicial_id: u.badge_or_judicial_id,
            email: contact.and_then(|c| c.email.clone()),
            phone: contact.and_then(|c| c.phone.clone()),
        }
    }
}

/// Without the contact (routes that do not read it).
impl From<writ_auth_mfa::User> for UserView {
    fn from(u: writ_auth_mfa::User) -> Self {
        Self::new(u, None)
    }
}

/// The view of `u` with its contact, read in the request's transaction.
async fn view(
    tx: &mut writ_tenancy::TenantTx,
    u: writ_auth_mfa::User,
) -> Result<UserView, ApiError> {
    let contacts = writ_auth_mfa::contacts(tx, &[u.id]).await?;
    let contact = contacts.get(&u.id);
    Ok(UserView::new(u, contact))
}

/// A JSON member that may be absent (`None`), `null` (`Some(None)`: clear) or a value.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
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
    /// Badge number (officers) or judicial id (judges): 1 to 64 printable characters, trimmed.
    /// Signature records name the signer by it.
    badge_or_judicial_id: Option<String>,
    /// For e-mail alerts.
    email: Option<String>,
    /// For texts and calls (E.164).
    phone: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUserView {
    user: UserView,
    /// One-time token for `POST /v1/auth/enroll`; shown only here.
    enrollment_token: String,
    enrollment_expires_at: DateTime<Utc>,
}

/// Create a user
///
/// The answer carries the one-time enrollment token (valid 72 hours) for `POST
/// /v1/auth/enroll`; it is shown only here (agency_admin; audited as `admin.user.created`).
/// Creating an agency_admin needs a step-up (`POST /v1/auth/reauth`).
#[utoipa::path(tag = "users",
    request_body(content = CreateUserRequest,
        example = json!({"username": "j.alvarez", "displayName": "Det. Jamie Alvarez", "role": "officer",
            "badgeOrJudicialId": "4471"})),
    security(("bearer" = [])),
    responses((status = 201, description = "The user, pending enrollment, and the enrollment token", body = CreatedUserView,
            example = json!({
                "user": {"id": "0190f4b7-3c2d-7e1f-a0b1-c2d3e4f5a6b7", "username": "j.alvarez",
                    "displayName": "Det. Jamie Alvarez", "role": "officer", "status": "pending",
                    "locked": false, "createdAt": "2026-03-02T15:04:05Z", "lastLoginAt": null,
                    "badgeOrJudicialId": "4471"},
                "enrollmentToken": "wen.0190f4a000007000800000000000a001.Msqn6CG1aVsZ0GrOg9DgkfNCXroBqoSYoJXbZLRUdBw",
                "enrollmentExpiresAt": "2026-03-05T15:04:05Z"
            })),
        (status = 401, description = "creating an agency_admin without a step-up in the last minutes (`step-up-required`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken, now or before (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid username, display name, badge or judicial id, contact, or unknown role (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/users")]
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
    let contact = writ_auth_mfa::ContactPatch {
        email: body.email.clone().map(Some),
        phone: body.phone.clone().map(Some),
    };
    // Checked before anything is written: a bad address is a 422 with no account created.
    contact.checked()?;
    let auth = state.auth().await?;
    let mut tx = user.begin().await?;
    let created = writ_auth_mfa::create_user(
        &mut Realm::Agency(&mut tx),
        auth,
        user.caller(),
        writ_auth_mfa::NewUser {
            username: &body.username,
            display_name: &body.display_name,
            role,
            badge_or_judicial_id: body.badge_or_judicial_id.as_deref(),
        },
    )
    .await?;
    let contact = if contact.is_empty() {
        writ_auth_mfa::Contact::default()
    } else {
        writ_auth_mfa::set_contact(&mut tx, user.caller(), created.user.id, &contact).await?
    };
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedUserView {
            user: UserView::new(created.user, Some(&contact)),
            enrollment_token: created.enrollment_token.to_string(),
            enrollment_expires_at: created.enrollment_expires_at,
        }))
}

/// List users
///
/// Every account of the agency, in every status (agency_admin).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The agency's users", body = [UserView],
        example = json!([{"id": "0190f4b7-3c2d-7e1f-a0b1-c2d3e4f5a6b7", "username": "j.alvarez",
            "displayName": "Det. Jamie Alvarez", "role": "officer", "status": "active", "locked": false,
            "createdAt": "2026-03-02T15:04:05Z", "lastLoginAt": "2026-03-03T08:12:44Z",
            "badgeOrJudicialId": "4471"}]))))]
#[get("/v1/users")]
pub async fn list_users(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersRead).await?;
    let mut tx = user.begin().await?;
    let users = writ_auth_mfa::list_users(&mut Realm::Agency(&mut tx)).await?;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let contacts = writ_auth_mfa::contacts(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(
        users
            .into_iter()
            .map(|u| {
                let c = contacts.get(&u.id).cloned();
                UserView::new(u, c.as_ref())
            })
            .collect::<Vec<_>>(),
    ))
}

/// Read a user
///
/// One account of the agency (agency_admin); another agency's is 404.
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/users/{id}")]
pub async fn get_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersRead).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::get_user(&mut Realm::Agency(&mut tx), *id).await?;
    let v = view(&mut tx, u).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUserRequest {
    display_name: Option<String>,
    /// A new role takes effect at the next login: the user's sessions are revoked.
    role: Option<String>,
    /// Only `active`: re-enables an account disabled for inactivity.
    status: Option<String>,
    /// Badge number or judicial id (1 to 64 printable characters, trimmed); `null` removes it.
    /// Signatures already made keep the one they were made with.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    badge_or_judicial_id: Option<Option<String>>,
    /// For e-mail alerts; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    /// For texts and calls (E.164); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
}

/// Change a user
///
/// A new display name or role, or `status: active` to re-enable an account disabled for
/// inactivity, or a new `email` / `phone` for alerts (`null` removes one) (agency_admin; audited).
/// Granting the agency_admin role, and any change to an agency_admin's account, needs a step-up
/// (`POST /v1/auth/reauth`). A new `badgeOrJudicialId` (`null` removes it) is recorded
/// in `admin.user.modified` with the previous one.
#[utoipa::path(tag = "users",
    request_body(content = UpdateUserRequest, examples(
        ("role" = (summary = "A new role", value = json!({"role": "supervisor"}))),
        ("badge" = (summary = "A judge's judicial id", value = json!({"badgeOrJudicialId": "JUD-0193"}))))),
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, description = "The user as changed", body = UserView),
        (status = 401, description = "an agency_admin role change without a step-up in the last minutes (`step-up-required`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown role or status, or an invalid display name, badge or judicial id, or contact (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[patch("/v1/users/{id}")]
pub async fn update_user(
    user: AgencyUser,
    id: Path<Uuid>,
    body: Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let contact = writ_auth_mfa::ContactPatch {
        email: body.email.clone(),
        phone: body.phone.clone(),
    };
    contact.checked()?;
    let account_change = body.display_name.is_some()
        || body.role.is_some()
        || body.status.is_some()
        || body.badge_or_judicial_id.is_some();
    let mut tx = user.begin().await?;
    // A contact-only change leaves the account alone (and records only the contact change).
    let (u, read_contact, previous_role) = if account_change || contact.is_empty() {
        let changed = writ_auth_mfa::update_user(
            &mut Realm::Agency(&mut tx),
            user.caller(),
            *id,
            writ_auth_mfa::UserPatch {
                display_name: body.display_name.clone(),
                role,
                status: body.status.clone(),
                badge_or_judicial_id: body.badge_or_judicial_id.clone(),
            },
        )
        .await?;
        (changed.user, changed.contact, changed.previous_role)
    } else {
        let u = writ_auth_mfa::get_user(&mut Realm::Agency(&mut tx), *id).await?;
        let role = u.role.clone();
        (u, None, role)
    };
    // The account as it was and as it is asked to be (a grant of agency_admin).
    require_for_accounts(&user, &[&previous_role, role.map_or("", Role::as_str)]).await?;
    let v = if contact.is_empty()
        && let Some(read) = read_contact
    {
        UserView::new(u, Some(&read))
    } else {
        if !contact.is_empty() {
            writ_auth_mfa::set_contact(&mut tx, user.caller(), *id, &contact).await?;
        }
        view(&mut tx, u).await?
    };
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Acting on an agency_admin's account takes `adminsManage` (step-up), on any other
/// `usersManage` alone. Called with the roles the account has or is given by the action, before
/// the transaction commits: a refusal rolls the action back.
async fn require_for_accounts(user: &AgencyUser, roles: &[&str]) -> Result<(), ApiError> {
    if roles.contains(&Role::AgencyAdmin.as_str()) {
        user.require(Permission::AdminsManage).await?;
    }
    Ok(())
}

/// Unlock a user
///
/// Ends the lockout after failed logins (agency_admin, with a step-up when the account is an
/// agency_admin's; audited as `admin.user.unlocked`).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, description = "The user, unlocked", body = UserView),
        (status = 404, description = "No such user in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/users/{id}/unlock")]
pub async fn unlock_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::unlock_user(&mut Realm::Agency(&mut tx), user.caller(), *id).await?;
    require_for_accounts(&user, &[&u.role]).await?;
    let v = view(&mut tx, u).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Deactivate a user
///
/// For good: all their sessions end at once and the username is never reused (agency_admin,
/// with a step-up when the account is an agency_admin's; audited).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, description = "The user, deactivated", body = UserView),
        (status = 404, description = "No such user in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The user cannot be deactivated in its current state (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/users/{id}/deactivate")]
pub async fn deactivate_user(user: AgencyUser, id: Path<Uuid>) -> Result<HttpResponse, ApiError> {
    user.require(Permission::UsersManage).await?;
    let mut tx = user.begin().await?;
    let u = writ_auth_mfa::deactivate_user(&mut Realm::Agency(&mut tx), user.caller(), *id).await?;
    require_for_accounts(&user, &[&u.role]).await?;
    let v = view(&mut tx, u).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(v))
}
