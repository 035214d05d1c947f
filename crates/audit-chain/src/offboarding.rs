//! The certificate of offboarding (`writ-agency-offboarding/1`): the agency's last signed
//! statement before its keys are scheduled for destruction. It names the final export (by its
//! SHA-256, so the bundle handed over is provably the one certified), every key version to be
//! destroyed, when, and what goes with them.
//!
//! The signature is ECDSA P-256 / SHA-256 by the agency's signing key over the RFC 8785
//! canonical JSON of the `certificate` member, as for signature records and evidence
//! certificates.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::CertificateError;
use crate::canonical;
use crate::keys::{AuditKey, KeyId};
use crate::signature_record::{RecordSignature, SignatureRecordError};
use crate::time::parse_timestamp_millis;

/// Value of the certificate's `format` member.
pub const OFFBOARDING_FORMAT: &str = "writ-agency-offboarding/1";

/// The final export, as handed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalExport {
    /// The bundle's file name (a `.tar.gz` that `writ-verify bundle` checks).
    pub file_name: String,
    /// Bytes of the file.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// One key version scheduled for destruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestroyedKey {
    /// `kek` or `signing`.
    pub purpose: String,
    pub version: i32,
    /// `local`, `aws-kms` or `azure-keyvault`.
    pub provider: String,
    /// The provider's name for the key.
    pub key_id: String,
}

/// What the agency certifies as it leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OffboardingCertificate {
    /// [`OFFBOARDING_FORMAT`].
    pub format: String,
    pub agency_id: String,
    pub agency_slug: String,
    pub agency_name: String,
    /// Who started the offboarding: `operator:<username>` or `os:<user>`.
    pub requested_by: String,
    pub reason: String,
    /// RFC 3339 UTC with milliseconds, like every timestamp of the audit format.
    pub started_at: String,
    pub final_export: FinalExport,
    /// Every version of the agency's key-encryption and signing keys.
    pub keys: Vec<DestroyedKey>,
    /// From when the providers destroy the keys; until then an operator can still stop it.
    pub deletion_after: String,
    /// What becomes unrecoverable with the keys, and what is removed after the waiting period.
    pub destroyed: Vec<String>,
    pub issued_at: String,
}

/// A certificate and the agency's signature over it, as stored and handed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedOffboardingCertificate {
    pub certificate: OffboardingCertificate,
    pub signature: RecordSignature,
}

/// The bytes the agency signs: the RFC 8785 canonical JSON of `certificate`.
pub fn signing_bytes(certificate: &OffboardingCertificate) -> Result<Vec<u8>, CertificateError> {
    Ok(canonical::to_canonical_vec(certificate)?)
}

impl OffboardingCertificate {
    /// The form a verifier relies on: the format, the timestamps and the export's seqs.
    pub fn validate(&self) -> Result<(), CertificateError> {
        let malformed = |m: String| Err(CertificateError::Malformed(m));
        if self.format != OFFBOARDING_FORMAT {
            return malformed(format!(
                "format {:?}, expected {OFFBOARDING_FORMAT:?}",
                self.format
            ));
        }
        for (name, value) in [
            ("startedAt", &self.started_at),
            ("deletionAfter", &self.deletion_after),
            ("issuedAt", &self.issued_at),
        ] {
            if parse_timestamp_millis(value).is_none() {
                return malformed(format!("{name} {value:?} is not an RFC 3339 UTC timestamp"));
            }
        }
        let export = &self.final_export;
        if export.first_seq == 0 || export.first_seq > export.last_seq {
            return malformed(format!(
                "final export covers seqs {}..={}",
                export.first_seq, export.last_seq
            ));
        }
        if export.sha256.len() != 64 || !export.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return malformed("final export sha256 is not 64 hex digits".into());
        }
        if self.keys.is_empty() {
            return malformed("no key versions listed".into());
        }
        Ok(())
    }
}

impl SignedOffboardingCertificate {
    /// The certificate with the agency's signature over [`signing_bytes`]; `sig_bytes` may be
    /// DER or raw `r ‖ s`.
    pub fn assemble(
        certificate: OffboardingCertificate,
        key_id: KeyId,
        key_version: i32,
        sig_bytes: &[u8],
    ) -> Result<SignedOffboardingCertificate, CertificateError> {
        Ok(SignedOffboardingCertificate {
            certificate,
            signature: RecordSignature::new(key_id, key_version, sig_bytes)?,
        })
    }

    pub fn to_json(&self) -> String {
        // Strings, integers and nested structs: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a certificate, its format first. One not in the one form [`signing_bytes`] gives
    /// is refused, so a reader canonicalising the file by hand checks the same bytes.
    pub fn from_json(bytes: &[u8]) -> Result<SignedOffboardingCertificate, CertificateError> {
        crate::unique::check_unique_members(bytes).map_err(CertificateError::Json)?;
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| CertificateError::Json(e.to_string()))?;
        let certificate = value.get("certificate").ok_or_else(|| {
            CertificateError::Malformed("not a certificate of offboarding".into())
        })?;
        match certificate.get("format") {
            Some(Value::String(f)) if f == OFFBOARDING_FORMAT => {}
            other => {
                return Err(CertificateError::Malformed(format!(
                    "format {}, expected {OFFBOARDING_FORMAT:?}",
                    other.map_or("missing".into(), Value::to_string)
                )));
            }
        }
        let as_found = canonical::canonicalize(certificate)?;
        let signed: SignedOffboardingCertificate = serde_json::from_value(value)
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        if signing_bytes(&signed.certificate)? != as_found {
            return Err(CertificateError::Malformed(
                "a member holds null where it must be absent".into(),
            ));
        }
        Ok(signed)
    }

    /// The form holds and the agency's signature verifies with `key`.
    pub fn verify(&self, key: &AuditKey) -> Result<KeyId, SignatureRecordError> {
        self.certificate
            .validate()
            .map_err(|e| SignatureRecordError::Malformed(e.to_string()))?;
        let bytes = signing_bytes(&self.certificate)
            .map_err(|e| SignatureRecordError::Malformed(e.to_string()))?;
        self.signature.check(key, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use p256::ecdsa::SigningKey;

    fn certificate() -> OffboardingCertificate {
        OffboardingCertificate {
            format: OFFBOARDING_FORMAT.into(),
            agency_id: "0190f4a0-0000-7000-8000-00000000a001".into(),
            agency_slug: "springfield-pd".into(),
            agency_name: "Springfield Police Department".into(),
            requested_by: "operator:ops.kim".into(),
            reason: "contract ended".into(),
            started_at: "2026-12-01T09:00:00.000Z".into(),
            final_export: FinalExport {
                file_name: "offboarding-final.tar.gz".into(),
                size: 4096,
                sha256: "ab".repeat(32),
                first_seq: 1,
                last_seq: 812,
            },
            keys: vec![DestroyedKey {
                purpose: "signing".into(),
                version: 1,
                provider: "local".into(),
                key_id: "local:sig:1".into(),
            }],
            deletion_after: "2026-12-31T09:00:00.000Z".into(),
            destroyed: vec!["every document".into()],
            issued_at: "2026-12-01T09:00:01.000Z".into(),
        }
    }

    fn signed(
        sk: &SigningKey,
        certificate: OffboardingCertificate,
    ) -> SignedOffboardingCertificate {
        let key = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let sig = crate::fixtures::sign_low_s(sk, &signing_bytes(&certificate).unwrap());
        SignedOffboardingCertificate::assemble(
            certificate,
            key.key_id(),
            1,
            &sig.to_der().to_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_certificate_verifies_after_a_round_trip_and_not_once_changed() {
        let sk = SigningKey::random(&mut rand::thread_rng());
        let key = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let cert = signed(&sk, certificate());
        let parsed = SignedOffboardingCertificate::from_json(cert.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, cert);
        assert_eq!(parsed.verify(&key).unwrap(), key.key_id());

        let mut changed = cert.clone();
        changed.certificate.final_export.last_seq = 811;
        assert!(matches!(
            changed.verify(&key),
            Err(SignatureRecordError::BadSignature(_))
        ));
        let other = SigningKey::random(&mut rand::thread_rng());
        let other = AuditKey::from_verifying_key(*other.verifying_key()).unwrap();
        assert!(matches!(
            cert.verify(&other),
            Err(SignatureRecordError::WrongKey { .. })
        ));
    }

    #[test]
    fn another_format_or_a_malformed_certificate_is_refused() {
        let sk = SigningKey::random(&mut rand::thread_rng());
        let key = AuditKey::from_verifying_key(*sk.verifying_key()).unwrap();
        let mut json: Value = serde_json::from_str(&signed(&sk, certificate()).to_json()).unwrap();
        json["certificate"]["format"] = "writ-agency-offboarding/2".into();
        assert!(SignedOffboardingCertificate::from_json(json.to_string().as_bytes()).is_err());
        assert!(SignedOffboardingCertificate::from_json(b"[]").is_err());

        let mut bad = certificate();
        bad.final_export.first_seq = 0;
        assert!(matches!(
            signed(&sk, bad).verify(&key),
            Err(SignatureRecordError::Malformed(_))
        ));
        let mut bad = certificate();
        bad.deletion_after = "tomorrow".into();
        assert!(signed(&sk, bad).verify(&key).is_err());
    }
}
