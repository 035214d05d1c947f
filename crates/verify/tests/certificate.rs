//! Runs the real `writ-verify certificate` on a sample evidence certificate, intact, tampered
//! and with the documents it lists.

use std::path::Path;

mod common;

use common::{Run, path_str, writ_verify, write};
use writ_audit_chain::evidence::SignedEvidenceCertificate;
use writ_audit_chain::evidence::sample::{WARRANT_DOC, sample_evidence, sign_evidence};
use writ_audit_chain::fixtures::{
    audit_key, signing_key_from_byte, test_audit_key, test_signing_key,
};

fn verify(certificate: &Path, key: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "certificate",
        path_str(certificate),
        "--public-key",
        path_str(key),
    ];
    args.extend_from_slice(extra);
    writ_verify(&args)
}

fn assert_mentions(run: &Run, expected: &[&str]) {
    for e in expected {
        assert!(run.out.contains(e), "missing {e:?} in:\n{}", run.out);
    }
}

#[test]
fn a_valid_certificate_verifies_with_its_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = sample_evidence();
    let cert = write(
        dir.path(),
        "certificate.json",
        sample.signed.to_json().as_bytes(),
    );
    let key = write(
        dir.path(),
        "agency.pem",
        test_audit_key().to_pem().as_bytes(),
    );
    let mut docs = Vec::new();
    for (i, (_, bytes)) in sample.documents.iter().enumerate() {
        docs.push(write(dir.path(), &format!("doc{i}"), bytes));
    }
    // The service copy's issued-warrant.json is checked like a listed document.
    docs.push(write(
        dir.path(),
        "issued-warrant.json",
        &sample.issued_document,
    ));
    let mut extra = Vec::new();
    for d in &docs {
        extra.extend(["--document", path_str(d)]);
    }
    let run = verify(&cert, &key, &extra);
    assert_eq!(run.code, 0, "{}", run.out);
    let c = &sample.signed.certificate;
    let mut expected = vec![
        "Warrant W-2026-000847",
        "court d-minn, state returned",
        "warrant.approved by c3a1e5f7",
        "Hon. Zofia Łukasiewicz (judge, J-20431",
        "execute before 2026-12-08T06:00:00.000Z",
        "within the deadline",
        "Return: inventory",
        "checkpoint of tree size 32",
        "Certificate form: valid",
        "Agency signature: valid (key id",
        "Checkpoint: valid",
        "Audit entries: 15 entries",
        "Steps: 8 steps",
        "Signature records: 2 signature records",
        "Sworn affidavit: version 1",
        "Execution window: executed",
        "is what the issue's entry (seq 22) records, issued by the judge who signed",
        "is warrant document d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c",
        "is the issued warrant W-2026-000847 (warrant.issuedDocumentSha256)",
        "All checks passed.",
    ];
    for d in &c.documents {
        expected.push(&d.sha256);
    }
    assert_mentions(&run, &expected);
}

#[test]
fn a_tampered_certificate_fails_naming_the_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write(
        dir.path(),
        "agency.pem",
        test_audit_key().to_pem().as_bytes(),
    );

    // Edited after signing: the agency signature.
    let json = sample_evidence().signed.to_json();
    let edited = json.replacen("\"state\": \"returned\"", "\"state\": \"issued\"", 1);
    assert_ne!(edited, json);
    let cert = write(dir.path(), "edited.json", edited.as_bytes());
    let run = verify(&cert, &key, &[]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "FAILED Agency signature:",
            "Steps: 8 steps",
            "Verification FAILED.",
        ],
    );

    // Re-signed, but a step names an entry that is not there: the steps.
    let mut c = sample_evidence().signed.certificate;
    c.steps[2].audit_seq = 12;
    let cert = write(
        dir.path(),
        "steps.json",
        sign_evidence(c, &test_signing_key()).to_json().as_bytes(),
    );
    let run = verify(&cert, &key, &[]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "Agency signature: valid",
            "FAILED Steps: step warrant.queued names audit seq 12",
        ],
    );

    // A document that is not the listed one.
    let sample = sample_evidence();
    let cert = write(dir.path(), "ok.json", sample.signed.to_json().as_bytes());
    let mut changed = sample.documents[2].1.clone();
    changed.push(b' ');
    let doc = write(dir.path(), "warrant.json", &changed);
    let run = verify(&cert, &key, &["--document", path_str(&doc)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "FAILED Document",
            "is not one of the certificate's documents",
        ],
    );
    assert!(sample.signed.certificate.documents[2].id == WARRANT_DOC);
}

#[test]
fn another_key_or_unusable_input_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write(
        dir.path(),
        "certificate.json",
        sample_evidence().signed.to_json().as_bytes(),
    );
    let other = write(
        dir.path(),
        "other.pem",
        audit_key(&signing_key_from_byte(5)).to_pem().as_bytes(),
    );
    let run = verify(&cert, &other, &[]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "FAILED Agency signature",
            "FAILED Checkpoint",
            "FAILED Signature records",
        ],
    );

    let key = write(
        dir.path(),
        "agency.pem",
        test_audit_key().to_pem().as_bytes(),
    );
    for (name, bytes) in [
        ("empty.json", &b""[..]),
        ("garbage.json", b"\xff\xfe"),
        (
            "other.json",
            b"{\"certificate\":{\"format\":\"writ.evidence.v9\"}}",
        ),
    ] {
        let path = write(dir.path(), name, bytes);
        let run = verify(&path, &key, &[]);
        assert_eq!(run.code, 1, "{name}: {}", run.out);
        assert_mentions(&run, &["FAILED", "Verification FAILED."]);
    }
    let run = verify(&dir.path().join("missing.json"), &key, &[]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(&run, &["cannot open"]);

    // Usage: no key.
    let run = writ_verify(&["certificate", path_str(&cert)]);
    assert_eq!(run.code, 2, "{}", run.out);
    // The JSON the tool reads is the one the server writes.
    let parsed =
        SignedEvidenceCertificate::from_json(&std::fs::read(&cert).expect("read certificate"));
    assert!(parsed.is_ok());
}

/// The sample with the judge's signature timestamped by `tsa`, the certificate signed again.
fn stamped(tsa: &writ_fake_tsa::TsaSigner) -> SignedEvidenceCertificate {
    let mut c = sample_evidence().signed.certificate;
    let envelope = &mut c.signatures[1];
    let digest = envelope.timestamp_digest().expect("digest");
    let token = tsa.token(&digest, None).expect("token");
    envelope.set_timestamp_token(&token);
    sign_evidence(c, &test_signing_key())
}

#[test]
fn timestamps_are_checked_with_a_trusted_tsa_and_reported_without() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = write(
        dir.path(),
        "agency.pem",
        test_audit_key().to_pem().as_bytes(),
    );
    let tsa = writ_fake_tsa::TsaSigner::new().expect("tsa");
    let cert = write(
        dir.path(),
        "stamped.json",
        stamped(&tsa).to_json().as_bytes(),
    );
    let ca = write(dir.path(), "tsa.pem", tsa.ca_pem().as_bytes());

    let run = verify(&cert, &key, &["--tsa-cert", path_str(&ca)]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "RFC 3161 timestamp 20",
            "(1 with an intact RFC 3161 timestamp token)",
            "Timestamps: valid: record 7c1e3a5b-9d2f-4b6a-8c0e-2a4c6e8f0b13 existed at 20",
        ],
    );

    let run = verify(&cert, &key, &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_mentions(
        &run,
        &["WARNING Timestamps: not checked, no --tsa-cert given"],
    );

    let other = writ_fake_tsa::TsaSigner::new().expect("tsa");
    let other_ca = write(dir.path(), "other-tsa.pem", other.ca_pem().as_bytes());
    let run = verify(&cert, &key, &["--tsa-cert", path_str(&other_ca)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(&run, &["FAILED Timestamps: record 7c1e3a5b"]);

    // Without any timestamp, asking for them warns.
    let plain = write(
        dir.path(),
        "plain.json",
        sample_evidence().signed.to_json().as_bytes(),
    );
    let run = verify(&plain, &key, &["--tsa-cert", path_str(&ca)]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_mentions(
        &run,
        &["WARNING Timestamps: no signature record has a timestamp"],
    );
}
