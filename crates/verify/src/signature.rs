//! `writ-verify signature`: an e-signature record against the document and the agency key.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use writ_audit_chain::AuditKey;
use writ_audit_chain::signature_record::{DocumentHasher, SignatureEnvelope};

use crate::Outcome;
use crate::checks::Checks;
use crate::input::{load_keys, progress_bar, read_small_file};

pub fn run(record_path: &Path, document_path: &Path, key_paths: &[PathBuf]) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let envelope = SignatureEnvelope::from_json(&read_small_file(record_path)?)
            .map_err(|e| format!("{}: {e}", record_path.display()))?;
        Ok::<_, String>((keys, envelope))
    })();
    let (keys, envelope) = match inputs {
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
    let document = hash_document(document_path).and_then(|(sha256, size)| {
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
    checks.finish()
}

/// With several keys (a key history), the one the signature names is used.
fn check_signature(envelope: &SignatureEnvelope, keys: &[AuditKey]) -> Result<String, String> {
    let signed_by = envelope.signature.key_id;
    let Some(key) = keys.iter().find(|k| k.key_id() == signed_by) else {
        let given: Vec<String> = keys.iter().map(|k| k.key_id().to_string()).collect();
        let given = match given.as_slice() {
            [one] => format!("the given public key is key {one}"),
            many => format!("the given public keys are {}", many.join(", ")),
        };
        return Err(format!("the record is signed by key {signed_by}, {given}"));
    };
    envelope
        .check_signature(key)
        .map(|id| id.to_string())
        .map_err(|e| e.to_string())
}

/// Streams the document through SHA-256: signed documents can be far larger than the records.
fn hash_document(path: &Path) -> Result<(writ_audit_chain::Hash, u64), String> {
    let what = path.display();
    let mut file = File::open(path).map_err(|e| format!("cannot open {what}: {e}"))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(total, "Hashing document");
    let mut hasher = DocumentHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {what}: {e}")),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hasher.finish())
}
