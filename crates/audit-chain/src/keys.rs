//! Agency audit public keys (ECDSA P-256), their key ids and signature decoding.
//!
//! The key id is the one c2sp.org/signed-note assigns to signature type 0x02 (ECDSA, as
//! implemented by github.com/transparency-dev/witness and used by Sigstore Rekor): the first four
//! bytes of SHA-256 over the key's DER SubjectPublicKeyInfo. Note that, unlike Ed25519 note
//! keys, the key name is *not* hashed into it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::KeyError;

/// Signature type byte of ECDSA in c2sp.org/signed-note.
pub const SIGNATURE_TYPE_ECDSA: u8 = 0x02;

/// The 4-byte key id; rendered as 8 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(KeyError::KeyIdFormat(s.chars().take(32).collect()));
        }
        let mut out = [0u8; 4];
        hex::decode_to_slice(s, &mut out).map_err(|_| KeyError::KeyIdFormat(s.to_owned()))?;
        Ok(KeyId(out))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The public half of an agency audit signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditKey {
    key: VerifyingKey,
    /// Re-encoded by us (uncompressed point), so the key id does not depend on how the key was
    /// handed to us.
    spki_der: Vec<u8>,
}

impl AuditKey {
    /// From a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM, the form AWS KMS
    /// `GetPublicKey` (after base64), Azure Key Vault exports and `openssl ec -pubout` give.
    pub fn from_pem(pem: &str) -> Result<AuditKey, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        AuditKey::from_verifying_key(key)
    }

    /// From DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<AuditKey, KeyError> {
        let key = VerifyingKey::from_public_key_der(der)
            .map_err(|e| KeyError::Encoding(e.to_string()))?;
        AuditKey::from_verifying_key(key)
    }

    /// From a SEC1 point (`0x04 ‖ x ‖ y`, or compressed).
    pub fn from_sec1(bytes: &[u8]) -> Result<AuditKey, KeyError> {
        let key = VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| KeyError::Encoding("invalid SEC1 point".into()))?;
        AuditKey::from_verifying_key(key)
    }

    pub fn from_verifying_key(key: VerifyingKey) -> Result<AuditKey, KeyError> {
        let spki_der = key
            .to_public_key_der()
            .map_err(|e| KeyError::Encoding(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(AuditKey { key, spki_der })
    }

    /// `SHA-256(DER SubjectPublicKeyInfo)[..4]`.
    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::digest(&self.spki_der);
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// PEM (SubjectPublicKeyInfo, LF line endings).
    pub fn to_pem(&self) -> String {
        // Encoding a valid point cannot fail; fall back to hand-wrapping the DER we already
        // hold rather than panic.
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_else(|_| pem_wrap(&self.spki_der))
    }

    /// Verifies an ECDSA P-256 / SHA-256 signature over `message`. `signature` may be DER or
    /// raw `r ‖ s`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        self.verify_signature(message, &ecdsa_sig_from_der_or_raw(signature)?)
    }

    /// Verifies a decoded ECDSA P-256 / SHA-256 signature over `message`. Writ signs in the
    /// low-S form; a high-S signature (made before that, or by hand) verifies too, so that what
    /// was signed before stays verifiable: a format version, not a verifier, would end that.
    pub fn verify_signature(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        self.key
            .verify(message, signature)
            .map_err(|_| KeyError::BadSignature(self.key_id()))
    }
}

fn pem_wrap(der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// A key as a signed-note verifier knows it: a key name plus the public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: AuditKey,
}

impl VerifierKey {
    pub fn new(name: impl Into<String>, key: AuditKey) -> Result<VerifierKey, KeyError> {
        let name = name.into();
        if !is_valid_key_name(&name) {
            return Err(KeyError::Name(name));
        }
        Ok(VerifierKey { name, key })
    }

    pub fn from_pem(name: impl Into<String>, pem: &str) -> Result<VerifierKey, KeyError> {
        VerifierKey::new(name, AuditKey::from_pem(pem)?)
    }

    pub fn from_sec1(name: impl Into<String>, bytes: &[u8]) -> Result<VerifierKey, KeyError> {
        VerifierKey::new(name, AuditKey::from_sec1(bytes)?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// The verifier key string of golang.org/x/mod/sumdb/note and transparency-dev/formats:
    /// `<name>+<hex key id>+<base64(0x02 ‖ DER SPKI)>`, for use with other signed-note implementations.
    pub fn vkey(&self) -> String {
        let mut blob = Vec::with_capacity(1 + self.key.spki_der.len());
        blob.push(SIGNATURE_TYPE_ECDSA);
        blob.extend_from_slice(&self.key.spki_der);
        format!("{}+{}+{}", self.name, self.key_id(), BASE64.encode(blob))
    }

    /// Parses a [`VerifierKey::vkey`] string, checking its key id.
    pub fn from_vkey(vkey: &str) -> Result<VerifierKey, KeyError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Encoding(
                "verifier key must be name+id+key".into(),
            ));
        };
        let blob = BASE64
            .decode(blob.trim())
            .map_err(|_| KeyError::Encoding("verifier key is not base64".into()))?;
        let Some((&SIGNATURE_TYPE_ECDSA, der)) = blob.split_first() else {
            return Err(KeyError::Encoding(
                "verifier key is not of type 0x02 (ECDSA)".into(),
            ));
        };
        let key = VerifierKey::new(name, AuditKey::from_spki_der(der)?)?;
        if key.key_id().to_string() != id {
            return Err(KeyError::KeyIdFormat(id.to_owned()));
        }
        Ok(key)
    }
}

/// Key names: non-empty, no Unicode spaces, no `+` (c2sp.org/signed-note), no controls.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// Decodes an ECDSA P-256 signature given either as ASN.1 DER (what AWS KMS `Sign` returns) or
/// as the raw 64-byte `r ‖ s` (what Azure Key Vault `sign` with ES256 returns).
///
/// DER is tried first: a 64-byte raw signature would have to start with `30 3e 02` and carry a
/// valid nested structure to be mistaken for DER, which a uniformly random `r` does with
/// probability below 2^-40.
pub fn ecdsa_sig_from_der_or_raw(bytes: &[u8]) -> Result<Signature, KeyError> {
    if let Ok(sig) = Signature::from_der(bytes) {
        return Ok(sig);
    }
    if bytes.len() == 64 {
        return Signature::from_slice(bytes).map_err(|_| KeyError::SignatureEncoding);
    }
    Err(KeyError::SignatureEncoding)
}

/// DER encoding of a signature given as DER or raw `r ‖ s` (the form notes and certificates
/// carry).
pub fn ecdsa_sig_to_der(bytes: &[u8]) -> Result<Vec<u8>, KeyError> {
    Ok(ecdsa_sig_from_der_or_raw(bytes)?
        .to_der()
        .as_bytes()
        .to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    fn signing_key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn key_id_is_the_truncated_spki_hash_whatever_the_input_form() {
        let sk = signing_key();
        let from_vk = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let pem = from_vk.to_pem();
        let from_pem = AuditKey::from_pem(&pem).unwrap();
        let point = sk.verifying_key().to_encoded_point(true);
        let from_compressed = AuditKey::from_sec1(point.as_bytes()).unwrap();
        assert_eq!(from_vk, from_pem);
        assert_eq!(from_vk, from_compressed);
        let digest = Sha256::digest(from_vk.spki_der());
        assert_eq!(from_vk.key_id().0, digest[..4]);
        assert_eq!(from_vk.spki_der().len(), 91);
    }

    #[test]
    fn der_and_raw_signatures_both_verify() {
        let sk = signing_key();
        let key = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let sig = crate::fixtures::sign_low_s(&sk, b"msg");
        let raw = sig.to_bytes();
        let der = sig.to_der();
        assert_eq!(ecdsa_sig_from_der_or_raw(&raw).unwrap(), sig);
        assert_eq!(ecdsa_sig_from_der_or_raw(der.as_bytes()).unwrap(), sig);
        assert!(key.verify(b"msg", &raw).is_ok());
        assert!(key.verify(b"msg", der.as_bytes()).is_ok());
        assert_eq!(
            key.verify(b"other", &raw),
            Err(KeyError::BadSignature(key.key_id()))
        );
        assert!(ecdsa_sig_from_der_or_raw(&[]).is_err());
        assert!(ecdsa_sig_from_der_or_raw(&[0u8; 64]).is_err());
        assert!(ecdsa_sig_from_der_or_raw(&[0x30; 70]).is_err());
    }

    /// Signatures stored before Writ normalised to low S stay verifiable: both forms verify.
    #[test]
    fn a_signature_verifies_in_either_form_of_s() {
        let sk = signing_key();
        let key = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let low = crate::fixtures::sign_low_s(&sk, b"msg");
        let (r, s) = low.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        assert!(high.normalize_s().is_some(), "the twin is high-S");
        assert!(key.verify_signature(b"msg", &low).is_ok());
        assert!(key.verify(b"msg", high.to_der().as_bytes()).is_ok());
    }

    #[test]
    fn vkey_round_trips() {
        let key = VerifierKey::new(
            "writ.example/audit/a1",
            AuditKey::from_verifying_key(*signing_key().verifying_key()).unwrap(),
        )
        .unwrap();
        let text = key.vkey();
        assert!(text.starts_with(&format!("writ.example/audit/a1+{}+Aj", key.key_id())));
        assert_eq!(VerifierKey::from_vkey(&text).unwrap(), key);
        assert!(VerifierKey::new("has space", key.key().clone()).is_err());
        assert!(VerifierKey::new("a+b", key.key().clone()).is_err());
        assert!(
            AuditKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!("0011223g".parse::<KeyId>().is_err());
        assert_eq!(
            "0011aaff".parse::<KeyId>().unwrap().0,
            [0x00, 0x11, 0xaa, 0xff]
        );
    }
}
