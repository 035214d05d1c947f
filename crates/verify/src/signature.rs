//! `writ-verify signature`: an e-signature record against the document and the agency key.

use std::path::{Path, PathBuf};

use writ_audit_chain::AuditKey;
use writ_audit_chain::signature_record::SignatureEnvelope;
use writ_audit_chain::timestamp::{TsaCertificate, inspect_token};

use crate::Outcome;
use crate::checks::Checks;
use crate::input::{hash_file, load_keys, load_tsa_certs, read_small_file, signing_key};

pub fn run(
    record_path: &Path,
    document_path: &Path,
    key_paths: &[PathBuf],
    tsa_cert_paths: &[PathBuf],
) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let tsa_certs = load_tsa_certs(tsa_cert_paths)?;
        let envelope = SignatureEnvelope::from_json(&read_small_file(record_path)?)
            .map_err(|e| format!("{}: {e}", record_path.display()))?;
        Ok::<_, String>((keys, tsa_certs, envelope))
    })();
    let (keys, tsa_certs, envelope) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => return checks.abort(e),
    };
    let record = &envelope.record;
    let signer = &record.signer;
    let auth = &record.authentication;
    checks.info(format!(
        "Signature record {} ({})",
        record.record_id, record.format
    ));
    checks.info(format!(
        "Agency {}, warrant {}",
        record.agency_id, record.warrant_id
    ));
    checks.info(format!(
        "Signer: {} ({}, {}), user {}",
        signer.name, signer.role, signer.badge_or_judicial_id, signer.user_id
    ));
    checks.info(format!(
        "Authentication: {} ({}), authenticated {}, stepped up {}",
        auth.methods.join("+"),
        auth.strength,
        auth.auth_time,
        auth.stepped_up_at
    ));
    checks.info(format!(
        "Signed at {} from {} ({})",
        record.signed_at, record.source_ip, record.user_agent
    ));
    if let Some(oath) = &record.oath_reference {
        checks.info(format!("Oath: {oath}"));
    }
    match &record.audit {
        Some(audit) => checks.info(format!(
            "Audit entry: seq {}, {}",
            audit.seq, audit.entry_hash
        )),
        None => checks.info("Audit entry: not yet recorded in this record"),
    }

    checks.check(
        "Record form",
        record
            .validate()
            .map(|()| "valid".to_owned())
            .map_err(|e| e.to_string()),
    );
    checks.check(
        "Intent statement",
        record
            .check_intent()
            .map(|()| format!("text matches SHA-256 {}", record.intent.sha256.to_hex()))
            .map_err(|e| e.to_string()),
    );
    let document = hash_file(document_path).and_then(|(sha256, size)| {
        record
            .check_document_digest(&sha256, size)
            .map(|()| {
                format!(
                    "{} is the signed document {} (SHA-256 {}, {size} bytes)",
                    document_path.display(),
                    record.document.id,
                    sha256.to_hex()
                )
            })
            .map_err(|e| format!("{}: {e}", document_path.display()))
    });
    checks.check("Document", document);
    checks.check(
        "Agency signature",
        check_signature(&envelope, &keys).map(|id| {
            format!(
                "valid (key id {id}, key version {})",
                envelope.signature.key_version
            )
        }),
    );
    check_timestamp(&mut checks, &envelope, &tsa_certs);
    checks.finish()
}

/// The record's RFC 3161 timestamp, which is optional. With `--tsa-cert` it must verify against
/// one of them. Without, a token that is intact and signed by the certificate it carries is
/// reported as a warning, since anyone can make such a certificate; a broken token fails.
fn check_timestamp(checks: &mut Checks, envelope: &SignatureEnvelope, trusted: &[TsaCertificate]) {
    if envelope.timestamp.is_none() {
        if !trusted.is_empty() {
            checks.info("WARNING Timestamp: the record has no timestamp");
        }
        return;
    }
    if !trusted.is_empty() {
        checks.check(
            "Timestamp",
            envelope
                .check_timestamp(trusted)
                .map(|info| {
                    format!(
                        "valid, the signature existed at {} (TSA {}, serial {}, policy {})",
                        info.gen_time, info.tsa, info.serial, info.policy
                    )
                })
                .map_err(|e| e.to_string()),
        );
        return;
    }
    let claimed = envelope
        .timestamp_token()
        .and_then(|token| Ok(inspect_token(&token, &envelope.timestamp_digest()?)?))
        .map_err(|e| e.to_string());
    match claimed {
        Ok(info) => checks.info(format!(
            "WARNING Timestamp: not checked, no --tsa-cert given; the token says {} by {}",
            info.gen_time, info.tsa
        )),
        Err(reason) => checks.check("Timestamp", Err(reason)),
    }
}

/// With several keys (a key history), the one the signature names is used.
fn check_signature(envelope: &SignatureEnvelope, keys: &[AuditKey]) -> Result<String, String> {
    let key = signing_key(envelope.signature.key_id, keys, "record")?;
    envelope
        .check_signature(key)
        .map(|id| id.to_string())
        .map_err(|e| e.to_string())
}
