use writ_error_kind::{Classify, ErrorKind, classify_sqlx};

/// The problem slug of a login without the system-use banner's acknowledgement; the gateway adds
/// the banner's text to that problem.
pub const BANNER_ACKNOWLEDGEMENT_REQUIRED: &str = "banner-acknowledgement-required";

/// What can go wrong in authentication and authorisation. Each variant is one kind of failure
/// ([`Classify`]); none of them says whether a username exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 400: the system-use banner (CJIS AC-8) was not acknowledged.
    #[error("acknowledge the system-use banner (bannerAck: true) to log in")]
    BannerNotAcknowledged,
    /// 401: wrong agency, username, password or one-time code — never which one.
    #[error("the agency, username, password or one-time code is not correct")]
    InvalidCredentials,
    /// 401: the account is locked after repeated failures until an administrator unlocks it (or
    /// the agency's `auth.lockout` period passes).
    #[error(
        "the account is locked after repeated failed logins; an administrator must unlock it \
         (or, where the agency's lockout policy allows, the lock ends after its period)"
    )]
    AccountLocked,
    /// 401: no token, or a token that is malformed, forged or expired.
    #[error("{0}")]
    InvalidToken(String),
    /// 401: the session ended (idle or absolute timeout); log in again.
    #[error("{0}")]
    ReauthenticationRequired(String),
    /// 401: the session was revoked (logout, deactivation, refresh token reuse).
    #[error("the session has been revoked; log in again")]
    SessionRevoked,
    /// 401: the action needs a TOTP re-entry within the last minutes (POST /v1/auth/reauth).
    #[error("this action needs a recent second-factor confirmation: POST /v1/auth/reauth")]
    StepUpRequired,
    /// 401: the one-time code given for a step-up or enrollment is wrong or already used.
    #[error("the one-time code is not correct or was already used")]
    InvalidCode,
    /// 403: the caller's role lacks the permission.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource in the caller's agency.
    #[error("not found")]
    NotFound,
    /// 409: conflicts with existing state (username taken, wrong status).
    #[error("{0}")]
    Conflict(String),
    /// 422: an invalid field, with the reason.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl AuthError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl Classify for AuthError {
    fn kind(&self) -> ErrorKind {
        let unauthorized = |slug| ErrorKind::Unauthorized {
            slug,
            detail: self.to_string(),
        };
        match self {
            AuthError::BannerNotAcknowledged => ErrorKind::BadRequest {
                slug: BANNER_ACKNOWLEDGEMENT_REQUIRED,
                detail: self.to_string(),
            },
            AuthError::InvalidCredentials => unauthorized("invalid-credentials"),
            AuthError::AccountLocked => unauthorized("account-locked"),
            AuthError::InvalidToken(_) => unauthorized("invalid-token"),
            AuthError::ReauthenticationRequired(_) => unauthorized("reauthentication-required"),
            AuthError::SessionRevoked => unauthorized("session-revoked"),
            AuthError::StepUpRequired => unauthorized("step-up-required"),
            AuthError::InvalidCode => unauthorized("invalid-code"),
            AuthError::Forbidden(detail) => ErrorKind::Forbidden {
                detail: detail.clone(),
            },
            AuthError::NotFound => ErrorKind::NotFound,
            AuthError::Conflict(detail) => ErrorKind::conflict(detail.clone()),
            AuthError::Invalid { field, reason } => ErrorKind::invalid(*field, reason.clone()),
            AuthError::Internal(_) => ErrorKind::Internal,
            AuthError::Tenancy(e) => e.kind(),
            AuthError::Audit(e) => e.kind(),
            AuthError::Database(e) => classify_sqlx(e),
        }
    }
}
