//! Who is calling, for handlers. Extract one of:
//!
//! - [`AgencyUser`]: an authenticated agency user (token verified, session alive). Platform
//!   operators get 403 here. Call [`AgencyUser::require`] with the route's [`Permission`] before
//!   doing anything — a denial is recorded as `authz.denied` and answered 403; a permission the
//!   matrix marks as needing step-up answers 401 `step-up-required` unless the session re-entered
//!   a TOTP code within the last minutes (`POST /v1/auth/reauth`) — then [`AgencyUser::begin`]
//!   for the request's `TenantTx` and [`AgencyUser::caller`] for who is acting. The matrix is the
//!   only place that says which actions need step-up: a route never checks it on its own.
//! - [`Operator`]: a platform operator; agency tokens get 403 here.
//!
//! ```ignore
//! async fn place(user: AgencyUser, body: Json<PlaceHold>) -> Result<HttpResponse, ApiError> {
//!     user.require(Permission::LegalHoldManage).await?;
//!     let mut tx = user.begin().await?;
//!     let hold = writ_audit_log::place_legal_hold(&mut tx, user.caller(), &body.reason).await?;
//!     tx.commit().await?;
//!     // …
//! }
//! ```
//!
//! One transaction per request: authentication reads the agency, checks the session (and now and
//! then marks it used) inside the transaction `begin` hands over, so the domain's work and its
//! audit entries commit with it. A handler that fails rolls the session touch back with its own
//! work: only requests that succeed count as activity for the idle timeout (a session whose
//! every request failed for 30 minutes ends as idle).
//! A handler whose work starts in the control plane (key rotation, revocation) or opens its own
//! transactions calls [`AgencyUser::release`] first.
//!
//! The agency comes from the verified token only, never from the path, body or a header.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use writ_audit_log::Caller;
use writ_auth_mfa::{AuthError, Claims, Permission, Principal, Refused, Role, allows};
use writ_tenancy::{Agency, TenantTx};

use crate::middleware::RequestId;
use crate::{ApiError, AppState};

/// Records `authz.denied` in a transaction of its own (committed although the request fails) and
/// gives the 403 to answer with; a failure to record is answered instead.
async fn deny(
    pool: &PgPool,
    caller: &Caller,
    permission: Option<Permission>,
    target: &Target,
    reason: String,
) -> ApiError {
    let refused = target.refused(permission, &reason);
    match writ_auth_mfa::record_denial(pool, caller, &refused).await {
        Ok(()) => ApiError::Forbidden(reason),
        Err(e) => e.into(),
    }
}

/// What a request was aimed at, for its denial's record.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Method and route template: `POST /v1/warrants/{id}/actions/{action}`.
    route: String,
    /// The path itself, naming the resource.
    path: String,
}

impl Target {
    fn of(req: &HttpRequest) -> Self {
        Self {
            route: format!(
                "{} {}",
                req.method(),
                req.match_pattern().unwrap_or_else(|| req.path().to_owned())
            ),
            path: req.path().to_owned(),
        }
    }

    fn refused<'a>(&'a self, permission: Option<Permission>, reason: &'a str) -> Refused<'a> {
        Refused {
            permission,
            route: &self.route,
            path: &self.path,
            reason,
        }
    }
}

/// The caller's address: the TCP peer, or — when `WRIT_TRUST_FORWARDED_FOR` says a proxy on
/// loopback terminates TLS — the last address that proxy appended to `X-Forwarded-For`.
pub fn source_ip(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr().map(|a| a.ip());
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.trust_forwarded_for);
    if trusted && peer.is_some_and(|p| p.is_loopback()) {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    peer.map(|p| p.to_string())
}

/// The id `request_context` gave the request (the caller's sane `X-Request-Id`, else a new one).
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Where the request came from: its source address and request id.
pub fn origin(req: &HttpRequest) -> writ_audit_log::Origin {
    writ_audit_log::Origin {
        source_ip: source_ip(req),
        request_id: request_id(req),
    }
}

/// Who is acting, for the audit entries of an authenticated request.
fn caller_of(principal: &Principal, req: &HttpRequest) -> Caller {
    Caller::user(
        principal.user_id,
        principal.role.as_str(),
        principal.agency_id,
        source_ip(req),
        request_id(req),
    )
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Token claims verified by the rate-limit middleware, kept for the extractors.
#[derive(Clone)]
pub(crate) struct VerifiedClaims(pub Claims);

async fn claims(req: &HttpRequest, state: &AppState) -> Result<Claims, ApiError> {
    if let Some(c) = req.extensions().get::<VerifiedClaims>() {
        return Ok(c.0.clone());
    }
    let token = bearer(req).ok_or_else(|| ApiError::Unauthorized {
        slug: "unauthorized",
        detail: "log in and send the access token as `Authorization: Bearer <token>`".into(),
    })?;
    Ok(state.auth().await?.tokens.verify(token)?)
}

fn app_state(req: &HttpRequest) -> Result<AppState, ApiError> {
    Ok(req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?
        .get_ref()
        .clone())
}

/// Authenticates a request: verified token, live session (idle and absolute limits), active user;
/// the session check commits on its own. [`AgencyUser`] keeps it open for the request instead.
pub async fn authenticate(req: &HttpRequest) -> Result<(Principal, AppState), ApiError> {
    let state = app_state(req)?;
    let claims = claims(req, &state).await?;
    let auth = state.auth().await?;
    let principal = writ_auth_mfa::authenticate(&state.pool, auth, &claims, origin(req)).await?;
    Ok((principal, state))
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// Runs an extractor's database work to completion even when the request stops waiting for it.
/// actix drops a handler's other extractors as soon as one fails (a body refused with 422, say);
/// dropped while its `BEGIN` was in flight, the work would hand its pooled connection back inside
/// an open transaction, and the next request on that connection would run in it — PostgreSQL's
/// "there is already a transaction in progress", with that transaction's `SET LOCAL role` still
/// in force. Run to completion, the work yields a transaction fully begun, which sqlx rolls back
/// when it is dropped unused.
fn to_completion<T: 'static>(
    work: impl Future<Output = Result<T, actix_web::Error>> + 'static,
) -> Fut<T> {
    let task = actix_web::rt::spawn(work);
    Box::pin(async move {
        task.await
            .map_err(|e| ApiError::internal(format!("authentication task: {e}")))?
    })
}

/// An authenticated agency user, holding the request's transaction. See the module
/// documentation for use.
pub struct AgencyUser {
    /// The caller's agency, as authentication read it from the control plane.
    pub agency: Agency,
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    pub stepped_up_until: Option<DateTime<Utc>>,
    caller: Caller,
    principal: Principal,
    pool: PgPool,
    route: Target,
    /// The request's transaction, in which the session was checked, until the handler takes it.
    tx: Cell<Option<TenantTx>>,
}

impl AgencyUser {
    /// Who is acting: actor, agency, source address and request id, for domain functions that
    /// record.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Allows the request if the caller's role holds `permission` (the one matrix,
    /// `writ_auth_mfa::MATRIX`); otherwise records `authz.denied` (committed although the request
    /// fails) and answers 403. A permission that needs step-up also answers 401
    /// `step-up-required` without it.
    pub async fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if !allows(self.role, permission) {
            let reason = format!(
                "the role {} may not do this ({})",
                self.role,
                permission.as_str()
            );
            return Err(self.deny(permission, reason).await);
        }
        Ok(self.principal.check_step_up(permission)?)
    }

    /// Refuses an action the role may do in general but not in this case (the domain said why):
    /// recorded as `authz.denied` like any denial, answered 403 with the reason.
    pub async fn refuse(&self, permission: Permission, reason: String) -> ApiError {
        self.deny(permission, reason).await
    }

    /// Records the denial in the request's transaction and commits it, or — once the handler
    /// has taken that transaction — in one of its own.
    async fn deny(&self, permission: Permission, reason: String) -> ApiError {
        let Some(mut tx) = self.tx.take() else {
            return deny(
                &self.pool,
                &self.caller,
                Some(permission),
                &self.route,
                reason,
            )
            .await;
        };
        let recorded = async {
            let refused = self.route.refused(Some(permission), &reason);
            writ_auth_mfa::record_denial_in(&mut tx, &self.caller, &refused).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(())
        };
        match recorded.await {
            Ok(()) => ApiError::Forbidden(reason),
            Err(e) => e,
        }
    }

    /// The request's transaction inside the caller's agency: the one authentication checked the
    /// session in. Taken once; commit it when the work is done.
    pub async fn begin(&self) -> Result<TenantTx, ApiError> {
        self.tx
            .take()
            .ok_or_else(|| ApiError::internal("the request's transaction was taken already"))
    }

    /// Commits the request's transaction (the session check) now, for a handler whose work runs
    /// in transactions of its own: control-plane changes, or the session's own logout and
    /// step-up, which would otherwise wait for the lock the session touch may hold.
    pub async fn release(&self) -> Result<(), ApiError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }
}

impl FromRequest for AgencyUser {
    type Error = actix_web::Error;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        to_completion(async move { Ok(agency_user(&req).await?) })
    }
}

async fn agency_user(req: &HttpRequest) -> Result<AgencyUser, ApiError> {
    let state = app_state(req)?;
    let claims = claims(req, &state).await?;
    let auth = state.auth().await?;
    let Some(agency_id) = claims.aid else {
        // A platform operator: authenticated in the control plane, then refused here.
        let principal =
            writ_auth_mfa::authenticate(&state.pool, auth, &claims, origin(req)).await?;
        let reason = "platform operators have no access to agency resources".into();
        let caller = caller_of(&principal, req);
        return Err(deny(&state.pool, &caller, None, &Target::of(req), reason).await);
    };
    // The agency is read, and the session checked, in the transaction the handler takes.
    let Some((agency, mut tx)) = TenantTx::begin_active(&state.pool, agency_id).await? else {
        return Err(AuthError::SessionRevoked.into());
    };
    tx.wake_on_commit(&state.commit_wake);
    let (principal, tx) = writ_auth_mfa::authenticate_in(tx, auth, &claims, origin(req)).await?;
    Ok(AgencyUser {
        agency,
        user_id: principal.user_id,
        role: principal.role,
        session_id: principal.session_id,
        stepped_up_until: principal.stepped_up_until,
        caller: caller_of(&principal, req),
        principal,
        pool: state.pool.clone(),
        route: Target::of(req),
        tx: Cell::new(Some(tx)),
    })
}

/// A platform operator (control plane). Agency tokens are refused with 403 and `authz.denied`.
#[derive(Clone)]
pub struct Operator {
    pub operator_id: Uuid,
    pub session_id: Uuid,
    caller: Caller,
    principal: Principal,
}

impl Operator {
    /// Who is acting, for what the operator's request records.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Allows the request if the operator holds `permission` and, where the matrix says so, has
    /// stepped up (401 `step-up-required` otherwise). Operators hold only platform permissions,
    /// which the extractor already checked, so this decides the step-up.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if !allows(self.principal.role, permission) {
            return Err(ApiError::Forbidden(format!(
                "platform operators may not do this ({})",
                permission.as_str()
            )));
        }
        Ok(self.principal.check_step_up(permission)?)
    }
}

impl FromRequest for Operator {
    type Error = actix_web::Error;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        to_completion(async move {
            let (principal, state) = authenticate(&req).await?;
            let caller = caller_of(&principal, &req);
            if principal.role != Role::PlatformOperator
                || !allows(principal.role, Permission::AgenciesManage)
            {
                let reason = "only platform operators may use the platform API".into();
                let permission = Some(Permission::AgenciesManage);
                let route = Target::of(&req);
                return Err(deny(&state.pool, &caller, permission, &route, reason)
                    .await
                    .into());
            }
            Ok(Operator {
                operator_id: principal.user_id,
                session_id: principal.session_id,
                caller,
                principal,
            })
        })
    }
}

/// The daily job that disables accounts without a login for 90 days (AC-2(3)). Runs once shortly
/// after start, then every 24 hours; replicas running it together do the same idempotent update.
pub async fn inactivity_job(state: AppState) {
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    loop {
        every.tick().await;
        let run = async {
            let auth = state.auth().await?;
            Ok::<_, ApiError>(writ_auth_mfa::disable_inactive_accounts(&state.pool, auth).await?)
        };
        match run.await {
            Ok(0) => {}
            Ok(n) => tracing::info!(disabled = n, "inactive accounts disabled"),
            Err(e) => tracing::warn!(error = %e, "inactivity job failed; retrying tomorrow"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, stepped_up_until: Option<DateTime<Utc>>) -> AgencyUser {
        let agency_id = Uuid::new_v4();
        let principal = Principal {
            agency_id: Some(agency_id),
            user_id: Uuid::new_v4(),
            role,
            session_id: Uuid::new_v4(),
            auth_time: 0,
            stepped_up_until,
        };
        AgencyUser {
            agency: Agency {
                id: agency_id,
                slug: "test".into(),
                name: "Test".into(),
                ident: writ_tenancy::AgencyIdent::for_agency(agency_id),
                key_provider: "local".into(),
                status: "active".into(),
                created_at: Utc::now(),
            },
            user_id: principal.user_id,
            role,
            session_id: principal.session_id,
            stepped_up_until,
            caller: Caller::user(
                principal.user_id,
                role.as_str(),
                Some(agency_id),
                None,
                None,
            ),
            principal,
            // Never connected: the allowed paths below touch no database.
            pool: sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .expect("lazy pool"),
            route: Target {
                route: "POST /test".into(),
                path: "/test".into(),
            },
            tx: Cell::new(None),
        }
    }

    #[actix_web::test]
    async fn key_rotation_needs_a_recent_step_up() {
        let plain = user(Role::AgencyAdmin, None);
        match plain.require(Permission::KeyRotate).await {
            Err(ApiError::Unauthorized { slug, .. }) => assert_eq!(slug, "step-up-required"),
            other => panic!("expected step-up-required, got {other:?}"),
        }
        let expired = user(
            Role::AgencyAdmin,
            Some(Utc::now() - chrono::Duration::seconds(1)),
        );
        assert!(expired.require(Permission::KeyRotate).await.is_err());
        let fresh = user(
            Role::AgencyAdmin,
            Some(Utc::now() + chrono::Duration::seconds(60)),
        );
        assert!(fresh.require(Permission::KeyRotate).await.is_ok());
        assert!(fresh.require(Permission::AuditRead).await.is_ok());
    }
}
