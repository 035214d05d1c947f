use std::time::Duration;

/// Authentication settings. Defaults are the CJIS values; the api crate overrides them from the
/// environment (tests shorten timeouts and cheapen argon2).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Access token lifetime; never more than 15 minutes.
    pub access_ttl: Duration,
    /// A session unused this long ends (CJIS: 30 minutes).
    pub idle_timeout: Duration,
    /// How often a request in use writes the session's `last_seen_at` (1 minute, and at most a
    /// tenth of `idle_timeout`): the idle limit is exact to within this, erring towards ending
    /// early, and most requests write nothing.
    pub session_touch: Duration,
    /// A session ends this long after login, used or not (12 hours).
    pub absolute_timeout: Duration,
    /// How long a TOTP re-entry counts as a step-up (5 minutes).
    pub step_up_window: Duration,
    /// Lifetime of an enrollment token (72 hours).
    pub enrollment_ttl: Duration,
    /// Failed attempts that lock the account, each within `lockout_window` of the one before
    /// (AC-7: 5 in 15 minutes, and so any 5 within 15 minutes).
    pub lockout_threshold: i32,
    pub lockout_window: Duration,
    /// Accounts without a login for this long are disabled by the daily job (AC-2(3): 90 days).
    pub inactivity: Duration,
    /// argon2id memory cost in KiB and iterations (OWASP: 19 MiB, 2 iterations).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
}

pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_ttl: MAX_ACCESS_TTL,
            idle_timeout: Duration::from_secs(30 * 60),
            session_touch: Duration::from_secs(60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            step_up_window: Duration::from_secs(5 * 60),
            enrollment_ttl: Duration::from_secs(72 * 3600),
            lockout_threshold: 5,
            lockout_window: Duration::from_secs(15 * 60),
            inactivity: Duration::from_secs(90 * 24 * 3600),
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            totp_issuer: "Writ".into(),
        }
    }
}

/// The system-use notification every login must acknowledge (CJIS AC-8).
pub const SYSTEM_USE_BANNER: &str = "You are accessing a criminal justice information system. Use is \
restricted to authorized users for authorized purposes. All activity is monitored and recorded in a \
tamper-evident audit log; use of the system constitutes consent to monitoring. Unauthorized use or \
disclosure of criminal justice information is prohibited and may result in criminal, civil and \
administrative penalties.";
