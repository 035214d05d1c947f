#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {path}: {reason}")]
    MasterKey { path: String, reason: String },
    #[error("key reference is malformed: {0}")]
    MalformedRef(String),
    #[error("key material could not be decrypted (wrong master key, wrong agency or tampered)")]
    Decrypt,
    #[error("key {0} is disabled")]
    Disabled(String),
    #[error("key provider unavailable: {0}")]
    Unavailable(String),
}
