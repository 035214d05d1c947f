//! The export certificate (`certificate.json`): what an export contains, how it ties into the
//! agency's signed tree, which keys signed, and a signature over all of it.
//!
//! The signature is ECDSA P-256 / SHA-256 over the RFC 8785 canonical JSON of the certificate
//! object without its `signature` member. The file itself may be formatted freely.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical;
use crate::error::CertificateError;
use crate::hash::{Hash, base64_hash, base64_hashes, hex_hash};
use crate::keys::{AuditKey, KeyId, VerifierKey, ecdsa_sig_to_der};
use crate::time::parse_timestamp_millis;

/// Value of the certificate's `format` member.
pub const CERTIFICATE_FORMAT: &str = "writ-audit-export/v1";

/// The one certificate signature algorithm.
pub const SIGNATURE_ALGORITHM: &str = "ecdsa-p256-sha256";

/// An inclusive range of seqs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeqRange {
    pub first_seq: u64,
    pub last_seq: u64,
}

/// What the admin asked for; `lastSeq` null means "up to the latest entry".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedRange {
    pub first_seq: u64,
    pub last_seq: Option<u64>,
}

/// One version of the agency's audit signing key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRecord {
    /// `SHA-256(DER SubjectPublicKeyInfo)[..4]` in hex.
    pub key_id: KeyId,
    /// The name the key signs checkpoints under (the log origin).
    pub key_name: String,
    pub public_key_pem: String,
    /// From when the key signs.
    pub valid_from: String,
    /// Until when it signed (exclusive); null while it is the current key.
    pub valid_to: Option<String>,
}

impl KeyRecord {
    /// A record for `key`, with its key id computed.
    pub fn new(
        key: &AuditKey,
        key_name: &str,
        valid_from: &str,
        valid_to: Option<&str>,
    ) -> KeyRecord {
        KeyRecord {
            key_id: key.key_id(),
            key_name: key_name.to_owned(),
            public_key_pem: key.to_pem(),
            valid_from: valid_from.to_owned(),
            valid_to: valid_to.map(str::to_owned),
        }
    }

    /// The key, after checking the PEM parses and matches `keyId`.
    pub fn audit_key(&self) -> Result<AuditKey, CertificateError> {
        let key = AuditKey::from_pem(&self.public_key_pem)?;
        if key.key_id() != self.key_id {
            return Err(CertificateError::Malformed(format!(
                "key history: key {} has key id {}",
                self.key_id,
                key.key_id()
            )));
        }
        Ok(key)
    }

    pub fn verifier_key(&self) -> Result<VerifierKey, CertificateError> {
        Ok(VerifierKey::new(self.key_name.clone(), self.audit_key()?)?)
    }

    /// Whether the key was valid at `time` (both in the format's timestamp spelling).
    pub fn valid_at(&self, time: &str) -> bool {
        let (Some(t), Some(from)) = (
            parse_timestamp_millis(time),
            parse_timestamp_millis(&self.valid_from),
        ) else {
            return false;
        };
        let before_end = match &self.valid_to {
            None => true,
            Some(to) => parse_timestamp_millis(to).is_some_and(|to| t < to),
        };
        from <= t && before_end
    }
}

/// The certificate's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSignature {
    pub key_id: KeyId,
    /// Always [`SIGNATURE_ALGORITHM`].
    pub algorithm: String,
    /// Base64 of the DER ECDSA signature.
    pub value: String,
}

/// `certificate.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// Always [`CERTIFICATE_FORMAT`].
    pub format: String,
    pub agency_id: String,
    pub agency_name: String,
    pub agency_slug: String,
    /// The log's checkpoint origin.
    pub origin: String,
    pub requested_range: RequestedRange,
    /// The seqs in `log.jsonl`.
    pub found_range: SeqRange,
    pub entry_count: u64,
    /// `prevHash` of the first exported entry: the genesis hash when the export starts at seq 1.
    pub first_prev_hash: Hash,
    /// `hash` of the last exported entry.
    pub last_hash: Hash,
    /// Merkle root of the agency's tree at size `foundRange.lastSeq`.
    #[serde(with = "base64_hash")]
    pub merkle_root: Hash,
    /// Hashes of the complete subtrees covering leaves `[0, foundRange.firstSeq − 1)`
    /// (`CompactRange::frontier_ids` order), so the root can be recomputed from the exported
    /// entries alone.
    #[serde(with = "base64_hashes")]
    pub left_frontier: Vec<Hash>,
    /// A signed checkpoint (note text) of tree size ≥ `foundRange.lastSeq`.
    pub checkpoint: String,
    /// Consistency proof from tree size `foundRange.lastSeq` to the checkpoint's size (empty
    /// when equal).
    #[serde(with = "base64_hashes")]
    pub checkpoint_consistency: Vec<Hash>,
    /// The signed minimum-index statement (note text) of a pruned log: entries below its index
    /// no longer exist. Absent for a log that was never pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_index: Option<String>,
    pub key_history: Vec<KeyRecord>,
    /// SHA-256 of the exact bytes of `log.jsonl`, bare hex.
    #[serde(with = "hex_hash")]
    pub log_sha256: Hash,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<CertificateSignature>,
}

impl Certificate {
    /// The canonical JSON the signature covers (the certificate without `signature`).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, CertificateError> {
        let mut value =
            serde_json::to_value(self).map_err(|e| CertificateError::Json(e.to_string()))?;
        signing_bytes_of_value(&mut value)
    }

    /// SHA-256 of [`Certificate::signing_bytes`]: what a digest-signing KMS signs.
    pub fn signing_digest(&self) -> Result<[u8; 32], CertificateError> {
        Ok(Hash::of(&self.signing_bytes()?).0)
    }

    /// The certificate with its signature attached; `sig_bytes` may be DER or raw `r ‖ s`.
    pub fn with_signature(
        mut self,
        key_id: KeyId,
        sig_bytes: &[u8],
    ) -> Result<Certificate, CertificateError> {
        let der = ecdsa_sig_to_der(sig_bytes)?;
        self.signature = Some(CertificateSignature {
            key_id,
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            value: BASE64.encode(der),
        });
        Ok(self)
    }

    /// Pretty-printed JSON, as written to `certificate.json`.
    pub fn to_json(&self) -> String {
        // Only strings, integers and nested structs: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Certificate, CertificateError> {
        crate::unique::check_unique_members(bytes).map_err(CertificateError::Json)?;
        serde_json::from_slice(bytes).map_err(|e| CertificateError::Json(e.to_string()))
    }

    /// Verifies the signature of the certificate *as it is in `json`* (members we do not know
    /// are covered too), with one of `trusted`. Returns the signing key id.
    pub fn verify_json_signature(
        json: &[u8],
        trusted: &[AuditKey],
    ) -> Result<KeyId, CertificateError> {
        crate::unique::check_unique_members(json).map_err(CertificateError::Json)?;
        let mut value: Value =
            serde_json::from_slice(json).map_err(|e| CertificateError::Json(e.to_string()))?;
        let signature = value
            .get("signature")
            .cloned()
            .ok_or(CertificateError::Unsigned)?;
        let signature: CertificateSignature = serde_json::from_value(signature)
            .map_err(|e| CertificateError::Malformed(format!("signature: {e}")))?;
        let message = signing_bytes_of_value(&mut value)?;
        verify_signature(&signature, &message, trusted)
    }

    /// Verifies this certificate's signature with one of `trusted`.
    pub fn verify_signature(&self, trusted: &[AuditKey]) -> Result<KeyId, CertificateError> {
        let signature = self.signature.as_ref().ok_or(CertificateError::Unsigned)?;
        verify_signature(signature, &self.signing_bytes()?, trusted)
    }

    /// Checks the certificate is internally consistent (not its signature, nor the log).
    pub fn validate(&self) -> Result<(), CertificateError> {
        let bad = |m: String| Err(CertificateError::Malformed(m));
        if self.format != CERTIFICATE_FORMAT {
            return bad(format!("unknown format {:?}", self.format));
        }
        let SeqRange {
            first_seq,
            last_seq,
        } = self.found_range;
        if first_seq == 0 || first_seq > last_seq {
            return bad(format!(
                "found range {first_seq}..{last_seq} is empty or starts at 0"
            ));
        }
        if self.entry_count != last_seq - first_seq + 1 {
            return bad(format!(
                "entry count {} does not match found range {first_seq}..{last_seq}",
                self.entry_count
            ));
        }
        let requested = self.requested_range;
        if requested.first_seq > first_seq || requested.last_seq.is_some_and(|l| l < last_seq) {
            return bad("found range lies outside the requested range".to_owned());
        }
        let expected_frontier = (first_seq - 1).count_ones() as usize;
        if self.left_frontier.len() != expected_frontier {
            return bad(format!(
                "left frontier has {} hashes, a tree of size {} has {expected_frontier}",
                self.left_frontier.len(),
                first_seq - 1
            ));
        }
        if parse_timestamp_millis(&self.created_at).is_none() {
            return bad("createdAt is not YYYY-MM-DDTHH:MM:SS.mmmZ".to_owned());
        }
        if self.key_history.is_empty() {
            return bad("key history is empty".to_owned());
        }
        for record in &self.key_history {
            record.verifier_key()?;
            if parse_timestamp_millis(&record.valid_from).is_none()
                || record
                    .valid_to
                    .as_deref()
                    .is_some_and(|t| parse_timestamp_millis(t).is_none())
            {
                return bad(format!("key {}: invalid validity window", record.key_id));
            }
        }
        Ok(())
    }

    /// The key history records for `key_id`.
    pub fn key_record(&self, key_id: KeyId) -> Option<&KeyRecord> {
        self.key_history.iter().find(|r| r.key_id == key_id)
    }
}

fn signing_bytes_of_value(value: &mut Value) -> Result<Vec<u8>, CertificateError> {
    let Value::Object(map) = value else {
        return Err(CertificateError::Malformed(
            "certificate is not a JSON object".into(),
        ));
    };
    map.remove("signature");
    Ok(canonical::canonicalize(value)?)
}

fn verify_signature(
    signature: &CertificateSignature,
    message: &[u8],
    trusted: &[AuditKey],
) -> Result<KeyId, CertificateError> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(CertificateError::Algorithm(signature.algorithm.clone()));
    }
    let key = trusted
        .iter()
        .find(|k| k.key_id() == signature.key_id)
        .ok_or(CertificateError::UntrustedKey(signature.key_id))?;
    let der = BASE64
        .decode(signature.value.as_bytes())
        .map_err(|_| CertificateError::Malformed("signature value is not base64".into()))?;
    let sig = p256::ecdsa::Signature::from_der(&der).map_err(|_| {
        CertificateError::Malformed("signature value is not a DER ECDSA signature".into())
    })?;
    key.verify_signature(message, &sig)
        .map_err(|_| CertificateError::BadSignature(signature.key_id))?;
    Ok(signature.key_id)
}
