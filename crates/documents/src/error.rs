//! Why a document operation failed, and what kind of failure that is
//! ([`writ_error_kind::Classify`]).
//!
//! Three outcomes have HTTP statuses the shared vocabulary has no kind for: an upload over the
//! agency's limit (413), a type the store does not take (415), and an erased document's content
//! (410). [`DocumentError::kind`] classifies them as the nearest kind (invalid body, invalid
//! `Content-Type`, conflict `erased`); the gateway renders the three with their own statuses.

use writ_agency_keys::{KeyLifecycleError, SealError};
use writ_error_kind::{Classify, Dependency, ErrorKind, classify_sqlx};

/// The problem slug of an operation refused because of a legal hold.
pub const LEGAL_HOLD: &str = "legal-hold";
/// The problem slug of an erased document's content.
pub const ERASED: &str = "erased";
/// The problem slug of a change refused because the document is part of a signing record.
pub const IN_SIGNING_RECORD: &str = "document-in-signing-record";
/// The upload's body came too slowly (the server's pace rule); nothing was stored.
pub const UPLOAD_STALLED: &str = "upload-stalled";

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// No such document (or warrant) in the agency, soft-deleted, or one the caller may not see:
    /// not told apart.
    #[error("not found")]
    NotFound,
    /// The document was crypto-erased: its key and ciphertext no longer exist.
    #[error("the document was erased on {0}; its content no longer exists")]
    Erased(chrono::DateTime<chrono::Utc>),
    /// The upload is larger than the agency's `documents.max_bytes`; nothing was stored.
    #[error("the document exceeds the agency's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The bytes are not of a type the store accepts, or not of the type declared.
    #[error("{0}")]
    UnsupportedType(String),
    /// The role may do this in general, but not to this document (the reason says why).
    #[error("{0}")]
    Forbidden(String),
    /// A legal hold forbids erasing the document.
    #[error("the document is under a legal hold: {0}")]
    LegalHold(String),
    #[error("{0}")]
    Conflict(String),
    /// The document is signed, or a signature is requested on it ([`IN_SIGNING_RECORD`]).
    #[error("{0}")]
    InSigningRecord(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Reading the upload's body failed (the client went away mid-stream); nothing was stored.
    #[error("reading the request body: {0}")]
    Body(String),
    /// The `Range` asked for names no byte of the document, `size` bytes long.
    #[error("the range asked for is outside the document's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// The upload's body came too slowly and was ended ([`UPLOAD_STALLED`]); nothing was stored.
    #[error("{0}")]
    Stalled(String),
    /// The agency's policy no longer validates (it is checked when set).
    #[error("the agency's {name} policy is invalid: {reason}")]
    Policy { name: &'static str, reason: String },
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Key(#[from] KeyLifecycleError),
    /// Object storage (S3) failed or is unreachable.
    #[error("document storage: {0}")]
    Storage(#[from] object_store::Error),
    /// The store answered that the document's object does not exist.
    #[error("document storage has no object {0}")]
    ObjectMissing(String),
    /// A stored row the code cannot read: the schema and the code disagree.
    #[error("stored document data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DocumentError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Classify for DocumentError {
    fn kind(&self) -> ErrorKind {
        match self {
            DocumentError::NotFound => ErrorKind::NotFound,
            DocumentError::Erased(_) => ErrorKind::Gone {
                slug: ERASED,
                detail: self.to_string(),
            },
            DocumentError::TooLarge { limit } => ErrorKind::TooLarge { limit: *limit },
            DocumentError::UnsupportedType(detail) => ErrorKind::UnsupportedMedia {
                detail: detail.clone(),
            },
            DocumentError::Forbidden(detail) => ErrorKind::Forbidden {
                detail: detail.clone(),
            },
            DocumentError::LegalHold(_) => ErrorKind::Conflict {
                slug: LEGAL_HOLD,
                detail: self.to_string(),
            },
            DocumentError::Conflict(detail) => ErrorKind::conflict(detail.clone()),
            DocumentError::InSigningRecord(detail) => ErrorKind::Conflict {
                slug: IN_SIGNING_RECORD,
                detail: (*detail).to_owned(),
            },
            DocumentError::Invalid { field, reason } => ErrorKind::invalid(field, reason),
            DocumentError::Body(_) => ErrorKind::BadRequest {
                slug: "bad-request",
                detail: self.to_string(),
            },
            DocumentError::RangeNotSatisfiable { size } => {
                ErrorKind::RangeNotSatisfiable { size: *size }
            }
            DocumentError::Stalled(_) => ErrorKind::BadRequest {
                slug: UPLOAD_STALLED,
                detail: self.to_string(),
            },
            DocumentError::Policy { .. }
            | DocumentError::Corrupt(_)
            | DocumentError::ObjectMissing(_) => ErrorKind::Internal,
            DocumentError::Seal(e) => e.kind(),
            DocumentError::Key(e) => e.kind(),
            DocumentError::Storage(_) => ErrorKind::unavailable(Dependency::Storage),
            DocumentError::Tenancy(e) => e.kind(),
            DocumentError::Audit(e) => e.kind(),
            DocumentError::Database(e) => classify_sqlx(e),
        }
    }
}
