//! Accounts: creation with a one-time enrollment token, enrollment (password + TOTP), listing and
//! administration (role, unlock, deactivate). Every change records its audit event in the same
//! transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use uuid::Uuid;
use writ_audit_log::{Actor, Caller, Event};
use zeroize::Zeroizing;

use crate::realm::sql;
use crate::tokens::{TokenRealm, new_opaque, opaque_hash};
use crate::{Auth, AuthError, Realm, Role, check_password_policy, totp};

/// An account as administrators see it. Never carries a credential.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// `pending` (not enrolled yet), `active`, `disabled` (inactivity) or `deactivated`.
    pub status: String,
    pub locked: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The badge number of an officer or the judicial id of a judge, as signature records name
    /// the signer; `None` when unset (and always for platform operators).
    pub badge_or_judicial_id: Option<String>,
}

const USER_COLUMNS: &str = "id, username, display_name, role, status, locked_at, created_at, \
     last_login_at, badge_or_judicial_id";
/// Operators' table (control plane) has no badge column: they never sign warrants.
const OPERATOR_COLUMNS: &str = "id, username, display_name, role, status, locked_at, created_at, \
     last_login_at, NULL::text AS badge_or_judicial_id";

fn user_columns(realm: &Realm<'_>) -> &'static str {
    match realm {
        Realm::Agency(_) => USER_COLUMNS,
        Realm::Platform(_) => OPERATOR_COLUMNS,
    }
}

fn user_from_row(r: &sqlx::postgres::PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        status: r.try_get("status")?,
        locked: r
            .try_get::<Option<DateTime<Utc>>, _>("locked_at")?
            .is_some(),
        created_at: r.try_get("created_at")?,
        last_login_at: r.try_get("last_login_at")?,
        badge_or_judicial_id: r.try_get("badge_or_judicial_id")?,
    })
}

/// The longest username (`normalize_username`).
pub const MAX_USERNAME_CHARS: usize = 64;

/// Lowercases and checks a username: 3 to 64 of `a-z 0-9 . _ -`, starting with a letter.
pub fn normalize_username(s: &str) -> Result<String, AuthError> {
    let u = s.trim().to_lowercase();
    let b = u.as_bytes();
    let ok = (3..=MAX_USERNAME_CHARS).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(u)
    } else {
        Err(AuthError::invalid(
            "username",
            "3 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter",
        ))
    }
}

fn check_display_name(s: &str) -> Result<String, AuthError> {
    let n = s.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            "displayName",
            "1 to 200 printable characters",
        ));
    }
    Ok(n.to_owned())
}

/// Checks a badge number or judicial id: trimmed, 1 to 64 characters (as the column's CHECK
/// counts them), none of them control or invisible formatting characters — it is printed in
/// signature records and evidence certificates, where a hidden character would mislead a reader.
pub fn check_badge_or_judicial_id(s: &str) -> Result<String, AuthError> {
    let b = s.trim();
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}' | '\u{feff}' | '\u{00ad}')
    };
    if b.is_empty() || b.chars().count() > 64 || b.chars().any(invisible) {
        return Err(AuthError::invalid(
            BADGE_FIELD,
            "1 to 64 printable characters, e.g. \"4471\" or \"JUD-0193\"",
        ));
    }
    Ok(b.to_owned())
}

const BADGE_FIELD: &str = "badgeOrJudicialId";

/// What an administrator gives to create an account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    /// Agency users only: a platform operator has none.
    pub badge_or_judicial_id: Option<&'a str>,
}

/// A created account and its one-time enrollment token (shown once, stored hashed).
#[derive(Debug)]
pub struct CreatedUser {
    pub user: User,
    pub enrollment_token: Zeroizing<String>,
    pub enrollment_expires_at: DateTime<Utc>,
}

/// Creates a pending account with a one-time enrollment token. In an agency realm `caller` is the
/// agency_admin (or a platform operator onboarding the agency); the role must be an agency role.
/// In the platform realm the role is the operator's.
pub async fn create_user(
    realm: &mut Realm<'_>,
    auth: &Auth,
    caller: &Caller,
    new: NewUser<'_>,
) -> Result<CreatedUser, AuthError> {
    let username = normalize_username(new.username)?;
    let display_name = check_display_name(new.display_name)?;
    let platform = realm.agency_id().is_none();
    if platform != (new.role == Role::PlatformOperator) {
        return Err(AuthError::invalid(
            "role",
            "one of officer, supervisor, prosecutor, judge, agency_admin, auditor",
        ));
    }
    let badge = new
        .badge_or_judicial_id
        .map(check_badge_or_judicial_id)
        .transpose()?;
    if platform && badge.is_some() {
        return Err(AuthError::invalid(BADGE_FIELD, "agency users only"));
    }
    let token_realm = match realm.agency_id() {
        Some(a) => TokenRealm::Agency(a),
        None => TokenRealm::Platform,
    };
    let (token, hash) = new_opaque("wen", token_realm);
    let id = Uuid::now_v7();
    let t = realm.tables();
    // Operators' table has no badge column (and `badge` is `None` for them, checked above).
    let insert = if platform {
        "INSERT INTO {u} (id, username, display_name, role, enrollment_token_hash, enrollment_expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) \
         ON CONFLICT DO NOTHING RETURNING enrollment_expires_at"
    } else {
        "INSERT INTO {u} (id, username, display_name, role, enrollment_token_hash, enrollment_expires_at, \
           badge_or_judicial_id) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7) \
         ON CONFLICT DO NOTHING RETURNING enrollment_expires_at"
    };
    let mut query = sqlx::query(sql(t, insert))
        .bind(id)
        .bind(&username)
        .bind(&display_name)
        .bind(new.role.as_str())
        .bind(hash)
        .bind(auth.config.enrollment_ttl.as_secs_f64());
    if !platform {
        query = query.bind(&badge);
    }
    let row = query.fetch_optional(realm.conn()).await?;
    let Some(row) = row else {
        return Err(AuthError::Conflict(format!(
            "username {username:?} is taken (usernames are never reused)"
        )));
    };
    let expires: DateTime<Utc> = row.try_get("enrollment_expires_at")?;
    let mut detail = json!({ "username": username, "role": new.role.as_str() });
    if let Some(b) = &badge {
        detail["badgeOrJudicialId"] = json!(b);
    }
    realm
        .audit(
            caller
                .event("admin.user.created")
                .resource("userId", id.to_string())
                .detail(detail),
        )
        .await?;
    let user = get_user(realm, id).await?;
    Ok(CreatedUser {
        user,
        enrollment_token: token,
        enrollment_expires_at: expires,
    })
}

pub async fn list_users(realm: &mut Realm<'_>) -> Result<Vec<User>, AuthError> {
    let t = realm.tables();
    let q = format!(
        "SELECT {} FROM {{u}} ORDER BY username",
        user_columns(realm)
    );
    let rows = sqlx::query(sql(t, &q)).fetch_all(realm.conn()).await?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

/// One account; [`AuthError::NotFound`] when it is not in this realm (another agency's included).
pub async fn get_user(realm: &mut Realm<'_>, id: Uuid) -> Result<User, AuthError> {
    let t = realm.tables();
    let q = format!("SELECT {} FROM {{u}} WHERE id = $1", user_columns(realm));
    let row = sqlx::query(sql(t, &q))
        .bind(id)
        .fetch_optional(realm.conn())
        .await?
        .ok_or(AuthError::NotFound)?;
    Ok(user_from_row(&row)?)
}

/// What an administrator may change.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// Only `active` (re-enable an account disabled for inactivity) is accepted here; deactivation
    /// has its own call.
    pub status: Option<String>,
    /// `Some(Some(_))` sets or changes the badge number / judicial id, `Some(None)` clears it,
    /// `None` keeps it.
    pub badge_or_judicial_id: Option<Option<String>>,
}

/// An account as [`update_user`] changed it.
#[derive(Debug, Clone)]
pub struct UpdatedUser {
    pub user: User,
    /// Its contact in an agency (operators have none).
    pub contact: Option<Contact>,
    /// Its role before the change: whoever changes an agency_admin needs more than whoever
    /// changes another account, and the caller decides before committing.
    pub previous_role: String,
}

/// Changes an account; returns it as changed, with its contact and previous role, read by the
/// same statement so the answer costs no further round trip.
pub async fn update_user(
    realm: &mut Realm<'_>,
    caller: &Caller,
    id: Uuid,
    patch: UserPatch,
) -> Result<UpdatedUser, AuthError> {
    let (display_name, badge) = match check_patch(&patch, realm) {
        Ok(checked) => checked,
        // An unknown or deactivated account is reported before the patch's own faults.
        Err(e) => {
            if get_user(realm, id).await?.status == "deactivated" {
                return Err(deactivated());
            }
            return Err(e);
        }
    };
    // One statement reads the row as it was (locked) and changes it when its state allows: the
    // old role for the audit entry, the new row for the answer.
    let t = realm.tables();
    let platform = realm.agency_id().is_none();
    // Operators have no badge or contact columns: their rows read them as null (check_patch
    // refused a badge change).
    let (before_badge, set_badge, changed_badge, contact) = if platform {
        (
            "NULL::text",
            "",
            "NULL::text",
            "NULL::text AS email, NULL::text AS phone",
        )
    } else {
        (
            "badge_or_judicial_id",
            "badge_or_judicial_id = CASE WHEN $5 THEN $6 ELSE u.badge_or_judicial_id END, ",
            "u.badge_or_judicial_id",
            "u.email, u.phone",
        )
    };
    // The updated row is named by its key as well as joined to `before`: joined alone, a table
    // without fresh statistics was scanned by agency (every user of it) instead of by key.
    let statement = format!(
        "WITH before AS (SELECT id, role, status, {before_badge} AS previous_badge FROM {{u}} \
           WHERE id = $1 FOR UPDATE), \
         changed AS (UPDATE {{u}} u SET display_name = coalesce($2, u.display_name), \
             role = coalesce($3, u.role), status = coalesce($4, u.status), {set_badge}\
             last_login_at = CASE WHEN $4 = 'active' AND u.status = 'disabled' THEN now() ELSE u.last_login_at END, \
             updated_at = now() \
           FROM before WHERE u.id = $1 AND u.id = before.id AND before.status <> 'deactivated' \
             AND NOT ($4 IS NOT NULL AND before.status = 'pending') \
           RETURNING u.id, u.username, u.display_name, u.role, u.status, u.locked_at, u.created_at, \
             u.last_login_at, {changed_badge} AS badge_or_judicial_id, {contact}) \
         SELECT before.role AS previous_role, before.status AS previous_status, \
           before.previous_badge, changed.* \
         FROM before LEFT JOIN changed ON true"
    );
    let mut query = sqlx::query(sql(t, &statement))
        .bind(id)
        .bind(&display_name)
        .bind(patch.role.map(Role::as_str))
        .bind(&patch.status);
    if !platform {
        query = query.bind(badge.is_some()).bind(badge.clone().flatten());
    }
    let row = query
        .fetch_optional(realm.conn())
        .await?
        .ok_or(AuthError::NotFound)?;
    let previous_role: String = row.try_get("previous_role")?;
    let previous_status: String = row.try_get("previous_status")?;
    let previous_badge: Option<String> = row.try_get("previous_badge")?;
    if previous_status == "deactivated" {
        return Err(deactivated());
    }
    if patch.status.is_some() && previous_status == "pending" {
        return Err(AuthError::Conflict(
            "the user has not completed enrollment".into(),
        ));
    }
    let user = user_from_row(&row)?;
    let contact = (!platform)
        .then(|| {
            Ok::<_, sqlx::Error>(Contact {
                email: row.try_get("email")?,
                phone: row.try_get("phone")?,
            })
        })
        .transpose()?;
    let role_changed = patch.role.is_some_and(|r| r.as_str() != previous_role);
    if role_changed {
        // A new role takes effect at the next login, never inside a session granted for the old one.
        revoke_user_sessions(realm, id, "role changed").await?;
    }
    let mut detail = json!({
        "displayName": display_name,
        "role": patch.role.map(Role::as_str),
        "previousRole": role_changed.then_some(&previous_role),
        "status": patch.status,
    });
    // Signature records cite the badge as it was when signing; the chain keeps its history.
    if let Some(badge) = badge.filter(|b| *b != previous_badge) {
        detail["badgeOrJudicialId"] = json!(badge);
        detail["previousBadgeOrJudicialId"] = json!(previous_badge);
    }
    realm
        .audit(
            caller
                .event("admin.user.modified")
                .resource("userId", id.to_string())
                .detail(detail),
        )
        .await?;
    Ok(UpdatedUser {
        user,
        contact,
        previous_role,
    })
}

fn deactivated() -> AuthError {
    AuthError::Conflict("the user is deactivated".into())
}

/// The patch's own checks; the display name and the badge change as stored.
fn check_patch(
    patch: &UserPatch,
    realm: &Realm<'_>,
) -> Result<(Option<String>, Option<Option<String>>), AuthError> {
    let display_name = patch
        .display_name
        .as_deref()
        .map(check_display_name)
        .transpose()?;
    let badge = patch
        .badge_or_judicial_id
        .as_ref()
        .map(|b| b.as_deref().map(check_badge_or_judicial_id).transpose())
        .transpose()?;
    if badge.is_some() && realm.agency_id().is_none() {
        return Err(AuthError::invalid(BADGE_FIELD, "agency users only"));
    }
    if patch.role == Some(Role::PlatformOperator) {
        return Err(AuthError::invalid("role", "not an agency role"));
    }
    if patch.status.as_deref().is_some_and(|s| s != "active") {
        return Err(AuthError::invalid(
            "status",
            "only \"active\" (re-enable); use POST /v1/users/{id}/deactivate to deactivate",
        ));
    }
    Ok((display_name, badge))
}

/// Unlocks an account locked after failed logins (AC-7), resetting its failure count; recorded
/// as `admin.user.unlocked` by `caller` (an agency_admin, a platform operator, or the command
/// line's `writ user unlock`, which names the operating-system user).
pub async fn unlock_user(
    realm: &mut Realm<'_>,
    caller: &Caller,
    id: Uuid,
) -> Result<User, AuthError> {
    unlock(realm, caller, UserKey::Id(id)).await
}

/// [`unlock_user`] by username, for those who cannot see user ids (operators, the command line).
/// Deactivates the account `username` names ([`deactivate_user`]): for the command line, where an
/// operator names the person, not the id.
pub async fn deactivate_username(
    realm: &mut Realm<'_>,
    caller: &Caller,
    username: &str,
) -> Result<User, AuthError> {
    let username = normalize_username(username)?;
    let t = realm.tables();
    let id: Option<Uuid> = sqlx::query_scalar(sql(t, "SELECT id FROM {u} WHERE username = $1"))
        .bind(&username)
        .fetch_optional(realm.conn())
        .await?;
    deactivate_user(realm, caller, id.ok_or(AuthError::NotFound)?).await
}

pub async fn unlock_username(
    realm: &mut Realm<'_>,
    caller: &Caller,
    username: &str,
) -> Result<User, AuthError> {
    let username = normalize_username(username)?;
    unlock(realm, caller, UserKey::Username(&username)).await
}

enum UserKey<'a> {
    Id(Uuid),
    Username(&'a str),
}

async fn unlock(
    realm: &mut Realm<'_>,
    caller: &Caller,
    key: UserKey<'_>,
) -> Result<User, AuthError> {
    let t = realm.tables();
    let template = |column: &str| {
        format!(
            "WITH before AS (SELECT id, locked_at FROM {{u}} WHERE {column} = $1 FOR UPDATE) \
             UPDATE {{u}} u SET locked_at = NULL, recent_failures = '{{}}', \
             updated_at = now() FROM before WHERE u.{column} = $1 AND u.id = before.id \
             RETURNING u.id, u.username, before.locked_at"
        )
    };
    let row = match key {
        UserKey::Id(id) => {
            sqlx::query(sql(t, &template("id")))
                .bind(id)
                .fetch_optional(realm.conn())
                .await?
        }
        UserKey::Username(name) => {
            sqlx::query(sql(t, &template("username")))
                .bind(name)
                .fetch_optional(realm.conn())
                .await?
        }
    };
    let row = row.ok_or(AuthError::NotFound)?;
    let id: Uuid = row.try_get("id")?;
    let username: String = row.try_get("username")?;
    let locked_at: Option<DateTime<Utc>> = row.try_get("locked_at")?;
    realm
        .audit(
            caller
                .event("admin.user.unlocked")
                .resource("userId", id.to_string())
                .detail(json!({ "username": username, "wasLocked": locked_at.is_some(), "lockedAt": locked_at })),
        )
        .await?;
    get_user(realm, id).await
}

/// Ends a lockout whose period under the agency's `auth.lockout` policy has passed, before a
/// login attempt is judged, so the attempt counts afresh (and five new failures lock again).
/// Without such a policy (the CJIS default) only an administrator unlocks.
pub(crate) async fn lift_expired_lockout(
    realm: &mut Realm<'_>,
    username: &str,
) -> Result<(), AuthError> {
    let Realm::Agency(tx) = realm else {
        return Ok(());
    };
    let Some(minutes) = crate::policies::LockoutPolicy::load(tx)
        .await?
        .unlock_after_minutes
    else {
        return Ok(());
    };
    let row = sqlx::query(
        "WITH before AS (SELECT id, locked_at FROM users WHERE username = $1 AND locked_at IS NOT NULL \
           AND locked_at <= now() - make_interval(mins => $2) FOR UPDATE) \
         UPDATE users u SET locked_at = NULL, recent_failures = '{}', \
           updated_at = now() FROM before WHERE u.username = $1 AND u.id = before.id \
         RETURNING u.id, before.locked_at",
    )
    .bind(username)
    .bind(i32::try_from(minutes).unwrap_or(i32::MAX))
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(());
    };
    let id: Uuid = row.try_get("id")?;
    let locked_at: DateTime<Utc> = row.try_get("locked_at")?;
    realm
        .audit(
            Event::new("admin.user.unlocked", Actor::system())
                .resource("userId", id.to_string())
                .detail(json!({
                    "username": username,
                    "wasLocked": true,
                    "lockedAt": locked_at,
                    "reason": format!("lockout period of {minutes} minutes ({}) elapsed", crate::policies::LOCKOUT_POLICY),
                })),
        )
        .await?;
    Ok(())
}

/// Deactivates an account for good and revokes all its sessions at once: an access token still
/// within its lifetime fails on its next request.
pub async fn deactivate_user(
    realm: &mut Realm<'_>,
    caller: &Caller,
    id: Uuid,
) -> Result<User, AuthError> {
    if caller.user_id() == Some(id) {
        return Err(AuthError::Conflict("you cannot deactivate yourself".into()));
    }
    let t = realm.tables();
    let done = sqlx::query(sql(
        t,
        "UPDATE {u} SET status = 'deactivated', deactivated_at = now(), enrollment_token_hash = NULL, \
         updated_at = now() WHERE id = $1 RETURNING id",
    ))
    .bind(id)
    .fetch_optional(realm.conn())
    .await?;
    if done.is_none() {
        return Err(AuthError::NotFound);
    }
    let revoked = revoke_user_sessions(realm, id, "user deactivated").await?;
    realm
        .audit(
            caller
                .event("admin.user.deactivated")
                .resource("userId", id.to_string())
                .detail(json!({ "sessionsRevoked": revoked })),
        )
        .await?;
    get_user(realm, id).await
}

pub(crate) async fn revoke_user_sessions(
    realm: &mut Realm<'_>,
    user_id: Uuid,
    reason: &str,
) -> Result<u64, AuthError> {
    let t = realm.tables();
    Ok(sqlx::query(sql(
        t,
        "UPDATE {s} SET revoked_at = now(), revoke_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    ))
    .bind(user_id)
    .bind(reason)
    .execute(realm.conn())
    .await?
    .rows_affected())
}

/// What an authenticator app needs to enroll.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The otpauth URI as a QR code, PNG bytes.
    #[serde(skip)]
    pub qr_png: Vec<u8>,
}

struct Enrolling {
    id: Uuid,
    username: String,
    role: String,
}

async fn find_enrolling(realm: &mut Realm<'_>, token: &str) -> Result<Enrolling, AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "SELECT id, username, role FROM {u} WHERE enrollment_token_hash = $1 \
         AND enrollment_expires_at > now() AND status = 'pending' FOR UPDATE",
    ))
    .bind(opaque_hash(token))
    .fetch_optional(realm.conn())
    .await?
    .ok_or_else(|| {
        AuthError::InvalidToken("the enrollment token is unknown, used or expired".into())
    })?;
    Ok(Enrolling {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: row.try_get("role")?,
    })
}

/// Enrollment, step 1: sets the password (policy-checked, argon2id) and issues a TOTP secret that
/// becomes active once [`confirm_enrollment`] sees a valid code. May be repeated until then.
pub async fn begin_enrollment(
    realm: &mut Realm<'_>,
    auth: &Auth,
    token: &str,
    password: &str,
) -> Result<TotpEnrollment, AuthError> {
    let user = find_enrolling(realm, token).await?;
    check_password_policy(password, &user.username)?;
    let hash = auth.hash_password(password).await?;
    let secret = totp::generate_secret();
    let sealed = auth.seal_totp(user.id, &secret)?;
    let t = realm.tables();
    sqlx::query(sql(
        t,
        "UPDATE {u} SET password_hash = $2, totp_pending_secret = $3, updated_at = now() WHERE id = $1",
    ))
    .bind(user.id)
    .bind(hash)
    .bind(sealed)
    .execute(realm.conn())
    .await?;
    let (otpauth_uri, qr_png) =
        totp::provisioning(&secret, &auth.config.totp_issuer, &user.username)?;
    Ok(TotpEnrollment {
        secret: totp::secret_base32(&secret),
        otpauth_uri,
        qr_png,
    })
}

/// Enrollment, step 2: a valid code from the new secret activates the account and spends the
/// enrollment token.
pub async fn confirm_enrollment(
    realm: &mut Realm<'_>,
    auth: &Auth,
    token: &str,
    code: &str,
    origin: writ_audit_log::Origin,
) -> Result<User, AuthError> {
    let user = find_enrolling(realm, token).await?;
    let t = realm.tables();
    let sealed: Option<Vec<u8>> = sqlx::query(sql(
        t,
        "SELECT totp_pending_secret FROM {u} WHERE id = $1 AND password_hash IS NOT NULL",
    ))
    .bind(user.id)
    .fetch_optional(realm.conn())
    .await?
    .map(|r| r.try_get("totp_pending_secret"))
    .transpose()?
    .flatten();
    let Some(sealed) = sealed else {
        return Err(AuthError::Conflict(
            "set a password first (POST /v1/auth/enroll)".into(),
        ));
    };
    let secret = auth.open_totp(user.id, &sealed)?;
    let actor = Actor::user(user.id, user.role.clone());
    let Some(step) = totp::accept(&secret, code, None) else {
        realm
            .audit(
                Event::new("auth.mfa.failure", actor)
                    .failure()
                    .origin(&origin)
                    .detail(json!({ "during": "enrollment" })),
            )
            .await?;
        return Err(AuthError::InvalidCode);
    };
    sqlx::query(sql(
        t,
        "UPDATE {u} SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_last_step = $2, \
         status = 'active', enrollment_token_hash = NULL, enrollment_expires_at = NULL, \
         last_login_at = now(), updated_at = now() WHERE id = $1",
    ))
    .bind(user.id)
    .bind(step)
    .execute(realm.conn())
    .await?;
    realm
        .audit(
            Event::new("auth.mfa.success", actor.clone())
                .origin(&origin)
                .detail(json!({ "during": "enrollment" })),
        )
        .await?;
    realm
        .audit(
            Event::new("admin.user.modified", actor)
                .resource("userId", user.id.to_string())
                .origin(&origin)
                .detail(json!({ "enrolled": true, "status": "active" })),
        )
        .await?;
    get_user(realm, user.id).await
}

/// [`begin_enrollment`] for a token from either realm (the token names it).
pub async fn enroll(
    pool: &sqlx::PgPool,
    auth: &Auth,
    token: &str,
    password: &str,
) -> Result<TotpEnrollment, AuthError> {
    let mut tx = enrollment_tx(pool, token).await?;
    let outcome = begin_enrollment(&mut tx.realm(), auth, token, password).await;
    // Nothing is kept of a rejected password.
    match outcome {
        Ok(v) => tx.finish(Ok(v)).await,
        Err(e) => {
            tx.abandon().await?;
            Err(e)
        }
    }
}

/// [`confirm_enrollment`] for a token from either realm.
pub async fn enroll_confirm(
    pool: &sqlx::PgPool,
    auth: &Auth,
    token: &str,
    code: &str,
    origin: writ_audit_log::Origin,
) -> Result<User, AuthError> {
    let mut tx = enrollment_tx(pool, token).await?;
    let outcome = confirm_enrollment(&mut tx.realm(), auth, token, code, origin).await;
    tx.finish(outcome).await
}

async fn enrollment_tx(pool: &sqlx::PgPool, token: &str) -> Result<crate::session::Tx, AuthError> {
    let invalid =
        || AuthError::InvalidToken("the enrollment token is unknown, used or expired".into());
    let realm = crate::tokens::opaque_realm("wen", token).ok_or_else(invalid)?;
    crate::session::Tx::open(pool, realm)
        .await?
        .ok_or_else(invalid)
}

/// For `writ dev` only: makes sure an active demo account exists with `password`, enrolling it
/// directly (no enrollment token). Returns its base32 TOTP secret, so it can be printed.
pub async fn ensure_demo_user(
    realm: &mut Realm<'_>,
    auth: &Auth,
    username: &str,
    role: Role,
    password: &str,
) -> Result<String, AuthError> {
    let t = realm.tables();
    let existing = sqlx::query(sql(
        t,
        "SELECT id, totp_secret FROM {u} WHERE username = $1",
    ))
    .bind(username)
    .fetch_optional(realm.conn())
    .await?;
    if let Some(row) = existing {
        let id: Uuid = row.try_get("id")?;
        let sealed: Option<Vec<u8>> = row.try_get("totp_secret")?;
        if let Some(sealed) = sealed {
            return Ok(totp::secret_base32(&auth.open_totp(id, &sealed)?));
        }
    }
    let id = Uuid::now_v7();
    let secret = totp::generate_secret();
    let hash = auth.hash_password(password).await?;
    sqlx::query(sql(
        t,
        "INSERT INTO {u} (id, username, display_name, role, status, password_hash, totp_secret, last_login_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, now())",
    ))
    .bind(id)
    .bind(username)
    .bind(format!("Demo {}", role.as_str().replace('_', " ")))
    .bind(role.as_str())
    .bind(hash)
    .bind(auth.seal_totp(id, &secret)?)
    .execute(realm.conn())
    .await?;
    realm
        .audit(
            Event::new("admin.user.created", Actor::system())
                .resource("userId", id.to_string())
                .detail(json!({ "username": username, "role": role.as_str(), "demo": true })),
        )
        .await?;
    Ok(totp::secret_base32(&secret))
}

/// For `writ dev` only: gives a demo account its badge number or judicial id unless it has one
/// (also for a demo agency created before the field existed). Audited like an administrator's change.
pub async fn ensure_demo_badge(
    realm: &mut Realm<'_>,
    username: &str,
    badge_or_judicial_id: &str,
) -> Result<(), AuthError> {
    let badge = check_badge_or_judicial_id(badge_or_judicial_id)?;
    let Realm::Agency(tx) = realm else {
        return Err(AuthError::invalid(BADGE_FIELD, "agency users only"));
    };
    let id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE users SET badge_or_judicial_id = $2, updated_at = now() \
         WHERE username = $1 AND badge_or_judicial_id IS NULL RETURNING id",
    )
    .bind(username)
    .bind(&badge)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(id) = id {
        realm
            .audit(
                Event::new("admin.user.modified", Actor::system())
                    .resource("userId", id.to_string())
                    .detail(json!({ "badgeOrJudicialId": badge, "previousBadgeOrJudicialId": null, "demo": true })),
            )
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Contacts: where alerts reach an agency user (on-call judges, deadline reminders)

/// A user's e-mail address and phone number (E.164), as alerts use them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A change of contact: `Some(None)` clears a member, `None` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
}

impl ContactPatch {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none()
    }

    /// The patch with its values checked and normalised (field `email` or `phone` on error).
    pub fn checked(&self) -> Result<Self, AuthError> {
        Ok(Self {
            email: self
                .email
                .as_ref()
                .map(|e| e.as_deref().map(check_email).transpose())
                .transpose()?,
            phone: self
                .phone
                .as_ref()
                .map(|p| p.as_deref().map(check_phone).transpose())
                .transpose()?,
        })
    }
}

/// An address a relay accepts: one `@`, a local part and a dotted domain, no spaces or controls,
/// at most 254 characters (RFC 5321). Deliverability is the relay's to say.
pub fn check_email(s: &str) -> Result<String, AuthError> {
    let e = s.trim();
    let ok = e.len() <= 254
        && !e.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
        && matches!(e.split_once('@'), Some((local, domain))
            if !local.is_empty() && local.len() <= 64 && !domain.contains('@')
                && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok {
        Ok(e.to_owned())
    } else {
        Err(AuthError::invalid(
            "email",
            "an e-mail address such as name@example.org",
        ))
    }
}

/// E.164 (`+` and 8 to 15 digits, no leading zero), as SMS providers take it; spaces, dashes,
/// dots and parentheses people write are dropped.
pub fn check_phone(s: &str) -> Result<String, AuthError> {
    let p: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = p.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(p)
    } else {
        Err(AuthError::invalid(
            "phone",
            "an E.164 number: + and the country code, e.g. +16125550123",
        ))
    }
}

/// The contacts of the given agency users (those without a row are left out).
pub async fn contacts(
    tx: &mut writ_tenancy::TenantTx,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Contact>, AuthError> {
    let rows: Vec<(Uuid, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, email, phone FROM users WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(tx.conn())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, phone)| (id, Contact { email, phone }))
        .collect())
}

/// Changes a user's contact (checked first: nothing is written on a bad value), recorded as
/// `admin.user.modified` naming the members changed (the values are personal data and stay out
/// of the audit detail).
pub async fn set_contact(
    tx: &mut writ_tenancy::TenantTx,
    caller: &Caller,
    id: Uuid,
    patch: &ContactPatch,
) -> Result<Contact, AuthError> {
    let patch = patch.checked()?;
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE users SET email = CASE WHEN $2 THEN $3 ELSE email END, \
           phone = CASE WHEN $4 THEN $5 ELSE phone END, updated_at = now() \
         WHERE id = $1 RETURNING status, email, phone",
    )
    .bind(id)
    .bind(patch.email.is_some())
    .bind(patch.email.clone().flatten())
    .bind(patch.phone.is_some())
    .bind(patch.phone.clone().flatten())
    .fetch_optional(tx.conn())
    .await?;
    let Some((status, email, phone)) = row else {
        return Err(AuthError::NotFound);
    };
    if status == "deactivated" {
        return Err(deactivated());
    }
    let changed: Vec<&str> = [
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let event = caller
        .event("admin.user.modified")
        .resource("userId", id.to_string())
        .detail(json!({ "contact": changed }));
    writ_audit_log::record(tx, &event).await?;
    Ok(Contact { email, phone })
}

#[cfg(test)]
mod contact_tests {
    use super::*;

    #[test]
    fn e164_and_addresses() {
        assert_eq!(check_phone("+1 (612) 555-0123").unwrap(), "+16125550123");
        for bad in [
            "6125550123",
            "+0612555012",
            "+1612",
            "+1612555012345678",
            "+1612x550123",
        ] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_email(" judge@court.example ").unwrap(),
            "judge@court.example"
        );
        for bad in [
            "judge",
            "judge@court",
            "a b@court.example",
            "@court.example",
            "j@@c.example",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod badge_tests {
    use super::*;

    #[test]
    fn badges_are_trimmed_and_bounded_and_printable() {
        assert_eq!(check_badge_or_judicial_id(" 4471 ").unwrap(), "4471");
        assert_eq!(check_badge_or_judicial_id("JUD-0193").unwrap(), "JUD-0193");
        // Characters, not bytes, as the column's CHECK counts them.
        let accented = "é".repeat(64);
        assert_eq!(check_badge_or_judicial_id(&accented).unwrap(), accented);
        let too_long = "9".repeat(65);
        for bad in [
            "",
            "  ",
            too_long.as_str(),
            "44\u{7}71",
            "44\t71",
            "44\u{200b}71",
            "\u{202e}1744",
        ] {
            match check_badge_or_judicial_id(bad) {
                Err(AuthError::Invalid { field, .. }) => assert_eq!(field, "badgeOrJudicialId"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
