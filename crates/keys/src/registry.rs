//! The one entry point the rest of Writ uses for agency keys: it routes each call to the provider
//! a key reference names, so agencies on different providers share one server.

use p256::ecdsa::{DerSignature, VerifyingKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    AgencyKeys, KeyBackend, KeyDescription, KeyError, KeyRef, KeySpec, LocalProvider, WrappedKey,
};

/// Every provider this server is configured for. Cloud providers are present only when
/// configured; a reference to an absent provider is refused with [`KeyError::NotConfigured`].
#[derive(Clone)]
pub struct KeyProvider {
    local: LocalProvider,
}

/// One configured provider, borrowed for one call.
enum Backend<'a> {
    Local(&'a LocalProvider),
}

/// Runs the same call on whichever backend was picked.
macro_rules! dispatch {
    ($backend:expr, $b:ident => $call:expr) => {
        match $backend {
            Backend::Local($b) => $call,
        }
    };
}

impl KeyProvider {
    pub fn new(local: LocalProvider) -> Self {
        Self { local }
    }

    /// The embedded provider, which also seals deployment-wide secrets (token-signing keys).
    pub fn local(&self) -> &LocalProvider {
        &self.local
    }

    fn backend(&self, provider: &str) -> Result<Backend<'_>, KeyError> {
        match provider {
            LocalProvider::NAME => Ok(Backend::Local(&self.local)),
            other => Err(KeyError::NotConfigured(other.to_owned())),
        }
    }

    fn backend_for_spec(&self, spec: &KeySpec) -> Result<Backend<'_>, KeyError> {
        self.backend(spec_provider(spec))
    }

    pub async fn create_agency_keys(
        &self,
        agency_id: Uuid,
        spec: &KeySpec,
    ) -> Result<AgencyKeys, KeyError> {
        dispatch!(self.backend_for_spec(spec)?, b => b.create_agency_keys(agency_id, spec).await)
    }

    pub async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        kek.ensure_enabled()?;
        dispatch!(self.backend(&kek.provider)?, b => b.wrap_data_key(agency_id, kek, data_key).await)
    }

    pub async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        kek.ensure_enabled()?;
        dispatch!(self.backend(&kek.provider)?, b => b.unwrap_data_key(agency_id, kek, wrapped).await)
    }

    pub async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        key.ensure_enabled()?;
        dispatch!(self.backend(&key.provider)?, b => b.sign_digest(agency_id, key, digest).await)
    }

    pub async fn public_key(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<VerifyingKey, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.public_key(agency_id, key).await)
    }

    pub async fn rotate(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError> {
        dispatch!(self.backend(&current.provider)?, b => b.rotate(agency_id, current).await)
    }

    pub async fn disable(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.disable(agency_id, key).await)
    }

    pub async fn schedule_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.schedule_deletion(agency_id, key).await)
    }

    pub async fn describe(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyDescription, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.describe(agency_id, key).await)
    }
}

/// The provider name a spec asks for.
pub fn spec_provider(spec: &KeySpec) -> &'static str {
    match spec {
        KeySpec::Local => LocalProvider::NAME,
        KeySpec::AwsKms { .. } => "aws-kms",
        KeySpec::AzureKeyVault { .. } => "azure-keyvault",
    }
}
