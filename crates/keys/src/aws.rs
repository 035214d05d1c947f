//! The `aws-kms` provider: an agency's keys live in AWS KMS (a customer-managed symmetric key wraps
//! data keys, an ECC_NIST_P256 key signs) and Writ keeps only their ARNs.
//!
//! Each key version is its own KMS key. KMS cannot rotate asymmetric keys at all, and its automatic
//! rotation of symmetric keys keeps one key id for every version, so disabling "version 1" would
//! disable them all; one KMS key per version keeps versions 1:1 with key ids, so disabling or
//! deleting a version is a KMS call on exactly that version.
//!
//! Every KMS key Writ uses carries the tags `writ:agency` and `writ:purpose`, and every use checks
//! them (read once per key and process, then cached): a reference is honoured only for the agency
//! and purpose its key is tagged with. Data keys are also bound by KMS itself, through the
//! encryption context `{"writ:agency": <agency id>}`. Keys must be in the account and region the
//! provider is configured for: KMS tags, disables and deletes no other account's keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_kms::config::Credentials;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    KeySpec as KmsKeySpec, KeyState as KmsKeyState, KeyUsageType, MessageType,
    SigningAlgorithmSpec, Tag,
};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    AgencyKeys, KeyBackend, KeyDescription, KeyError, KeyPurpose, KeyRef, KeySpec, KeyState,
    WrappedKey,
};

/// Tag and encryption-context key naming the agency a KMS key (or a data key) belongs to.
const AGENCY: &str = "writ:agency";
const PURPOSE: &str = "writ:purpose";
const VERSION: &str = "writ:version";

/// The longest waiting period KMS allows: a mistaken offboarding can be undone
/// (`CancelKeyDeletion`) for a month before the agency's data is gone for good.
const DELETION_WINDOW_DAYS: i32 = 30;
/// The shortest, for a key this provider made moments ago during a failed onboarding.
const ABANDONED_KEY_WINDOW_DAYS: i32 = 7;
/// The longest message KMS signs with `MessageType=RAW`.
const MAX_RAW_MESSAGE: usize = 4096;

/// An outage must become a clear 503 within seconds, never a hung request: a few attempts with
/// jittered exponential backoff (the SDK's standard retry mode), each bounded, all bounded.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Agency keys in AWS KMS; cheap to clone (one SDK client and one cache, shared).
#[derive(Clone)]
pub struct AwsKmsProvider {
    client: aws_sdk_kms::Client,
    known: Arc<Mutex<Known>>,
}

/// An existing KMS key found fit to be an agency's key.
struct Adoptable {
    purpose: KeyPurpose,
    arn: String,
    /// Already tagged for this agency and purpose (adopted before).
    tagged: bool,
}

/// Facts about KMS keys that never change once read: who a key belongs to, its public key.
#[derive(Default)]
struct Known {
    owners: HashMap<String, (Uuid, KeyPurpose)>,
    public_keys: HashMap<String, VerifyingKey>,
}

impl std::fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("region", &self.client.config().region())
            .finish_non_exhaustive()
    }
}

impl AwsKmsProvider {
    pub const NAME: &'static str = "aws-kms";

    /// Configured the standard AWS way: the default credential chain (environment, profile, web
    /// identity, container and instance roles; not SSO profiles, whose clients are left out of
    /// the build), the region from `AWS_REGION` or the profile, and an endpoint override from
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_KMS`).
    pub async fn from_env() -> Result<Self, KeyError> {
        Self::load(aws_config::defaults(BehaviorVersion::latest())).await
    }

    /// Against one endpoint with static credentials, whatever the process environment says (tests
    /// against moto, several at once in one process).
    pub async fn with_endpoint(
        endpoint_url: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, KeyError> {
        let credentials =
            Credentials::new(access_key_id, secret_access_key, None, None, "writ-static");
        Self::load(
            aws_config::defaults(BehaviorVersion::latest())
                .endpoint_url(endpoint_url)
                .region(Region::new(region.to_owned()))
                .credentials_provider(credentials),
        )
        .await
    }

    async fn load(loader: ConfigLoader) -> Result<Self, KeyError> {
        let config = loader
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(INITIAL_BACKOFF)
                    .with_max_backoff(MAX_BACKOFF),
            )
            .load()
            .await;
        if config.region().is_none() {
            return Err(KeyError::NotConfigured(format!(
                "{}: no AWS region (set AWS_REGION or a profile region)",
                Self::NAME
            )));
        }
        Ok(Self {
            client: aws_sdk_kms::Client::new(&config),
            known: Arc::default(),
        })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // The maps hold only immutable facts, so a panic elsewhere cannot leave them inconsistent.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new KMS key for `purpose`, tagged with its agency, purpose and version.
    async fn create_key(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
        version: i32,
    ) -> Result<KeyRef, KeyError> {
        let (spec, usage) = kms_shape(purpose);
        let tags = [
            (AGENCY, agency_id.to_string()),
            (PURPOSE, purpose.as_str().to_owned()),
            (VERSION, version.to_string()),
        ];
        let mut request = self
            .client
            .create_key()
            .key_spec(spec)
            .key_usage(usage)
            .description(format!(
                "Writ agency {agency_id}: {} key, version {version}",
                purpose.as_str()
            ));
        for (key, value) in tags {
            request = request.tags(tag(key, value)?);
        }
        let out = request
            .send()
            .await
            .map_err(|e| kms_error("a new KMS key", e))?;
        let arn = out
            .key_metadata()
            .and_then(|m| m.arn())
            .ok_or_else(|| KeyError::Refused("CreateKey answered without a key ARN".into()))?
            .to_owned();
        self.known()
            .owners
            .insert(arn.clone(), (agency_id, purpose));
        Ok(enabled_ref(purpose, version, arn))
    }

    /// Checks that an existing KMS key (ARN, key id or alias) can be the agency's `purpose` key:
    /// the right spec and usage, enabled, and tagged for no other agency or purpose. Changes
    /// nothing; [`Self::claim_key`] does.
    async fn inspect_key(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
        key_id: &str,
    ) -> Result<Adoptable, KeyError> {
        let meta = self.metadata(key_id).await?;
        let (spec, usage) = kms_shape(purpose);
        if meta.key_spec() != Some(&spec) || meta.key_usage() != Some(&usage) {
            return Err(KeyError::Refused(format!(
                "{key_id} is {} {}; an agency's {} key must be {} {}",
                meta.key_spec().map_or("?", |s| s.as_str()),
                meta.key_usage().map_or("?", |u| u.as_str()),
                purpose.as_str(),
                spec.as_str(),
                usage.as_str(),
            )));
        }
        if meta.key_state() != Some(&KmsKeyState::Enabled) {
            return Err(KeyError::Disabled(key_id.to_owned()));
        }
        let arn = arn_of(&meta, key_id)?;
        let tagged = match self.read_tags(&arn).await? {
            (None, None) => false,
            (Some(a), Some(p)) if a == agency_id.to_string() && p == purpose.as_str() => true,
            _ => {
                return Err(KeyError::Refused(format!(
                    "{arn} is already tagged for another agency or purpose"
                )));
            }
        };
        Ok(Adoptable {
            purpose,
            arn,
            tagged,
        })
    }

    /// The `writ:agency` tag of an existing key named by `key_id` (ARN, key id or alias).
    async fn agency_tag(&self, key_id: &str) -> Result<Option<String>, KeyError> {
        let arn = arn_of(&self.metadata(key_id).await?, key_id)?;
        Ok(self.read_tags(&arn).await?.0)
    }

    /// `DescribeKey` of a key named by ARN, key id or alias.
    async fn metadata(&self, key_id: &str) -> Result<aws_sdk_kms::types::KeyMetadata, KeyError> {
        let out = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| kms_error(key_id, e))?;
        out.key_metadata()
            .cloned()
            .ok_or_else(|| KeyError::Refused(format!("DescribeKey {key_id}: no metadata")))
    }

    /// Tags an inspected key for the agency and makes it version 1 of its purpose.
    async fn claim_key(&self, agency_id: Uuid, key: Adoptable) -> Result<KeyRef, KeyError> {
        if !key.tagged {
            self.client
                .tag_resource()
                .key_id(&key.arn)
                .tags(tag(AGENCY, agency_id.to_string())?)
                .tags(tag(PURPOSE, key.purpose.as_str().to_owned())?)
                .send()
                .await
                .map_err(|e| kms_error(&key.arn, e))?;
        }
        self.known()
            .owners
            .insert(key.arn.clone(), (agency_id, key.purpose));
        Ok(enabled_ref(key.purpose, 1, key.arn))
    }

    /// The `writ:agency` and `writ:purpose` tags of a key, if it has them.
    async fn read_tags(&self, arn: &str) -> Result<(Option<String>, Option<String>), KeyError> {
        let (mut agency, mut purpose) = (None, None);
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_resource_tags()
                .key_id(arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| kms_error(arn, e))?;
            for t in out.tags() {
                match t.tag_key() {
                    AGENCY => agency = Some(t.tag_value().to_owned()),
                    PURPOSE => purpose = Some(t.tag_value().to_owned()),
                    _ => {}
                }
            }
            match out.next_marker() {
                Some(next) if out.truncated() => marker = Some(next.to_owned()),
                _ => return Ok((agency, purpose)),
            }
        }
    }

    /// Refuses a reference that is not this provider's, not for `purpose`, or whose KMS key is not
    /// tagged for `agency_id` and the reference's purpose. The tags are read from KMS the first
    /// time this process meets a key, then remembered.
    async fn check_owner(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        purpose: Option<KeyPurpose>,
    ) -> Result<(), KeyError> {
        let malformed = || KeyError::MalformedRef(key.key_id.clone());
        if key.provider != Self::NAME
            || purpose.is_some_and(|p| p != key.purpose)
            || !key.key_id.starts_with("arn:")
            || key.material.is_some()
        {
            return Err(malformed());
        }
        let cached = self.known().owners.get(&key.key_id).copied();
        let owner = match cached {
            Some(owner) => owner,
            None => {
                let (agency, purpose) = self.read_tags(&key.key_id).await?;
                let owner = agency
                    .and_then(|a| Uuid::parse_str(&a).ok())
                    .zip(purpose.as_deref().and_then(KeyPurpose::parse))
                    .ok_or_else(malformed)?;
                self.known().owners.insert(key.key_id.clone(), owner);
                owner
            }
        };
        if owner != (agency_id, key.purpose) {
            return Err(malformed());
        }
        Ok(())
    }

    async fn verifying_key(&self, arn: &str) -> Result<VerifyingKey, KeyError> {
        if let Some(public) = self.known().public_keys.get(arn) {
            return Ok(*public);
        }
        let out = self
            .client
            .get_public_key()
            .key_id(arn)
            .send()
            .await
            .map_err(|e| kms_error(arn, e))?;
        let spki = out
            .public_key()
            .ok_or_else(|| KeyError::Refused(format!("GetPublicKey {arn}: no public key")))?;
        let public = VerifyingKey::from_public_key_der(spki.as_ref()).map_err(|e| {
            KeyError::Refused(format!("GetPublicKey {arn}: not a P-256 public key: {e}"))
        })?;
        self.known().public_keys.insert(arn.to_owned(), public);
        Ok(public)
    }

    /// One `Sign` call with the agency's checks first; the signature is not yet verified.
    async fn kms_sign(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        message: &[u8],
        message_type: MessageType,
    ) -> Result<(VerifyingKey, Signature), KeyError> {
        self.check_owner(agency_id, key, Some(KeyPurpose::Signing))
            .await?;
        key.ensure_enabled()?;
        let public = self.verifying_key(&key.key_id).await?;
        let out = self
            .client
            .sign()
            .key_id(&key.key_id)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| kms_error(&key.key_id, e))?;
        let der = out
            .signature()
            .ok_or_else(|| KeyError::Refused("Sign answered without a signature".into()))?;
        let sig = Signature::from_der(der.as_ref()).map_err(|_| {
            KeyError::Refused(format!("Sign {}: not a DER ECDSA signature", key.key_id))
        })?;
        Ok((public, sig))
    }

    /// A best-effort clean-up of a key made during an onboarding that then failed.
    async fn abandon(&self, key: &KeyRef) {
        let _ = self
            .client
            .schedule_key_deletion()
            .key_id(same_account_key_id(&key.key_id))
            .pending_window_in_days(ABANDONED_KEY_WINDOW_DAYS)
            .send()
            .await;
    }
}

impl KeyBackend for AwsKmsProvider {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn prior_claim(&self, spec: &KeySpec) -> Result<Option<Uuid>, KeyError> {
        let KeySpec::AwsKms {
            kek_key_id,
            signing_key_id,
        } = spec
        else {
            return Ok(None);
        };
        let mut owners = Vec::new();
        for key_id in [kek_key_id, signing_key_id].into_iter().flatten() {
            owners.push(self.agency_tag(key_id).await?);
        }
        crate::provider::single_claim(&owners)
    }

    async fn create_agency_keys(
        &self,
        agency_id: Uuid,
        spec: &KeySpec,
    ) -> Result<AgencyKeys, KeyError> {
        let KeySpec::AwsKms {
            kek_key_id,
            signing_key_id,
        } = spec
        else {
            return Err(KeyError::MalformedRef(format!(
                "the {} provider cannot create {spec:?}",
                Self::NAME
            )));
        };
        // Both given keys are checked before anything changes in KMS.
        let mut adopt_kek = None;
        if let Some(id) = kek_key_id {
            adopt_kek = Some(
                self.inspect_key(agency_id, KeyPurpose::KeyEncryption, id)
                    .await?,
            );
        }
        let mut adopt_signing = None;
        if let Some(id) = signing_key_id {
            adopt_signing = Some(self.inspect_key(agency_id, KeyPurpose::Signing, id).await?);
        }
        let created_kek = adopt_kek.is_none();
        let key_encryption = match adopt_kek {
            Some(key) => self.claim_key(agency_id, key).await?,
            None => {
                self.create_key(agency_id, KeyPurpose::KeyEncryption, 1)
                    .await?
            }
        };
        let signing = async {
            let signing = match adopt_signing {
                Some(key) => self.claim_key(agency_id, key).await?,
                None => self.create_key(agency_id, KeyPurpose::Signing, 1).await?,
            };
            let public = self.verifying_key(&signing.key_id).await?;
            Ok::<_, KeyError>((signing, public))
        }
        .await;
        match signing {
            Ok((signing, signing_public_key)) => Ok(AgencyKeys {
                key_encryption,
                signing,
                signing_public_key,
            }),
            Err(e) => {
                if created_kek {
                    self.abandon(&key_encryption).await;
                }
                Err(e)
            }
        }
    }

    async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        self.check_owner(agency_id, kek, Some(KeyPurpose::KeyEncryption))
            .await?;
        kek.ensure_enabled()?;
        let out = self
            .client
            .encrypt()
            .key_id(&kek.key_id)
            .plaintext(Blob::new(data_key))
            .encryption_context(AGENCY, agency_id.to_string())
            .send()
            .await
            .map_err(|e| kms_error(&kek.key_id, e))?;
        let ciphertext = out
            .ciphertext_blob
            .ok_or_else(|| KeyError::Refused("Encrypt answered without a ciphertext".into()))?
            .into_inner();
        Ok(WrappedKey {
            kek_version: kek.version,
            ciphertext,
        })
    }

    async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if wrapped.kek_version != kek.version {
            return Err(KeyError::MalformedRef(format!(
                "data key wrapped by version {}, given version {}",
                wrapped.kek_version, kek.version
            )));
        }
        self.check_owner(agency_id, kek, Some(KeyPurpose::KeyEncryption))
            .await?;
        // KMS refuses disabled keys itself; checking the control plane's state first costs nothing
        // and also covers endpoints that do not (moto). No DescribeKey per unwrap: KMS is the
        // authority on every Decrypt anyway.
        kek.ensure_enabled()?;
        let out = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse a ciphertext of any other key.
            .key_id(&kek.key_id)
            .ciphertext_blob(Blob::new(wrapped.ciphertext.as_slice()))
            .encryption_context(AGENCY, agency_id.to_string())
            .send()
            .await
            .map_err(|e| kms_error(&kek.key_id, e))?;
        // Moved, not copied, into the zeroizing buffer.
        out.plaintext
            .map(|p| Zeroizing::new(p.into_inner()))
            .ok_or_else(|| KeyError::Refused("Decrypt answered without a plaintext".into()))
    }

    /// Signs with `MessageType=DIGEST`: KMS then signs the 32 bytes as the SHA-256 digest they
    /// are. With `RAW`, KMS would treat them as a message and hash them again, so the signature
    /// would be over SHA-256(digest) and verify for no one. moto (every 5.x release, checked in
    /// its source) ignores MessageType and always hashes, so against moto no signature of a
    /// precomputed digest can be had with either type; the local verification catches that and
    /// refuses, naming the cause. [`AwsKmsProvider::sign_message`] is what moto can test.
    async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        let (public, sig) = self
            .kms_sign(agency_id, key, digest, MessageType::Digest)
            .await?;
        if public.verify_prehash(digest, &sig).is_ok() {
            return Ok(crate::low_s(sig).to_der());
        }
        Err(KeyError::Refused(
            if public.verify(digest.as_slice(), &sig).is_ok() {
                format!(
                    "Sign {}: the endpoint signed SHA-256 of the digest (it ignores \
                     MessageType=DIGEST, as moto does), so the signature would not verify",
                    key.key_id
                )
            } else {
                unverified(key)
            },
        ))
    }

    /// Signs `message` (ECDSA P-256 over its SHA-256) and checks the signature locally, as
    /// `writ-verify` will. KMS does the hashing (`MessageType=RAW`) up to its 4096-byte limit, so
    /// the whole signing path also runs against moto, which hashes exactly as KMS does for RAW;
    /// a longer message is hashed here and signed as a digest.
    async fn sign_message(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        message: &[u8],
    ) -> Result<DerSignature, KeyError> {
        if message.len() > MAX_RAW_MESSAGE {
            let digest: [u8; 32] = Sha256::digest(message).into();
            return self.sign_digest(agency_id, key, &digest).await;
        }
        let (public, sig) = self
            .kms_sign(agency_id, key, message, MessageType::Raw)
            .await?;
        public
            .verify(message, &sig)
            .map(|()| crate::low_s(sig).to_der())
            .map_err(|_| KeyError::Refused(unverified(key)))
    }

    async fn public_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError> {
        self.check_owner(agency_id, key, Some(KeyPurpose::Signing))
            .await?;
        self.verifying_key(&key.key_id).await
    }

    async fn rotate(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, current, None).await?;
        current.ensure_enabled()?;
        self.create_key(agency_id, current.purpose, current.version + 1)
            .await
    }

    async fn disable(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, key, None).await?;
        self.client
            .disable_key()
            .key_id(same_account_key_id(&key.key_id))
            .send()
            .await
            .map_err(|e| kms_error(&key.key_id, e))?;
        Ok(key.with_state(KeyState::Disabled))
    }

    async fn schedule_deletion(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, key, None).await?;
        let scheduled = self
            .client
            .schedule_key_deletion()
            .key_id(same_account_key_id(&key.key_id))
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
            .await
            .map_err(|e| kms_error(&key.key_id, e));
        if let Err(e) = scheduled {
            // KMS refuses to schedule a key twice; a retried offboarding finds it done.
            let done = matches!(e, KeyError::Disabled(_))
                && self.describe(agency_id, key).await?.state == KeyState::PendingDeletion;
            if !done {
                return Err(e);
            }
        }
        Ok(key.with_state(KeyState::PendingDeletion))
    }

    async fn cancel_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError> {
        let arn = same_account_key_id(&key.key_id);
        if self.describe(agency_id, key).await?.state == KeyState::PendingDeletion {
            // KMS leaves a key whose deletion was cancelled disabled.
            self.client
                .cancel_key_deletion()
                .key_id(arn)
                .send()
                .await
                .map_err(|e| kms_error(&key.key_id, e))?;
        }
        if enable {
            self.client
                .enable_key()
                .key_id(arn)
                .send()
                .await
                .map_err(|e| kms_error(&key.key_id, e))?;
        }
        Ok(key.enabled_if(enable))
    }

    async fn describe(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyDescription, KeyError> {
        self.check_owner(agency_id, key, None).await?;
        let out = self
            .client
            .describe_key()
            .key_id(&key.key_id)
            .send()
            .await
            .map_err(|e| kms_error(&key.key_id, e))?;
        let meta = out
            .key_metadata()
            .ok_or_else(|| KeyError::Refused(format!("DescribeKey {}: no metadata", key.key_id)))?;
        let state = match meta.key_state() {
            Some(KmsKeyState::Enabled) => KeyState::Enabled,
            Some(KmsKeyState::PendingDeletion | KmsKeyState::PendingReplicaDeletion) => {
                KeyState::PendingDeletion
            }
            // Disabled, unavailable (custom key store down), pending import, being created or
            // updated: not usable now.
            _ => KeyState::Disabled,
        };
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            purpose: key.purpose,
            version: key.version,
            state,
            algorithm: meta.key_spec().map_or("unknown", |s| s.as_str()).to_owned(),
        })
    }
}

/// The KMS key spec and usage of an agency key of `purpose`.
fn kms_shape(purpose: KeyPurpose) -> (KmsKeySpec, KeyUsageType) {
    match purpose {
        KeyPurpose::KeyEncryption => (KmsKeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt),
        KeyPurpose::Signing => (KmsKeySpec::EccNistP256, KeyUsageType::SignVerify),
    }
}

fn enabled_ref(purpose: KeyPurpose, version: i32, arn: String) -> KeyRef {
    KeyRef {
        provider: AwsKmsProvider::NAME.into(),
        purpose,
        version,
        key_id: arn,
        material: None,
        state: KeyState::Enabled,
    }
}

/// The key id part of a key ARN. DisableKey and ScheduleKeyDeletion act only on keys of the
/// caller's own account and region, where the key id names the same key as the ARN; moto (5.x)
/// fails on an ARN for exactly these operations.
fn same_account_key_id(arn: &str) -> &str {
    arn.rsplit_once(":key/").map_or(arn, |(_, id)| id)
}

fn unverified(key: &KeyRef) -> String {
    format!(
        "Sign {}: the signature does not verify with the key's public key",
        key.key_id
    )
}

fn tag(key: &str, value: String) -> Result<Tag, KeyError> {
    Tag::builder()
        .tag_key(key)
        .tag_value(value)
        .build()
        .map_err(|e| KeyError::Refused(format!("tag {key}: {e}")))
}

/// Maps an SDK failure to what the caller can act on: outages (after the SDK's retries) are
/// `Unavailable` (503), a disabled or deleted key is `Disabled` or `NotFound`, a ciphertext that
/// fails authentication (wrong agency context, tampered, another key) is `Decrypt`.
fn kms_error<E>(key: &str, err: SdkError<E>) -> KeyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let service = match &err {
        SdkError::ServiceError(service) => service,
        SdkError::ConstructionFailure(_) => {
            return KeyError::Refused(format!("AWS KMS request: {}", DisplayErrorContext(&err)));
        }
        // Timeouts, connection failures, unreadable answers, credentials that cannot be loaded.
        _ => return KeyError::Unavailable(format!("AWS KMS: {}", DisplayErrorContext(&err))),
    };
    let code = service.err().code().unwrap_or("unknown");
    let message = service.err().message().unwrap_or("");
    match code {
        "DisabledException" | "KMSInvalidStateException" => KeyError::Disabled(key.to_owned()),
        "NotFoundException" => KeyError::NotFound(key.to_owned()),
        "InvalidCiphertextException" | "IncorrectKeyException" => KeyError::Decrypt,
        "KMSInternalException"
        | "DependencyTimeoutException"
        | "KeyUnavailableException"
        | "CustomKeyStoreInvalidStateException"
        | "ThrottlingException" => KeyError::Unavailable(format!("AWS KMS {code}: {message}")),
        _ if service.raw().status().is_server_error() => {
            KeyError::Unavailable(format!("AWS KMS {code}: {message}"))
        }
        _ => KeyError::Refused(format!("AWS KMS {code} for {key}: {message}")),
    }
}

fn arn_of(meta: &aws_sdk_kms::types::KeyMetadata, key_id: &str) -> Result<String, KeyError> {
    meta.arn()
        .map(str::to_owned)
        .ok_or_else(|| KeyError::Refused(format!("DescribeKey {key_id}: no ARN")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kms::config::http::HttpResponse;
    use aws_sdk_kms::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_kms::operation::decrypt::DecryptError;
    use aws_smithy_types::body::SdkBody;

    /// What KMS answers with `code` and `status` maps to.
    fn service(code: &str, status: u16) -> KeyError {
        let err = DecryptError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        kms_error("arn:k", SdkError::service_error(err, raw))
    }

    // moto enforces neither disabled keys nor throttling, so these answers of the real service
    // are checked here.
    #[test]
    fn kms_answers_map_to_what_the_caller_can_act_on() {
        assert!(matches!(service("DisabledException", 400), KeyError::Disabled(k) if k == "arn:k"));
        assert!(matches!(
            service("KMSInvalidStateException", 400),
            KeyError::Disabled(_)
        ));
        assert!(matches!(
            service("NotFoundException", 400),
            KeyError::NotFound(_)
        ));
        assert!(matches!(
            service("InvalidCiphertextException", 400),
            KeyError::Decrypt
        ));
        assert!(matches!(
            service("IncorrectKeyException", 400),
            KeyError::Decrypt
        ));
        assert!(matches!(
            service("ThrottlingException", 400),
            KeyError::Unavailable(_)
        ));
        assert!(matches!(
            service("KMSInternalException", 500),
            KeyError::Unavailable(_)
        ));
        assert!(matches!(service("Whatever", 503), KeyError::Unavailable(_)));
        assert!(matches!(
            service("AccessDeniedException", 400),
            KeyError::Refused(_)
        ));
    }

    #[test]
    fn transport_failures_are_outages() {
        let timeout = SdkError::<DecryptError>::timeout_error("slow");
        assert!(matches!(kms_error("k", timeout), KeyError::Unavailable(_)));
        let refused = SdkError::<DecryptError>::dispatch_failure(ConnectorError::io(
            "connection refused".into(),
        ));
        assert!(matches!(kms_error("k", refused), KeyError::Unavailable(_)));
    }

    #[test]
    fn the_key_id_of_an_arn() {
        assert_eq!(
            same_account_key_id("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"),
            "1234abcd-12ab"
        );
        assert_eq!(same_account_key_id("1234abcd-12ab"), "1234abcd-12ab");
    }
}
