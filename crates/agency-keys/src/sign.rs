//! Agency signatures: ECDSA P-256 over SHA-256 of a message, by the agency's current signing key
//! version (the key that signs audit checkpoints and certificates, through the same
//! `KeyProvider::sign_message`), verifiable against every version the agency has had.
//!
//! A signature names its key by version and by key id — the first four bytes of SHA-256 over the
//! key's DER SubjectPublicKeyInfo, the id audit exports list in their key history — so a verifier
//! outside Writ finds the public key in an export. What is signed should say what it is (a typed,
//! canonical record), since the same key signs checkpoints and certificates.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use writ_audit_chain::{AuditKey, KeyId, SIGNATURE_ALGORITHM};
use writ_keys::{KeyError, KeyPurpose, KeyState};
use writ_tenancy::{AgencyKeyRecord, TenantTx, agency_keys};

use crate::{KeyLifecycleError, Keyring, current_key};

/// A signature by one version of an agency's signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgencySignature {
    /// Always `ecdsa-p256-sha256` (the audit format's name for it; JOSE's ES256).
    pub algorithm: String,
    pub key_version: i32,
    /// `SHA-256(DER SubjectPublicKeyInfo)[..4]` in hex.
    pub key_id: KeyId,
    /// DER-encoded ECDSA signature (base64 in JSON).
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub signature: Vec<u8>,
}

/// The key version a signature verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub key_version: i32,
    pub key_id: KeyId,
    /// Whether that version is still the one signing (false after a rotation).
    pub current: bool,
    /// When that version signed: from its creation until the rotation that retired it.
    pub valid_from: chrono::DateTime<chrono::Utc>,
    pub valid_to: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(transparent)]
    Key(#[from] KeyLifecycleError),
    #[error("signature algorithm {0:?} is not {SIGNATURE_ALGORITHM}")]
    Algorithm(String),
    #[error("the agency has no signing key version {0}")]
    UnknownKey(i32),
    /// Signatures by a revoked version are not accepted.
    #[error("signing key version {0} is revoked")]
    KeyRevoked(i32),
    /// The signature does not verify with the key it names, or names the wrong key id.
    #[error("the signature does not verify")]
    Invalid,
}

/// Signs `message` with the agency's current signing key version. The signature is checked
/// against the version's published public key before it is returned.
pub async fn sign(
    tx: &mut TenantTx,
    keys: &Keyring,
    message: &[u8],
) -> Result<AgencySignature, KeyLifecycleError> {
    let record = current_key(keys.pool(), tx.agency_id(), KeyPurpose::Signing).await?;
    sign_with(tx, keys, &record, message).await
}

/// Signs `message` with signing key version `key_version`, current or rotated out (not revoked):
/// a record begun under a version is finished under it, so the key that signs it was valid when
/// the record says it was signed.
pub async fn sign_as(
    tx: &mut TenantTx,
    keys: &Keyring,
    key_version: i32,
    message: &[u8],
) -> Result<AgencySignature, KeyLifecycleError> {
    let versions = agency_keys(keys.pool(), tx.agency_id(), KeyPurpose::Signing).await?;
    let record = versions
        .into_iter()
        .find(|k| k.key.version == key_version)
        .ok_or_else(|| KeyLifecycleError::Invalid {
            field: "key version",
            reason: format!("the agency has no signing key version {key_version}"),
        })?;
    if record.key.state == KeyState::Disabled {
        return Err(KeyError::Disabled(record.key.key_id.clone()).into());
    }
    sign_with(tx, keys, &record, message).await
}

async fn sign_with(
    tx: &mut TenantTx,
    keys: &Keyring,
    record: &AgencyKeyRecord,
    message: &[u8],
) -> Result<AgencySignature, KeyLifecycleError> {
    let agency = tx.agency_id();
    let public = public_key(record)?;
    let der = keys
        .provider()
        .sign_message(agency, &record.key, message)
        .await?;
    public.verify(message, der.as_bytes()).map_err(|_| {
        KeyError::Refused(format!(
            "signing key version {}: the provider's signature does not verify with the published key",
            record.key.version
        ))
    })?;
    Ok(AgencySignature {
        algorithm: SIGNATURE_ALGORITHM.to_owned(),
        key_version: record.key.version,
        key_id: public.key_id(),
        signature: der.as_bytes().to_vec(),
    })
}

/// Verifies `signature` over `message` with the version of the agency's signing key it names,
/// current or rotated out. A revoked (disabled) version is refused, as in audit verification.
pub async fn verify(
    tx: &mut TenantTx,
    keys: &Keyring,
    message: &[u8],
    signature: &AgencySignature,
) -> Result<VerifiedSignature, SignatureError> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(SignatureError::Algorithm(signature.algorithm.clone()));
    }
    let versions = agency_keys(keys.pool(), tx.agency_id(), KeyPurpose::Signing)
        .await
        .map_err(KeyLifecycleError::from)?;
    let record = versions
        .iter()
        .find(|k| k.key.version == signature.key_version)
        .ok_or(SignatureError::UnknownKey(signature.key_version))?;
    if record.key.state == KeyState::Disabled {
        return Err(SignatureError::KeyRevoked(record.key.version));
    }
    let public = public_key(record)?;
    if public.key_id() != signature.key_id {
        return Err(SignatureError::Invalid);
    }
    public
        .verify(message, &signature.signature)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(VerifiedSignature {
        key_version: record.key.version,
        key_id: signature.key_id,
        current: record.valid_to.is_none(),
        valid_from: record.valid_from,
        valid_to: record.valid_to,
    })
}

fn public_key(record: &AgencyKeyRecord) -> Result<AuditKey, KeyLifecycleError> {
    let invalid = |reason: String| KeyLifecycleError::Invalid {
        field: "public key",
        reason: format!("signing key version {}: {reason}", record.key.version),
    };
    let pem = record
        .public_key_pem
        .as_deref()
        .ok_or_else(|| invalid("no public key recorded".into()))?;
    AuditKey::from_pem(pem).map_err(|e| invalid(e.to_string()))
}

fn to_base64<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&BASE64.encode(bytes))
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    BASE64.decode(text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_stored_as_camel_case_json_with_base64_der() {
        let sig = AgencySignature {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_version: 2,
            key_id: KeyId([0xde, 0xad, 0xbe, 0xef]),
            signature: vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
        };
        let json = serde_json::to_value(&sig).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "algorithm": "ecdsa-p256-sha256",
                "keyVersion": 2,
                "keyId": "deadbeef",
                "signature": "MAYCAQECAQE=",
            })
        );
        assert_eq!(
            serde_json::from_value::<AgencySignature>(json).unwrap(),
            sig
        );
        assert!(
            serde_json::from_value::<AgencySignature>(serde_json::json!({
                "algorithm": "ecdsa-p256-sha256", "keyVersion": 2, "keyId": "deadbeef",
                "signature": "not base64!",
            }))
            .is_err()
        );
    }
}
