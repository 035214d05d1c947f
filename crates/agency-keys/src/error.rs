use writ_keys::KeyError;

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
