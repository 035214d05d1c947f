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
    /// The media provider's webhook secret; `None`: no video provider (see `with_video`).
    pub video_webhook_secret: Option<Arc<writ_warrant_workflow::video::WebhookSecret>>,
    /// `WRIT_DOCUMENT_STORE`: where documents' ciphertext is kept (PostgreSQL unless S3 is set).
    pub documents: writ_documents::DocumentStore,
    /// `WRIT_TSA_URL`: the time-stamping authority of signature records; `None`: none.
    pub timestamp_authority: Option<Arc<writ_esign::timestamp::TimestampAuthority>>,
    /// Wakes this process's audit sequencer after a request's audited commit (when it runs).
    pub commit_wake: writ_tenancy::CommitWake,
    /// How many document uploads may stream at once, and how slowly (`crate::upload_pace`).
    pub upload_slots: crate::upload_pace::UploadSlots,
    pub upload_stall: std::time::Duration,
    /// `WRIT_EXPORT_DIR`: audit export bundles, and the final export of an offboarding.
    pub export_dir: std::path::PathBuf,
    /// `WRIT_ARCHIVE_DESTINATIONS`: where agencies may archive their audit logs.
    pub archive_destinations: writ_audit_log::ArchiveDestinations,
    auth_config: AuthConfig,
    /// Loaded on first use, so the server starts (and reports unready) while the database is down.
    auth: Arc<OnceCell<Auth>>,
    /// Set when the server begins to shut down: long responses (event streams) end at once
    /// instead of holding the drain until its timeout.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
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
        let upload_slots =
            crate::upload_pace::UploadSlots::for_pool(pool.options().get_max_connections());
        Self {
            pool,
            owner_pool,
            keys,
            rate_limits: Arc::new(RateLimits::new(rate_limits)),
            trust_forwarded_for,
            video_webhook_secret: None,
            documents: writ_documents::DocumentStore::default(),
            timestamp_authority: None,
            commit_wake: writ_tenancy::CommitWake::new(),
            upload_slots,
            upload_stall: std::time::Duration::from_secs(30),
            export_dir: std::path::PathBuf::from(".writ/exports"),
            archive_destinations: writ_audit_log::ArchiveDestinations::default(),
            auth_config,
            auth: Arc::new(OnceCell::new()),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// `WRIT_UPLOAD_STALL_SECS`.
    pub fn with_upload_stall(mut self, stall: std::time::Duration) -> Self {
        self.upload_stall = stall;
        self
    }

    /// `WRIT_EXPORT_DIR`.
    pub fn with_export_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.export_dir = dir;
        self
    }

    /// `WRIT_ARCHIVE_DESTINATIONS`.
    pub fn with_archive_destinations(
        mut self,
        destinations: writ_audit_log::ArchiveDestinations,
    ) -> Self {
        self.archive_destinations = destinations;
        self
    }

    /// Tells every long response that the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes `true` when the server begins to shut down.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Takes the media provider's webhooks signed with `secret` (`WRIT_VIDEO_WEBHOOK_SECRET`).
    pub fn with_video(
        mut self,
        secret: Option<writ_warrant_workflow::video::WebhookSecret>,
    ) -> Self {
        self.video_webhook_secret = secret.map(Arc::new);
        self
    }

    /// The same state with documents stored in `store`.
    pub fn with_document_store(mut self, store: writ_documents::DocumentStore) -> Self {
        self.documents = store;
        self
    }

    /// Signature records stamped by `tsa` (`WRIT_TSA_URL`).
    pub fn with_timestamp_authority(
        mut self,
        tsa: Option<writ_esign::timestamp::TimestampAuthority>,
    ) -> Self {
        self.timestamp_authority = tsa.map(Arc::new);
        self
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
