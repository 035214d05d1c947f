//! `writ-verify offboarding`: an agency's certificate of offboarding against its public key, and
//! the final export handed over against the certificate.

use std::path::{Path, PathBuf};

use writ_audit_chain::offboarding::SignedOffboardingCertificate;

use crate::Outcome;
use crate::checks::Checks;
use crate::input::{hash_file, load_keys, read_small_file, signing_key};

pub fn run(certificate_path: &Path, key_paths: &[PathBuf], bundle_path: Option<&Path>) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let signed = SignedOffboardingCertificate::from_json(&read_small_file(certificate_path)?)
            .map_err(|e| format!("{}: {e}", certificate_path.display()))?;
        Ok::<_, String>((keys, signed))
    })();
    let (keys, signed) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => return checks.abort(e),
    };
    let c = &signed.certificate;
    checks.info(format!(
        "Certificate of offboarding ({}) of agency {} ({}, {})",
        c.format, c.agency_name, c.agency_slug, c.agency_id
    ));
    checks.info(format!(
        "Started {} by {}: {}",
        c.started_at, c.requested_by, c.reason
    ));
    let export = &c.final_export;
    checks.info(format!(
        "Final export: {}, seqs {}..={}, {} bytes, SHA-256 {}",
        export.file_name, export.first_seq, export.last_seq, export.size, export.sha256
    ));
    for key in &c.keys {
        checks.info(format!(
            "Key to destroy: {} version {} ({}, {})",
            key.purpose, key.version, key.provider, key.key_id
        ));
    }
    checks.info(format!(
        "Deletion after {}; issued {}",
        c.deletion_after, c.issued_at
    ));
    checks.check(
        "Agency signature",
        signing_key(signed.signature.key_id, &keys, "certificate").and_then(|key| {
            signed
                .verify(key)
                .map(|id| {
                    format!(
                        "valid (key id {id}, key version {})",
                        signed.signature.key_version
                    )
                })
                .map_err(|e| e.to_string())
        }),
    );
    if let Some(bundle) = bundle_path {
        let matches = hash_file(bundle).and_then(|(sha256, size)| {
            if sha256.to_hex() == export.sha256 && size == export.size {
                Ok(format!(
                    "{} is the certified final export (verify its contents with `writ-verify bundle`)",
                    bundle.display()
                ))
            } else {
                Err(format!(
                    "{} has SHA-256 {} and {size} bytes; the certificate names {} and {} bytes",
                    bundle.display(),
                    sha256.to_hex(),
                    export.sha256,
                    export.size
                ))
            }
        });
        checks.check("Final export", matches);
    }
    checks.finish()
}
