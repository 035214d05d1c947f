use writ_error_kind::{Classify, ErrorKind, classify_sqlx};
use writ_keys::KeyError;

use crate::{SealError, SignatureError, StreamError};

#[derive(Debug, thiserror::Error)]
pub enum KeyLifecycleError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("agency {agency} has no current {purpose} key")]
    NoCurrentKey {
        agency: uuid::Uuid,
        purpose: &'static str,
    },
}

impl Classify for KeyLifecycleError {
    fn kind(&self) -> ErrorKind {
        match self {
            KeyLifecycleError::Keys(e) => e.kind(),
            KeyLifecycleError::Tenancy(e) => e.kind(),
            KeyLifecycleError::Audit(e) => e.kind(),
            KeyLifecycleError::Database(e) => classify_sqlx(e),
            KeyLifecycleError::NotFound => ErrorKind::NotFound,
            KeyLifecycleError::Conflict(detail) => ErrorKind::conflict(detail.clone()),
            KeyLifecycleError::Invalid { field, reason } => {
                ErrorKind::invalid(*field, reason.clone())
            }
            // Every agency gets both keys when it is onboarded: one missing is a broken agency.
            KeyLifecycleError::NoCurrentKey { .. } => ErrorKind::Internal,
        }
    }
}

impl Classify for SealError {
    fn kind(&self) -> ErrorKind {
        match self {
            SealError::Key(e) => e.kind(),
            SealError::AlreadySealed(_) => ErrorKind::conflict(self.to_string()),
            SealError::Label(reason) => ErrorKind::invalid("label", *reason),
            SealError::TooLarge => ErrorKind::invalid("content", self.to_string()),
            // The stored object is not what was sealed (altered, cut short, not a sealed object
            // at all), a stream was used after it failed, or its hashing thread was stopped (the
            // runtime is shutting down): none is the caller's to fix, and what exactly failed is
            // for the log.
            SealError::Header(_)
            | SealError::Corrupt { .. }
            | SealError::Truncated { .. }
            | SealError::DigestMismatch
            | SealError::Failed
            | SealError::HashingStopped => ErrorKind::Internal,
        }
    }
}

impl Classify for SignatureError {
    fn kind(&self) -> ErrorKind {
        match self {
            SignatureError::Key(e) => e.kind(),
            // The signature handed in for verification is not one the agency's keys accept; the
            // fields are `AgencySignature`'s JSON members.
            SignatureError::Algorithm(_) => ErrorKind::invalid("algorithm", self.to_string()),
            SignatureError::UnknownKey(_) | SignatureError::KeyRevoked(_) => {
                ErrorKind::invalid("keyVersion", self.to_string())
            }
            SignatureError::Invalid => ErrorKind::invalid("signature", self.to_string()),
        }
    }
}

/// The input stream's error says what it is: an upload cut off by the caller, or storage that
/// stopped answering.
impl<E: Classify> Classify for StreamError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::Input(e) => e.kind(),
            StreamError::Seal(e) => e.kind(),
        }
    }
}
