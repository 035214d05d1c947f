//! Why an outbox operation failed, classified for the API's one mapping to HTTP.

use writ_error_kind::{Classify, ErrorKind, classify_sqlx};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A stored row the code cannot read: the schema and the code disagree.
    #[error("stored notification data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl NotifyError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Classify for NotifyError {
    fn kind(&self) -> ErrorKind {
        match self {
            NotifyError::Invalid { field, reason } => ErrorKind::invalid(field, reason),
            NotifyError::Corrupt(_) => ErrorKind::Internal,
            NotifyError::Tenancy(e) => e.kind(),
            NotifyError::Audit(e) => e.kind(),
            NotifyError::Database(e) => classify_sqlx(e),
        }
    }
}

/// Why one delivery attempt failed. A transient failure is retried with backoff; the others end
/// the notification as `failed` at once. The text (kept as the notification's `lastError`, for the
/// agency's admins) may quote a relay or provider; the audit entry gets only [`SendError::class`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("no transport configured for {0}")]
    NotConfigured(&'static str),
    /// The recipient cannot be reached on this channel: no address on file, an inactive account.
    #[error("{0}")]
    Unreachable(String),
    /// The relay or provider refused the message for good (SMTP 5xx, provider 4xx).
    #[error("{0}")]
    Refused(String),
    /// Worth another attempt: connection failure, timeout, SMTP 4xx, provider 429 or 5xx.
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SendError::Transient(_))
    }

    /// A reason without addresses or quoted replies, for the audit chain.
    pub fn class(&self) -> &'static str {
        match self {
            SendError::NotConfigured(_) => "no_transport",
            SendError::Unreachable(_) => "recipient_unreachable",
            SendError::Refused(_) => "refused",
            SendError::Transient(_) => "unavailable",
        }
    }
}
