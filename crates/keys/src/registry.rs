//! The one entry point the rest of Writ uses for agency keys: it routes each call to the provider
//! a key reference names, so agencies on different providers share one server.

use std::time::Duration;

use p256::ecdsa::{DerSignature, VerifyingKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::{AccessCounter, AccessKind, KeyOperation};
use crate::cache::DataKeyCache;
use crate::{
    AgencyKeys, AwsKmsProvider, AzureKeyVaultProvider, KeyBackend, KeyDescription, KeyError,
    KeyRef, KeySpec, LocalProvider, WrappedKey,
};

/// Every provider this server is configured for. Cloud providers are present only when
/// configured; a reference to an absent provider is refused with [`KeyError::NotConfigured`].
#[derive(Clone)]
pub struct KeyProvider {
    local: LocalProvider,
    azure: Option<AzureKeyVaultProvider>,
    aws: Option<AwsKmsProvider>,
    cache: DataKeyCache,
    access: AccessCounter,
}

/// One configured provider, borrowed for one call.
enum Backend<'a> {
    Local(&'a LocalProvider),
    Azure(&'a AzureKeyVaultProvider),
    Aws(&'a AwsKmsProvider),
}

/// Runs the same call on whichever backend was picked.
macro_rules! dispatch {
    ($backend:expr, $b:ident => $call:expr) => {
        match $backend {
            Backend::Local($b) => $call,
            Backend::Azure($b) => $call,
            Backend::Aws($b) => $call,
        }
    };
}

impl KeyProvider {
    pub fn new(local: LocalProvider) -> Self {
        Self {
            local,
            azure: None,
            aws: None,
            cache: DataKeyCache::new(Duration::from_secs(300), 10_000),
            access: AccessCounter::default(),
        }
    }

    /// Serves agencies whose keys are in Azure Key Vault.
    pub fn with_azure(mut self, azure: AzureKeyVaultProvider) -> Self {
        self.azure = Some(azure);
        self
    }

    /// Serves agencies whose keys are in AWS KMS.
    pub fn with_aws(mut self, aws: AwsKmsProvider) -> Self {
        self.aws = Some(aws);
        self
    }

    /// How long unwrapped data keys stay cached (zero turns the cache off) and how many at most.
    pub fn with_data_key_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        let capacity = if ttl.is_zero() { 0 } else { capacity };
        self.cache = DataKeyCache::new(ttl, capacity);
        self
    }

    /// Key uses counted since the last drain, for the `key.access` audit entries.
    pub fn access(&self) -> &AccessCounter {
        &self.access
    }

    /// Drops cached plaintexts of data keys wrapped by `key_id` (a version just disabled).
    pub fn forget_unwrapped(&self, key_id: &str) {
        self.cache.forget_key(key_id);
    }

    fn count(&self, agency_id: Uuid, key: &KeyRef, operation: KeyOperation, ok: bool) {
        self.access.count(
            agency_id,
            AccessKind {
                key_id: key.key_id.clone(),
                version: key.version,
                operation,
                ok,
            },
        );
    }

    /// The embedded provider, which also seals deployment-wide secrets (token-signing keys).
    pub fn local(&self) -> &LocalProvider {
        &self.local
    }

    fn backend(&self, provider: &str) -> Result<Backend<'_>, KeyError> {
        match provider {
            LocalProvider::NAME => Ok(Backend::Local(&self.local)),
            AzureKeyVaultProvider::NAME => self
                .azure
                .as_ref()
                .map(Backend::Azure)
                .ok_or_else(|| KeyError::NotConfigured(provider.to_owned())),
            AwsKmsProvider::NAME => self
                .aws
                .as_ref()
                .map(Backend::Aws)
                .ok_or_else(|| KeyError::NotConfigured(provider.to_owned())),
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
        let wrapped = dispatch!(self.backend(&kek.provider)?, b => b.wrap_data_key(agency_id, kek, data_key).await);
        self.count(agency_id, kek, KeyOperation::Wrap, wrapped.is_ok());
        wrapped
    }

    pub async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        kek.ensure_enabled()?;
        let slot = DataKeyCache::slot(agency_id, &kek.key_id, &wrapped.ciphertext);
        if let Some(hit) = self.cache.get(&slot) {
            // Served from the cache, but still a use of the agency's key to be audited.
            self.count(agency_id, kek, KeyOperation::Unwrap, true);
            return Ok(hit);
        }
        let plain = dispatch!(self.backend(&kek.provider)?, b => b.unwrap_data_key(agency_id, kek, wrapped).await);
        self.count(agency_id, kek, KeyOperation::Unwrap, plain.is_ok());
        let plain = plain?;
        self.cache.put(slot, &plain);
        Ok(plain)
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

    pub async fn sign_message(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        message: &[u8],
    ) -> Result<DerSignature, KeyError> {
        key.ensure_enabled()?;
        dispatch!(self.backend(&key.provider)?, b => b.sign_message(agency_id, key, message).await)
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

    /// The agency the keys `spec` adopts are already tagged for (see [`KeyBackend::prior_claim`]).
    pub async fn prior_claim(&self, spec: &KeySpec) -> Result<Option<Uuid>, KeyError> {
        dispatch!(self.backend_for_spec(spec)?, b => b.prior_claim(spec).await)
    }

    pub async fn schedule_deletion_of_every_version(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.schedule_deletion_of_every_version(agency_id, key).await)
    }

    pub async fn cancel_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError> {
        dispatch!(self.backend(&key.provider)?, b => b.cancel_deletion(agency_id, key, enable).await)
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
        KeySpec::AwsKms { .. } => AwsKmsProvider::NAME,
        KeySpec::AzureKeyVault { .. } => AzureKeyVaultProvider::NAME,
    }
}
