//! `writ-verify signature` on records with an RFC 3161 timestamp: checked with `--tsa-cert`,
//! reported with a warning without it, and failing when the token is not for this signature.

use std::path::{Path, PathBuf};
mod common;

use common::{path_str, writ_verify, write};
use writ_audit_chain::fixtures::{self, test_audit_key, test_signing_key};
use writ_audit_chain::signature_record::{self, SignatureEnvelope, SignatureRecord};
use writ_audit_chain::timestamp::{parse_response, timestamp_request};
use writ_fake_tsa::TsaSigner;

const DOCUMENT: &[u8] = b"%PDF-1.7\nSearch warrant, signed\n%%EOF\n";

fn record(user_agent: &str) -> SignatureRecord {
    SignatureRecord {
        user_agent: user_agent.into(),
        ..fixtures::sample_signature_record(DOCUMENT)
    }
}

fn signed(user_agent: &str) -> SignatureEnvelope {
    let record = record(user_agent);
    let der = fixtures::sign_der(
        &test_signing_key(),
        &signature_record::signing_bytes(&record).unwrap(),
    );
    SignatureEnvelope::assemble(record, test_audit_key().key_id(), 2, &der).unwrap()
}

fn stamp(envelope: &mut SignatureEnvelope, tsa: &TsaSigner) {
    let digest = envelope.timestamp_digest().unwrap();
    let response = tsa.respond(&timestamp_request(&digest, 5), None).unwrap();
    envelope.set_timestamp_token(&parse_response(&response, &digest, 5).unwrap());
}

struct Files {
    _dir: tempfile::TempDir,
    record: PathBuf,
    document: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

fn files(envelope: &SignatureEnvelope) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let record = path.join("signature.json");
    std::fs::write(&record, envelope.to_json()).unwrap();
    let document = path.join("warrant.pdf");
    std::fs::write(&document, DOCUMENT).unwrap();
    let key = path.join("agency.pem");
    std::fs::write(&key, test_audit_key().to_pem()).unwrap();
    Files {
        _dir: dir,
        record,
        document,
        key,
        dir: path,
    }
}

fn run(files: &Files, tsa_certs: &[&Path]) -> (i32, String) {
    let mut args = vec![
        "signature",
        path_str(&files.record),
        "--document",
        path_str(&files.document),
        "--public-key",
        path_str(&files.key),
    ];
    for cert in tsa_certs {
        args.extend(["--tsa-cert", path_str(cert)]);
    }
    let run = writ_verify(&args);
    (run.code, run.out)
}

#[test]
fn a_timestamp_verifies_with_the_trusted_tsa_certificate() {
    let tsa = TsaSigner::new().unwrap();
    let mut envelope = signed("Mozilla/5.0");
    stamp(&mut envelope, &tsa);
    let files = files(&envelope);
    let ca = write(&files.dir, "tsa.pem", tsa.ca_pem());
    let (code, out) = run(&files, &[&ca]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nTimestamp: valid, the signature existed at 20"),
        "{out}"
    );
    assert!(out.contains("CN=Writ Test TSA"), "{out}");
    assert!(out.contains("All checks passed."), "{out}");

    // Several --tsa-cert: the one that vouches for the token is used.
    let other = write(&files.dir, "other.pem", TsaSigner::new().unwrap().ca_pem());
    let (code, out) = run(&files, &[&other, &ca]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn without_a_tsa_certificate_the_timestamp_is_a_warning() {
    let tsa = TsaSigner::new().unwrap();
    let mut envelope = signed("Mozilla/5.0");
    stamp(&mut envelope, &tsa);
    let (code, out) = run(&files(&envelope), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING Timestamp: not checked, no --tsa-cert given; the token says 20"),
        "{out}"
    );
    assert!(out.contains("All checks passed."), "{out}");
}

#[test]
fn a_timestamp_from_another_tsa_or_for_another_signature_fails() {
    let tsa = TsaSigner::new().unwrap();
    let mut envelope = signed("Mozilla/5.0");
    stamp(&mut envelope, &tsa);
    let files_ = files(&envelope);
    let stranger = write(
        &files_.dir,
        "stranger.pem",
        TsaSigner::new().unwrap().ca_pem(),
    );
    let (code, out) = run(&files_, &[&stranger]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED Timestamp: the signer certificate"),
        "{out}"
    );
    assert!(out.contains("is not trusted"), "{out}");

    // The token moved onto another (validly signed) record stamps another signature.
    let mut other = signed("curl/8");
    other.timestamp = envelope.timestamp.clone();
    let files_ = files(&other);
    let ca = write(&files_.dir, "tsa.pem", tsa.ca_pem());
    for certs in [vec![ca.as_path()], vec![]] {
        let (code, out) = run(&files_, &certs);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("FAILED Timestamp: the token stamps another hash"),
            "{out}"
        );
        assert!(out.contains("Agency signature: valid"), "{out}");
    }
}

#[test]
fn a_record_without_a_timestamp_warns_only_when_one_was_asked_for() {
    let tsa = TsaSigner::new().unwrap();
    let files = files(&signed("Mozilla/5.0"));
    let (code, out) = run(&files, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("Timestamp"), "{out}");
    let ca = write(&files.dir, "tsa.pem", tsa.ca_pem());
    let (code, out) = run(&files, &[&ca]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING Timestamp: the record has no timestamp"),
        "{out}"
    );

    let junk = write(&files.dir, "junk.pem", "not a certificate");
    let (code, out) = run(&files, &[&junk]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("junk.pem"), "{out}");
}
