use p256::ecdsa::{DerSignature, VerifyingKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{KeyError, LocalProvider};

/// What a key is for; an agency has one of each, each with versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Wraps per-document data keys (AES-256-GCM in the local provider).
    KeyEncryption,
    /// Signs audit checkpoints, certificates and signature records (ECDSA P-256).
    Signing,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::KeyEncryption => "kek",
            KeyPurpose::Signing => "signing",
        }
    }
}

/// A reference to one version of one agency key, as the control plane stores it. For the local
/// provider `material` is the key sealed under the master key; cloud providers keep only an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub provider: String,
    pub purpose: KeyPurpose,
    pub version: i32,
    pub key_id: String,
    pub material: Option<Vec<u8>>,
}

/// The keys made for a newly onboarded agency.
#[derive(Debug, Clone)]
pub struct AgencyKeys {
    pub key_encryption: KeyRef,
    pub signing: KeyRef,
    pub signing_public_key: VerifyingKey,
}

/// A data key sealed by an agency's key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_version: i32,
    pub ciphertext: Vec<u8>,
}

/// The provider an agency's keys live in. An enum rather than a trait object: the set is closed,
/// and the cloud providers' calls are async.
#[derive(Clone)]
pub enum KeyProvider {
    Local(LocalProvider),
}

impl KeyProvider {
    pub fn name(&self) -> &'static str {
        match self {
            KeyProvider::Local(_) => LocalProvider::NAME,
        }
    }

    pub async fn create_agency_keys(&self, agency_id: Uuid) -> Result<AgencyKeys, KeyError> {
        match self {
            KeyProvider::Local(p) => p.create_agency_keys(agency_id),
        }
    }

    pub async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        match self {
            KeyProvider::Local(p) => p.wrap_data_key(agency_id, kek, data_key),
        }
    }

    pub async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self {
            KeyProvider::Local(p) => p.unwrap_data_key(agency_id, kek, wrapped),
        }
    }

    /// Signs a SHA-256 digest with the agency's signing key; the signature is DER-encoded.
    pub async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        match self {
            KeyProvider::Local(p) => p.sign_digest(agency_id, key, digest),
        }
    }

    pub async fn public_key(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<VerifyingKey, KeyError> {
        match self {
            KeyProvider::Local(p) => p.public_key(agency_id, key),
        }
    }
}
