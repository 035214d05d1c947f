//! The embedded provider: agency keys are generated here and sealed (AES-256-GCM) under a master
//! key kept in a file outside the database, so a database dump alone reveals no key.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    AgencyKeys, KeyBackend, KeyDescription, KeyError, KeyPurpose, KeyRef, KeySpec, KeyState,
    WrappedKey,
};

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct LocalProvider {
    master: Arc<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalProvider { master: <redacted> }")
    }
}

impl LocalProvider {
    pub const NAME: &'static str = "local";

    /// Reads the master key file (64 hex characters), creating it with a fresh random key and
    /// mode 0600 when it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let err = |reason: String| KeyError::MasterKey {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(key.as_mut());
            write_private(path, hex::encode(key.as_ref()).as_bytes())
                .map_err(|e| err(e.to_string()))?;
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut())
            .map_err(|_| err("expected 64 hexadecimal characters".into()))?;
        Ok(Self {
            master: Arc::new(key),
        })
    }

    fn create_agency_keys_now(&self, agency_id: Uuid) -> Result<AgencyKeys, KeyError> {
        let key_encryption = self.new_version(agency_id, KeyPurpose::KeyEncryption, 1)?;
        let signing = self.new_version(agency_id, KeyPurpose::Signing, 1)?;
        let signing_public_key = self.public_key_now(agency_id, &signing)?;
        Ok(AgencyKeys {
            key_encryption,
            signing,
            signing_public_key,
        })
    }

    /// A fresh random key of `purpose`, sealed as `version`.
    fn new_version(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
        version: i32,
    ) -> Result<KeyRef, KeyError> {
        match purpose {
            KeyPurpose::KeyEncryption => {
                let mut kek = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(kek.as_mut());
                self.seal_ref(agency_id, purpose, version, kek.as_ref())
            }
            KeyPurpose::Signing => {
                let signing = SigningKey::random(&mut OsRng);
                let bytes = Zeroizing::new(signing.to_bytes());
                self.seal_ref(agency_id, purpose, version, bytes.as_ref())
            }
        }
    }

    fn seal_ref(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
        version: i32,
        secret: &[u8],
    ) -> Result<KeyRef, KeyError> {
        let key_id = format!("local:{agency_id}:{}:v{version}", purpose.as_str());
        let material = seal(self.master.as_ref(), secret, key_id.as_bytes())?;
        Ok(KeyRef {
            provider: Self::NAME.into(),
            purpose,
            version,
            key_id,
            material: Some(material),
            state: KeyState::Enabled,
        })
    }

    /// Opens a key reference, checking that it belongs to `agency_id` and has `purpose`: the key
    /// id is the sealing AAD, so a reference moved to another agency fails to open.
    fn open_ref(
        &self,
        agency_id: Uuid,
        purpose: KeyPurpose,
        key: &KeyRef,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if key.purpose != purpose {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        self.check_owner(agency_id, key)?;
        key.ensure_enabled()?;
        let material = key
            .material
            .as_deref()
            .ok_or_else(|| KeyError::MalformedRef(format!("{}: no sealed material", key.key_id)))?;
        open(self.master.as_ref(), material, key.key_id.as_bytes())
    }

    fn wrap_now(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        let kek_bytes = self.open_ref(agency_id, KeyPurpose::KeyEncryption, kek)?;
        let kek_arr: &[u8; 32] = kek_bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MalformedRef(kek.key_id.clone()))?;
        Ok(WrappedKey {
            kek_version: kek.version,
            ciphertext: seal(kek_arr, data_key, agency_id.as_bytes())?,
        })
    }

    fn unwrap_now(
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
        let kek_bytes = self.open_ref(agency_id, KeyPurpose::KeyEncryption, kek)?;
        let kek_arr: &[u8; 32] = kek_bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MalformedRef(kek.key_id.clone()))?;
        open(kek_arr, &wrapped.ciphertext, agency_id.as_bytes())
    }

    fn signing_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<SigningKey, KeyError> {
        let bytes = self.open_ref(agency_id, KeyPurpose::Signing, key)?;
        SigningKey::from_slice(&bytes).map_err(|_| KeyError::MalformedRef(key.key_id.clone()))
    }

    fn sign_now(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        let signing = self.signing_key(agency_id, key)?;
        let sig: Signature = signing
            .sign_prehash(digest)
            .map_err(|_| KeyError::MalformedRef(key.key_id.clone()))?;
        Ok(crate::low_s(sig).to_der())
    }

    fn public_key_now(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError> {
        Ok(*self.signing_key(agency_id, key)?.verifying_key())
    }

    /// Seals a deployment-wide secret (e.g. a token-signing key) under the master key. `aad` names
    /// what the secret is for; [`Self::open_secret`] must be given the same `aad`.
    pub fn seal_secret(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        seal(self.master.as_ref(), secret, aad)
    }

    /// Opens a secret sealed by [`Self::seal_secret`] with the same `aad`.
    pub fn open_secret(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        open(self.master.as_ref(), sealed, aad)
    }
}

impl KeyBackend for LocalProvider {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn create_agency_keys(
        &self,
        agency_id: Uuid,
        spec: &KeySpec,
    ) -> Result<AgencyKeys, KeyError> {
        match spec {
            KeySpec::Local => self.create_agency_keys_now(agency_id),
            other => Err(KeyError::MalformedRef(format!(
                "the local provider cannot create {other:?}"
            ))),
        }
    }

    async fn wrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        data_key: &[u8],
    ) -> Result<WrappedKey, KeyError> {
        self.wrap_now(agency_id, kek, data_key)
    }

    async fn unwrap_data_key(
        &self,
        agency_id: Uuid,
        kek: &KeyRef,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.unwrap_now(agency_id, kek, wrapped)
    }

    async fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        self.sign_now(agency_id, key, digest)
    }

    async fn public_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError> {
        self.public_key_now(agency_id, key)
    }

    async fn rotate(&self, agency_id: Uuid, current: &KeyRef) -> Result<KeyRef, KeyError> {
        // Opening proves the current ref is this agency's before a successor is made.
        self.open_ref(agency_id, current.purpose, current)?;
        self.new_version(agency_id, current.purpose, current.version + 1)
    }

    /// The embedded provider has no state of its own: the control plane records the new state,
    /// and every use checks it ([`KeyRef::ensure_enabled`]).
    async fn disable(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, key)?;
        Ok(key.with_state(KeyState::Disabled))
    }

    /// Marks the version for deletion; the control plane erases the sealed material when the
    /// waiting period has passed, which destroys the key for good.
    async fn schedule_deletion(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, key)?;
        Ok(key.with_state(KeyState::PendingDeletion))
    }

    async fn cancel_deletion(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        enable: bool,
    ) -> Result<KeyRef, KeyError> {
        self.check_owner(agency_id, key)?;
        Ok(key.enabled_if(enable))
    }

    async fn describe(&self, agency_id: Uuid, key: &KeyRef) -> Result<KeyDescription, KeyError> {
        self.check_owner(agency_id, key)?;
        Ok(KeyDescription {
            key_id: key.key_id.clone(),
            purpose: key.purpose,
            version: key.version,
            state: key.state,
            algorithm: match key.purpose {
                KeyPurpose::KeyEncryption => "AES-256-GCM",
                KeyPurpose::Signing => "ECDSA-P256",
            }
            .into(),
        })
    }
}

impl LocalProvider {
    fn check_owner(&self, agency_id: Uuid, key: &KeyRef) -> Result<(), KeyError> {
        let expected = format!(
            "local:{agency_id}:{}:v{}",
            key.purpose.as_str(),
            key.version
        );
        if key.provider != Self::NAME || key.key_id != expected {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        Ok(())
    }
}

/// nonce ‖ AES-256-GCM(key, plaintext, aad)
fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| KeyError::Decrypt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < NONCE_LEN {
        return Err(KeyError::Decrypt);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::Decrypt)?;
    Aes256Gcm::new(key.into())
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Decrypt)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    fn provider() -> (tempfile::TempDir, LocalProvider) {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalProvider::open_or_create(dir.path().join("master.key")).unwrap();
        (dir, p)
    }

    #[test]
    fn data_key_round_trips_and_is_bound_to_the_agency() {
        let (_d, p) = provider();
        let a = Uuid::new_v4();
        let keys = p.create_agency_keys_now(a).unwrap();
        let wrapped = p
            .wrap_now(a, &keys.key_encryption, b"0123456789abcdef0123456789abcdef")
            .unwrap();
        let back = p.unwrap_now(a, &keys.key_encryption, &wrapped).unwrap();
        assert_eq!(back.as_slice(), b"0123456789abcdef0123456789abcdef");
        assert!(
            p.unwrap_now(Uuid::new_v4(), &keys.key_encryption, &wrapped)
                .is_err()
        );
    }

    #[test]
    fn another_master_key_cannot_open_the_keys() {
        let (_d, p) = provider();
        let (_d2, other) = provider();
        let a = Uuid::new_v4();
        let keys = p.create_agency_keys_now(a).unwrap();
        assert!(matches!(
            other.public_key_now(a, &keys.signing),
            Err(KeyError::Decrypt)
        ));
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let (_d, p) = provider();
        let a = Uuid::new_v4();
        let keys = p.create_agency_keys_now(a).unwrap();
        let digest = [7u8; 32];
        let der = p.sign_now(a, &keys.signing, &digest).unwrap();
        let sig = Signature::from_der(der.as_bytes()).unwrap();
        keys.signing_public_key
            .verify_prehash(&digest, &sig)
            .unwrap();
        assert_eq!(
            p.public_key_now(a, &keys.signing).unwrap(),
            keys.signing_public_key
        );
        // Always the low-S form (about half of raw ECDSA signatures are high-S).
        for i in 0..64u8 {
            let der = p.sign_now(a, &keys.signing, &[i; 32]).unwrap();
            let sig = Signature::from_der(der.as_bytes()).unwrap();
            assert!(sig.normalize_s().is_none(), "high S for digest {i}");
        }
    }

    #[test]
    fn master_key_file_is_reused_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.key");
        let a = Uuid::new_v4();
        let keys = LocalProvider::open_or_create(&path)
            .unwrap()
            .create_agency_keys_now(a)
            .unwrap();
        let again = LocalProvider::open_or_create(&path).unwrap();
        assert!(again.public_key_now(a, &keys.signing).is_ok());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
