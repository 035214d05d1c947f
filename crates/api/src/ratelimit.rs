//! Rate limits (DESIGN §3): token buckets per user (by role) and, for unauthenticated requests, per
//! source IP, with `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every response
//! and 429 + `Retry-After` over the limit. Limits come from the agency policy `ratelimit.<role>`
//! when set, else from the environment defaults. Hits are audited, at most once per caller a minute.
//! A request refused as malformed or invalid (400, 422) costs an authenticated caller ten tokens
//! instead of one, so repeated validation failures tighten its limit (`validation.failed`,
//! sampled likewise; recorded for source addresses too, which are not penalized: many people
//! may share one).
//!
//! The buckets live in this process (governor's GCRA): with N replicas a caller gets up to N times
//! the limit, which is what a per-replica limiter can promise.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;
use writ_auth_mfa::{Claims, Principal, Role};

use crate::auth::VerifiedClaims;
use crate::{ApiError, AppState};

/// Requests per minute by role, and for unauthenticated callers per source IP.
#[derive(Debug, Clone)]
pub struct RateLimitDefaults {
    /// agency_admin and platform_operator (`WRIT_RATE_LIMIT_ADMIN`, 1000).
    pub admin: u32,
    /// officer, supervisor, prosecutor, judge (`WRIT_RATE_LIMIT_STAFF`, 500).
    pub staff: u32,
    /// auditor (`WRIT_RATE_LIMIT_AUDITOR`, 100).
    pub auditor: u32,
    /// unauthenticated, per source IP (`WRIT_RATE_LIMIT_ANONYMOUS`, 50).
    pub anonymous: u32,
}

impl Default for RateLimitDefaults {
    fn default() -> Self {
        Self {
            admin: 1000,
            staff: 500,
            auditor: 100,
            anonymous: 50,
        }
    }
}

impl RateLimitDefaults {
    pub fn for_role(&self, role: Role) -> u32 {
        match role {
            Role::AgencyAdmin | Role::PlatformOperator => self.admin,
            Role::Auditor => self.auditor,
            Role::Officer | Role::Supervisor | Role::Prosecutor | Role::Judge => self.staff,
        }
    }
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// An agency's rate-limit policies and when they were read.
type CachedPolicies = (Instant, HashMap<Role, u32>);

const POLICY_TTL: Duration = Duration::from_secs(30);
const AUDIT_SAMPLE: Duration = Duration::from_secs(60);
/// Tokens a refused request (400, 422) costs its caller's bucket on top of its own.
pub const VALIDATION_PENALTY: u32 = 9;

/// The buckets, one keyed limiter per distinct limit.
pub struct RateLimits {
    defaults: RateLimitDefaults,
    clock: DefaultClock,
    limiters: Mutex<HashMap<u32, Arc<Keyed>>>,
    policies: Mutex<HashMap<Uuid, CachedPolicies>>,
    audited: Mutex<HashMap<String, Instant>>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    /// `Some(seconds)` when the request is refused.
    pub retry_after_secs: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RateLimits {
    pub fn new(defaults: RateLimitDefaults) -> Self {
        Self {
            defaults,
            clock: DefaultClock::default(),
            limiters: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            audited: Mutex::new(HashMap::new()),
        }
    }

    fn limiter(&self, limit: u32) -> Arc<Keyed> {
        let mut map = lock(&self.limiters);
        map.entry(limit)
            .or_insert_with(|| {
                let n = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                Arc::new(RateLimiter::keyed(Quota::per_minute(n)).with_middleware())
            })
            .clone()
    }

    /// Takes one token from `key`'s bucket of `limit` per minute.
    pub fn check(&self, key: &str, limit: u32) -> Decision {
        let limiter = self.limiter(limit);
        let per_token = 60.0 / f64::from(limit.max(1));
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    limit,
                    remaining,
                    reset_secs: (f64::from(limit.saturating_sub(remaining)) * per_token).ceil()
                        as u64,
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Decision {
                    limit,
                    remaining: 0,
                    reset_secs: (f64::from(limit) * per_token).ceil() as u64,
                    retry_after_secs: Some(secs.max(1)),
                }
            }
        }
    }

    /// Takes [`VALIDATION_PENALTY`] more tokens from `key`'s bucket, as many as it has; how
    /// many it took.
    pub fn penalize(&self, key: &str, limit: u32) -> u32 {
        let limiter = self.limiter(limit);
        let key = key.to_owned();
        let mut taken = 0;
        while taken < VALIDATION_PENALTY && limiter.check_key(&key).is_ok() {
            taken += 1;
        }
        taken
    }

    /// Whether a rate-limit hit by `caller` should be audited now (once a minute at most).
    fn sample(&self, caller: &str) -> bool {
        let mut map = lock(&self.audited);
        let now = Instant::now();
        if map.len() > 10_000 {
            map.retain(|_, t| now.duration_since(*t) < AUDIT_SAMPLE);
        }
        match map.get(caller) {
            Some(t) if now.duration_since(*t) < AUDIT_SAMPLE => false,
            _ => {
                map.insert(caller.to_owned(), now);
                true
            }
        }
    }

    /// The deployment's limit for a role while its agency sets none (`WRIT_RATE_LIMIT_*`).
    pub fn default_for(&self, role: Role) -> u32 {
        self.defaults.for_role(role)
    }

    /// Drops an agency's cached policies (after a change through this process).
    pub fn forget_policies(&self, agency: Uuid) {
        lock(&self.policies).remove(&agency);
    }

    /// The limit for an agency user: the agency's `ratelimit.<role>` policy, else the default.
    async fn limit_for(&self, state: &AppState, agency: Option<Uuid>, role: Role) -> u32 {
        let default = self.defaults.for_role(role);
        let Some(agency) = agency else {
            return default;
        };
        if let Some((at, p)) = lock(&self.policies).get(&agency)
            && at.elapsed() < POLICY_TTL
        {
            return p.get(&role).copied().unwrap_or(default);
        }
        let fetched = writ_auth_mfa::rate_limit_policies(&state.pool, agency)
            .await
            .unwrap_or_default();
        let limit = fetched.get(&role).copied().unwrap_or(default);
        lock(&self.policies).insert(agency, (Instant::now(), fetched));
        if lock(&self.limiters).len() > 64 {
            lock(&self.limiters).clear();
        } else {
            for l in lock(&self.limiters).values() {
                l.retain_recent();
            }
        }
        limit
    }
}

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

pub(crate) fn insert_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: u64) {
    h.insert(LIMIT, HeaderValue::from(limit));
    h.insert(REMAINING, HeaderValue::from(remaining));
    h.insert(RESET, HeaderValue::from(reset));
}

pub(crate) fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Routes that take no bearer token (credentials, refresh tokens, enrollment tokens, signed
/// webhooks): always charged to the source address. A token sent along anyway — a valid one of
/// the caller's own — must not move password guessing to the far larger bucket of its role.
pub(crate) fn anonymous_route(path: &str) -> bool {
    matches!(
        path,
        "/v1/auth/login"
            | "/v1/platform/auth/login"
            | "/v1/auth/refresh"
            | "/v1/platform/auth/refresh"
            | "/v1/auth/enroll"
            | "/v1/auth/enroll/confirm"
            | "/v1/webhooks/video"
    )
}

/// Records `action` about the caller in a transaction of its own, off the request's path: in
/// its agency's chain, or, for an unauthenticated caller (no agency to charge it to), as a
/// platform event with its source address.
fn audit_caller(
    state: &AppState,
    principal: Option<&Principal>,
    ip: &str,
    action: &'static str,
    detail: serde_json::Value,
) {
    let pool = state.pool.clone();
    let principal = principal.cloned();
    let actor = principal
        .as_ref()
        .map_or_else(writ_audit_log::Actor::anonymous, Principal::actor);
    let event = writ_audit_log::Event::new(action, actor)
        .failure()
        .source_ip(Some(ip.to_owned()))
        .detail(detail);
    actix_web::rt::spawn(async move {
        let recorded = match principal {
            Some(p) => writ_auth_mfa::record_caller_event(&pool, &p, event).await,
            None => writ_auth_mfa::record_platform_event(&pool, event).await,
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, action, "could not audit the caller's event");
        }
    });
}

/// The middleware: identifies the caller (a verified access token, else the source IP), takes a
/// token from its bucket, and answers 429 when there is none.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if exempt(req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.get_ref().clone())
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let ip = crate::auth::source_ip(req.request()).unwrap_or_else(|| "unknown".into());
    let bearer = crate::auth::bearer(req.request()).filter(|_| !anonymous_route(req.path()));
    let claims: Option<Claims> = match bearer {
        Some(token) => match state.auth().await {
            Ok(auth) => auth.tokens.verify(token).ok(),
            Err(_) => None,
        },
        None => None,
    };
    let limits = state.rate_limits.clone();
    let (key, limit, principal) = match &claims {
        Some(c) => {
            let role = c.role.parse::<Role>().unwrap_or(Role::Auditor);
            let limit = limits.limit_for(&state, c.aid, role).await;
            let principal = Principal {
                agency_id: c.aid,
                user_id: c.sub,
                role,
                session_id: c.sid,
                auth_time: c.auth_time,
                stepped_up_until: None,
            };
            (format!("user:{}", c.sub), limit, Some(principal))
        }
        None => (format!("ip:{ip}"), limits.defaults.anonymous, None),
    };
    if let Some(c) = claims {
        req.extensions_mut().insert(VerifiedClaims(c));
    }
    let decision = limits.check(&key, limit);
    if let Some(retry) = decision.retry_after_secs {
        if limits.sample(&key) {
            audit_caller(
                &state,
                principal.as_ref(),
                &ip,
                "ratelimit.exceeded",
                match principal {
                    Some(_) => serde_json::json!({ "limitPerMinute": limit }),
                    None => serde_json::json!({ "limit": limit, "scope": "source-ip" }),
                },
            );
        }
        let err = ApiError::TooManyRequests {
            limit,
            retry_after_secs: retry,
            reset_secs: decision.reset_secs,
        };
        return Ok(req.into_response(HttpResponse::from_error(err)));
    }
    let method = req.method().to_string();
    let mut res = next.call(req).await?.map_into_boxed_body();
    let status = res.status().as_u16();
    let mut remaining = decision.remaining;
    if matches!(status, 400 | 422) {
        // Repeated invalid requests tighten the caller's limit: each costs the bucket
        // VALIDATION_PENALTY more tokens (DESIGN §3). Not for a source address, which many
        // people may share (a station behind one address). Sampled into the audit like a 429.
        if principal.is_some() {
            remaining = remaining.saturating_sub(limits.penalize(&key, limit));
        }
        if limits.sample(&format!("validation:{key}")) {
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(no route)".to_owned());
            audit_caller(
                &state,
                principal.as_ref(),
                &ip,
                "validation.failed",
                serde_json::json!({
                    "status": status,
                    "method": method,
                    "route": route,
                    "penaltyTokens": VALIDATION_PENALTY,
                }),
            );
        }
    }
    insert_headers(
        res.headers_mut(),
        decision.limit,
        remaining,
        decision.reset_secs,
    );
    Ok(res)
}
