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

use crate::{AgencyKeys, KeyError, KeyPurpose, KeyRef, WrappedKey};

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

    pub fn create_agency_keys(&self, agency_id: Uuid) -> Result<AgencyKeys, KeyError> {
        let mut kek = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(kek.as_mut());
        let signing = SigningKey::random(&mut OsRng);
        let signing_public_key = *signing.verifying_key();
        let signing_bytes = Zeroizing::new(signing.to_bytes());
        Ok(AgencyKeys {
            key_encryption: self.seal_ref(agency_id, KeyPurpose::KeyEncryption, 1, kek.as_ref())?,
            signing: self.seal_ref(agency_id, KeyPurpose::Signing, 1, signing_bytes.as_ref())?,
            signing_public_key,
        })
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
        let expected = format!("local:{agency_id}:{}:v{}", purpose.as_str(), key.version);
        if key.provider != Self::NAME || key.purpose != purpose || key.key_id != expected {
            return Err(KeyError::MalformedRef(key.key_id.clone()));
        }
        let material = key
            .material
            .as_deref()
            .ok_or_else(|| KeyError::MalformedRef(format!("{}: no sealed material", key.key_id)))?;
        open(self.master.as_ref(), material, key.key_id.as_bytes())
    }

    pub fn wrap_data_key(
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

    pub fn unwrap_data_key(
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

    pub fn sign_digest(
        &self,
        agency_id: Uuid,
        key: &KeyRef,
        digest: &[u8; 32],
    ) -> Result<DerSignature, KeyError> {
        let signing = self.signing_key(agency_id, key)?;
        let sig: Signature = signing
            .sign_prehash(digest)
            .map_err(|_| KeyError::MalformedRef(key.key_id.clone()))?;
        Ok(sig.to_der())
    }

    pub fn public_key(&self, agency_id: Uuid, key: &KeyRef) -> Result<VerifyingKey, KeyError> {
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
        let keys = p.create_agency_keys(a).unwrap();
        let wrapped = p
            .wrap_data_key(a, &keys.key_encryption, b"0123456789abcdef0123456789abcdef")
            .unwrap();
        let back = p
            .unwrap_data_key(a, &keys.key_encryption, &wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), b"0123456789abcdef0123456789abcdef");
        assert!(
            p.unwrap_data_key(Uuid::new_v4(), &keys.key_encryption, &wrapped)
                .is_err()
        );
    }

    #[test]
    fn another_master_key_cannot_open_the_keys() {
        let (_d, p) = provider();
        let (_d2, other) = provider();
        let a = Uuid::new_v4();
        let keys = p.create_agency_keys(a).unwrap();
        assert!(matches!(
            other.public_key(a, &keys.signing),
            Err(KeyError::Decrypt)
        ));
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let (_d, p) = provider();
        let a = Uuid::new_v4();
        let keys = p.create_agency_keys(a).unwrap();
        let digest = [7u8; 32];
        let der = p.sign_digest(a, &keys.signing, &digest).unwrap();
        let sig = Signature::from_der(der.as_bytes()).unwrap();
        keys.signing_public_key
            .verify_prehash(&digest, &sig)
            .unwrap();
        assert_eq!(
            p.public_key(a, &keys.signing).unwrap(),
            keys.signing_public_key
        );
    }

    #[test]
    fn master_key_file_is_reused_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.key");
        let a = Uuid::new_v4();
        let keys = LocalProvider::open_or_create(&path)
            .unwrap()
            .create_agency_keys(a)
            .unwrap();
        let again = LocalProvider::open_or_create(&path).unwrap();
        assert!(again.public_key(a, &keys.signing).is_ok());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
