//! `writ-verify certificate`: a warrant's evidence certificate against the agency key, and
//! optionally the document files it lists.

use std::path::{Path, PathBuf};

use writ_audit_chain::evidence::{
    EvidenceCertificate, SignedEvidenceCertificate, verify_certificate,
};
use writ_audit_chain::signature_record::SignatureEnvelope;
use writ_audit_chain::timestamp::{TimestampInfo, TsaCertificate, inspect_token};

use crate::Outcome;
use crate::checks::Checks;
use crate::input::{hash_file, load_keys, load_tsa_certs, read_small_file};

pub fn run(
    certificate_path: &Path,
    key_paths: &[PathBuf],
    document_paths: &[PathBuf],
    tsa_cert_paths: &[PathBuf],
) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let tsa_certs = load_tsa_certs(tsa_cert_paths)?;
        let signed = SignedEvidenceCertificate::from_json(&read_small_file(certificate_path)?)
            .map_err(|e| format!("{}: {e}", certificate_path.display()))?;
        Ok::<_, String>((keys, tsa_certs, signed))
    })();
    let (keys, tsa_certs, signed) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => return checks.abort(e),
    };
    describe(&mut checks, &signed);
    checks.info("");
    let report = verify_certificate(&signed, &keys);
    for (name, check) in report.checks() {
        let result = if check.ok {
            Ok(check.message.clone())
        } else {
            Err(check.message.clone())
        };
        checks.check(name, result);
    }
    check_timestamps(&mut checks, &signed.certificate, &tsa_certs);
    for path in document_paths {
        checks.check(
            &format!("Document {}", path.display()),
            check_document(&signed.certificate, path),
        );
    }
    checks.finish()
}

/// What the certificate says, before whether it holds.
fn describe(checks: &mut Checks, signed: &SignedEvidenceCertificate) {
    let c = &signed.certificate;
    let w = &c.warrant;
    checks.info(format!(
        "Evidence certificate {} ({}), issued {}",
        c.certificate_id, c.format, c.issued_at
    ));
    checks.info(format!(
        "Warrant {} ({}): {} ({}), court {}, state {}",
        w.number, w.id, w.type_name, w.type_key, w.court, w.state
    ));
    checks.info(format!("Agency {}, affiant {}", c.agency_id, w.author_id));
    if let Some(parent) = &w.parent_warrant_id {
        checks.info(format!("Parent warrant {parent}"));
    }
    if let Some(sha) = &w.issued_document_sha256 {
        checks.info(format!("Issued document SHA-256 {sha}"));
    }
    checks.info(format!("Documents ({}):", c.documents.len()));
    for d in &c.documents {
        checks.info(format!(
            "  {} {} {} ({}, {} bytes) SHA-256 {}{}",
            d.kind,
            d.id,
            d.filename.as_deref().unwrap_or("(no name)"),
            d.content_type,
            d.size,
            d.sha256,
            d.erased_at
                .as_deref()
                .map(|t| format!(", erased {t}"))
                .unwrap_or_default()
        ));
    }
    for v in &c.affidavit_versions {
        checks.info(format!(
            "Affidavit version {} ({}, {} by {}) SHA-256 {}",
            v.number, v.reason, v.created_at, v.created_by, v.sha256
        ));
    }
    checks.info(format!("Steps ({}):", c.steps.len()));
    for s in &c.steps {
        checks.info(format!(
            "  {} {} by {} ({}), audit seq {}{}",
            s.at,
            s.action,
            s.by.as_deref().unwrap_or("the system"),
            s.role,
            s.audit_seq,
            s.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    for o in &c.oaths {
        let at = o
            .record
            .pointer("/oath/administeredAt")
            .and_then(|v| v.as_str())
            .unwrap_or("(time not recorded)");
        let fact = |pointer: &str| {
            o.record
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or("not recorded")
                .to_owned()
        };
        checks.info(format!(
            "Oath in session {}, administered {at}; affiant identity: {}; judge at {}; \
             recording SHA-256 {}",
            o.session_id,
            fact("/oath/identityMethod"),
            fact("/oath/judgeLocation"),
            fact("/recording/sha256"),
        ));
    }
    checks.info(format!("Signatures ({}):", c.signatures.len()));
    for e in &c.signatures {
        let r = &e.record;
        let a = &r.authentication;
        checks.info(format!(
            "  {}: {} ({}, {}, user {}) signed document {} (SHA-256 {}) at {} from {}",
            r.record_id,
            r.signer.name,
            r.signer.role,
            r.signer.badge_or_judicial_id,
            r.signer.user_id,
            r.document.id,
            r.document.sha256.to_hex(),
            r.signed_at,
            r.source_ip
        ));
        checks.info(format!(
            "    authentication {} ({}), authenticated {}, stepped up {}",
            a.methods.join("+"),
            a.strength,
            a.auth_time,
            a.stepped_up_at
        ));
        if e.timestamp.is_some() {
            let said = match claimed_time(e) {
                Ok(info) => format!("{} by {} (as the token says)", info.gen_time, info.tsa),
                Err(reason) => format!("unreadable: {reason}"),
            };
            checks.info(format!("    RFC 3161 timestamp {said}"));
        }
    }
    match &c.execution {
        Some(e) => checks.info(format!(
            "Execution: issued {}, execute before {}, {}",
            e.issued_at,
            e.deadline.as_deref().unwrap_or("(no deadline)"),
            match (&e.executed_at, e.within_deadline) {
                (Some(at), Some(true)) => format!("executed {at}, within the deadline"),
                (Some(at), Some(false)) => format!("executed {at}, AFTER the deadline"),
                (Some(at), None) => format!("executed {at}"),
                (None, _) => "not executed".to_owned(),
            }
        )),
        None => checks.info("Execution: not issued"),
    }
    if let Some(r) = &c.return_filed {
        checks.info(format!(
            "Return: {} filed {} by {}{}",
            r.kind,
            r.returned_at,
            r.returned_by,
            r.inventory
                .as_ref()
                .map(|items| format!(", {} inventory items", items.len()))
                .unwrap_or_default()
        ));
    }
    checks.info(format!(
        "Audit: {} entries, checkpoint of tree size {}",
        c.audit.entries.len(),
        c.audit.tree_size
    ));
    checks.info(format!(
        "Signed by key {} (version {})",
        signed.signature.key_id, signed.signature.key_version
    ));
}

/// What a record's timestamp token says, without trusting its TSA.
fn claimed_time(envelope: &SignatureEnvelope) -> Result<TimestampInfo, String> {
    envelope
        .timestamp_token()
        .and_then(|token| Ok(inspect_token(&token, &envelope.timestamp_digest()?)?))
        .map_err(|e| e.to_string())
}

/// The records' RFC 3161 timestamps, which are optional. With `--tsa-cert` each must verify
/// against one of them; without, what the tokens say is reported as a warning, since anyone can
/// make a timestamping certificate. (An intact token is already part of "Signature records".)
fn check_timestamps(checks: &mut Checks, cert: &EvidenceCertificate, trusted: &[TsaCertificate]) {
    let stamped: Vec<&SignatureEnvelope> = cert
        .signatures
        .iter()
        .filter(|e| e.timestamp.is_some())
        .collect();
    if stamped.is_empty() {
        if !trusted.is_empty() {
            checks.info("WARNING Timestamps: no signature record has a timestamp");
        }
        return;
    }
    if trusted.is_empty() {
        let said: Vec<String> = stamped
            .iter()
            .filter_map(|e| {
                claimed_time(e).ok().map(|info| {
                    format!(
                        "record {} {} by {}",
                        e.record.record_id, info.gen_time, info.tsa
                    )
                })
            })
            .collect();
        checks.info(format!(
            "WARNING Timestamps: not checked, no --tsa-cert given; the tokens say: {}",
            said.join("; ")
        ));
        return;
    }
    let mut valid = Vec::new();
    let mut problems = Vec::new();
    for e in stamped {
        match e.check_timestamp(trusted) {
            Ok(info) => valid.push(format!(
                "record {} existed at {} (TSA {})",
                e.record.record_id, info.gen_time, info.tsa
            )),
            Err(err) => problems.push(format!("record {}: {err}", e.record.record_id)),
        }
    }
    let result = if problems.is_empty() {
        Ok(format!("valid: {}", valid.join("; ")))
    } else {
        Err(problems.join("; "))
    };
    checks.check("Timestamps", result);
}

/// The file is one of the listed documents (same SHA-256 and size), or the issued warrant.
fn check_document(certificate: &EvidenceCertificate, path: &Path) -> Result<String, String> {
    let (sha256, size) = hash_file(path)?;
    let hex = sha256.to_hex();
    if certificate.warrant.issued_document_sha256.as_deref() == Some(hex.as_str()) {
        return Ok(format!(
            "is the issued warrant {} (warrant.issuedDocumentSha256), SHA-256 {hex}, {size} bytes",
            certificate.warrant.number
        ));
    }
    match certificate
        .documents
        .iter()
        .find(|d| d.sha256 == hex && d.size == size)
    {
        Some(d) => Ok(format!(
            "is {} document {} ({}), SHA-256 {hex}, {size} bytes",
            d.kind,
            d.id,
            d.filename.as_deref().unwrap_or("no name")
        )),
        None => Err(format!(
            "SHA-256 {hex} ({size} bytes) is not one of the certificate's documents, nor the \
             issued warrant"
        )),
    }
}
