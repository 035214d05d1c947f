use p256::ecdsa::{DerSignature, VerifyingKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::KeyError;

/// What a key is for; an agency has one of each, each with versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Wraps per-document data keys.
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

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "kek" => Some(KeyPurpose::KeyEncryption),
            "signing" => Some(KeyPurpose::Signing),
            _ => None,
        }
    }
}

/// The lifecycle state of one key version, as the control plane records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(KeyState::Enabled),
            "disabled" => Some(KeyState::Disabled),
            "pending_deletion" => Some(KeyState::PendingDeletion),
            _ => None,
        }
    }
}

/// A reference to one version of one agency key, as the control plane stores it. For the local
/// provider `material` is the key sealed under the master key; cloud providers keep only their
/// key id (an AWS key ARN, an Azure Key Vault key version URL), never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub provider: String,
    pub purpose: KeyPurpose,
    pub version: i32,
    pub key_id: String,
    pub material: Option<Vec<u8>>,
    pub state: KeyState,
}

impl KeyRef {
    /// Refuses a version the control plane has disabled or scheduled for deletion, before any
    /// provider is asked (cloud providers refuse as well; the local provider relies on this).
    /// The same version in `state`.
    pub fn with_state(&self, state: KeyState) -> KeyRef {
        KeyRef {
            state,
            ..self.clone()
        }
    }

    /// The same version, enabled or disabled (a scheduled deletion called off).
    pub fn enabled_if(&self, enable: bool) -> KeyRef {
        self.with_state(if enable {
            KeyState::Enabled
        } else {
            KeyState::Disabled
        })
    }

    pub fn ensure_enabled(&self) -> Result<(), KeyError> {
        match self.state {
            KeyState::Enabled => Ok(()),
            _ => Err(KeyError::Disabled(self.key_id.clone())),
        }
    }
}

/// Which provider an agency's keys are created in, and any existing keys to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    Local,
    AwsKms {
        /// An existing symmetric KMS key (ARN or id) to use as the agency's key-encryption key;
        /// one is created when absent.
        kek_key_id: Option<String>,
        /// An existing ECC_NIST_P256 SIGN_VERIFY key; one is created when absent.
        signing_key_id: Option<String>,
    },
    AzureKeyVault {
        /// e.g. `https://agency.vault.azure.net`
        vault_url: String,
        /// Base name of the agency's keys (`<name>-kek` RSA, `<name>-signing` EC P-256); created
        /// when they do not exist, adopted when they do.
        key_name: Option<String>,
    },
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

/// What a provider reports of one key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    pub key_id: String,
    pub purpose: KeyPurpose,
    pub version: i32,
    pub state: KeyState,
    /// e.g. `AES-256-GCM`, `SYMMETRIC_DEFAULT`, `RSA-OAEP-256`, `ECDSA-P256`.
    pub algorithm: String,
}

/// The operations every key provider offers; the same conformance suite runs against each.
/// Every call binds the agency: a reference or a wrapped key of one agency is refused for another.
#[allow(async_fn_in_trait)]
pub trait KeyBackend {
    /// The provider's name as stored in `KeyRef::provider` and `control.agencies.key_provider`.
    fn name(&self) -> &'static str;

    async fn create_agency_keys(
        &self,
        agency_id: Uuid,
        spec: &KeySpec,
    ) -> Result<AgencyKeys, KeyError>;

    /// The agency the keys `spec` adopts are already tagged for, if any (an earlier onboarding
    /// of them). `None` when the spec creates its keys or the keys carry no agency tag.
    async fn prior_claim(&self, spec: &KeySpec) -> Result<Option<Uuid>, KeyError> {
        let _ = spec;
        Ok(None)
    }

    /// Wraps a data key with the agency id as additional authenticated data (encryption context).
    async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError>;

    async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;

    /// Signs a SHA-256 digest with ECDSA P-256; the signature is DER-encoded.
    async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError>;

    /// Signs `message`: ECDSA P-256 over its SHA-256, DER-encoded. What Writ signs (checkpoint
    /// bodies, certificates) goes through here, so a provider that hashes by itself does (AWS KMS
    /// with `MessageType=RAW`, which is also the one form its emulator signs correctly).
    async fn sign_message(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        message: &[u8],
    ) -> Result<DerSignature, KeyError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(message).into();
        self.sign_digest(agency_id, key, &digest).await
    }

    async fn public_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError>;

    /// Makes the next version of `current`'s key (same purpose, version + 1). `current` stays
    /// usable for unwrapping and verification.
    async fn rotate(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError>;

    /// Disables one version: what only it protects becomes unreadable. Returns the updated ref.
    async fn disable(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError>;

    /// Schedules the version's destruction (crypto-shredding) after the provider's waiting
    /// period. Returns the updated ref.
    async fn schedule_deletion(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError>;

    /// Schedules `key`'s destruction together with every other version the provider holds of
    /// the same key, recorded by Writ or not (one a rotation made before it failed to record it):
    /// what an offboarding asks, so that nothing of the agency's key outlives it. Where each
    /// version is a key of its own (local, AWS KMS), that is `key` alone.
    async fn schedule_deletion_of_every_version(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        self.schedule_deletion(agency_id, key).await
    }

    /// Stops a scheduled deletion within the waiting period (an offboarding called off): the
    /// version is usable again when `enable`, else it stays disabled (it was revoked before).
    /// A version not pending deletion is only enabled or left disabled. Returns the updated ref.
    async fn cancel_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError>;

    async fn describe(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyDescription, KeyError>;
}

/// The one agency `owners` (each adopted key's tag, if any) name, or a refusal when they name
/// two.
pub(crate) fn single_claim(owners: &[Option<String>]) -> Result<Option<Uuid>, KeyError> {
    let mut found: Option<Uuid> = None;
    for owner in owners.iter().flatten() {
        let id = Uuid::parse_str(owner).map_err(|_| {
            KeyError::Refused("a given key carries an agency tag Writ did not write".into())
        })?;
        match found {
            Some(other) if other != id => {
                return Err(KeyError::Refused(
                    "the given keys are tagged for two different agencies".into(),
                ));
            }
            _ => found = Some(id),
        }
    }
    Ok(found)
}

impl KeySpec {
    /// Reads a provider choice as operators give it (CLI flags, the onboarding API), refusing
    /// options that do not belong to the chosen provider.
    pub fn from_parts(
        provider: Option<&str>,
        kms_key_id: Option<String>,
        kms_signing_key_id: Option<String>,
        vault_url: Option<String>,
        key_name: Option<String>,
    ) -> Result<KeySpec, KeyError> {
        let bad = |m: &str| Err(KeyError::InvalidSettings(m.to_owned()));
        match provider.unwrap_or("local") {
            "local" => {
                if kms_key_id.is_some()
                    || kms_signing_key_id.is_some()
                    || vault_url.is_some()
                    || key_name.is_some()
                {
                    return bad("the local provider takes no key ids, vault URL or key name");
                }
                Ok(KeySpec::Local)
            }
            "aws-kms" => {
                if vault_url.is_some() || key_name.is_some() {
                    return bad("vault URL and key name belong to azure-keyvault");
                }
                Ok(KeySpec::AwsKms {
                    kek_key_id: kms_key_id,
                    signing_key_id: kms_signing_key_id,
                })
            }
            "azure-keyvault" => {
                if kms_key_id.is_some() || kms_signing_key_id.is_some() {
                    return bad("KMS key ids belong to aws-kms");
                }
                let Some(vault_url) = vault_url else {
                    return bad(
                        "azure-keyvault needs a vault URL (https://<name>.vault.azure.net)",
                    );
                };
                if !vault_url.starts_with("https://") {
                    return bad("the vault URL must be https://");
                }
                if let Some(name) = &key_name
                    && (name.is_empty()
                        || name.len() > 100
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                {
                    return bad("a key name is 1 to 100 letters, digits and '-'");
                }
                Ok(KeySpec::AzureKeyVault {
                    vault_url,
                    key_name,
                })
            }
            other => Err(KeyError::InvalidSettings(format!(
                "unknown key provider {other:?} (local, aws-kms, azure-keyvault)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopted_keys_claimed_by_one_agency_name_it_and_two_agencies_are_refused() {
        let a = Uuid::new_v4().to_string();
        let b = Uuid::new_v4().to_string();
        assert_eq!(single_claim(&[None, None]).unwrap(), None);
        assert_eq!(
            single_claim(&[Some(a.clone()), None]).unwrap(),
            Some(Uuid::parse_str(&a).unwrap())
        );
        assert_eq!(
            single_claim(&[Some(a.clone()), Some(a.clone())]).unwrap(),
            Some(Uuid::parse_str(&a).unwrap())
        );
        assert!(matches!(
            single_claim(&[Some(a), Some(b)]),
            Err(KeyError::Refused(_))
        ));
        assert!(matches!(
            single_claim(&[Some("not an id".into())]),
            Err(KeyError::Refused(_))
        ));
    }
}
