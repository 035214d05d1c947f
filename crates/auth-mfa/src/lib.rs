//! writ-auth-mfa owns who a caller is and what they may do: passwords (argon2id), TOTP second
//! factor with replay refusal, database-backed sessions and JWTs, lockout, step-up re-authentication
//! and the role permission matrix. It never sees warrant content and never decides workflow state.
//!
//! Agency users live in their agency's schema (reached only through `TenantTx`); platform
//! operators live in the control plane. Both share one credential layout and one implementation,
//! selected by [`Realm`]. Every change records its audit event in the same transaction.

mod accounts;
mod admin;
mod config;
mod error;
mod password;
mod policies;
mod rbac;
mod realm;
mod session;
pub mod tokens;
pub mod totp;

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;
use writ_keys::KeyProvider;
use zeroize::Zeroizing;

pub use accounts::{
    Contact, ContactPatch, UpdatedUser, check_email, check_phone, contacts, set_contact,
};
pub use accounts::{
    CreatedUser, NewUser, TotpEnrollment, User, UserPatch, begin_enrollment,
    check_badge_or_judicial_id, confirm_enrollment, create_user, deactivate_user,
    deactivate_username, enroll, enroll_confirm, ensure_demo_badge, ensure_demo_user, get_user,
    list_users, normalize_username, unlock_user, unlock_username, update_user,
};
pub use admin::{
    Refused, create_operator, disable_inactive_accounts, rate_limit_policies, record_caller_event,
    record_denial, record_denial_in, record_platform_event,
};
pub use config::{AuthConfig, MAX_ACCESS_TTL, SYSTEM_USE_BANNER};
pub use error::{AuthError, BANNER_ACKNOWLEDGEMENT_REQUIRED};
pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordHasherConfig, banned_password_count,
    check_password_policy,
};
pub use policies::{
    LOCKOUT_POLICY, LockoutPolicy, POLICIES, RATE_LIMIT_PREFIX, delete_policy, rate_limit_value,
    set_policy,
};
pub use rbac::{MATRIX, Permission, Role, Rule, allows};
pub use realm::Realm;
pub use session::{
    IssuedTokens, LoginAttempt, Principal, authenticate, authenticate_in, authenticate_open, login,
    logout, refresh, step_up,
};
pub use tokens::{Claims, TokenKeys, TokenRealm};

/// Everything authentication needs at run time: settings, the password hasher, the token keys
/// and the key provider that seals TOTP secrets. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pub config: AuthConfig,
    pub tokens: Arc<TokenKeys>,
    hasher: PasswordHasherConfig,
    keys: KeyProvider,
}

impl Auth {
    /// Loads (or creates) the token-signing keys and prepares the hasher.
    pub async fn new(
        pool: &PgPool,
        keys: KeyProvider,
        config: AuthConfig,
    ) -> Result<Self, AuthError> {
        let tokens = TokenKeys::load_or_create(pool, &keys).await?;
        let hasher = PasswordHasherConfig::new(config.argon2_memory_kib, config.argon2_iterations)?;
        Ok(Self {
            config,
            tokens: Arc::new(tokens),
            hasher,
            keys,
        })
    }

    /// argon2id off the async workers.
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let hasher = self.hasher.clone();
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(AuthError::internal)?
    }

    /// Verifies against `hash`, or (same cost) against a dummy hash when there is none.
    pub(crate) async fn verify_password(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, AuthError> {
        let hasher = self.hasher.clone();
        let password = Zeroizing::new(password.to_owned());
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || hasher.verify(&password, hash.as_deref()))
            .await
            .map_err(AuthError::internal)
    }

    pub(crate) fn needs_rehash(&self, hash: &str) -> bool {
        self.hasher.needs_rehash(hash)
    }

    fn totp_aad(user_id: Uuid) -> Vec<u8> {
        format!("writ:totp:{user_id}").into_bytes()
    }

    pub(crate) fn seal_totp(&self, user_id: Uuid, secret: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.keys
            .local()
            .seal_secret(secret, &Self::totp_aad(user_id))
            .map_err(AuthError::internal)
    }

    pub(crate) fn open_totp(
        &self,
        user_id: Uuid,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AuthError> {
        self.keys
            .local()
            .open_secret(sealed, &Self::totp_aad(user_id))
            .map_err(AuthError::internal)
    }
}
