//! writ-keys owns every agency's key material behind one [`KeyProvider`]: creating an agency's
//! key-encryption key and P-256 signing key, wrapping and unwrapping data keys (bound to the
//! agency id), signing digests, rotating, disabling and scheduling deletion of key versions. It
//! hands out references and public keys, never a raw key-encryption or signing key, and it knows
//! nothing of databases or HTTP.

mod access;
mod aws;
mod azure;
mod cache;
mod error;
mod local;
mod provider;
mod registry;

pub use access::{AccessCounts, AccessKind, KeyOperation};
pub use aws::AwsKmsProvider;
pub use azure::{AzureCredential, AzureKeyVaultProvider, AzureKeyVaultSettings};
pub use error::KeyError;
pub use local::LocalProvider;
pub use provider::{
    AgencyKeys, KeyBackend, KeyDescription, KeyPurpose, KeyRef, KeySpec, KeyState, WrappedKey,
};
pub use registry::{KeyProvider, spec_provider};

/// The low-S form of an ECDSA signature (s ≤ n/2). A KMS returns either form; verifiers accept
/// only this one, so that a signed document has one signature and one hash (its identifier).
/// Every provider's signature leaves through here.
pub(crate) fn low_s(sig: p256::ecdsa::Signature) -> p256::ecdsa::Signature {
    sig.normalize_s().unwrap_or(sig)
}
