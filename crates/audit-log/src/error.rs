#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
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
