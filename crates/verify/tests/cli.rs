//! Runs the real `writ-verify` binary on bundles and proofs made with the same code as the
//! server, intact and tampered.

use std::path::{Path, PathBuf};

mod common;

use common::{Run, path_str, writ_verify};
use flate2::Compression;
use flate2::write::GzEncoder;
use writ_audit_chain::fixtures::{
    self, BundleSpec, SampleBundle, TEST_ORIGIN, sample_bundle, sample_entries,
    signing_key_from_byte, test_audit_key, test_signing_key,
};
use writ_audit_chain::signature_record::{
    self, AuditReference, SignatureEnvelope, SignatureRecord,
};
use writ_audit_chain::{Checkpoint, ConsistencyProof, Entry, Hash, InclusionProof, merkle};

fn write_key(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write key");
    path
}

fn trusted_key(dir: &Path) -> PathBuf {
    write_key(dir, "agency.pem", &test_audit_key().to_pem())
}

fn write_dir(dir: &Path, b: &SampleBundle) {
    std::fs::create_dir_all(dir.join("keys")).expect("mkdir");
    std::fs::write(dir.join("log.jsonl"), &b.log).expect("write");
    std::fs::write(dir.join("certificate.json"), &b.certificate).expect("write");
    std::fs::write(dir.join("checkpoint"), &b.checkpoint).expect("write");
    if let Some(statement) = &b.minimum_index {
        std::fs::write(dir.join("minimum-index"), statement).expect("write");
    }
    for (name, pem) in &b.keys {
        std::fs::write(dir.join("keys").join(name), pem).expect("write");
    }
}

/// Archive members in the given order, optionally under a top-level folder.
fn tar_bytes(b: &SampleBundle, log_first: bool, prefix: &str) -> Vec<u8> {
    let mut members: Vec<(String, Vec<u8>)> = vec![
        ("certificate.json".into(), b.certificate.clone()),
        ("checkpoint".into(), b.checkpoint.clone().into_bytes()),
    ];
    if let Some(statement) = &b.minimum_index {
        members.push(("minimum-index".into(), statement.clone().into_bytes()));
    }
    for (name, pem) in &b.keys {
        members.push((format!("keys/{name}"), pem.clone().into_bytes()));
    }
    let log = ("log.jsonl".to_owned(), b.log.clone());
    if log_first {
        members.insert(0, log);
    } else {
        members.push(log);
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{prefix}{name}"), data.as_slice())
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn ten() -> SampleBundle {
    sample_bundle(&BundleSpec::full(10))
}

fn edit_line(b: &mut SampleBundle, index: usize, from: &str, to: &str) {
    let text = String::from_utf8(b.log.clone()).expect("utf-8 log");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines[index].contains(from));
    lines[index] = lines[index].replacen(from, to, 1);
    b.log = format!("{}\n", lines.join("\n")).into_bytes();
}

#[test]
fn good_bundle_directory_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bundle");
    write_dir(&dir, &ten());
    let key = trusted_key(tmp.path());
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 0, "{}", run.out);
    let id = test_audit_key().key_id().to_string();
    for expected in [
        "Results requested for seq 1 to 10",
        "Results found for seq 1 to 10:",
        "10/10 entries valid",
        "Checkpoint: tree size 10, signed 2026-11-24T09:00:00.000Z",
        &format!("Checkpoint signature: valid (key id {id})"),
        &format!("Certificate signature: valid (key id {id})"),
        "All checks passed.",
    ] {
        assert!(
            run.out.contains(expected),
            "missing {expected:?} in:\n{}",
            run.out
        );
    }
}

#[test]
fn good_bundle_archives_verify_in_any_member_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());
    let b = ten();
    for (name, bytes) in [
        ("bundle.tar.gz", gzip(&tar_bytes(&b, false, ""))),
        (
            "log-first.tar.gz",
            gzip(&tar_bytes(&b, true, "export-2026-11-24/")),
        ),
        ("plain.tar", tar_bytes(&b, true, "./")),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let run = writ_verify(&["bundle", path_str(&path), "--public-key", path_str(&key)]);
        assert_eq!(run.code, 0, "{name}: {}", run.out);
        assert!(
            run.out.contains("10/10 entries valid"),
            "{name}: {}",
            run.out
        );
    }
}

#[test]
fn a_pruned_log_verifies_with_its_minimum_index_and_a_cut_head_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());
    let b = sample_bundle(&BundleSpec::pruned(10, 4));
    let dir = tmp.path().join("pruned");
    write_dir(&dir, &b);
    let archive = tmp.path().join("pruned.tar.gz");
    std::fs::write(&archive, gzip(&tar_bytes(&b, false, "export/"))).expect("write");
    let id = test_audit_key().key_id().to_string();
    for path in [&dir, &archive] {
        let run = writ_verify(&["bundle", path_str(path), "--public-key", path_str(&key)]);
        assert_eq!(run.code, 0, "{}", run.out);
        for expected in [
            "Results requested for seq 1 to 10",
            "Results found for seq 4 to 10:",
            "7/7 entries valid",
            "Minimum index: seq 4 (entries before it pruned)",
            &format!("Minimum-index signature: valid (key id {id})"),
        ] {
            assert!(
                run.out.contains(expected),
                "missing {expected:?} in:\n{}",
                run.out
            );
        }
    }

    // The statement file removed: reported, and the certificate still explains the head.
    std::fs::remove_file(dir.join("minimum-index")).expect("rm");
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out.contains("bundle has no minimum-index"),
        "{}",
        run.out
    );

    // A statement signed by a key the auditor does not trust: the head is unexplained.
    let mut cert = writ_audit_chain::Certificate::from_json(&b.certificate).expect("cert");
    let statement = writ_audit_chain::SignedNote::parse(b.minimum_index.as_deref().expect("stmt"))
        .expect("note")
        .minimum_index()
        .expect("statement");
    let forged = fixtures::signed_minimum_index(&statement, &[&signing_key_from_byte(9)]).to_text();
    cert.minimum_index = Some(forged.clone());
    let forged_bundle = SampleBundle {
        certificate: fixtures::sign_certificate(cert, &test_signing_key())
            .to_json()
            .into_bytes(),
        minimum_index: Some(forged),
        ..b.clone()
    };
    let forged_dir = tmp.path().join("forged");
    write_dir(&forged_dir, &forged_bundle);
    let run = writ_verify(&[
        "bundle",
        path_str(&forged_dir),
        "--public-key",
        path_str(&key),
    ]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out.contains("Minimum-index signature: INVALID"),
        "{}",
        run.out
    );
    assert!(run.out.contains("first bad seq 1"), "{}", run.out);
}

#[test]
fn edited_entry_in_a_directory_names_its_seq() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bundle");
    let mut b = ten();
    edit_line(
        &mut b,
        3,
        "\"outcome\":\"success\"",
        "\"outcome\":\"partial\"",
    );
    write_dir(&dir, &b);
    let key = trusted_key(tmp.path());
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("9/10 entries valid"), "{}", run.out);
    assert!(
        run.out.contains("FAILED seq 4: entry hash mismatch"),
        "{}",
        run.out
    );
    assert!(run.out.contains("first bad seq 4."), "{}", run.out);
}

#[test]
fn deleted_entry_in_an_archive_names_its_seq() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut b = ten();
    let text = String::from_utf8(b.log.clone()).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(4);
    b.log = format!("{}\n", lines.join("\n")).into_bytes();
    let path = tmp.path().join("bundle.tar.gz");
    std::fs::write(&path, gzip(&tar_bytes(&b, false, ""))).expect("write");
    let key = trusted_key(tmp.path());
    let run = writ_verify(&["bundle", path_str(&path), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out
            .contains("FAILED seq 5: expected seq 5, found seq 6"),
        "{}",
        run.out
    );
    assert!(run.out.contains("first bad seq 5."), "{}", run.out);
}

#[test]
fn truncated_tail_and_forged_append_are_caught() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());

    let mut truncated = ten();
    let text = String::from_utf8(truncated.log.clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().take(7).collect();
    truncated.log = format!("{}\n", lines.join("\n")).into_bytes();
    let dir = tmp.path().join("truncated");
    write_dir(&dir, &truncated);
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out.contains("Results found for seq 1 to 7:"),
        "{}",
        run.out
    );
    assert!(run.out.contains("first bad seq 8."), "{}", run.out);

    let mut appended = ten();
    let last = Entry::from_json(appended.log.split(|b| *b == b'\n').nth(9).expect("line 10"))
        .expect("entry");
    let forged = fixtures::sample_event(fixtures::TEST_AGENCY_ID, 11)
        .seal(11, last.hash)
        .expect("seal");
    appended.log.extend(forged.to_line().expect("line"));
    let dir = tmp.path().join("appended");
    write_dir(&dir, &appended);
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out
            .contains("FAILED seq 11: entry is outside the certified range"),
        "{}",
        run.out
    );
}

#[test]
fn wrong_public_key_fails_both_signatures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bundle");
    write_dir(&dir, &ten());
    let other = write_key(
        tmp.path(),
        "other.pem",
        &fixtures::audit_key(&signing_key_from_byte(7)).to_pem(),
    );
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&other)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out.contains("Certificate signature: INVALID"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("Checkpoint signature: INVALID"),
        "{}",
        run.out
    );
}

#[test]
fn garbage_never_panics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", garbage.clone()),
        ("gzip-garbage", gzip(&garbage)),
        (
            "truncated-gzip",
            gzip(&tar_bytes(&ten(), false, ""))[..300].to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let run = writ_verify(&["bundle", path_str(&path), "--public-key", path_str(&key)]);
        assert_eq!(run.code, 1, "{name}: {}", run.out);
        assert!(!run.out.contains("panicked"), "{name}: {}", run.out);
    }

    // A directory with garbage in every file, and a huge line.
    let dir = tmp.path().join("bad-dir");
    std::fs::create_dir_all(dir.join("keys")).expect("mkdir");
    let mut log = ten().log;
    log.extend(std::iter::repeat_n(b'{', 3 << 20));
    log.extend(b"\nnot json\n");
    std::fs::write(dir.join("log.jsonl"), &log).expect("write");
    std::fs::write(dir.join("certificate.json"), &garbage).expect("write");
    std::fs::write(dir.join("checkpoint"), &garbage[..1000]).expect("write");
    std::fs::write(dir.join("keys").join("k.pem"), &garbage[..500]).expect("write");
    let run = writ_verify(&["bundle", path_str(&dir), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out.contains("12 entries valid") || run.out.contains("/12 entries valid"),
        "{}",
        run.out
    );

    // Missing files.
    let empty = tmp.path().join("empty-dir");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let run = writ_verify(&["bundle", path_str(&empty), "--public-key", path_str(&key)]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("bundle has no log.jsonl"), "{}", run.out);

    // A public key file that is not a key.
    let not_key = write_key(tmp.path(), "not-key.pem", "hello");
    let run = writ_verify(&[
        "bundle",
        path_str(&empty),
        "--public-key",
        path_str(&not_key),
    ]);
    assert_eq!(run.code, 1, "{}", run.out);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(writ_verify(&[]).code, 2);
    assert_eq!(writ_verify(&["bundle", "x"]).code, 2);
    assert_eq!(writ_verify(&["frobnicate"]).code, 2);
}

/// A signed checkpoint of the first `size` sample entries, and their leaves.
fn checkpoint_file(dir: &Path, name: &str, size: u64) -> (PathBuf, Vec<Hash>) {
    checkpoint_file_at(dir, name, size, "2026-11-24T09:00:00.000Z")
}

fn checkpoint_file_at(dir: &Path, name: &str, size: u64, time: &str) -> (PathBuf, Vec<Hash>) {
    let leaves: Vec<Hash> = sample_entries(size).iter().map(Entry::leaf_hash).collect();
    let checkpoint = Checkpoint {
        origin: TEST_ORIGIN.to_owned(),
        size,
        root: merkle::root(&leaves),
        time: time.to_owned(),
    };
    let note = fixtures::signed_checkpoint(&checkpoint, &[&test_signing_key()]);
    let path = dir.join(name);
    std::fs::write(&path, note.to_text()).expect("write");
    (path, leaves)
}

#[test]
fn inclusion_proofs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());
    let (checkpoint, leaves) = checkpoint_file(tmp.path(), "checkpoint", 13);
    let entries = sample_entries(13);
    let proof = InclusionProof {
        seq: 6,
        tree_size: 13,
        leaf_hash: leaves[5],
        proof: merkle::inclusion_proof(&leaves, 5, 13).expect("proof"),
        root_hash: merkle::root(&leaves),
    };
    let proof_path = tmp.path().join("proof.json");
    std::fs::write(&proof_path, proof.to_json()).expect("write");
    let entry_path = tmp.path().join("entry.json");
    std::fs::write(
        &entry_path,
        serde_json::to_vec_pretty(&entries[5]).expect("json"),
    )
    .expect("write");
    let hash = entries[5].hash.to_string();

    for entry_arg in [path_str(&entry_path), hash.as_str()] {
        let run = writ_verify(&[
            "inclusion",
            "--entry",
            entry_arg,
            "--proof",
            path_str(&proof_path),
            "--checkpoint",
            path_str(&checkpoint),
            "--public-key",
            path_str(&key),
        ]);
        assert_eq!(run.code, 0, "{}", run.out);
        assert!(
            run.out.contains("Inclusion proof: valid: seq 6"),
            "{}",
            run.out
        );
    }

    // The same entry with a member named twice (the real value last, so a last-wins parser
    // reads the genuine entry): refused before anything is checked.
    let pretty = String::from_utf8(serde_json::to_vec(&entries[5]).expect("json")).unwrap();
    let doubled = pretty.replacen(
        "\"action\":",
        "\"action\":\"warrant.approved\",\"action\":",
        1,
    );
    assert_ne!(doubled, pretty);
    let doubled_path = tmp.path().join("doubled.json");
    std::fs::write(&doubled_path, doubled).expect("write");
    let run = writ_verify(&[
        "inclusion",
        "--entry",
        path_str(&doubled_path),
        "--proof",
        path_str(&proof_path),
        "--checkpoint",
        path_str(&checkpoint),
        "--public-key",
        path_str(&key),
    ]);
    assert_ne!(run.code, 0, "{}", run.out);
    assert!(run.out.contains("appears twice"), "{}", run.out);

    // Another entry, an edited entry, a checkpoint of another size, an untrusted key.
    let other = entries[6].hash.to_string();
    let mut edited = entries[5].clone();
    edited.action = "warrant.approved".into();
    let edited_path = tmp.path().join("edited.json");
    std::fs::write(&edited_path, serde_json::to_vec(&edited).expect("json")).expect("write");
    let (other_checkpoint, _) = checkpoint_file(tmp.path(), "checkpoint-14", 14);
    let untrusted = write_key(
        tmp.path(),
        "u.pem",
        &fixtures::audit_key(&signing_key_from_byte(4)).to_pem(),
    );
    for (entry_arg, cp, k, expect) in [
        (other.as_str(), &checkpoint, &key, "FAILED Inclusion proof"),
        (
            path_str(&edited_path),
            &checkpoint,
            &key,
            "FAILED Entry hash",
        ),
        (
            hash.as_str(),
            &other_checkpoint,
            &key,
            "FAILED Checkpoint match",
        ),
        (
            hash.as_str(),
            &checkpoint,
            &untrusted,
            "FAILED Checkpoint signature",
        ),
        ("not-a-file-or-hash", &checkpoint, &key, "neither"),
        (hash.as_str(), &proof_path, &key, "FAILED"),
    ] {
        let run = writ_verify(&[
            "inclusion",
            "--entry",
            entry_arg,
            "--proof",
            path_str(&proof_path),
            "--checkpoint",
            path_str(cp),
            "--public-key",
            path_str(k),
        ]);
        assert_eq!(run.code, 1, "{expect}: {}", run.out);
        assert!(run.out.contains(expect), "{expect}: {}", run.out);
    }
}

#[test]
fn consistency_proofs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = trusted_key(tmp.path());
    let (old, _) = checkpoint_file(tmp.path(), "old", 6);
    let (new, leaves) = checkpoint_file(tmp.path(), "new", 21);
    let proof = ConsistencyProof {
        from_size: 6,
        to_size: 21,
        from_root: merkle::root(&leaves[..6]),
        to_root: merkle::root(&leaves),
        proof: merkle::consistency_proof(&leaves, 6, 21).expect("proof"),
    };
    let proof_path = tmp.path().join("consistency.json");
    std::fs::write(&proof_path, proof.to_json()).expect("write");
    let args = |o: &Path, n: &Path, p: &Path| -> Run {
        writ_verify(&[
            "consistency",
            "--proof",
            path_str(p),
            "--old-checkpoint",
            path_str(o),
            "--new-checkpoint",
            path_str(n),
            "--public-key",
            path_str(&key),
        ])
    };
    let run = args(&old, &new, &proof_path);
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.out.contains("Consistency proof: valid"), "{}", run.out);

    let run = args(&new, &old, &proof_path);
    assert_eq!(run.code, 1, "{}", run.out);

    // The smaller tree signed after the larger one: a log rolled back in between.
    let (later, _) = checkpoint_file_at(tmp.path(), "later", 6, "2026-11-24T10:00:00.000Z");
    let run = args(&later, &new, &proof_path);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(
        run.out
            .contains("FAILED Checkpoint times: the old checkpoint was signed at"),
        "{}",
        run.out
    );

    let mut damaged = proof.clone();
    damaged.proof[1] = Hash::of(b"x");
    let damaged_path = tmp.path().join("damaged.json");
    std::fs::write(&damaged_path, damaged.to_json()).expect("write");
    let run = args(&old, &new, &damaged_path);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("FAILED Consistency proof"), "{}", run.out);

    let garbage_path = tmp.path().join("garbage.json");
    std::fs::write(&garbage_path, b"{\"fromSize\": -1}").expect("write");
    let run = args(&old, &new, &garbage_path);
    assert_eq!(run.code, 1, "{}", run.out);
}

// --- writ-verify signature ---

const SIGNED_DOCUMENT: &[u8] = b"%PDF-1.7\nSearch warrant, signed\n%%EOF\n";
const DOCUMENT_ID: &str = "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c";

fn signature_record() -> SignatureRecord {
    SignatureRecord {
        audit: Some(AuditReference {
            seq: 4182,
            entry_hash: Hash::of(b"entry"),
        }),
        ..fixtures::sample_signature_record(SIGNED_DOCUMENT)
    }
}

/// The record signed with the test agency key, its document and the key, written to `dir`.
fn signature_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let record = signature_record();
    let message = signature_record::signing_bytes(&record).expect("canonical");
    let der = fixtures::sign_der(&test_signing_key(), &message);
    let envelope =
        SignatureEnvelope::assemble(record, test_audit_key().key_id(), 2, &der).expect("assemble");
    let record_path = dir.join("signature.json");
    std::fs::write(&record_path, envelope.to_json()).expect("write");
    let document = dir.join("warrant.pdf");
    std::fs::write(&document, SIGNED_DOCUMENT).expect("write");
    (record_path, document, trusted_key(dir))
}

fn verify_signature(record: &Path, document: &Path, key: &Path) -> Run {
    writ_verify(&[
        "signature",
        path_str(record),
        "--document",
        path_str(document),
        "--public-key",
        path_str(key),
    ])
}

fn assert_mentions(run: &Run, expected: &[&str]) {
    for text in expected {
        assert!(run.out.contains(text), "missing {text:?} in:\n{}", run.out);
    }
}

fn edit_record(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    edit(&mut value);
    std::fs::write(path, value.to_string()).expect("write");
}

#[test]
fn a_signature_record_verifies_against_its_document_and_the_agency_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (record, document, key) = signature_files(tmp.path());
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 0, "{}", run.out);
    let id = test_audit_key().key_id().to_string();
    assert_mentions(
        &run,
        &[
            "Signer: Hon. Maria Alvarez (judge, J-20431)",
            "Authentication: password+totp (aal2)",
            "Audit entry: seq 4182",
            "Intent statement: text matches SHA-256",
            &format!(
                "Document: {} is the signed document {DOCUMENT_ID} (SHA-256 {}",
                document.display(),
                Hash::of(SIGNED_DOCUMENT).to_hex()
            ),
            &format!("Agency signature: valid (key id {id}, key version 2)"),
            "All checks passed.",
        ],
    );
}

#[test]
fn a_document_changed_after_signing_fails_naming_the_document() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (record, document, key) = signature_files(tmp.path());
    let mut changed = SIGNED_DOCUMENT.to_vec();
    changed[12] ^= 0x20;
    std::fs::write(&document, &changed).expect("write");
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            &format!(
                "FAILED Document: {}: document {DOCUMENT_ID} is not the signed document",
                document.display()
            ),
            "Agency signature: valid",
            "Verification FAILED.",
        ],
    );
}

#[test]
fn an_edited_record_or_intent_fails_and_says_what() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (record, document, key) = signature_files(tmp.path());
    edit_record(&record, |v| {
        v["record"]["signer"]["name"] = "Someone Else".into()
    });
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "FAILED Agency signature: the signature does not verify",
            "Intent statement: text matches",
        ],
    );

    let (record, document, key) = signature_files(tmp.path());
    edit_record(&record, |v| {
        v["record"]["intent"]["text"] = "I decline.".into()
    });
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[
            "FAILED Intent statement: intent statement does not match its hash",
            "FAILED Agency signature",
        ],
    );
}

#[test]
fn a_signature_checked_with_another_key_fails_naming_both_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (record, document, _) = signature_files(tmp.path());
    let other = fixtures::audit_key(&signing_key_from_byte(0x09));
    let key = write_key(tmp.path(), "other.pem", &other.to_pem());
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &[&format!(
            "FAILED Agency signature: the record is signed by key {}, the given public key is key {}",
            test_audit_key().key_id(),
            other.key_id()
        )],
    );
}

#[test]
fn a_malformed_or_unknown_signature_record_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (record, document, key) = signature_files(tmp.path());
    std::fs::write(&record, "{\"record\": ").expect("write");
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(&run, &["not a signature record", "Verification FAILED."]);

    let (record, document, key) = signature_files(tmp.path());
    edit_record(&record, |v| {
        v["record"]["format"] = "writ.signature.v9".into()
    });
    let run = verify_signature(&record, &document, &key);
    assert_eq!(run.code, 1, "{}", run.out);
    assert_mentions(
        &run,
        &["unknown signature record format \"writ.signature.v9\""],
    );

    let run = writ_verify(&["signature", path_str(&record)]);
    assert_eq!(run.code, 2, "{}", run.out);
}
