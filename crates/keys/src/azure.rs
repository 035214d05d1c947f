//! The `azure-keyvault` provider: an agency's keys live in its own Azure Key Vault and never leave
//! it. The key-encryption key is RSA (wrap/unwrap with RSA-OAEP-256), the signing key EC P-256
//! (ES256). Writ stores only key version URLs (`https://<vault>/keys/<name>/<version>`), so every
//! call finds its vault from the reference itself.
//!
//! Keys are named `<base>-kek` and `<base>-signing` and every version Writ makes or adopts is
//! tagged with the agency id and the purpose; a reference whose key carries another agency's tag is
//! refused before the key is used. The vault enforces disabled versions itself: a disabled version
//! is refused even when the caller's reference still says it is enabled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::{ErrorKind, ErrorResponse};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use azure_security_keyvault_keys::models::{
    CreateKeyParameters, CurveName, EncryptionAlgorithm, JsonWebKey, Key, KeyAttributes,
    KeyClientGetKeyOptions, KeyClientSignOptions, KeyClientUpdateKeyPropertiesOptions,
    KeyClientWrapKeyOptions, KeyOperation as JwkOperation, KeyOperationParameters, KeyProperties,
    KeyType, SignParameters, SignatureAlgorithm, UpdateKeyPropertiesParameters,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceExt, ResourceId};
use futures_util::TryStreamExt;
use p256::EncodedPoint;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    AgencyKeys, KeyBackend, KeyDescription, KeyError, KeyPurpose, KeyRef, KeySpec, KeyState,
    WrappedKey,
};

/// Tag naming the agency a key version belongs to.
const TAG_AGENCY: &str = "writ-agency";
/// Tag naming what the key is for (`kek` or `signing`).
const TAG_PURPOSE: &str = "writ-purpose";
/// Tag set on a version whose deletion was scheduled (see [`AzureKeyVaultProvider`]'s
/// `schedule_deletion`).
const TAG_PENDING_DELETION: &str = "writ-pending-deletion";
/// The smallest RSA key-encryption key adopted (NIST SP 800-57: 2048 bits until 2030).
const MIN_RSA_BITS: usize = 2048;

/// Where the provider's Entra ID credential comes from.
#[derive(Clone)]
pub enum AzureCredential {
    /// The standard environment: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`
    /// give a service principal with a client secret; `AZURE_FEDERATED_TOKEN_FILE` (set by AKS
    /// workload identity) gives workload identity; otherwise the host's managed identity, a
    /// user-assigned one when `AZURE_CLIENT_ID` is set. `AZURE_AUTHORITY_HOST` picks the cloud.
    Environment,
    /// A service principal with a client secret, given explicitly.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AzureCredential::Environment => f.write_str("Environment"),
            AzureCredential::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
        }
    }
}

/// How the provider reaches Key Vault and Entra ID. [`Default`] is production: credential from the
/// environment, the system's trusted roots, short timeouts and a few retries with backoff.
#[derive(Debug, Clone)]
pub struct AzureKeyVaultSettings {
    pub credential: AzureCredential,
    /// The Entra ID authority, e.g. `https://login.microsoftonline.us` for Azure Government;
    /// `None` leaves it to `AZURE_AUTHORITY_HOST`, else the public cloud.
    pub authority_host: Option<String>,
    /// PEM certificates trusted in addition to the system's roots (a test vault, a TLS-inspecting
    /// proxy in front of a private endpoint).
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Whether the resource named in the vault's 401 challenge must be a parent domain of the
    /// vault's host (Azure's guard against sending a token to a look-alike vault). Only a vault
    /// on a loopback address, which no challenge resource can match, needs it off.
    pub verify_challenge_resource: bool,
    /// Size of newly created RSA key-encryption keys: 2048 or 3072 (the default).
    pub rsa_key_size: u32,
    pub connect_timeout: Duration,
    /// One HTTP attempt, connection included.
    pub request_timeout: Duration,
    /// Retries of an attempt that failed on the network, timed out, or got 408, 429 or 5xx.
    pub max_retries: u32,
    /// One provider call, every attempt, backoff and token request included: past it the call
    /// fails with [`KeyError::Unavailable`], so an outage never hangs a request.
    pub deadline: Duration,
}

impl Default for AzureKeyVaultSettings {
    fn default() -> Self {
        Self {
            credential: AzureCredential::Environment,
            authority_host: None,
            extra_root_certificates: Vec::new(),
            verify_challenge_resource: true,
            rsa_key_size: 3072,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_retries: 3,
            deadline: Duration::from_secs(30),
        }
    }
}

/// Agency keys in Azure Key Vault, through the official `azure_security_keyvault_keys` client.
#[derive(Clone)]
pub struct AzureKeyVaultProvider {
    inner: Arc<Inner>,
}

struct Inner {
    credential: Arc<dyn TokenCredential>,
    client_options: ClientOptions,
    verify_challenge_resource: bool,
    rsa_key_size: u32,
    deadline: Duration,
    /// One client per vault; each caches its vault's challenge and tokens.
    clients: Mutex<HashMap<String, Arc<KeyClient>>>,
    /// Key versions already checked to belong to an agency (and, for signing keys, their public
    /// key), so that a signature or an unwrap costs one request to the vault.
    checked: Mutex<HashMap<String, CheckedVersion>>,
}

#[derive(Clone)]
struct CheckedVersion {
    agency_id: Uuid,
    purpose: KeyPurpose,
    public_key: Option<VerifyingKey>,
}

impl std::fmt::Debug for AzureKeyVaultProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVaultProvider")
            .field("rsa_key_size", &self.inner.rsa_key_size)
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

/// A key version reference, taken apart.
struct VersionId {
    vault_url: String,
    name: String,
    version: String,
}

impl AzureKeyVaultProvider {
    pub const NAME: &'static str = "azure-keyvault";

    /// The production provider: credential from the environment, default settings.
    pub fn from_env() -> Result<Self, KeyError> {
        Self::new(AzureKeyVaultSettings::default())
    }

    pub fn new(settings: AzureKeyVaultSettings) -> Result<Self, KeyError> {
        if !matches!(settings.rsa_key_size, 2048 | 3072) {
            return Err(KeyError::NotConfigured(format!(
                "{}: RSA key size must be 2048 or 3072, not {}",
                Self::NAME,
                settings.rsa_key_size
            )));
        }
        let not_configured =
            |what: String| KeyError::NotConfigured(format!("{}: {what}", Self::NAME));

        let mut http = reqwest_azure::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            // Key Vault does not redirect; following one could send a token elsewhere.
            .redirect(reqwest_azure::redirect::Policy::none());
        for pem in &settings.extra_root_certificates {
            let certs = reqwest_azure::Certificate::from_pem_bundle(pem)
                .map_err(|e| not_configured(format!("extra root certificate: {e}")))?;
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .build()
            .map_err(|e| not_configured(format!("HTTP client: {e}")))?;

        let mut client_options = ClientOptions {
            transport: Some(Transport::new(Arc::new(http))),
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(200),
                max_retries: settings.max_retries,
                max_total_elapsed: to_azure_duration(settings.deadline),
                max_delay: azure_core::time::Duration::seconds(2),
            }),
            ..Default::default()
        };
        if let Some(host) = &settings.authority_host {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = host.clone();
            client_options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
        }

        let credential = credential(&settings.credential, &client_options)
            .map_err(|e| not_configured(format!("credential: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                credential,
                client_options,
                verify_challenge_resource: settings.verify_challenge_resource,
                rsa_key_size: settings.rsa_key_size,
                deadline: settings.deadline,
                clients: Mutex::new(HashMap::new()),
                checked: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Runs one provider call under the deadline.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, KeyError>>,
    ) -> Result<T, KeyError> {
        match tokio::time::timeout(self.inner.deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(KeyError::Unavailable(format!(
                "Azure Key Vault did not answer within {:?}",
                self.inner.deadline
            ))),
        }
    }

    fn client(&self, vault_url: &str) -> Result<Arc<KeyClient>, KeyError> {
        let vault_url = normalize_vault_url(vault_url)?;
        let mut clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&vault_url) {
            return Ok(client.clone());
        }
        let options = KeyClientOptions {
            client_options: self.inner.client_options.clone(),
            verify_challenge_resource: Some(self.inner.verify_challenge_resource),
            ..Default::default()
        };
        let client = KeyClient::new(&vault_url, self.inner.credential.clone(), Some(options))
            .map(Arc::new)
            .map_err(|e| KeyError::MalformedRef(format!("{vault_url}: {e}")))?;
        clients.insert(vault_url, client.clone());
        Ok(client)
    }

    async fn create_agency_keys_now(
        &self,
        agency_id: Uuid,
        vault_url: &str,
        key_name: Option<&str>,
    ) -> Result<AgencyKeys, KeyError> {
        let base = match key_name {
            Some(name) => name.to_owned(),
            None => format!("writ-{agency_id}"),
        };
        validate_base_name(&base)?;
        let client = self.client(vault_url)?;
        let key_encryption = self
            .create_or_adopt(&client, agency_id, KeyPurpose::KeyEncryption, &base)
            .await?;
        let signing = self
            .create_or_adopt(&client, agency_id, KeyPurpose::Signing, &base)
            .await?;
        let signing_public_key = self.checked_version(agency_id, &signing).await?.1;
        Ok(AgencyKeys {
            key_encryption,
            signing,
            signing_public_key: signing_public_key
                .ok_or_else(|| KeyError::MalformedRef(signing_public_key_missing()))?,
        })
    }

    /// Adopts the latest version of `<base>-<purpose>` when the key exists (an agency bringing
    /// its own key, or an onboarding run again after a failure), else creates the key.
    async fn create_or_adopt(
        &self,
        client: &KeyClient,
        agency_id: Uuid,
        purpose: KeyPurpose,
        base: &str,
    ) -> Result<KeyRef, KeyError> {
        let name = key_name(base, purpose);
        let existing = client
            .get_key(&name, None)
            .await
            .and_then(|r| r.into_model());
        let key = match existing {
            Ok(key) => self.adopt(client, agency_id, purpose, &name, key).await?,
            Err(e) => match vault_error(e, &name) {
                KeyError::NotFound(_) => client
                    .create_key(&name, self.create_parameters(agency_id, purpose)?, None)
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| vault_error(e, &name))?,
                other => return Err(other),
            },
        };
        self.remember(agency_id, purpose, &key)?;
        Ok(KeyRef {
            provider: Self::NAME.into(),
            purpose,
            version: 1,
            key_id: kid(&key)?,
            material: None,
            state: KeyState::Enabled,
        })
    }

    /// Checks that an existing key fits `purpose` and is not another agency's, and tags its
    /// latest version for `agency_id` when it carries no tag yet.
    async fn adopt(
        &self,
        client: &KeyClient,
        agency_id: Uuid,
        purpose: KeyPurpose,
        name: &str,
        key: Key,
    ) -> Result<Key, KeyError> {
        let refuse = |why: &str| KeyError::Refused(format!("cannot adopt key {name}: {why}"));
        let jwk = key.key.as_ref().ok_or_else(|| refuse("no key material"))?;
        match purpose {
            KeyPurpose::KeyEncryption => {
                let rsa = matches!(jwk.kty, Some(KeyType::Rsa | KeyType::RsaHsm));
                let bits = jwk.n.as_ref().map_or(0, |n| significant_bits(n));
                if !rsa || bits < MIN_RSA_BITS {
                    return Err(refuse(
                        "a key-encryption key must be RSA of 2048 bits or more",
                    ));
                }
                require_ops(jwk, &["wrapKey", "unwrapKey"]).map_err(|op| refuse(&op))?;
            }
            KeyPurpose::Signing => {
                let ec = matches!(jwk.kty, Some(KeyType::Ec | KeyType::EcHsm));
                if !ec || !matches!(jwk.crv, Some(CurveName::P256)) {
                    return Err(refuse("a signing key must be EC P-256"));
                }
                require_ops(jwk, &["sign"]).map_err(|op| refuse(&op))?;
            }
        }
        let mut tags = key.tags.clone().unwrap_or_default();
        match tags.get(TAG_AGENCY) {
            Some(owner) if *owner == agency_id.to_string() => {
                if tags.get(TAG_PURPOSE).map(String::as_str) != Some(purpose.as_str()) {
                    return Err(refuse("it is tagged for another purpose"));
                }
                Ok(key)
            }
            Some(_) => Err(refuse("it belongs to another agency")),
            None => {
                tags.insert(TAG_AGENCY.into(), agency_id.to_string());
                tags.insert(TAG_PURPOSE.into(), purpose.as_str().into());
                let id = key.resource_id().map_err(|e| refuse(&e.to_string()))?;
                let params = UpdateKeyPropertiesParameters {
                    tags: Some(tags),
                    ..Default::default()
                };
                client
                    .update_key_properties(
                        name,
                        params
                            .try_into()
                            .map_err(|e: azure_core::Error| refuse(&e.to_string()))?,
                        Some(KeyClientUpdateKeyPropertiesOptions {
                            key_version: id.version,
                            ..Default::default()
                        }),
                    )
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| vault_error(e, name))
            }
        }
    }

    fn create_parameters(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
    ) -> Result<azure_core::http::RequestContent<CreateKeyParameters>, KeyError> {
        let tags = HashMap::from([
            (TAG_AGENCY.to_owned(), agency_id.to_string()),
            (TAG_PURPOSE.to_owned(), purpose.as_str().to_owned()),
        ]);
        let params = match purpose {
            KeyPurpose::KeyEncryption => CreateKeyParameters {
                kty: Some(KeyType::Rsa),
                key_size: Some(self.inner.rsa_key_size as i32),
                key_ops: Some(vec![JwkOperation::WrapKey, JwkOperation::UnwrapKey]),
                tags: Some(tags),
                ..Default::default()
            },
            KeyPurpose::Signing => CreateKeyParameters {
                kty: Some(KeyType::Ec),
                curve: Some(CurveName::P256),
                key_ops: Some(vec![JwkOperation::Sign, JwkOperation::Verify]),
                tags: Some(tags),
                ..Default::default()
            },
        };
        params
            .try_into()
            .map_err(|e: azure_core::Error| KeyError::Refused(e.to_string()))
    }

    /// Records a key version this provider made or adopted for `agency_id`.
    fn remember(&self, agency_id: Uuid, purpose: KeyPurpose, key: &Key) -> Result<(), KeyError> {
        let kid = kid(key)?;
        let checked = checked(agency_id, purpose, key, &kid)?;
        self.inner
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kid, checked);
        Ok(())
    }

    /// The reference's vault client and version, once the version is known to be `agency_id`'s:
    /// from memory, else from the vault's copy of the version (which the vault refuses for a
    /// disabled version). Returns the signing public key for a signing key.
    async fn checked_version(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<(VersionId, Option<VerifyingKey>, Arc<KeyClient>), KeyError> {
        let id = parse_ref(key)?;
        let client = self.client(&id.vault_url)?;
        let known = self
            .inner
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key.key_id)
            .cloned();
        let checked = match known {
            Some(checked) => checked,
            None => {
                let bundle = client
                    .get_key(
                        &id.name,
                        Some(KeyClientGetKeyOptions {
                            key_version: Some(id.version.clone()),
                            ..Default::default()
                        }),
                    )
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| vault_error(e, &key.key_id))?;
                let owner = tagged_owner(bundle.tags.as_ref(), key)?;
                let checked = checked(owner, key.purpose, &bundle, &key.key_id)?;
                self.inner
                    .checked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.key_id.clone(), checked.clone());
                checked
            }
        };
        if checked.agency_id != agency_id || checked.purpose != key.purpose {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        Ok((id, checked.public_key, client))
    }

    /// What the vault holds of one version, from the version list: unlike a `get`, it answers for
    /// a disabled version too. Checks that the version is `agency_id`'s.
    async fn version_properties(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<(VersionId, KeyProperties, Arc<KeyClient>), KeyError> {
        let id = parse_ref(key)?;
        let client = self.client(&id.vault_url)?;
        let versions = list_versions(&client, &id.name, &key.key_id).await?;
        let properties = versions
            .into_iter()
            .find(|p| p.kid.as_deref().is_some_and(|kid| same_version(kid, &id)))
            .ok_or_else(|| KeyError::NotFound(key.key_id.clone()))?;
        if tagged_owner(properties.tags.as_ref(), key)? != agency_id {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        Ok((id, properties, client))
    }

    async fn update_version(
        &self,
        client: &KeyClient,
        id: &VersionId,
        key_id: &str,
        enabled: Option<bool>,
        tags: Option<HashMap<String, String>>,
    ) -> Result<(), KeyError> {
        let params = UpdateKeyPropertiesParameters {
            key_attributes: enabled.map(|enabled| KeyAttributes {
                enabled: Some(enabled),
                ..Default::default()
            }),
            tags,
            ..Default::default()
        };
        client
            .update_key_properties(
                &id.name,
                params
                    .try_into()
                    .map_err(|e: azure_core::Error| KeyError::Refused(e.to_string()))?,
                Some(KeyClientUpdateKeyPropertiesOptions {
                    key_version: Some(id.version.clone()),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| vault_error(e, key_id))?;
        Ok(())
    }

    async fn wrap_now(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        kek.ensure_enabled()?;
        require_purpose(kek, KeyPurpose::KeyEncryption)?;
        let (id, _, client) = self.checked_version(agency_id, kek).await?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(16 + data_key.len()));
        plaintext.extend_from_slice(agency_id.as_bytes());
        plaintext.extend_from_slice(data_key);
        let params = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(plaintext.to_vec()),
            ..Default::default()
        };
        let result = client
            .wrap_key(
                &id.name,
                params
                    .try_into()
                    .map_err(|e: azure_core::Error| KeyError::Refused(e.to_string()))?,
                Some(KeyClientWrapKeyOptions {
                    key_version: Some(id.version.clone()),
                    ..Default::default()
                }),
            )
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| vault_error(e, &kek.key_id))?;
        let ciphertext = result
            .result
            .ok_or_else(|| KeyError::Refused("Key Vault returned no wrapped key".into()))?;
        Ok(WrappedKey {
            kek_version: kek.version,
            ciphertext,
        })
    }

    /// Key Vault's wrapkey takes no additional authenticated data, so the agency id is wrapped
    /// with the data key (`agency id ‖ data key`) and checked here. That binds as tightly as AAD
    /// would: RSA-OAEP is non-malleable, so without the private key nobody can turn a wrap of
    /// `A ‖ k` into a wrap of `B ‖ k`; and whoever builds a wrap of `B ‖ k` from the public key
    /// already knew `k`. So a data key wrapped for one agency is never handed to another.
    async fn unwrap_now(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        kek.ensure_enabled()?;
        require_purpose(kek, KeyPurpose::KeyEncryption)?;
        if wrapped.kek_version != kek.version {
            return Err(KeyError::MalformedRef(format!(
                "data key wrapped by version {}, given version {}",
                wrapped.kek_version, kek.version
            )));
        }
        let (id, _, client) = self.checked_version(agency_id, kek).await?;
        let params = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(wrapped.ciphertext.clone()),
            ..Default::default()
        };
        let result = client
            .unwrap_key(
                &id.name,
                &id.version,
                params
                    .try_into()
                    .map_err(|e: azure_core::Error| KeyError::Refused(e.to_string()))?,
                None,
            )
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| match vault_error(e, &kek.key_id) {
                // Key Vault answers 400 to a ciphertext its key cannot decrypt.
                KeyError::Refused(_) => KeyError::Decrypt,
                other => other,
            })?;
        let plaintext = Zeroizing::new(result.result.ok_or(KeyError::Decrypt)?);
        match plaintext.split_at_checked(16) {
            Some((prefix, data_key)) if prefix == agency_id.as_bytes() => {
                Ok(Zeroizing::new(data_key.to_vec()))
            }
            _ => Err(KeyError::Decrypt),
        }
    }

    async fn sign_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        key.ensure_enabled()?;
        require_purpose(key, KeyPurpose::Signing)?;
        let (id, public_key, client) = self.checked_version(agency_id, key).await?;
        let public_key =
            public_key.ok_or_else(|| KeyError::MalformedRef(signing_public_key_missing()))?;
        let params = SignParameters {
            algorithm: Some(SignatureAlgorithm::Es256),
            value: Some(digest.to_vec()),
        };
        let result = client
            .sign(
                &id.name,
                params
                    .try_into()
                    .map_err(|e: azure_core::Error| KeyError::Refused(e.to_string()))?,
                Some(KeyClientSignOptions {
                    key_version: Some(id.version.clone()),
                    ..Default::default()
                }),
            )
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| vault_error(e, &key.key_id))?;
        // Key Vault returns ES256 signatures as raw r ‖ s (JWS form); Writ's are DER. Checking it
        // here means a wrong key or a corrupted answer never reaches a checkpoint.
        let raw = result.result.unwrap_or_default();
        let signature = Signature::from_slice(&raw)
            .ok()
            .filter(|sig| public_key.verify_prehash(digest, sig).is_ok())
            .ok_or_else(|| {
                KeyError::Refused(format!(
                    "Key Vault's signature with {} does not verify",
                    key.key_id
                ))
            })?;
        Ok(crate::low_s(signature).to_der())
    }

    async fn rotate_now(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError> {
        // A disabled current version may still be rotated away from, so ownership comes from the
        // version list rather than a `get`.
        let (id, _, client) = self.version_properties(agency_id, current).await?;
        // Creating a key under an existing name makes its next version.
        let key = client
            .create_key(
                &id.name,
                self.create_parameters(agency_id, current.purpose)?,
                None,
            )
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| vault_error(e, &current.key_id))?;
        self.remember(agency_id, current.purpose, &key)?;
        Ok(KeyRef {
            provider: Self::NAME.into(),
            purpose: current.purpose,
            version: current.version + 1,
            key_id: kid(&key)?,
            material: None,
            state: KeyState::Enabled,
        })
    }

    async fn disable_now(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        let (id, _, client) = self.version_properties(agency_id, key).await?;
        self.update_version(&client, &id, &key.key_id, Some(false), None)
            .await?;
        Ok(key.with_state(KeyState::Disabled))
    }

    /// Key Vault deletes whole keys, never one version. So the version is disabled at once and
    /// tagged as pending deletion; when every version of the key is pending deletion (the last
    /// one scheduled, typically at offboarding), the key is deleted. Deletion in Key Vault is
    /// soft: the key is purged when the vault's retention period (7 to 90 days) has passed, which
    /// is the waiting period of this crypto-shredding. Until then a version stays recoverable
    /// by the agency's vault administrators, as with the other providers' waiting periods.
    async fn schedule_deletion_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        let pending = key.with_state(KeyState::PendingDeletion);
        let (id, properties, client) = match self.version_properties(agency_id, key).await {
            Ok(found) => found,
            Err(KeyError::NotFound(_)) => {
                // Already deleted (a retried offboarding): fine if it was this agency's key.
                return self
                    .deleted_key_owner(agency_id, key)
                    .await
                    .map(|()| pending);
            }
            Err(e) => return Err(e),
        };
        let mut tags = properties.tags.unwrap_or_default();
        tags.insert(TAG_PENDING_DELETION.into(), unix_now().to_string());
        self.update_version(&client, &id, &key.key_id, Some(false), Some(tags))
            .await?;
        let versions = list_versions(&client, &id.name, &key.key_id).await?;
        let all_pending = versions.iter().all(|p| {
            p.tags
                .as_ref()
                .is_some_and(|t| t.contains_key(TAG_PENDING_DELETION))
        });
        if all_pending {
            client
                .delete_key(&id.name, None)
                .await
                .map_err(|e| vault_error(e, &key.key_id))?;
        }
        Ok(pending)
    }

    /// Every version of `key`'s key disabled and tagged for deletion, then the key deleted: a
    /// version a failed rotation left behind, which nobody would ever schedule, cannot keep the
    /// key (and so every version) from being deleted.
    async fn schedule_every_version_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        let (id, _, client) = match self.version_properties(agency_id, key).await {
            Ok(found) => found,
            Err(KeyError::NotFound(_)) => {
                self.deleted_key_owner(agency_id, key).await?;
                return Ok(key.with_state(KeyState::PendingDeletion));
            }
            Err(e) => return Err(e),
        };
        let versions = list_versions(&client, &id.name, &key.key_id).await?;
        // Every version is checked before any changes: one tagged for another agency or purpose
        // refuses the whole key. A version without Writ's tags is part of the key the agency
        // adopted (older versions it brought along) and goes with it.
        for properties in &versions {
            let tags = properties.tags.as_ref();
            if tags.is_some_and(|t| t.contains_key(TAG_AGENCY))
                && tagged_owner(tags, key)? != agency_id
            {
                return Err(KeyError::MalformedRef(key.key_id.clone()));
            }
        }
        for properties in versions {
            let Some(version) = properties
                .kid
                .as_deref()
                .and_then(|kid| kid.parse::<ResourceId>().ok())
                .and_then(|r| r.version)
            else {
                continue;
            };
            let mut tags = properties.tags.unwrap_or_default();
            if tags.contains_key(TAG_PENDING_DELETION) {
                continue;
            }
            tags.insert(TAG_PENDING_DELETION.into(), unix_now().to_string());
            let sibling = VersionId {
                vault_url: id.vault_url.clone(),
                name: id.name.clone(),
                version,
            };
            self.update_version(&client, &sibling, &key.key_id, Some(false), Some(tags))
                .await?;
        }
        client
            .delete_key(&id.name, None)
            .await
            .map_err(|e| vault_error(e, &key.key_id))?;
        Ok(key.with_state(KeyState::PendingDeletion))
    }

    /// Recovers the key when it was deleted (every version was pending deletion), then takes the
    /// version's pending-deletion tag off and enables it, or leaves it disabled.
    async fn cancel_deletion_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError> {
        let found = match self.version_properties(agency_id, key).await {
            Err(KeyError::NotFound(_)) => {
                self.deleted_key_owner(agency_id, key).await?;
                let id = parse_ref(key)?;
                self.client(&id.vault_url)?
                    .recover_deleted_key(&id.name, None)
                    .await
                    .map_err(|e| vault_error(e, &key.key_id))?;
                // Recovery runs in the background at Key Vault: the key reappears shortly (the
                // provider's deadline bounds the wait).
                loop {
                    match self.version_properties(agency_id, key).await {
                        Err(KeyError::NotFound(_)) => {
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        }
                        found => break found?,
                    }
                }
            }
            found => found?,
        };
        let (id, properties, client) = found;
        let mut tags = properties.tags.unwrap_or_default();
        tags.remove(TAG_PENDING_DELETION);
        self.update_version(&client, &id, &key.key_id, Some(enable), Some(tags))
            .await?;
        Ok(key.enabled_if(enable))
    }

    async fn deleted_key_owner(&self, agency_id: Uuid, key: &KeyRef) -> Result<(), KeyError> {
        let id = parse_ref(key)?;
        let client = self.client(&id.vault_url)?;
        let deleted = client
            .get_deleted_key(&id.name, None)
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| vault_error(e, &key.key_id))?;
        if tagged_owner(deleted.tags.as_ref(), key)? != agency_id {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        Ok(())
    }

    async fn describe_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyDescription, KeyError> {
        let (_, properties, _) = self.version_properties(agency_id, key).await?;
        let enabled = properties
            .attributes
            .as_ref()
            .and_then(|a| a.enabled)
            .unwrap_or(false);
        let pending = properties
            .tags
            .as_ref()
            .is_some_and(|t| t.contains_key(TAG_PENDING_DELETION));
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            purpose: key.purpose,
            version: key.version,
            state: match (enabled, pending) {
                (_, true) => KeyState::PendingDeletion,
                (true, false) => KeyState::Enabled,
                (false, false) => KeyState::Disabled,
            },
            algorithm: match key.purpose {
                KeyPurpose::KeyEncryption => "RSA-OAEP-256",
                KeyPurpose::Signing => "ECDSA-P256",
            }
            .into(),
        })
    }
}

impl KeyBackend for AzureKeyVaultProvider {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn prior_claim(&self, spec: &KeySpec) -> Result<Option<Uuid>, KeyError> {
        let KeySpec::AzureKeyVault {
            vault_url,
            key_name: Some(base),
        } = spec
        else {
            // Without a base name the keys are named after the new agency: nothing to adopt.
            return Ok(None);
        };
        self.bounded(async {
            validate_base_name(base)?;
            let client = self.client(vault_url)?;
            let mut owners = Vec::new();
            for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
                let name = key_name(base, purpose);
                match client
                    .get_key(&name, None)
                    .await
                    .and_then(|r| r.into_model())
                {
                    Ok(key) => owners.push(key.tags.and_then(|t| t.get(TAG_AGENCY).cloned())),
                    Err(e) => match vault_error(e, &name) {
                        KeyError::NotFound(_) => {}
                        other => return Err(other),
                    },
                }
            }
            crate::provider::single_claim(&owners)
        })
        .await
    }

    async fn create_agency_keys(
        &self,
        agency_id: Uuid,
        spec: &KeySpec,
    ) -> Result<AgencyKeys, KeyError> {
        match spec {
            KeySpec::AzureKeyVault {
                vault_url,
                key_name,
            } => {
                self.bounded(self.create_agency_keys_now(agency_id, vault_url, key_name.as_deref()))
                    .await
            }
            other => Err(KeyError::MalformedRef(format!(
                "the {} provider cannot create {other:?}",
                Self::NAME
            ))),
        }
    }

    async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        self.bounded(self.wrap_now(agency_id, kek, data_key)).await
    }

    async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.bounded(self.unwrap_now(agency_id, kek, wrapped)).await
    }

    async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        self.bounded(self.sign_now(agency_id, key, digest)).await
    }

    async fn public_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError> {
        require_purpose(key, KeyPurpose::Signing)?;
        let (_, public_key, _) = self.bounded(self.checked_version(agency_id, key)).await?;
        public_key.ok_or_else(|| KeyError::MalformedRef(signing_public_key_missing()))
    }

    async fn rotate(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError> {
        self.bounded(self.rotate_now(agency_id, current)).await
    }

    async fn disable(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.bounded(self.disable_now(agency_id, key)).await
    }

    async fn schedule_deletion(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.bounded(self.schedule_deletion_now(agency_id, key))
            .await
    }

    async fn schedule_deletion_of_every_version(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
    ) -> Result<KeyRef, KeyError> {
        self.bounded(self.schedule_every_version_now(agency_id, key))
            .await
    }

    async fn cancel_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError> {
        self.bounded(self.cancel_deletion_now(agency_id, key, enable))
            .await
    }

    async fn describe(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyDescription, KeyError> {
        self.bounded(self.describe_now(agency_id, key)).await
    }
}

fn credential(
    source: &AzureCredential,
    client_options: &ClientOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match source {
        AzureCredential::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } => client_secret_credential(tenant_id, client_id, client_secret, client_options),
        AzureCredential::Environment => {
            if let (Some(tenant), Some(client), Some(secret)) = (
                env("AZURE_TENANT_ID"),
                env("AZURE_CLIENT_ID"),
                env("AZURE_CLIENT_SECRET"),
            ) {
                client_secret_credential(&tenant, &client, &secret, client_options)
            } else if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                let credential =
                    WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                        credential_options: ClientAssertionCredentialOptions {
                            client_options: client_options.clone(),
                        },
                        ..Default::default()
                    }))?;
                Ok(credential)
            } else {
                let credential =
                    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                        user_assigned_id: env("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
                        client_options: client_options.clone(),
                    }))?;
                Ok(credential)
            }
        }
    }
}

fn client_secret_credential(
    tenant_id: &str,
    client_id: &str,
    client_secret: &str,
    client_options: &ClientOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let credential = ClientSecretCredential::new(
        tenant_id,
        client_id.to_owned(),
        Secret::new(client_secret.to_owned()),
        Some(ClientSecretCredentialOptions {
            client_options: client_options.clone(),
        }),
    )?;
    Ok(credential)
}

/// Turns the SDK's error into Writ's: outages (network, timeouts, 408, 429, 5xx) are
/// `Unavailable`, a version the vault reports disabled is `Disabled`, a missing key `NotFound`,
/// and anything else the vault or Entra ID refused is `Refused`.
fn vault_error(error: azure_core::Error, key_id: &str) -> KeyError {
    if let ErrorKind::HttpResponse { status, .. } = error.kind() {
        let status = u16::from(*status);
        let message = error.to_string();
        let disabled = ErrorResponse::try_from(error)
            .ok()
            .and_then(|r| r.error)
            .is_some_and(|detail| {
                detail
                    .inner_error
                    .as_ref()
                    .and_then(|inner| inner.code.as_deref())
                    == Some("KeyDisabled")
                    || detail
                        .message
                        .as_deref()
                        .is_some_and(|m| m.contains("disabled key"))
            });
        return match status {
            403 if disabled => KeyError::Disabled(key_id.to_owned()),
            404 => KeyError::NotFound(key_id.to_owned()),
            408 | 429 | 500..=599 => {
                KeyError::Unavailable(format!("Azure Key Vault answered {status}: {message}"))
            }
            _ => KeyError::Refused(format!("Azure Key Vault answered {status}: {message}")),
        };
    }
    if is_outage(&error) {
        KeyError::Unavailable(format!("Azure Key Vault: {error}"))
    } else {
        KeyError::Refused(format!("Azure Key Vault: {error}"))
    }
}

/// Whether an error, or one it was caused by (a token request inside a credential error), is a
/// network failure or an overloaded or failing service.
fn is_outage(error: &azure_core::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(azure) = e.downcast_ref::<azure_core::Error>() {
            match azure.kind() {
                ErrorKind::Io | ErrorKind::Connection => return true,
                ErrorKind::HttpResponse { status, .. }
                    if matches!(u16::from(*status), 408 | 429 | 500..=599) =>
                {
                    return true;
                }
                _ => {}
            }
        }
        current = e.source();
    }
    false
}

fn to_azure_duration(d: Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key_name(base: &str, purpose: KeyPurpose) -> String {
    format!("{base}-{}", purpose.as_str())
}

/// Key Vault names: 1 to 127 characters of ASCII letters, digits and dashes; the base leaves room
/// for the `-signing` suffix.
fn validate_base_name(base: &str) -> Result<(), KeyError> {
    let ok = !base.is_empty()
        && base.len() <= 127 - "-signing".len()
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KeyError::MalformedRef(format!(
            "Key Vault key name {base:?}: use up to 119 letters, digits and dashes"
        )))
    }
}

/// `https://host[:port]`, the form Key Vault uses in key ids.
fn normalize_vault_url(vault_url: &str) -> Result<String, KeyError> {
    let url = azure_core::http::Url::parse(vault_url)
        .map_err(|e| KeyError::MalformedRef(format!("vault URL {vault_url}: {e}")))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(KeyError::MalformedRef(format!(
            "vault URL {vault_url}: Key Vault is reached over https only"
        )));
    }
    Ok(format!("https://{}", url.authority()))
}

fn parse_ref(key: &KeyRef) -> Result<VersionId, KeyError> {
    let malformed = || KeyError::MalformedRef(key.key_id.clone());
    if key.provider != AzureKeyVaultProvider::NAME {
        return Err(malformed());
    }
    let id: ResourceId = key.key_id.parse().map_err(|_| malformed())?;
    let version = id.version.filter(|v| !v.is_empty()).ok_or_else(malformed)?;
    let suffix = format!("-{}", key.purpose.as_str());
    if !id.name.ends_with(&suffix) {
        return Err(malformed());
    }
    Ok(VersionId {
        vault_url: normalize_vault_url(&id.vault_url)?,
        name: id.name,
        version,
    })
}

fn same_version(kid: &str, id: &VersionId) -> bool {
    kid.parse::<ResourceId>().is_ok_and(|other| {
        other.name == id.name && other.version.as_deref() == Some(id.version.as_str())
    })
}

fn require_purpose(key: &KeyRef, purpose: KeyPurpose) -> Result<(), KeyError> {
    if key.purpose == purpose {
        Ok(())
    } else {
        Err(KeyError::MalformedRef(key.key_id.clone()))
    }
}

/// The agency a version's tags name, if they name the reference's purpose.
fn tagged_owner(tags: Option<&HashMap<String, String>>, key: &KeyRef) -> Result<Uuid, KeyError> {
    let malformed = || KeyError::MalformedRef(key.key_id.clone());
    let tags = tags.ok_or_else(malformed)?;
    if tags.get(TAG_PURPOSE).map(String::as_str) != Some(key.purpose.as_str()) {
        return Err(malformed());
    }
    tags.get(TAG_AGENCY)
        .and_then(|a| Uuid::parse_str(a).ok())
        .ok_or_else(malformed)
}

async fn list_versions(
    client: &KeyClient,
    name: &str,
    key_id: &str,
) -> Result<Vec<KeyProperties>, KeyError> {
    let pager = client
        .list_key_properties_versions(name, None)
        .map_err(|e| vault_error(e, key_id))?;
    pager
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| vault_error(e, key_id))
}

fn kid(key: &Key) -> Result<String, KeyError> {
    key.key
        .as_ref()
        .and_then(|k| k.kid.clone())
        .ok_or_else(|| KeyError::Refused("Key Vault returned a key without an id".into()))
}

fn checked(
    agency_id: Uuid,
    purpose: KeyPurpose,
    key: &Key,
    kid: &str,
) -> Result<CheckedVersion, KeyError> {
    let public_key = match purpose {
        KeyPurpose::Signing => Some(ec_public_key(key, kid)?),
        KeyPurpose::KeyEncryption => None,
    };
    Ok(CheckedVersion {
        agency_id,
        purpose,
        public_key,
    })
}

fn ec_public_key(key: &Key, kid: &str) -> Result<VerifyingKey, KeyError> {
    let malformed = || KeyError::Refused(format!("{kid} is not an EC P-256 public key"));
    let jwk = key.key.as_ref().ok_or_else(malformed)?;
    let (Some(x), Some(y)) = (jwk.x.as_deref(), jwk.y.as_deref()) else {
        return Err(malformed());
    };
    if x.len() != 32 || y.len() != 32 {
        return Err(malformed());
    }
    let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    VerifyingKey::from_encoded_point(&point).map_err(|_| malformed())
}

fn require_ops(jwk: &JsonWebKey, needed: &[&str]) -> Result<(), String> {
    let Some(ops) = jwk.key_ops.as_ref() else {
        return Ok(());
    };
    match needed.iter().find(|op| !ops.iter().any(|o| o == *op)) {
        Some(missing) => Err(format!("its permitted operations lack {missing}")),
        None => Ok(()),
    }
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let Some(first) = big_endian.iter().position(|b| *b != 0) else {
        return 0;
    };
    (big_endian.len() - first) * 8 - big_endian[first].leading_zeros() as usize
}

fn signing_public_key_missing() -> String {
    "signing key version has no public key on record".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek_ref(key_id: &str) -> KeyRef {
        KeyRef {
            provider: AzureKeyVaultProvider::NAME.into(),
            purpose: KeyPurpose::KeyEncryption,
            version: 1,
            key_id: key_id.into(),
            material: None,
            state: KeyState::Enabled,
        }
    }

    #[test]
    fn a_reference_names_its_vault_key_and_version() {
        let id = parse_ref(&kek_ref(
            "https://agency.vault.azure.net/keys/writ-x-kek/0123abcd",
        ))
        .unwrap();
        assert_eq!(id.vault_url, "https://agency.vault.azure.net");
        assert_eq!(id.name, "writ-x-kek");
        assert_eq!(id.version, "0123abcd");
    }

    #[test]
    fn references_without_a_version_or_of_another_purpose_are_malformed() {
        for bad in [
            "https://agency.vault.azure.net/keys/writ-x-kek",
            "https://agency.vault.azure.net/keys/writ-x-signing/0123abcd",
            "https://agency.vault.azure.net/secrets/writ-x-kek/0123abcd",
            "http://agency.vault.azure.net/keys/writ-x-kek/0123abcd",
            "local:whatever",
        ] {
            assert!(
                matches!(parse_ref(&kek_ref(bad)), Err(KeyError::MalformedRef(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_names_are_checked_before_reaching_the_vault() {
        assert!(validate_base_name("writ-3f1c").is_ok());
        assert!(validate_base_name("").is_err());
        assert!(validate_base_name("has space").is_err());
        assert!(validate_base_name("../keys").is_err());
        assert!(validate_base_name(&"a".repeat(120)).is_err());
    }

    /// Key operations run in spawned tasks (background re-wrapping), so their futures must be
    /// `Send`; this fails to compile otherwise.
    #[allow(dead_code)]
    fn futures_are_send(p: &AzureKeyVaultProvider, key: &KeyRef, wrapped: &WrappedKey) {
        fn send<T: Send>(_: T) {}
        let a = Uuid::nil();
        send(p.create_agency_keys(a, &KeySpec::Local));
        send(p.wrap_data_key(a, key, &[]));
        send(p.unwrap_data_key(a, key, wrapped));
        send(p.sign_digest(a, key, &[0; 32]));
        send(p.public_key(a, key));
        send(p.rotate(a, key));
        send(p.disable(a, key));
        send(p.schedule_deletion(a, key));
        send(p.describe(a, key));
    }

    #[test]
    fn rsa_modulus_size_ignores_leading_zeros() {
        let mut n = vec![0u8; 257];
        n[1] = 0x80;
        assert_eq!(significant_bits(&n), 2048);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }
}
