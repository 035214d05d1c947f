//! Electronic signature records (`writ.signature.v1`): who signed which exact document bytes,
//! how they had authenticated, what they agreed to, and when — signed by the agency's P-256 key.
//!
//! The signature is ECDSA P-256 / SHA-256 over the RFC 8785 canonical JSON of the `record`
//! member, the same construction as the export certificate, so an auditor checks a signature
//! record with the agency public key from an export's key history and no Writ code.
//! `docs/ESIGN-FORMAT.md` is its specification.
//!
//! The server's path through it: build a [`SignatureRecord`], sign [`signing_bytes`] with the
//! agency key, [`SignatureEnvelope::assemble`]. A verifier: [`SignatureEnvelope::from_json`],
//! then [`verify`] (or the individual checks, to report each one).
//!
//! An RFC 3161 timestamp is optional and outside the signed record: a TSA stamps
//! [`SignatureEnvelope::timestamp_digest`], the token goes in with
//! [`SignatureEnvelope::set_timestamp_token`], and [`SignatureEnvelope::check_timestamp`]
//! verifies it against trusted TSA certificates (see [`crate::timestamp`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::canonical;
use crate::certificate::SIGNATURE_ALGORITHM;
use crate::error::{CanonicalError, KeyError};
use crate::hash::{Hash, hex_hash};
use crate::keys::{AuditKey, KeyId, ecdsa_sig_to_der};
use crate::time::is_valid_timestamp;
use crate::timestamp::{TimestampError, TimestampInfo, TsaCertificate, verify_token};

/// Value of the record's `format` member.
pub const SIGNATURE_RECORD_FORMAT: &str = "writ.signature.v1";

/// Who signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signer {
    pub user_id: String,
    /// The role the signer acted in (`officer`, `judge`, …).
    pub role: String,
    /// Display name at signing time; later renames do not change the record.
    pub name: String,
    /// Badge number of an officer, judicial id of a judge.
    pub badge_or_judicial_id: String,
}

/// How the signer had proven who they were when they signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    /// Factors of the session, e.g. `["password", "totp"]`.
    pub methods: Vec<String>,
    /// NIST SP 800-63B assurance level, e.g. `aal2`.
    pub strength: String,
    /// When the session was authenticated.
    pub auth_time: String,
    /// When the signer re-entered a second factor for this signature (step-up).
    pub stepped_up_at: String,
}

/// The intent statement shown to the signer and accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Intent {
    pub text: String,
    /// SHA-256 of the UTF-8 bytes of `text`, bare hex.
    #[serde(with = "hex_hash")]
    pub sha256: Hash,
}

impl Intent {
    /// An intent statement with its hash.
    pub fn new(text: impl Into<String>) -> Intent {
        let text = text.into();
        Intent {
            sha256: Hash::of(text.as_bytes()),
            text,
        }
    }
}

/// The signed document, as the exact bytes the document store holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedDocument {
    pub id: String,
    /// SHA-256 of the stored bytes, bare hex (as `sha256sum` prints it).
    #[serde(with = "hex_hash")]
    pub sha256: Hash,
    /// Length of the stored bytes.
    pub size: u64,
}

/// The audit entry that recorded the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditReference {
    pub seq: u64,
    /// The entry's `hash` (`sha256:<hex>`).
    pub entry_hash: Hash,
}

/// What the agency signs when a user signs a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureRecord {
    /// Always [`SIGNATURE_RECORD_FORMAT`].
    pub format: String,
    pub record_id: String,
    pub agency_id: String,
    pub warrant_id: String,
    pub signer: Signer,
    pub authentication: Authentication,
    pub intent: Intent,
    pub document: SignedDocument,
    /// Server UTC time of the signature, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub signed_at: String,
    pub source_ip: String,
    pub user_agent: String,
    /// The oath record the signature was sworn under, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oath_reference: Option<String>,
    /// Absent while the audit entry that records the signature does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditReference>,
}

/// The agency's signature over a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSignature {
    /// Always [`SIGNATURE_ALGORITHM`].
    pub algorithm: String,
    /// `SHA-256(DER SubjectPublicKeyInfo)[..4]` of the signing key, as in audit key histories.
    pub key_id: KeyId,
    /// The agency's signing key version.
    pub key_version: i32,
    /// Base64 of the DER ECDSA signature.
    pub value: String,
}

/// An RFC 3161 timestamp over the agency's signature (see [`SignatureEnvelope::timestamp_digest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordTimestamp {
    /// Base64 of the DER TimeStampToken.
    pub token: String,
}

/// A signature record as stored and exported: the record and the agency's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureEnvelope {
    pub record: SignatureRecord,
    pub signature: RecordSignature,
    /// A TSA's timestamp on the signature, when the agency has a TSA configured. Outside
    /// `record`, so adding it does not change what the agency signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<RecordTimestamp>,
}

/// What a successful [`verify`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub record_id: String,
    pub document_id: String,
    pub key_id: KeyId,
    pub key_version: i32,
    /// False when no document bytes were given: the record's signature holds, but nothing
    /// says which bytes it is about.
    pub document_checked: bool,
}

/// Why a signature record does not verify. Each variant names what failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureRecordError {
    #[error("not a signature record: {0}")]
    Json(String),
    #[error("the record has no format member; expected {SIGNATURE_RECORD_FORMAT:?}")]
    MissingFormat,
    #[error("unknown signature record format {0:?}; expected {SIGNATURE_RECORD_FORMAT:?}")]
    UnknownFormat(String),
    #[error("malformed signature record: {0}")]
    Malformed(String),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error(
        "intent statement does not match its hash: the text hashes to {}, the record says {}",
        .found.to_hex(),
        .expected.to_hex()
    )]
    IntentMismatch { expected: Hash, found: Hash },
    #[error(
        "document {document_id} is not the signed document: its SHA-256 is {}, the signed document's is {}",
        .found.to_hex(),
        .expected.to_hex()
    )]
    DocumentMismatch {
        document_id: String,
        expected: Hash,
        found: Hash,
    },
    #[error("document {document_id} is {found} bytes, the record says {expected}")]
    DocumentSize {
        document_id: String,
        expected: u64,
        found: u64,
    },
    #[error("unsupported signature algorithm {0:?}; expected {SIGNATURE_ALGORITHM:?}")]
    Algorithm(String),
    #[error("the record is signed by key {signed_by}, the given public key is key {given}")]
    WrongKey { signed_by: KeyId, given: KeyId },
    #[error("the signature value is not base64 of a DER ECDSA signature")]
    SignatureEncoding,
    #[error(
        "the signature does not verify with key {0}: the record was changed after it was signed"
    )]
    BadSignature(KeyId),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the record has no timestamp")]
    NoTimestamp,
    #[error("the timestamp token is not base64")]
    TimestampEncoding,
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
}

/// SHA-256 of an intent statement: of its exact UTF-8 bytes, with no normalisation.
pub fn intent_sha256(text: &str) -> Hash {
    Hash::of(text.as_bytes())
}

/// The bytes the agency signs: the RFC 8785 canonical JSON of `record`.
pub fn signing_bytes(record: &SignatureRecord) -> Result<Vec<u8>, SignatureRecordError> {
    Ok(canonical::to_canonical_vec(record)?)
}

/// SHA-256 and length of a document read in pieces, so a large file is never held whole.
#[derive(Clone, Default)]
pub struct DocumentHasher {
    hasher: Sha256,
    size: u64,
}

impl DocumentHasher {
    pub fn new() -> DocumentHasher {
        DocumentHasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size = self.size.saturating_add(bytes.len() as u64);
    }

    /// The document's SHA-256 and size.
    pub fn finish(self) -> (Hash, u64) {
        (Hash(self.hasher.finalize().into()), self.size)
    }
}

impl SignatureRecord {
    /// The record's form: its format, timestamps and required members (not its signature).
    pub fn validate(&self) -> Result<(), SignatureRecordError> {
        if self.format != SIGNATURE_RECORD_FORMAT {
            return Err(SignatureRecordError::UnknownFormat(self.format.clone()));
        }
        let bad = |m: &str| Err(SignatureRecordError::Malformed(m.to_owned()));
        for (name, time) in [
            ("signedAt", &self.signed_at),
            ("authentication.authTime", &self.authentication.auth_time),
            (
                "authentication.steppedUpAt",
                &self.authentication.stepped_up_at,
            ),
        ] {
            if !is_valid_timestamp(time) {
                return bad(&format!("{name} is not YYYY-MM-DDTHH:MM:SS.mmmZ"));
            }
        }
        for (name, value) in [
            ("recordId", &self.record_id),
            ("agencyId", &self.agency_id),
            ("warrantId", &self.warrant_id),
            ("signer.userId", &self.signer.user_id),
            ("signer.role", &self.signer.role),
            ("document.id", &self.document.id),
        ] {
            if value.is_empty() {
                return bad(&format!("{name} is empty"));
            }
        }
        if self.authentication.methods.is_empty() {
            return bad("authentication.methods is empty");
        }
        Ok(())
    }

    /// The intent text hashes to the recorded `intent.sha256`.
    pub fn check_intent(&self) -> Result<(), SignatureRecordError> {
        let found = intent_sha256(&self.intent.text);
        if found != self.intent.sha256 {
            return Err(SignatureRecordError::IntentMismatch {
                expected: self.intent.sha256,
                found,
            });
        }
        Ok(())
    }

    /// `bytes` are the signed document.
    pub fn check_document(&self, bytes: &[u8]) -> Result<(), SignatureRecordError> {
        self.check_document_digest(&Hash::of(bytes), bytes.len() as u64)
    }

    /// A document with this SHA-256 and size (see [`DocumentHasher`]) is the signed document.
    pub fn check_document_digest(
        &self,
        sha256: &Hash,
        size: u64,
    ) -> Result<(), SignatureRecordError> {
        if *sha256 != self.document.sha256 {
            return Err(SignatureRecordError::DocumentMismatch {
                document_id: self.document.id.clone(),
                expected: self.document.sha256,
                found: *sha256,
            });
        }
        // Same hash, different size: the record contradicts itself.
        if size != self.document.size {
            return Err(SignatureRecordError::DocumentSize {
                document_id: self.document.id.clone(),
                expected: self.document.size,
                found: size,
            });
        }
        Ok(())
    }
}

impl SignatureEnvelope {
    /// The record with the agency's signature over [`signing_bytes`]; `sig_bytes` may be DER or
    /// raw `r ‖ s` (what the KMS returned).
    pub fn assemble(
        record: SignatureRecord,
        key_id: KeyId,
        key_version: i32,
        sig_bytes: &[u8],
    ) -> Result<SignatureEnvelope, SignatureRecordError> {
        Ok(SignatureEnvelope {
            record,
            signature: RecordSignature::new(key_id, key_version, sig_bytes)?,
            timestamp: None,
        })
    }

    /// What an RFC 3161 timestamp on this record stamps: SHA-256 of the DER bytes of the
    /// agency's signature (the decoded `signature.value`), as a CAdES signature-time-stamp does.
    /// The signature covers the record, so the timestamp proves the signed record existed then.
    pub fn timestamp_digest(&self) -> Result<[u8; 32], SignatureRecordError> {
        let der = BASE64
            .decode(self.signature.value.as_bytes())
            .map_err(|_| SignatureRecordError::SignatureEncoding)?;
        Ok(Sha256::digest(&der).into())
    }

    /// The record's timestamp token, decoded from base64.
    pub fn timestamp_token(&self) -> Result<Vec<u8>, SignatureRecordError> {
        let timestamp = self
            .timestamp
            .as_ref()
            .ok_or(SignatureRecordError::NoTimestamp)?;
        BASE64
            .decode(timestamp.token.as_bytes())
            .map_err(|_| SignatureRecordError::TimestampEncoding)
    }

    /// Sets the timestamp from a DER token (the server's path, after the TSA answered).
    pub fn set_timestamp_token(&mut self, token_der: &[u8]) {
        self.timestamp = Some(RecordTimestamp {
            token: BASE64.encode(token_der),
        });
    }

    /// The record's timestamp verifies over [`Self::timestamp_digest`] with a TSA certificate
    /// in `trusted`. It says when the TSA saw the signature; it does not check the signature
    /// itself ([`Self::check_signature`] does).
    pub fn check_timestamp(
        &self,
        trusted: &[TsaCertificate],
    ) -> Result<TimestampInfo, SignatureRecordError> {
        let token = self.timestamp_token()?;
        Ok(verify_token(&token, &self.timestamp_digest()?, trusted)?)
    }

    /// Pretty-printed JSON, as exported.
    pub fn to_json(&self) -> String {
        // Only strings, integers and nested structs: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses an exported record. The format is checked first, so a record of another
    /// version is reported as such rather than as unknown members. A record that is not in
    /// the one form [`signing_bytes`] gives (a `null` where an optional member must be absent)
    /// is refused: someone checking by hand canonicalises the record as it is in the file, and
    /// both must agree on what was signed.
    pub fn from_json(bytes: &[u8]) -> Result<SignatureEnvelope, SignatureRecordError> {
        crate::unique::check_unique_members(bytes).map_err(SignatureRecordError::Json)?;
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| SignatureRecordError::Json(e.to_string()))?;
        let record = value
            .get("record")
            .ok_or_else(|| SignatureRecordError::Json("no record member".into()))?;
        match record.get("format") {
            None => return Err(SignatureRecordError::MissingFormat),
            Some(Value::String(f)) if f == SIGNATURE_RECORD_FORMAT => {}
            Some(Value::String(f)) => return Err(SignatureRecordError::UnknownFormat(f.clone())),
            Some(other) => return Err(SignatureRecordError::UnknownFormat(other.to_string())),
        }
        let as_found = canonical::canonicalize(record)?;
        let envelope: SignatureEnvelope =
            serde_json::from_value(value).map_err(|e| SignatureRecordError::Json(e.to_string()))?;
        if signing_bytes(&envelope.record)? != as_found {
            return Err(SignatureRecordError::Malformed(
                "the record holds null for an absent member".into(),
            ));
        }
        Ok(envelope)
    }

    /// The agency signature over the record verifies with `key`.
    pub fn check_signature(&self, key: &AuditKey) -> Result<KeyId, SignatureRecordError> {
        self.signature.check(key, &signing_bytes(&self.record)?)
    }
}

impl RecordSignature {
    /// The agency's signature by key `key_id` (version `key_version`); `sig_bytes` may be DER or
    /// raw `r ‖ s` (what the KMS returned).
    pub fn new(key_id: KeyId, key_version: i32, sig_bytes: &[u8]) -> Result<Self, KeyError> {
        Ok(RecordSignature {
            algorithm: SIGNATURE_ALGORITHM.to_owned(),
            key_id,
            key_version,
            value: BASE64.encode(ecdsa_sig_to_der(sig_bytes)?),
        })
    }

    /// This signature verifies over `message` with `key`, and names that key.
    pub fn check(&self, key: &AuditKey, message: &[u8]) -> Result<KeyId, SignatureRecordError> {
        let signature = self;
        if signature.algorithm != SIGNATURE_ALGORITHM {
            return Err(SignatureRecordError::Algorithm(signature.algorithm.clone()));
        }
        if key.key_id() != signature.key_id {
            return Err(SignatureRecordError::WrongKey {
                signed_by: signature.key_id,
                given: key.key_id(),
            });
        }
        let der = BASE64
            .decode(signature.value.as_bytes())
            .map_err(|_| SignatureRecordError::SignatureEncoding)?;
        let sig = p256::ecdsa::Signature::from_der(&der)
            .map_err(|_| SignatureRecordError::SignatureEncoding)?;
        key.verify_signature(message, &sig)
            .map_err(|_| SignatureRecordError::BadSignature(signature.key_id))?;
        Ok(signature.key_id)
    }
}

/// Verifies a signature record: its format, the intent hash, the document bytes (when given)
/// and the agency signature with the public key in `public_key_pem`. The first failure is
/// returned.
pub fn verify(
    envelope: &SignatureEnvelope,
    document_bytes: Option<&[u8]>,
    public_key_pem: &str,
) -> Result<VerifiedSignature, SignatureRecordError> {
    let record = &envelope.record;
    record.validate()?;
    record.check_intent()?;
    if let Some(bytes) = document_bytes {
        record.check_document(bytes)?;
    }
    let key = AuditKey::from_pem(public_key_pem)?;
    let key_id = envelope.check_signature(&key)?;
    Ok(VerifiedSignature {
        record_id: record.record_id.clone(),
        document_id: record.document.id.clone(),
        key_id,
        key_version: envelope.signature.key_version,
        document_checked: document_bytes.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use p256::ecdsa::SigningKey;

    const DOCUMENT: &[u8] = b"%PDF-1.7\nAffidavit in support of a search warrant\n%%EOF\n";

    fn record() -> SignatureRecord {
        SignatureRecord {
            intent: Intent::new(
                "I have reviewed the affidavit and find probable cause; I sign this warrant.",
            ),
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)".into(),
            oath_reference: Some("oath/5a7c9e1b".into()),
            audit: Some(AuditReference {
                seq: 4182,
                entry_hash: Hash::of(b"entry"),
            }),
            ..crate::fixtures::sample_signature_record(DOCUMENT)
        }
    }

    fn key() -> SigningKey {
        SigningKey::random(&mut rand::thread_rng())
    }

    fn pem(sk: &SigningKey) -> String {
        AuditKey::from_verifying_key(*sk.verifying_key())
            .unwrap()
            .to_pem()
    }

    fn sign(record: SignatureRecord, sk: &SigningKey) -> SignatureEnvelope {
        let sig = crate::fixtures::sign_low_s(sk, &signing_bytes(&record).unwrap());
        let key_id = AuditKey::from_verifying_key(*sk.verifying_key())
            .unwrap()
            .key_id();
        SignatureEnvelope::assemble(record, key_id, 3, sig.to_der().as_bytes()).unwrap()
    }

    /// Sign, export and read back, as a verifier receives it.
    fn exported(sk: &SigningKey) -> SignatureEnvelope {
        SignatureEnvelope::from_json(sign(record(), sk).to_json().as_bytes()).unwrap()
    }

    #[test]
    fn a_signed_record_verifies_with_its_document_and_key() {
        let sk = key();
        let envelope = exported(&sk);
        let verified = verify(&envelope, Some(DOCUMENT), &pem(&sk)).unwrap();
        assert_eq!(verified.document_id, "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c");
        assert_eq!(verified.key_version, 3);
        assert!(verified.document_checked);
        let without_document = verify(&envelope, None, &pem(&sk)).unwrap();
        assert!(!without_document.document_checked);
    }

    #[test]
    fn a_changed_document_byte_fails_naming_the_document() {
        let sk = key();
        let mut changed = DOCUMENT.to_vec();
        changed[10] ^= 1;
        let err = verify(&exported(&sk), Some(&changed), &pem(&sk)).unwrap_err();
        assert_eq!(
            err,
            SignatureRecordError::DocumentMismatch {
                document_id: "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c".into(),
                expected: Hash::of(DOCUMENT),
                found: Hash::of(&changed),
            }
        );
        assert!(
            err.to_string()
                .contains("document d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c is not the signed")
        );
    }

    #[test]
    fn a_changed_record_field_fails_the_signature() {
        let sk = key();
        let mut envelope = exported(&sk);
        envelope.record.signed_at = "2026-12-04T09:15:28.104Z".into();
        let err = verify(&envelope, Some(DOCUMENT), &pem(&sk)).unwrap_err();
        assert_eq!(
            err,
            SignatureRecordError::BadSignature(envelope.signature.key_id)
        );

        // Pointing the record at other bytes, hash and size consistently, breaks it too.
        let mut envelope = exported(&sk);
        let other = b"another document";
        envelope.record.document.sha256 = Hash::of(other);
        envelope.record.document.size = other.len() as u64;
        assert!(matches!(
            verify(&envelope, Some(other), &pem(&sk)),
            Err(SignatureRecordError::BadSignature(_))
        ));
    }

    #[test]
    fn a_changed_intent_text_fails() {
        let sk = key();
        let mut envelope = exported(&sk);
        envelope.record.intent.text = "I decline to sign.".into();
        let err = verify(&envelope, Some(DOCUMENT), &pem(&sk)).unwrap_err();
        assert!(matches!(err, SignatureRecordError::IntentMismatch { .. }));

        // Text and hash changed together: the hash agrees, the signature does not.
        envelope.record.intent = Intent::new("I decline to sign.");
        assert!(matches!(
            verify(&envelope, Some(DOCUMENT), &pem(&sk)),
            Err(SignatureRecordError::BadSignature(_))
        ));
    }

    #[test]
    fn another_key_fails() {
        let sk = key();
        let other = key();
        let envelope = exported(&sk);
        let err = verify(&envelope, Some(DOCUMENT), &pem(&other)).unwrap_err();
        assert!(matches!(err, SignatureRecordError::WrongKey { .. }));

        // A forger who claims the real key id still fails.
        let mut forged = sign(record(), &other);
        forged.signature.key_id = envelope.signature.key_id;
        assert_eq!(
            verify(&forged, Some(DOCUMENT), &pem(&sk)).unwrap_err(),
            SignatureRecordError::BadSignature(envelope.signature.key_id)
        );
    }

    #[test]
    fn a_missing_or_unknown_format_is_refused() {
        let sk = key();
        let json = sign(record(), &sk).to_json();
        let mut value: Value = serde_json::from_str(&json).unwrap();
        value["record"]["format"] = "writ.signature.v2".into();
        assert_eq!(
            SignatureEnvelope::from_json(value.to_string().as_bytes()),
            Err(SignatureRecordError::UnknownFormat(
                "writ.signature.v2".into()
            ))
        );
        value["record"].as_object_mut().unwrap().remove("format");
        assert_eq!(
            SignatureEnvelope::from_json(value.to_string().as_bytes()),
            Err(SignatureRecordError::MissingFormat)
        );

        let mut envelope = sign(record(), &sk);
        envelope.record.format = "writ.signature.v0".into();
        assert_eq!(
            verify(&envelope, Some(DOCUMENT), &pem(&sk)),
            Err(SignatureRecordError::UnknownFormat(
                "writ.signature.v0".into()
            ))
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"[]",
            b"{\"record\": 1}",
            b"{\"record\": {\"format\": \"writ.signature.v1\"}}",
        ] {
            assert!(SignatureEnvelope::from_json(bad).is_err());
        }
        let sk = key();
        let mut value: Value = serde_json::from_str(&sign(record(), &sk).to_json()).unwrap();
        value["record"]["extra"] = "x".into();
        assert!(matches!(
            SignatureEnvelope::from_json(value.to_string().as_bytes()),
            Err(SignatureRecordError::Json(_))
        ));
        // A null for an absent optional member is not the signed form.
        let mut unrecorded = record();
        unrecorded.audit = None;
        let mut value: Value = serde_json::from_str(&sign(unrecorded, &sk).to_json()).unwrap();
        value["record"]["audit"] = Value::Null;
        assert!(matches!(
            SignatureEnvelope::from_json(value.to_string().as_bytes()),
            Err(SignatureRecordError::Malformed(_))
        ));

        let mut envelope = sign(record(), &sk);
        envelope.signature.value = "not base64!".into();
        assert_eq!(
            verify(&envelope, None, &pem(&sk)),
            Err(SignatureRecordError::SignatureEncoding)
        );
        envelope.signature.algorithm = "rsa-pss-sha256".into();
        assert!(matches!(
            verify(&envelope, None, &pem(&sk)),
            Err(SignatureRecordError::Algorithm(_))
        ));
        let mut late = record();
        late.signed_at = "2026-12-04 09:15:27".into();
        assert!(matches!(
            late.validate(),
            Err(SignatureRecordError::Malformed(_))
        ));
    }

    #[test]
    fn the_signed_bytes_are_the_canonical_record_and_hash_in_pieces_like_whole() {
        let bytes = signing_bytes(&record()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\"agencyId\":\"4f1c2b7e"), "{text}");
        assert!(!text.contains('\n'));
        assert!(text.contains(&format!("\"sha256\":\"{}\"", Hash::of(DOCUMENT).to_hex())));

        let mut hasher = DocumentHasher::new();
        for chunk in DOCUMENT.chunks(7) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finish(), (Hash::of(DOCUMENT), DOCUMENT.len() as u64));
    }
}
