use writ_error_kind::{Classify, Dependency, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("key reference is malformed or belongs to another agency: {0}")]
    MalformedRef(String),
    #[error("key material could not be decrypted (wrong master key, wrong agency or tampered)")]
    Decrypt,
    #[error("key {0} is disabled")]
    Disabled(String),
    #[error("key {0} does not exist at its provider")]
    NotFound(String),
    #[error("key provider {0} is not configured on this server")]
    NotConfigured(String),
    #[error("key provider unavailable: {0}")]
    Unavailable(String),
    #[error("key provider refused: {0}")]
    Refused(String),
    /// Key settings as an operator gave them (provider, key ids, vault URL) that do not fit.
    #[error("key settings: {0}")]
    InvalidSettings(String),
}

impl Classify for KeyError {
    fn kind(&self) -> ErrorKind {
        match self {
            // An outage, or an agency on a provider this server was not started with: either
            // way the agency's keys are out of reach until the provider (or its configuration)
            // is back.
            KeyError::Unavailable(_) | KeyError::NotConfigured(_) => {
                ErrorKind::unavailable(Dependency::KeyProvider)
            }
            KeyError::Disabled(key) => ErrorKind::Conflict {
                slug: "key-disabled",
                detail: format!("key {key} is disabled: what it protects cannot be read or signed"),
            },
            KeyError::InvalidSettings(reason) => ErrorKind::invalid("keys", reason.clone()),
            // The provider refused what it was asked (access denied, a key spec it does not
            // offer): the deployment's key settings need changing, nothing the caller can fix,
            // and its provider's details (key ARNs, accounts, roles) are logged, not told.
            // Onboarding, where the operator gave the settings, reports them as invalid itself.
            // The server's own key material or references are wrong: likewise.
            KeyError::Refused(_)
            | KeyError::MasterKey { .. }
            | KeyError::MalformedRef(_)
            | KeyError::Decrypt
            | KeyError::NotFound(_) => ErrorKind::Internal,
        }
    }
}
