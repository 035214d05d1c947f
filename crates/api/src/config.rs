//! Configuration: environment variables only, read once into one typed struct. Every variable is
//! listed in README.md; the defaults serve a laptop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// `WRIT_BIND`: where the API listens.
    pub bind: SocketAddr,
    /// `DATABASE_URL`: PostgreSQL as the serving role (`writ_app`, never a superuser) for
    /// `writ serve`; the command line's connection. When unset, the command line uses the URLs
    /// `writ dev` writes to `WRIT_DATA_DIR/database.env`, and `writ dev` starts a private cluster.
    pub database_url: Option<String>,
    /// `WRIT_OWNER_DATABASE_URL`: PostgreSQL as the owner role (`writ_owner`): migrations,
    /// onboarding, offboarding and audit pruning. Defaults to `DATABASE_URL`.
    pub owner_database_url: Option<String>,
    /// `WRIT_DATA_DIR`: the private cluster and local keys of `writ dev`.
    pub data_dir: PathBuf,
    /// `WRIT_MASTER_KEY_FILE`: the master key of the local key provider.
    pub master_key_file: PathBuf,
    /// `WRIT_MAX_BODY_BYTES`: the largest request body accepted.
    pub max_body_bytes: usize,
    /// `WRIT_DB_MAX_CONNECTIONS`: the connection pool's size.
    pub db_max_connections: u32,
    /// `WRIT_DB_ACQUIRE_TIMEOUT_MS`: how long a request waits for a connection before a 503.
    pub db_acquire_timeout: Duration,
    /// `WRIT_UPLOAD_STALL_SECS`: a document upload that delivers less than 16 KiB in this long
    /// is ended (it holds a database transaction while it streams); 1 to 3600.
    pub upload_stall: Duration,
    /// `WRIT_BODY_TIMEOUT_SECS`: how long a request's body (all but a document upload's) may take
    /// to arrive; it is read before the request's database work.
    pub body_deadline: Duration,
    /// `WRIT_SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests get after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// `WRIT_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `WRIT_AUDIT_IDLE_CHECKPOINT_SECS`: re-sign an unchanged audit tree after this long.
    pub audit_idle_checkpoint_secs: u64,
    /// `WRIT_EXPORT_DIR`: where audit export bundles are written (shared by replicas).
    pub export_dir: PathBuf,
    /// `WRIT_EXPORT_RETENTION_DAYS`: how long a finished export bundle is kept (1 to 3650).
    pub export_retention: Duration,
    /// Authentication: `WRIT_ACCESS_TOKEN_SECS`, `WRIT_SESSION_IDLE_SECS`, `WRIT_SESSION_MAX_SECS`,
    /// `WRIT_STEP_UP_SECS`, `WRIT_ARGON2_MEMORY_KIB`, `WRIT_ARGON2_ITERATIONS`.
    pub auth: writ_auth_mfa::AuthConfig,
    /// `WRIT_RATE_LIMIT_ADMIN`, `_STAFF`, `_AUDITOR`, `_ANONYMOUS`: requests per minute.
    pub rate_limits: crate::ratelimit::RateLimitDefaults,
    /// `WRIT_KEY_PROVIDERS`: the cloud key providers this server connects to besides `local`
    /// (`aws-kms`, `azure-keyvault`, comma-separated), with their standard credentials.
    pub key_providers: Vec<String>,
    /// `WRIT_DATA_KEY_CACHE_SECS`: how long an unwrapped data key stays cached (0: never).
    pub data_key_cache_secs: u64,
    /// `WRIT_KEY_ACCESS_FLUSH_SECS`: how often key uses are written as `key.access` entries.
    pub key_access_flush_secs: u64,
    /// `WRIT_TRUST_FORWARDED_FOR`: the TLS proxy on loopback appends the client address to
    /// `X-Forwarded-For`; use it as the source IP (audit, per-IP rate limits).
    pub trust_forwarded_for: bool,
    /// Alerts (docs/NOTIFICATIONS.md): `WRIT_PUBLIC_URL`, `WRIT_SMTP_URL`, `WRIT_SMTP_FROM`,
    /// `WRIT_SMS_URL`, `WRIT_SMS_ACCOUNT_SID`, `WRIT_SMS_AUTH_TOKEN`, `WRIT_SMS_FROM`,
    /// `WRIT_NOTIFY_POLL_MS`, `WRIT_NOTIFY_MAX_ATTEMPTS`, `WRIT_NOTIFY_BACKOFF_MS`,
    /// `WRIT_NOTIFY_BACKOFF_MAX_SECS`.
    pub notify: writ_notify::NotifyConfig,
    /// `WRIT_ROUTING_INTERVAL_SECS`: how often queued warrants are offered and escalated.
    pub routing_interval_secs: u64,
    /// `WRIT_DOCUMENT_STORE`: `postgres` (default) or `s3://bucket[/prefix]` (S3 settings from the
    /// standard AWS environment), where documents' ciphertext is kept.
    pub document_store: writ_documents::DocumentStore,
    /// `WRIT_ARCHIVE_DESTINATIONS`: the comma-separated `s3://bucket[/prefix]` and `file:///dir`
    /// URLs agencies may archive their audit logs to (policy `audit.archive`), at or below one.
    /// Unset: none (`writ dev`: `<WRIT_DATA_DIR>/archives`).
    pub archive_destinations: writ_audit_log::ArchiveDestinations,
    /// `WRIT_VIDEO_WEBHOOK_SECRET`: the secret shared with the media provider that signs its
    /// webhooks (at least 32 bytes). Unset: no webhooks are taken and no oath session opens.
    pub video_webhook_secret: Option<writ_warrant_workflow::video::WebhookSecret>,
    /// `WRIT_TSA_URL` and `WRIT_TSA_CERT`: the RFC 3161 time-stamping authority that stamps
    /// signature records, and the PEM file of the certificate(s) its tokens must verify with.
    /// Unset: records carry no timestamp.
    pub timestamp_authority: Option<writ_esign::timestamp::TimestampAuthority>,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
            var: name,
            reason: format!("{v:?}: {e}"),
        }),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(var("WRIT_DATA_DIR").unwrap_or_else(|| ".writ".into()));
        let master_key_file = var("WRIT_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let export_dir = var("WRIT_EXPORT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("exports"));
        let bind: SocketAddr = parsed("WRIT_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        if !bind.ip().is_loopback() {
            // Plain HTTP carries tokens and CJI: off loopback it must sit behind TLS, which this
            // build terminates only at a proxy. Refuse rather than serve cleartext by accident.
            return Err(ConfigError {
                var: "WRIT_BIND",
                reason: format!(
                    "{bind} is not a loopback address; serve through a TLS-terminating proxy bound to loopback"
                ),
            });
        }
        let max_body_bytes = parsed("WRIT_MAX_BODY_BYTES", 1024 * 1024)?;
        if max_body_bytes == 0 {
            return Err(ConfigError {
                var: "WRIT_MAX_BODY_BYTES",
                reason: "must be positive".into(),
            });
        }
        let auth = auth_config()?;
        let d = crate::ratelimit::RateLimitDefaults::default();
        let rate_limits = crate::ratelimit::RateLimitDefaults {
            admin: positive("WRIT_RATE_LIMIT_ADMIN", d.admin)?,
            staff: positive("WRIT_RATE_LIMIT_STAFF", d.staff)?,
            auditor: positive("WRIT_RATE_LIMIT_AUDITOR", d.auditor)?,
            anonymous: positive("WRIT_RATE_LIMIT_ANONYMOUS", d.anonymous)?,
        };
        let key_providers: Vec<String> = var("WRIT_KEY_PROVIDERS")
            .unwrap_or_default()
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty() && p != "local")
            .collect();
        if let Some(bad) = key_providers
            .iter()
            .find(|p| !matches!(p.as_str(), "aws-kms" | "azure-keyvault"))
        {
            return Err(ConfigError {
                var: "WRIT_KEY_PROVIDERS",
                reason: format!("{bad:?}: expected aws-kms or azure-keyvault"),
            });
        }
        let video_webhook_secret = var("WRIT_VIDEO_WEBHOOK_SECRET")
            .map(|s| writ_warrant_workflow::video::WebhookSecret::new(&s))
            .transpose()
            .map_err(|reason| ConfigError {
                var: "WRIT_VIDEO_WEBHOOK_SECRET",
                reason,
            })?;
        let tsa_cert = var("WRIT_TSA_CERT").map(std::path::PathBuf::from);
        let timestamp_authority = writ_esign::timestamp::TimestampAuthority::from_settings(
            var("WRIT_TSA_URL").as_deref(),
            tsa_cert.as_deref(),
        )
        .map_err(|reason| ConfigError {
            var: "WRIT_TSA_URL",
            reason,
        })?;
        let document_store =
            writ_documents::DocumentStore::from_url(var("WRIT_DOCUMENT_STORE").as_deref())
                .map_err(|reason| ConfigError {
                    var: "WRIT_DOCUMENT_STORE",
                    reason,
                })?;
        let archive_destinations = writ_audit_log::ArchiveDestinations::parse(
            &var("WRIT_ARCHIVE_DESTINATIONS").unwrap_or_default(),
        )
        .map_err(|reason| ConfigError {
            var: "WRIT_ARCHIVE_DESTINATIONS",
            reason,
        })?;
        let notify = writ_notify::NotifyConfig::from_vars(var)
            .map_err(|(var, reason)| ConfigError { var, reason })?;
        Ok(Self {
            notify,
            routing_interval_secs: positive("WRIT_ROUTING_INTERVAL_SECS", 15)?.into(),
            auth,
            document_store,
            archive_destinations,
            key_providers,
            video_webhook_secret,
            timestamp_authority,
            data_key_cache_secs: parsed("WRIT_DATA_KEY_CACHE_SECS", 300)?,
            key_access_flush_secs: positive("WRIT_KEY_ACCESS_FLUSH_SECS", 60)?.into(),
            rate_limits,
            trust_forwarded_for: parsed("WRIT_TRUST_FORWARDED_FOR", false)?,
            bind,
            database_url: var("DATABASE_URL"),
            owner_database_url: var("WRIT_OWNER_DATABASE_URL"),
            data_dir,
            master_key_file,
            export_dir,
            export_retention: Duration::from_secs(
                u64::from(positive(
                    "WRIT_EXPORT_RETENTION_DAYS",
                    writ_audit_log::DEFAULT_RETENTION_DAYS as u32,
                )?)
                .min(3650)
                    * 24
                    * 3600,
            ),
            max_body_bytes,
            db_max_connections: parsed("WRIT_DB_MAX_CONNECTIONS", 20)?,
            db_acquire_timeout: Duration::from_millis(parsed("WRIT_DB_ACQUIRE_TIMEOUT_MS", 3000)?),
            upload_stall: Duration::from_secs(parsed("WRIT_UPLOAD_STALL_SECS", 30)?.clamp(1, 3600)),
            body_deadline: Duration::from_secs(parsed("WRIT_BODY_TIMEOUT_SECS", 30)?.clamp(1, 600)),
            shutdown_timeout_secs: parsed("WRIT_SHUTDOWN_TIMEOUT_SECS", 30)?,
            audit_idle_checkpoint_secs: parsed("WRIT_AUDIT_IDLE_CHECKPOINT_SECS", 3600)?,
            workers: var("WRIT_WORKERS").map(|v| v.parse()).transpose().map_err(
                |e: std::num::ParseIntError| ConfigError {
                    var: "WRIT_WORKERS",
                    reason: e.to_string(),
                },
            )?,
        })
    }
}

fn positive(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    let v: u32 = parsed(name, default)?;
    if v == 0 {
        return Err(ConfigError {
            var: name,
            reason: "must be positive".into(),
        });
    }
    Ok(v)
}

fn secs(name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(u64::from(positive(
        name,
        u32::try_from(default.as_secs()).unwrap_or(u32::MAX),
    )?)))
}

/// Authentication settings; the defaults are the CJIS values.
fn auth_config() -> Result<writ_auth_mfa::AuthConfig, ConfigError> {
    let d = writ_auth_mfa::AuthConfig::default();
    let access_ttl = secs("WRIT_ACCESS_TOKEN_SECS", d.access_ttl)?;
    if access_ttl > writ_auth_mfa::MAX_ACCESS_TTL {
        return Err(ConfigError {
            var: "WRIT_ACCESS_TOKEN_SECS",
            reason: "at most 900 (15 minutes)".into(),
        });
    }
    let argon2_memory_kib = positive("WRIT_ARGON2_MEMORY_KIB", d.argon2_memory_kib)?;
    if argon2_memory_kib < 8 {
        return Err(ConfigError {
            var: "WRIT_ARGON2_MEMORY_KIB",
            reason: "at least 8".into(),
        });
    }
    Ok(writ_auth_mfa::AuthConfig {
        access_ttl,
        idle_timeout: secs("WRIT_SESSION_IDLE_SECS", d.idle_timeout)?,
        absolute_timeout: secs("WRIT_SESSION_MAX_SECS", d.absolute_timeout)?,
        step_up_window: secs("WRIT_STEP_UP_SECS", d.step_up_window)?,
        argon2_memory_kib,
        argon2_iterations: positive("WRIT_ARGON2_ITERATIONS", d.argon2_iterations)?,
        ..d
    })
}
