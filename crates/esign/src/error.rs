//! Why an e-signature operation failed, and what kind of failure that is
//! ([`writ_error_kind::Classify`]).

use writ_audit_chain::signature_record::SignatureRecordError;
use writ_error_kind::{Classify, ErrorKind, classify_sqlx};

/// Problem slugs of the refusals of this crate.
pub mod slug {
    pub const REQUEST_NOT_PENDING: &str = "signature-request-not-pending";
    pub const DOCUMENT_OUTDATED: &str = "document-outdated";
    pub const DOCUMENT_UNAVAILABLE: &str = "document-unavailable";
    pub const CERTIFICATE_UNAVAILABLE: &str = "certificate-unavailable";
}

#[derive(Debug, thiserror::Error)]
pub enum EsignError {
    /// No such request or signature in the agency, or one on a warrant the caller may not see.
    #[error("not found")]
    NotFound,
    /// The caller may do this in general, but not here (someone else's request).
    #[error("{0}")]
    Forbidden(String),
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the intent statement must be accepted (intentAccepted: true) to sign")]
    IntentNotAccepted,
    /// A stored row or record the code cannot read.
    #[error("stored signature data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Warrant(#[from] writ_warrant_workflow::WarrantError),
    #[error(transparent)]
    Document(#[from] writ_documents::DocumentError),
    #[error(transparent)]
    Keys(#[from] writ_agency_keys::KeyLifecycleError),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl EsignError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug,
            detail: detail.into(),
        }
    }
}

impl From<SignatureRecordError> for EsignError {
    fn from(e: SignatureRecordError) -> Self {
        EsignError::Corrupt(e.to_string())
    }
}

impl Classify for EsignError {
    fn kind(&self) -> ErrorKind {
        match self {
            EsignError::NotFound => ErrorKind::NotFound,
            EsignError::Forbidden(detail) => ErrorKind::Forbidden {
                detail: detail.clone(),
            },
            EsignError::Conflict { slug, detail } => ErrorKind::Conflict {
                slug,
                detail: detail.clone(),
            },
            EsignError::Invalid { field, reason } => ErrorKind::invalid(field, reason),
            EsignError::IntentNotAccepted => ErrorKind::invalid("intentAccepted", self.to_string()),
            EsignError::Corrupt(_) => ErrorKind::Internal,
            EsignError::Warrant(e) => e.kind(),
            EsignError::Document(e) => e.kind(),
            EsignError::Keys(e) => e.kind(),
            EsignError::Tenancy(e) => e.kind(),
            EsignError::Audit(e) => e.kind(),
            EsignError::Database(e) => classify_sqlx(e),
        }
    }
}
