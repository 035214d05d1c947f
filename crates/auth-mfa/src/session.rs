//! Login, database-backed sessions, refresh rotation, logout, per-request session checks,
//! step-up and lockout.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_log::{Actor, Event, Origin};
use writ_tenancy::{AgencyIdent, TenantTx};
use zeroize::Zeroizing;

use crate::realm::sql;
use crate::tokens::{Claims, ISSUER, TokenRealm, new_opaque, opaque_hash, opaque_realm};
use crate::{Auth, AuthError, Realm, Role, totp};

/// Tokens handed out at login and refresh.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedTokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: each refresh returns a new one; presenting a spent one revokes the session.
    pub refresh_token: String,
    pub session_id: Uuid,
}

/// A login attempt. `agency` is the agency slug; `None` logs a platform operator in.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    pub agency: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub banner_ack: bool,
    pub origin: Origin,
}

/// Who is calling, after the token and its session were checked.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `None` for a platform operator.
    pub agency_id: Option<Uuid>,
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    pub auth_time: i64,
    pub stepped_up_until: Option<DateTime<Utc>>,
}

impl Principal {
    pub fn ident(&self) -> Option<AgencyIdent> {
        self.agency_id.map(AgencyIdent::for_agency)
    }

    pub fn is_stepped_up(&self) -> bool {
        self.stepped_up_until.is_some_and(|t| t > Utc::now())
    }

    /// 401 `step-up-required` when the matrix says `permission` needs a step-up this session
    /// has not made (or that has lapsed).
    pub fn check_step_up(&self, permission: crate::Permission) -> Result<(), AuthError> {
        if permission.needs_step_up() && !self.is_stepped_up() {
            return Err(AuthError::StepUpRequired);
        }
        Ok(())
    }

    pub fn actor(&self) -> Actor {
        Actor::user(self.user_id, self.role.as_str())
    }
}

/// Opens a transaction for the realm of an agency id (checked against the control plane) or the
/// platform. Unknown or inactive agencies are `None`. The agency is read on the connection that
/// then enters it: one pool checkout per request instead of two.
async fn agency_tx(pool: &PgPool, agency_id: Uuid) -> Result<Option<TenantTx>, AuthError> {
    Ok(TenantTx::begin_active(pool, agency_id)
        .await?
        .map(|(_, tx)| tx))
}

/// A transaction in either realm, committed by [`Tx::finish`] whatever the outcome, so failure
/// audit entries persist.
pub(crate) enum Tx {
    Agency(TenantTx),
    Platform(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub(crate) async fn open(pool: &PgPool, realm: TokenRealm) -> Result<Option<Self>, AuthError> {
        Ok(match realm {
            TokenRealm::Agency(id) => agency_tx(pool, id).await?.map(Tx::Agency),
            TokenRealm::Platform => Some(Tx::Platform(pool.begin().await?)),
        })
    }

    pub(crate) fn realm(&mut self) -> Realm<'_> {
        match self {
            Tx::Agency(t) => Realm::Agency(t),
            Tx::Platform(t) => Realm::Platform(t),
        }
    }

    /// Commits — failures included, so their audit entries and lockout counters persist — unless
    /// the outcome is an internal or database failure (then nothing is half-written).
    pub(crate) async fn finish<T>(self, outcome: Result<T, AuthError>) -> Result<T, AuthError> {
        let broken = matches!(
            outcome,
            Err(AuthError::Database(_)
                | AuthError::Internal(_)
                | AuthError::Audit(_)
                | AuthError::Tenancy(_))
        );
        if broken {
            self.abandon().await?;
        } else {
            match self {
                Tx::Agency(t) => t.commit().await?,
                Tx::Platform(t) => t.commit().await?,
            }
        }
        outcome
    }

    pub(crate) async fn abandon(self) -> Result<(), AuthError> {
        match self {
            Tx::Agency(t) => t.rollback().await?,
            Tx::Platform(t) => t.rollback().await?,
        }
        Ok(())
    }
}

struct Credentials {
    id: Uuid,
    role: String,
    status: String,
    password_hash: Option<String>,
    totp_secret: Option<Vec<u8>>,
    totp_last_step: Option<i64>,
    locked: bool,
}

async fn credentials_by_username(
    realm: &mut Realm<'_>,
    username: &str,
) -> Result<Option<Credentials>, AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "SELECT id, role, status, password_hash, totp_secret, totp_last_step, locked_at FROM {u} \
         WHERE username = $1 FOR UPDATE",
    ))
    .bind(username)
    .fetch_optional(realm.conn())
    .await?;
    row.map(|r| creds_from_row(&r)).transpose()
}

async fn credentials_by_id(realm: &mut Realm<'_>, id: Uuid) -> Result<Credentials, AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "SELECT id, role, status, password_hash, totp_secret, totp_last_step, locked_at FROM {u} \
         WHERE id = $1 FOR UPDATE",
    ))
    .bind(id)
    .fetch_optional(realm.conn())
    .await?
    .ok_or(AuthError::SessionRevoked)?;
    creds_from_row(&row)
}

fn creds_from_row(r: &sqlx::postgres::PgRow) -> Result<Credentials, AuthError> {
    Ok(Credentials {
        id: r.try_get("id")?,
        role: r.try_get("role")?,
        status: r.try_get("status")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_last_step: r.try_get("totp_last_step")?,
        locked: r
            .try_get::<Option<DateTime<Utc>>, _>("locked_at")?
            .is_some(),
    })
}

/// Counts a failed attempt; the one that reaches the threshold within the window locks the
/// account, revokes its sessions and records `auth.lockout`. The row keeps the times of the latest
/// failures (as many as the threshold), so the window slides: any five within it lock, whenever
/// they fall, and five spread wider never do. Computed from the row as updated, so failures at
/// the same moment are all counted.
async fn register_failure(
    realm: &mut Realm<'_>,
    auth: &Auth,
    user: &Credentials,
    origin: &Origin,
) -> Result<(), AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "UPDATE {u} SET \
           recent_failures = ARRAY(SELECT f FROM unnest(recent_failures || now()) AS f \
               WHERE f > now() - make_interval(secs => $2) ORDER BY f DESC LIMIT $3), \
           updated_at = now() \
         WHERE id = $1 RETURNING cardinality(recent_failures) AS failures, locked_at",
    ))
    .bind(user.id)
    .bind(auth.config.lockout_window.as_secs_f64())
    .bind(i64::from(auth.config.lockout_threshold.max(1)))
    .fetch_one(realm.conn())
    .await?;
    let failures: i32 = row.try_get("failures")?;
    let locked: Option<DateTime<Utc>> = row.try_get("locked_at")?;
    if locked.is_none() && failures >= auth.config.lockout_threshold {
        sqlx::query(sql(t, "UPDATE {u} SET locked_at = now() WHERE id = $1"))
            .bind(user.id)
            .execute(realm.conn())
            .await?;
        crate::accounts::revoke_user_sessions(realm, user.id, "account locked").await?;
        realm
            .audit(
                Event::new("auth.lockout", Actor::user(user.id, user.role.clone()))
                    .resource("userId", user.id.to_string())
                    .origin(origin)
                    .detail(json!({ "failedAttempts": failures })),
            )
            .await?;
    }
    Ok(())
}

/// Logs in with password and TOTP. Every failure is the same [`AuthError::InvalidCredentials`]
/// (except a locked account given the right credentials) and costs one argon2 verification whether
/// or not the user exists; every attempt is audited.
pub async fn login(
    pool: &PgPool,
    auth: &Auth,
    a: LoginAttempt<'_>,
) -> Result<IssuedTokens, AuthError> {
    if !a.banner_ack {
        return Err(AuthError::BannerNotAcknowledged);
    }
    let realm_id = match a.agency {
        None => Some(TokenRealm::Platform),
        Some(slug) => writ_tenancy::agency_by_slug(pool, slug.trim())
            .await?
            .filter(|ag| ag.status == "active")
            .map(|ag| TokenRealm::Agency(ag.id)),
    };
    let Some(realm_id) = realm_id else {
        auth.verify_password(a.password, None).await?;
        return Err(AuthError::InvalidCredentials);
    };
    let Some(mut tx) = Tx::open(pool, realm_id).await? else {
        auth.verify_password(a.password, None).await?;
        return Err(AuthError::InvalidCredentials);
    };
    let outcome = login_in(&mut tx.realm(), auth, realm_id, &a).await;
    tx.finish(outcome).await
}

/// A username no account has, as the audit records it: no longer than any username can be, so
/// that anonymous attempts cannot fill the log.
fn as_attempted(username: &str) -> String {
    writ_audit_log::clipped(username, crate::accounts::MAX_USERNAME_CHARS)
}

async fn login_in(
    realm: &mut Realm<'_>,
    auth: &Auth,
    realm_id: TokenRealm,
    a: &LoginAttempt<'_>,
) -> Result<IssuedTokens, AuthError> {
    let origin = &a.origin;
    let username = a.username.trim().to_lowercase();
    crate::accounts::lift_expired_lockout(realm, &username).await?;
    let user = credentials_by_username(realm, &username).await?;
    let password_ok = auth
        .verify_password(
            a.password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let Some(user) = user else {
        realm
            .audit(
                Event::new("auth.login", Actor::anonymous())
                    .failure()
                    .origin(origin)
                    .detail(json!({
                        "username": as_attempted(&username),
                        "reason": "invalid credentials"
                    })),
            )
            .await?;
        return Err(AuthError::InvalidCredentials);
    };
    let actor = Actor::user(user.id, user.role.clone());
    let fail = |reason: &str| {
        Event::new("auth.login", actor.clone())
            .failure()
            .origin(origin)
            .detail(json!({ "reason": reason }))
    };
    if user.status != "active" {
        realm
            .audit(fail(&format!("account {}", user.status)))
            .await?;
        return Err(AuthError::InvalidCredentials);
    }
    if !password_ok {
        realm.audit(fail("wrong password")).await?;
        register_failure(realm, auth, &user, origin).await?;
        return Err(AuthError::InvalidCredentials);
    }
    let step = match (&user.totp_secret, a.totp) {
        (Some(sealed), Some(code)) => {
            let secret = auth.open_totp(user.id, sealed)?;
            totp::accept(&secret, code, user.totp_last_step)
        }
        _ => None,
    };
    let Some(step) = step else {
        let reason = if a.totp.is_none_or(|c| c.trim().is_empty()) {
            "no one-time code"
        } else {
            "wrong or reused one-time code"
        };
        realm
            .audit(
                Event::new("auth.mfa.failure", actor.clone())
                    .failure()
                    .origin(origin)
                    .detail(json!({ "reason": reason })),
            )
            .await?;
        realm.audit(fail(reason)).await?;
        register_failure(realm, auth, &user, origin).await?;
        return Err(AuthError::InvalidCredentials);
    };
    if user.locked {
        // Only a caller holding both factors learns that the account is locked.
        realm.audit(fail("account locked")).await?;
        return Err(AuthError::AccountLocked);
    }
    let role: Role = user.role.parse().map_err(AuthError::internal)?;
    let t = realm.tables();
    let rehash = match user.password_hash.as_deref() {
        Some(h) if auth.needs_rehash(h) => Some(auth.hash_password(a.password).await?),
        _ => None,
    };
    sqlx::query(sql(
        t,
        "UPDATE {u} SET totp_last_step = $2, recent_failures = '{}', \
         password_hash = coalesce($3, password_hash), last_login_at = now(), updated_at = now() \
         WHERE id = $1",
    ))
    .bind(user.id)
    .bind(step)
    .bind(rehash)
    .execute(realm.conn())
    .await?;
    let session_id = Uuid::now_v7();
    sqlx::query(sql(
        t,
        "INSERT INTO {s} (id, user_id, source_ip) VALUES ($1, $2, $3)",
    ))
    .bind(session_id)
    .bind(user.id)
    .bind(&origin.source_ip)
    .execute(realm.conn())
    .await?;
    let refresh = new_refresh(realm, realm_id, session_id).await?;
    realm
        .audit(
            Event::new("auth.mfa.success", actor.clone())
                .origin(origin)
                .resource("sessionId", session_id.to_string()),
        )
        .await?;
    realm
        .audit(
            Event::new("auth.login", actor)
                .origin(origin)
                .resource("sessionId", session_id.to_string()),
        )
        .await?;
    let now = Utc::now().timestamp();
    issue(auth, realm_id, user.id, role, session_id, now, refresh)
}

async fn new_refresh(
    realm: &mut Realm<'_>,
    realm_id: TokenRealm,
    session_id: Uuid,
) -> Result<Zeroizing<String>, AuthError> {
    let (token, hash) = new_opaque("wrt", realm_id);
    let t = realm.tables();
    sqlx::query(sql(t, "INSERT INTO {r} (hash, session_id) VALUES ($1, $2)"))
        .bind(hash)
        .bind(session_id)
        .execute(realm.conn())
        .await?;
    Ok(token)
}

fn issue(
    auth: &Auth,
    realm_id: TokenRealm,
    user_id: Uuid,
    role: Role,
    session_id: Uuid,
    auth_time: i64,
    refresh: Zeroizing<String>,
) -> Result<IssuedTokens, AuthError> {
    let ttl = auth.config.access_ttl.min(crate::MAX_ACCESS_TTL);
    let now = Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: user_id,
        aid: match realm_id {
            TokenRealm::Agency(a) => Some(a),
            TokenRealm::Platform => None,
        },
        role: role.as_str().into(),
        sid: session_id,
        auth_time,
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(900),
    };
    Ok(IssuedTokens {
        access_token: auth.tokens.sign(&claims)?,
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        refresh_token: refresh.to_string(),
        session_id,
    })
}

struct SessionRow {
    user_id: Uuid,
    role: String,
    user_status: String,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    stepped_up_until: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoke_reason: Option<String>,
    now: DateTime<Utc>,
}

/// How stale `last_seen_at` may get before a request writes it again: the configured interval (a
/// minute), or a tenth of the idle timeout when that is shorter. A session therefore ends idle
/// after between `idle_timeout - touch` and `idle_timeout` of real idleness, never later.
fn touch_interval(config: &crate::AuthConfig) -> std::time::Duration {
    config.session_touch.min(config.idle_timeout / 10)
}

/// Reads the session and its user in one statement that also marks the session used — only when
/// it is alive and `last_seen_at` is older than the touch interval. Most requests therefore write
/// nothing and take no row lock: no hot row per session, and their transaction commits without a
/// WAL record. The touch skips a row another transaction holds (it is being touched, or revoked,
/// right now), so requests never queue on their session. The read takes no `FOR UPDATE`: a
/// logout or deactivation committed before this statement is seen by it, and the timeout below
/// guards its own update.
async fn session_row(
    realm: &mut Realm<'_>,
    auth: &Auth,
    session_id: Uuid,
    user_id: Uuid,
    touch: Touch,
) -> Result<Option<SessionRow>, AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "WITH cur AS ( \
             SELECT s.user_id, u.role, u.status, s.created_at, s.last_seen_at, \
                    s.stepped_up_until, s.revoked_at, s.revoke_reason \
             FROM {s} s JOIN {u} u ON u.id = s.user_id WHERE s.id = $1), \
         touched AS ( \
             UPDATE {s} SET last_seen_at = now() \
             WHERE id = (SELECT id FROM {s} WHERE id = $1 AND user_id = $2 \
                           AND revoked_at IS NULL \
                           AND last_seen_at < now() - make_interval(secs => $3) \
                           AND last_seen_at >= now() - make_interval(secs => $4) \
                           AND created_at >= now() - make_interval(secs => $5) \
                           AND $6 \
                         FOR UPDATE SKIP LOCKED) \
               AND EXISTS (SELECT 1 FROM cur WHERE cur.status = 'active') \
             RETURNING id) \
         SELECT cur.*, now() AS now FROM cur",
    ))
    .bind(session_id)
    .bind(user_id)
    .bind(touch_interval(&auth.config).as_secs_f64())
    .bind(auth.config.idle_timeout.as_secs_f64())
    .bind(auth.config.absolute_timeout.as_secs_f64())
    .bind(touch == Touch::Activity)
    .fetch_optional(realm.conn())
    .await?;
    row.map(|r| {
        Ok(SessionRow {
            user_id: r.try_get("user_id")?,
            role: r.try_get("role")?,
            user_status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
            stepped_up_until: r.try_get("stepped_up_until")?,
            revoked_at: r.try_get("revoked_at")?,
            revoke_reason: r.try_get("revoke_reason")?,
            now: r.try_get("now")?,
        })
    })
    .transpose()
}

/// Whether a check of the session counts as the user's activity for the idle timeout (CJIS
/// session lock). A person's request does; a client renewing its tokens on its own does not, so an
/// unattended screen that keeps refreshing still reaches the idle limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    Activity,
    NotActivity,
}

const TIMEOUT_REASONS: [&str; 2] = ["idle timeout", "session lifetime reached"];

/// Checks that a session is alive (not revoked, not idle too long, not past its lifetime, user
/// still active), ending it with `auth.session.timeout` when a limit has passed, and marks it used
/// (coarsely: see [`touch_interval`]).
async fn check_session(
    realm: &mut Realm<'_>,
    auth: &Auth,
    session_id: Uuid,
    user_id: Uuid,
    origin: &Origin,
    touch: Touch,
) -> Result<SessionRow, AuthError> {
    let s = session_row(realm, auth, session_id, user_id, touch)
        .await?
        .filter(|s| s.user_id == user_id)
        .ok_or(AuthError::SessionRevoked)?;
    if s.revoked_at.is_some() {
        return Err(match s.revoke_reason.as_deref() {
            Some(r) if TIMEOUT_REASONS.contains(&r) => AuthError::ReauthenticationRequired(
                format!("the session ended ({r}); log in again"),
            ),
            _ => AuthError::SessionRevoked,
        });
    }
    if s.user_status != "active" {
        return Err(AuthError::SessionRevoked);
    }
    let idle = s.now - s.last_seen_at > chrono_duration(auth.config.idle_timeout);
    let over = s.now - s.created_at > chrono_duration(auth.config.absolute_timeout);
    if idle || over {
        let reason = if over {
            TIMEOUT_REASONS[1]
        } else {
            TIMEOUT_REASONS[0]
        };
        let t = realm.tables();
        // Of concurrent requests that all saw the limit passed, the one that ends the session
        // records the timeout: one entry, as when the read locked the row.
        let ended = sqlx::query(sql(
            t,
            "UPDATE {s} SET revoked_at = now(), revoke_reason = $2 \
             WHERE id = $1 AND revoked_at IS NULL",
        ))
        .bind(session_id)
        .bind(reason)
        .execute(realm.conn())
        .await?
        .rows_affected();
        if ended > 0 {
            realm
                .audit(
                    Event::new("auth.session.timeout", Actor::user(user_id, s.role.clone()))
                        .resource("sessionId", session_id.to_string())
                        .origin(origin)
                        .detail(json!({ "reason": reason })),
                )
                .await?;
        }
        return Err(AuthError::ReauthenticationRequired(format!(
            "the session ended ({reason}); log in again"
        )));
    }
    Ok(s)
}

fn chrono_duration(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// Verifies an access token and its session; the result is who is calling.
pub async fn authenticate(
    pool: &PgPool,
    auth: &Auth,
    claims: &Claims,
    origin: Origin,
) -> Result<Principal, AuthError> {
    let (principal, tx) = authenticate_open(pool, auth, claims, origin).await?;
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    Ok(principal)
}

/// [`authenticate`] for a request that goes on to work inside the caller's agency: the
/// transaction that checked the session (already confined to the agency) stays open and is
/// returned, so the request does its own work in it and commits once — one transaction per
/// request. Operators get `None` (their check is committed here). A failed check is finished here
/// (a timeout's revocation and audit entry are committed). Dropping the returned transaction
/// without committing only loses a `last_seen_at` touch, which the next request makes again.
pub async fn authenticate_open(
    pool: &PgPool,
    auth: &Auth,
    claims: &Claims,
    origin: Origin,
) -> Result<(Principal, Option<TenantTx>), AuthError> {
    let realm_id = match claims.aid {
        Some(a) => TokenRealm::Agency(a),
        None => TokenRealm::Platform,
    };
    let role: Role = claims
        .role
        .parse()
        .map_err(|_| AuthError::InvalidToken("unknown role in token".into()))?;
    if (role == Role::PlatformOperator) != (realm_id == TokenRealm::Platform) {
        return Err(AuthError::InvalidToken(
            "token realm and role disagree".into(),
        ));
    }
    let Some(mut tx) = Tx::open(pool, realm_id).await? else {
        return Err(AuthError::SessionRevoked);
    };
    let outcome = check_session(
        &mut tx.realm(),
        auth,
        claims.sid,
        claims.sub,
        &origin,
        Touch::Activity,
    )
    .await
    .and_then(|s| {
        let role: Role = s.role.parse().map_err(AuthError::internal)?;
        Ok(Principal {
            agency_id: claims.aid,
            user_id: claims.sub,
            role,
            session_id: claims.sid,
            auth_time: claims.auth_time,
            stepped_up_until: s.stepped_up_until,
        })
    });
    let principal = match outcome {
        Ok(p) => p,
        Err(e) => return tx.finish(Err(e)).await,
    };
    match tx {
        Tx::Agency(t) => Ok((principal, Some(t))),
        Tx::Platform(t) => {
            t.commit().await?;
            Ok((principal, None))
        }
    }
}

/// Authenticates an agency user inside `tx`, the request's transaction in the agency the token
/// names (opened with `TenantTx::begin_active`): the session check and its coarse touch run there,
/// and on success the transaction comes back open for the request's own work, so the request
/// commits once. A failed check finishes it here, as [`authenticate`] does: a timeout's
/// revocation and audit entry are committed, an internal failure rolls everything back.
pub async fn authenticate_in(
    mut tx: TenantTx,
    auth: &Auth,
    claims: &Claims,
    origin: Origin,
) -> Result<(Principal, TenantTx), AuthError> {
    let outcome = async {
        let role: Role = claims
            .role
            .parse()
            .map_err(|_| AuthError::InvalidToken("unknown role in token".into()))?;
        if role == Role::PlatformOperator || claims.aid != Some(tx.agency_id()) {
            return Err(AuthError::InvalidToken(
                "token realm and role disagree".into(),
            ));
        }
        let mut realm = Realm::Agency(&mut tx);
        let s = check_session(
            &mut realm,
            auth,
            claims.sid,
            claims.sub,
            &origin,
            Touch::Activity,
        )
        .await?;
        Ok(Principal {
            agency_id: claims.aid,
            user_id: claims.sub,
            role: s.role.parse().map_err(AuthError::internal)?,
            session_id: claims.sid,
            auth_time: claims.auth_time,
            stepped_up_until: s.stepped_up_until,
        })
    }
    .await;
    match outcome {
        Ok(principal) => Ok((principal, tx)),
        Err(e) => Tx::Agency(tx).finish(Err(e)).await,
    }
}

/// Exchanges a refresh token for new tokens. A spent refresh token presented again means it was
/// copied: the whole session is revoked.
///
/// `platform` selects which accounts this endpoint serves: operators (`true`) or agency users;
/// a refresh token of the other kind is refused.
pub async fn refresh(
    pool: &PgPool,
    auth: &Auth,
    token: &str,
    platform: bool,
    origin: Origin,
) -> Result<IssuedTokens, AuthError> {
    let invalid = || AuthError::InvalidToken("the refresh token is not valid".into());
    let realm_id = opaque_realm("wrt", token)
        .filter(|r| (*r == TokenRealm::Platform) == platform)
        .ok_or_else(invalid)?;
    let mut tx = Tx::open(pool, realm_id).await?.ok_or_else(invalid)?;
    let outcome = refresh_in(&mut tx.realm(), auth, realm_id, token, origin).await;
    tx.finish(outcome).await
}

async fn refresh_in(
    realm: &mut Realm<'_>,
    auth: &Auth,
    realm_id: TokenRealm,
    token: &str,
    origin: Origin,
) -> Result<IssuedTokens, AuthError> {
    let t = realm.tables();
    let row = sqlx::query(sql(
        t,
        "SELECT r.session_id, r.spent_at, s.user_id, s.created_at FROM {r} r JOIN {s} s ON s.id = r.session_id \
         WHERE r.hash = $1 FOR UPDATE OF r",
    ))
    .bind(opaque_hash(token))
    .fetch_optional(realm.conn())
    .await?
    .ok_or_else(|| AuthError::InvalidToken("the refresh token is not valid".into()))?;
    let session_id: Uuid = row.try_get("session_id")?;
    let user_id: Uuid = row.try_get("user_id")?;
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    let spent: Option<DateTime<Utc>> = row.try_get("spent_at")?;
    if spent.is_some() {
        let revoked = sqlx::query(sql(
            t,
            "UPDATE {s} SET revoked_at = now(), revoke_reason = 'refresh token reused' \
             WHERE id = $1 AND revoked_at IS NULL",
        ))
        .bind(session_id)
        .execute(realm.conn())
        .await?
        .rows_affected();
        if revoked > 0 {
            let role = credentials_by_id(realm, user_id).await?.role;
            realm
                .audit(
                    Event::new("auth.logout", Actor::user(user_id, role))
                        .failure()
                        .resource("sessionId", session_id.to_string())
                        .origin(&origin)
                        .detail(json!({ "reason": "spent refresh token presented again; session revoked" })),
                )
                .await?;
        }
        return Err(AuthError::SessionRevoked);
    }
    let s = check_session(
        realm,
        auth,
        session_id,
        user_id,
        &origin,
        Touch::NotActivity,
    )
    .await?;
    sqlx::query(sql(t, "UPDATE {r} SET spent_at = now() WHERE hash = $1"))
        .bind(opaque_hash(token))
        .execute(realm.conn())
        .await?;
    let next = new_refresh(realm, realm_id, session_id).await?;
    let role: Role = s.role.parse().map_err(AuthError::internal)?;
    issue(
        auth,
        realm_id,
        user_id,
        role,
        session_id,
        created_at.timestamp(),
        next,
    )
}

/// Ends the caller's session at once.
pub async fn logout(pool: &PgPool, principal: &Principal, origin: Origin) -> Result<(), AuthError> {
    let realm_id = realm_of(principal);
    let mut tx = Tx::open(pool, realm_id)
        .await?
        .ok_or(AuthError::SessionRevoked)?;
    let outcome = async {
        let mut realm = tx.realm();
        let t = realm.tables();
        sqlx::query(sql(
            t,
            "UPDATE {s} SET revoked_at = now(), revoke_reason = 'logout' WHERE id = $1 AND revoked_at IS NULL",
        ))
        .bind(principal.session_id)
        .execute(realm.conn())
        .await?;
        realm
            .audit(
                Event::new("auth.logout", principal.actor())
                    .resource("sessionId", principal.session_id.to_string())
                    .origin(&origin),
            )
            .await
    }
    .await;
    tx.finish(outcome).await
}

fn realm_of(p: &Principal) -> TokenRealm {
    match p.agency_id {
        Some(a) => TokenRealm::Agency(a),
        None => TokenRealm::Platform,
    }
}

/// Step-up: a fresh TOTP code marks the session stepped-up for the configured window. A wrong
/// code counts towards the lockout like a failed login.
pub async fn step_up(
    pool: &PgPool,
    auth: &Auth,
    principal: &Principal,
    code: &str,
    origin: Origin,
) -> Result<DateTime<Utc>, AuthError> {
    let realm_id = realm_of(principal);
    let mut tx = Tx::open(pool, realm_id)
        .await?
        .ok_or(AuthError::SessionRevoked)?;
    let outcome = step_up_in(&mut tx.realm(), auth, principal, code, origin).await;
    tx.finish(outcome).await
}

async fn step_up_in(
    realm: &mut Realm<'_>,
    auth: &Auth,
    p: &Principal,
    code: &str,
    origin: Origin,
) -> Result<DateTime<Utc>, AuthError> {
    let user = credentials_by_id(realm, p.user_id).await?;
    let step = match &user.totp_secret {
        Some(sealed) => {
            let secret = auth.open_totp(user.id, sealed)?;
            totp::accept(&secret, code, user.totp_last_step)
        }
        None => None,
    };
    let Some(step) = step else {
        realm
            .audit(
                Event::new("auth.reauth", p.actor())
                    .failure()
                    .resource("sessionId", p.session_id.to_string())
                    .origin(&origin),
            )
            .await?;
        realm
            .audit(
                Event::new("auth.mfa.failure", p.actor())
                    .failure()
                    .origin(&origin)
                    .detail(json!({ "during": "step-up" })),
            )
            .await?;
        register_failure(realm, auth, &user, &origin).await?;
        return Err(AuthError::InvalidCode);
    };
    let t = realm.tables();
    sqlx::query(sql(t, "UPDATE {u} SET totp_last_step = $2 WHERE id = $1"))
        .bind(user.id)
        .bind(step)
        .execute(realm.conn())
        .await?;
    let until: DateTime<Utc> = sqlx::query(sql(
        t,
        "UPDATE {s} SET stepped_up_until = now() + make_interval(secs => $2) WHERE id = $1 \
         RETURNING stepped_up_until",
    ))
    .bind(p.session_id)
    .bind(auth.config.step_up_window.as_secs_f64())
    .fetch_one(realm.conn())
    .await?
    .try_get("stepped_up_until")?;
    realm
        .audit(
            Event::new("auth.reauth", p.actor())
                .resource("sessionId", p.session_id.to_string())
                .origin(&origin),
        )
        .await?;
    Ok(until)
}
