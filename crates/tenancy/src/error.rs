use writ_error_kind::{Classify, Dependency, ErrorKind, classify_sqlx};

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("an agency with slug {0:?} already exists")]
    SlugTaken(String),
    #[error("no agency {0}")]
    NoSuchAgency(String),
    /// The agency's state does not allow it (an offboarding that cannot start or finish).
    #[error("{0}")]
    Conflict(String),
    #[error(
        "migration {version} ({name}) was edited after it was applied; add a new migration instead"
    )]
    MigrationEdited { version: i64, name: String },
    #[error(
        "tenant table {0} has no agency_id column; every tenant table needs one for row-level security"
    )]
    TableWithoutAgencyId(String),
    /// The commit failed without the database saying whether it took effect, and asking it
    /// afterwards gave no answer either.
    #[error("the outcome of a commit is unknown: {0}")]
    CommitUnknown(String),
    #[error(transparent)]
    Keys(#[from] writ_keys::KeyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl TenancyError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl Classify for TenancyError {
    fn kind(&self) -> ErrorKind {
        match self {
            TenancyError::Invalid { field, reason } => ErrorKind::invalid(*field, reason.clone()),
            TenancyError::SlugTaken(_) | TenancyError::Conflict(_) => {
                ErrorKind::conflict(self.to_string())
            }
            TenancyError::NoSuchAgency(_) => ErrorKind::NotFound,
            // The deployment's migrations or schema are wrong: an operator's problem.
            TenancyError::MigrationEdited { .. } | TenancyError::TableWithoutAgencyId(_) => {
                ErrorKind::Internal
            }
            TenancyError::CommitUnknown(_) => ErrorKind::unavailable(Dependency::Database),
            TenancyError::Keys(e) => e.kind(),
            TenancyError::Database(e) => classify_sqlx(e),
        }
    }
}
