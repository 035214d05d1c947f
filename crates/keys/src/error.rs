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
}
