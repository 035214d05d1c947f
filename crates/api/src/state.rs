use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::OnceCell;
use writ_auth_mfa::{Auth, AuthConfig};
use writ_keys::KeyProvider;

use crate::ApiError;
use crate::ratelimit::{RateLimitDefaults, RateLimits};

/// What every handler may reach. Cheap to clone: pools and providers are shared handles.
#[derive(Clone)]
pub struct AppState {
    /// The serving role's pool (`writ_app`): every request and most background work.
    pub pool: PgPool,
    /// The owner role's pool (`writ_owner`): onboarding, offboarding and audit pruning, which
    /// create roles and schemas or delete audit entries. Never used for a request's own data.
    pub owner_pool: PgPool,
    pub keys: KeyProvider,
    /// Per-process token buckets (per user, per source IP).
    pub rate_limits: Arc<RateLimits>,
    /// `WRIT_TRUST_FORWARDED_FOR`: take the source IP from a loopback proxy's `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    auth_config: AuthConfig,
    /// Loaded on first use, so the server starts (and reports unready) while the database is down.
    auth: Arc<OnceCell<Auth>>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        owner_pool: PgPool,
        keys: KeyProvider,
        auth_config: AuthConfig,
        rate_limits: RateLimitDefaults,
        trust_forwarded_for: bool,
    ) -> Self {
        Self {
            pool,
            owner_pool,
            keys,
            rate_limits: Arc::new(RateLimits::new(rate_limits)),
            trust_forwarded_for,
            auth_config,
            auth: Arc::new(OnceCell::new()),
        }
    }

    /// Authentication: token keys (created in the control plane on first use), hasher, settings.
    pub async fn auth(&self) -> Result<&Auth, ApiError> {
        self.auth
            .get_or_try_init(|| Auth::new(&self.pool, self.keys.clone(), self.auth_config.clone()))
            .await
            .map_err(ApiError::from)
    }

    /// The authentication service if it has been loaded already (middleware never blocks on it).
    pub fn auth_if_loaded(&self) -> Option<&Auth> {
        self.auth.get()
    }
}
