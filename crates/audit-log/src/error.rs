use writ_error_kind::{Classify, Dependency, ErrorKind, classify_sqlx};

use crate::{ARCHIVE_POLICY, ArchiveError, RETENTION_POLICY, RetentionError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// The event would not fit in one entry: what caused it (a field of the request) is too big.
    #[error("the audit entry would be {bytes} bytes, the limit is {limit}")]
    EventTooLarge { bytes: usize, limit: usize },
    #[error("audit chain of agency {agency}: {reason}")]
    Corrupt { agency: String, reason: String },
    #[error("event {0} was not sequenced in time")]
    ReceiptTimeout(uuid::Uuid),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("export output: {0}")]
    Io(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Keys(#[from] writ_keys::KeyError),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Classify for AuditError {
    fn kind(&self) -> ErrorKind {
        match self {
            AuditError::InvalidRequest(reason) => ErrorKind::invalid("request", reason.clone()),
            AuditError::NotFound => ErrorKind::NotFound,
            AuditError::EventTooLarge { limit, .. } => ErrorKind::TooLarge {
                limit: *limit as u64,
            },
            // An event the server built wrong, a chain that no longer verifies, a sequencer that
            // did not answer, an export file that could not be written: the server's to fix.
            AuditError::InvalidEvent(_)
            | AuditError::Corrupt { .. }
            | AuditError::ReceiptTimeout(_)
            | AuditError::Io(_) => ErrorKind::Internal,
            AuditError::Keys(e) => e.kind(),
            AuditError::Tenancy(e) => e.kind(),
            AuditError::Database(e) => classify_sqlx(e),
        }
    }
}

impl Classify for RetentionError {
    fn kind(&self) -> ErrorKind {
        match self {
            RetentionError::LegalHold(_) | RetentionError::HoldAlreadyReleased => {
                ErrorKind::conflict(self.to_string())
            }
            RetentionError::HoldNotFound => ErrorKind::NotFound,
            RetentionError::Invalid { field, reason } => ErrorKind::invalid(*field, reason.clone()),
            // The stored policy is the agency's to correct (PUT /v1/policies/audit.retention).
            RetentionError::InvalidPolicy(reason) => {
                ErrorKind::invalid(RETENTION_POLICY, reason.clone())
            }
            RetentionError::Archive(_) => ErrorKind::Internal,
            RetentionError::Audit(e) => e.kind(),
        }
    }
}

impl Classify for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::NotConfigured | ArchiveError::Busy => {
                ErrorKind::conflict(self.to_string())
            }
            ArchiveError::InvalidPolicy(reason) => {
                ErrorKind::invalid(ARCHIVE_POLICY, reason.clone())
            }
            ArchiveError::Destination { .. } => ErrorKind::unavailable(Dependency::Storage),
            ArchiveError::Audit(e) => e.kind(),
        }
    }
}
