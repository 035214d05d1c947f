//! Evidence certificates: a sample one verifies, read back from its JSON; each kind of
//! tampering fails the check that is about it, and only that one.

use serde_json::Value;
use writ_audit_chain::evidence::sample::{
    self, SampleEvidence, WARRANT_DOC, sample_evidence, sign_evidence,
};
use writ_audit_chain::evidence::{
    EvidenceCertificate, EvidenceError, EvidenceReport, SignedEvidenceCertificate, signing_bytes,
    verify_certificate,
};
use writ_audit_chain::fixtures::{
    audit_key, signing_key_from_byte, test_audit_key, test_signing_key,
};
use writ_audit_chain::signature_record::RecordTimestamp;
use writ_audit_chain::{AuditKey, Hash};

fn keys() -> Vec<AuditKey> {
    vec![test_audit_key()]
}

/// As a verifier receives it: exported, then parsed.
fn exported() -> SignedEvidenceCertificate {
    let SampleEvidence { signed, .. } = sample_evidence();
    SignedEvidenceCertificate::from_json(signed.to_json().as_bytes()).expect("sample parses")
}

/// The sample changed by `edit`, then signed again, so only the edit's own check can fail.
fn resigned(edit: impl FnOnce(&mut EvidenceCertificate)) -> SignedEvidenceCertificate {
    let mut certificate = exported().certificate;
    edit(&mut certificate);
    sign_evidence(certificate, &test_signing_key())
}

fn assert_only_failed(report: &EvidenceReport, expected: &[&str], mentions: &str) {
    assert_eq!(report.failed(), expected, "{report:#?}");
    let message = &report
        .checks()
        .into_iter()
        .find(|(name, _)| *name == expected[0])
        .expect("a named check")
        .1
        .message;
    assert!(message.contains(mentions), "{message}");
}

#[test]
fn a_sample_certificate_verifies_after_export() {
    let signed = exported();
    let report = verify_certificate(&signed, &keys());
    assert!(report.verified(), "{report:#?}");
    assert!(report.failed().is_empty());
    assert!(
        report.audit_entries.message.contains("15 entries"),
        "{report:#?}"
    );
    assert!(report.execution.message.contains("before the deadline"));
    assert!(report.sworn_affidavit.message.contains("version 1"));
    // Several key versions: the one each signature names is used.
    let with_old = vec![audit_key(&signing_key_from_byte(9)), test_audit_key()];
    assert!(verify_certificate(&signed, &with_old).verified());
}

#[test]
fn the_signed_bytes_are_the_canonical_certificate_and_the_hash_ignores_formatting() {
    let signed = exported();
    let bytes = signing_bytes(&signed.certificate).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"affidavitVersions\":"), "{text}");
    assert!(!text.contains('\n'));
    let compact = serde_json::to_vec(&signed).unwrap();
    let again = SignedEvidenceCertificate::from_json(&compact).unwrap();
    assert_eq!(again, signed);
    assert_eq!(again.sha256().unwrap(), signed.sha256().unwrap());
    assert_ne!(
        resigned(|c| c.issued_at = "2026-11-23T15:05:02.250Z".into())
            .sha256()
            .unwrap(),
        signed.sha256().unwrap()
    );
}

#[test]
fn an_edited_member_fails_the_agency_signature_only() {
    let mut signed = exported();
    signed.certificate.warrant.state = "issued".into();
    let report = verify_certificate(&signed, &keys());
    assert_only_failed(
        &report,
        &["Agency signature"],
        "changed after it was signed",
    );

    let mut signed = exported();
    signed.certificate.return_filed = None;
    assert_eq!(
        verify_certificate(&signed, &keys()).failed(),
        ["Agency signature"]
    );
}

#[test]
fn another_key_fails_every_signature_check() {
    let other = vec![audit_key(&signing_key_from_byte(7))];
    let report = verify_certificate(&exported(), &other);
    assert_eq!(
        report.failed(),
        ["Agency signature", "Checkpoint", "Signature records"],
        "{report:#?}"
    );
    assert!(
        report
            .agency_signature
            .message
            .contains("the given public key is key")
    );

    // Signed by another key that claims the agency's key id: the signature fails.
    let forged = {
        let mut c = sign_evidence(exported().certificate, &signing_key_from_byte(7));
        c.signature.key_id = test_audit_key().key_id();
        c
    };
    assert_only_failed(
        &verify_certificate(&forged, &keys()),
        &["Agency signature"],
        "does not verify",
    );
}

#[test]
fn an_entry_not_in_the_tree_fails_the_audit_entries() {
    // The entry is changed and its hash recomputed: it is a consistent entry, just not the one
    // the log holds.
    let signed = resigned(|c| {
        let proven = c
            .audit
            .entries
            .iter_mut()
            .find(|p| p.entry.seq == 27)
            .unwrap();
        proven.entry.detail = serde_json::json!({"note": "executed a day earlier"});
        proven.entry.hash = proven.entry.compute_hash().unwrap();
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Audit entries"],
        "seq 27: inclusion proof",
    );

    // An entry edited without recomputing its hash.
    let signed =
        resigned(|c| c.audit.entries[0].entry.timestamp = "2026-11-23T15:04:00.000Z".into());
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Audit entries"],
        "entry modified",
    );

    // Proofs against another tree size than the checkpoint's.
    let signed = resigned(|c| c.audit.entries[1].inclusion_proof.tree_size = 33);
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Audit entries"],
        "tree size 33",
    );

    // Out of order and duplicated.
    let signed = resigned(|c| {
        let first = c.audit.entries[0].clone();
        c.audit.entries.push(first);
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Audit entries"],
        "increasing seq",
    );

    // An entry about something else.
    let signed = resigned(|c| {
        let entries = &mut c.audit.entries;
        let at = entries.iter().position(|p| p.entry.seq == 20).unwrap();
        entries[at]
            .entry
            .resource
            .insert("documentId".into(), "elsewhere".into());
        entries[at].entry.hash = entries[at].entry.compute_hash().unwrap();
    });
    assert_eq!(
        verify_certificate(&signed, &keys()).failed(),
        ["Audit entries"]
    );
    let report = verify_certificate(&signed, &keys());
    assert!(
        report
            .audit_entries
            .message
            .contains("is about neither warrant")
    );
}

#[test]
fn a_signature_record_about_other_bytes_than_the_listed_document_fails() {
    let signed = resigned(|c| {
        let doc = c
            .documents
            .iter_mut()
            .find(|d| d.id == WARRANT_DOC)
            .unwrap();
        doc.sha256 = Hash::of(b"another warrant").to_hex();
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Signature records"],
        &format!("signs document {WARRANT_DOC} with SHA-256"),
    );

    // A record whose audit reference names another entry's hash.
    let signed = resigned(|c| {
        let audit = c.signatures[0].record.audit.as_mut().unwrap();
        audit.seq = 8;
    });
    let report = verify_certificate(&signed, &keys());
    // The record's own signature breaks too: it was changed after the agency signed it.
    assert_eq!(report.failed(), ["Signature records"], "{report:#?}");
    assert!(
        report
            .signatures
            .message
            .contains("names audit seq 8 with hash")
    );
    assert!(report.signatures.message.contains("agency signature"));
}

#[test]
fn a_broken_timestamp_token_fails_the_signature_records() {
    let signed = resigned(|c| {
        c.signatures[1].timestamp = Some(RecordTimestamp {
            token: "MAA=".into(),
        })
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Signature records"],
        "record 7c1e3a5b-9d2f-4b6a-8c0e-2a4c6e8f0b13: timestamp:",
    );
}

#[test]
fn a_step_naming_a_missing_or_other_entry_fails_the_steps() {
    let signed = resigned(|c| c.steps[0].audit_seq = 9);
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "names audit seq 9, which is not among",
    );
    let signed = resigned(|c| c.steps[0].action = "warrant.approved".into());
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "which records warrant.submitted",
    );
    let signed = resigned(|c| c.steps[1].by = Some(sample::PROSECUTOR.into()));
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "taken by",
    );
    // Leaving out who, or another role or time than the entry's, is caught too.
    let signed = resigned(|c| c.steps[1].by = None);
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "taken by the system",
    );
    let signed = resigned(|c| c.steps[1].role = "judge".into());
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "says role judge",
    );
    let signed = resigned(|c| c.steps[1].at = "2020-01-01T00:00:00.000Z".into());
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Steps"],
        "says 2020-01-01T00:00:00.000Z",
    );
}

#[test]
fn the_checkpoint_must_verify_and_cover_the_stated_tree() {
    let signed = resigned(|c| c.audit.tree_size = 31);
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Checkpoint"],
        "audit.treeSize says 31",
    );
    let signed =
        resigned(|c| c.audit.checkpoint = c.audit.checkpoint.replacen("\n32\n", "\n33\n", 1));
    let report = verify_certificate(&signed, &keys());
    assert!(report.failed().contains(&"Checkpoint"), "{report:#?}");
    let signed = resigned(|c| c.audit.checkpoint = "not a note".into());
    let report = verify_certificate(&signed, &keys());
    assert_eq!(report.failed(), ["Checkpoint", "Audit entries"]);
}

#[test]
fn the_sworn_affidavit_and_the_execution_window_are_checked() {
    let signed = resigned(|c| {
        c.warrant.sworn_affidavit_sha256 = Some(Hash::of(b"another affidavit").to_hex())
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Sworn affidavit"],
        "which no listed affidavit version has",
    );
    let signed = resigned(|c| {
        if let Some(e) = c.execution.as_mut() {
            e.deadline = Some("2026-11-23T15:04:10.000Z".into());
        }
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Execution window"],
        "withinDeadline is true",
    );
    let signed = resigned(|c| {
        if let Some(e) = c.execution.as_mut() {
            e.executed_at = None;
        }
    });
    assert_only_failed(
        &verify_certificate(&signed, &keys()),
        &["Execution window"],
        "not executed",
    );
}

/// The issued document is tied to the chain and to the judge who signed: another document's
/// hash, or a signature record by someone else, fails check (i) alone.
#[test]
fn the_issued_document_is_the_one_the_issue_recorded_and_the_judge_signed() {
    let report = verify_certificate(&exported(), &keys());
    assert!(
        report.issued_document.message.contains("seq 22"),
        "{report:#?}"
    );
    let other = resigned(|c| {
        c.warrant.issued_document_sha256 = Some(Hash::of(b"another warrant").to_hex());
    });
    assert_only_failed(
        &verify_certificate(&other, &keys()),
        &["Issued document"],
        "no included warrant.approved entry",
    );
    // The judge's record re-attributed to the affiant (and re-signed as if genuine).
    let sk = test_signing_key();
    let forged = resigned(|c| {
        let judge = c
            .signatures
            .iter_mut()
            .find(|s| s.record.document.id == WARRANT_DOC)
            .expect("the judge's record");
        judge.record.signer.user_id = sample::OFFICER.to_owned();
        judge.record.signer.role = "officer".to_owned();
        *judge = sample::sign_record(judge.record.clone(), &sk);
    });
    let report = verify_certificate(&forged, &keys());
    assert!(report.failed().contains(&"Issued document"), "{report:#?}");
    assert!(
        report
            .issued_document
            .message
            .contains("the issue's entry (seq 22) by"),
        "{report:#?}"
    );
    // Not issued: nothing to tie.
    let unissued = resigned(|c| c.warrant.issued_document_sha256 = None);
    assert_eq!(
        verify_certificate(&unissued, &keys())
            .issued_document
            .message,
        "not issued"
    );
}

#[test]
fn form_problems_are_reported() {
    let signed = resigned(|c| {
        c.issued_at = "2026-11-23 15:05".into();
        c.documents[1].sha256 = "ABC".into();
        c.certificate_id = String::new();
    });
    let report = verify_certificate(&signed, &keys());
    assert_eq!(report.failed(), ["Certificate form"]);
    for part in ["issuedAt", "documents[1].sha256", "certificateId is empty"] {
        assert!(
            report.form.message.contains(part),
            "{}",
            report.form.message
        );
    }
}

#[test]
fn only_the_one_form_of_the_json_is_accepted() {
    let json = sample_evidence().signed.to_json();
    let mut value: Value = serde_json::from_str(&json).unwrap();
    value["certificate"]["format"] = "writ.evidence.v2".into();
    assert_eq!(
        SignedEvidenceCertificate::from_json(value.to_string().as_bytes()),
        Err(EvidenceError::UnknownFormat("writ.evidence.v2".into()))
    );
    value["certificate"]
        .as_object_mut()
        .unwrap()
        .remove("format");
    assert_eq!(
        SignedEvidenceCertificate::from_json(value.to_string().as_bytes()),
        Err(EvidenceError::MissingFormat)
    );

    // A member named twice: the last would win in a parser that keeps one, and the file would
    // verify while saying something else first. Refused.
    let doubled = json.replacen("\"state\":", "\"state\": \"rejected\", \"state\":", 1);
    assert_ne!(doubled, json);
    match SignedEvidenceCertificate::from_json(doubled.as_bytes()) {
        Err(EvidenceError::Json(m)) => assert!(m.contains("appears twice"), "{m}"),
        other => panic!("{other:?}"),
    }

    let mut value: Value = serde_json::from_str(&json).unwrap();
    value["certificate"]["warrant"]["extra"] = "x".into();
    assert!(matches!(
        SignedEvidenceCertificate::from_json(value.to_string().as_bytes()),
        Err(EvidenceError::Json(_))
    ));

    let mut value: Value = serde_json::from_str(&json).unwrap();
    value["certificate"]["warrant"]["parentWarrantId"] = Value::Null;
    assert!(matches!(
        SignedEvidenceCertificate::from_json(value.to_string().as_bytes()),
        Err(EvidenceError::Malformed(_))
    ));

    for bad in [
        &b""[..],
        b"[]",
        b"{\"certificate\": 1}",
        b"\xff",
        b"{\"signature\":{}}",
    ] {
        assert!(SignedEvidenceCertificate::from_json(bad).is_err());
    }
}
