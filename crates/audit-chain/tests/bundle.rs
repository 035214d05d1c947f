//! Whole-bundle verification: a good export verifies; every kind of tampering is caught with
//! the right reason and first bad seq.

use writ_audit_chain::fixtures::{
    self, BundleSpec, SampleBundle, SampleLogReader, TEST_AGENCY_ID, sample_bundle, sample_event,
    signing_key_from_byte, test_audit_key, test_signing_key,
};
use writ_audit_chain::{
    AuditKey, BundleReport, Certificate, ChainBreak, Entry, FailureReason, Hash, KeyRecord,
    MinimumIndex, SignatureCheck, verify_bundle,
};

fn verify(bundle: &SampleBundle, trusted: &[AuditKey]) -> BundleReport {
    verify_bundle(bundle.log.as_slice(), &bundle.certificate, trusted).expect("in-memory read")
}

fn lines(log: &[u8]) -> Vec<Vec<u8>> {
    log.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn kinds(report: &BundleReport) -> Vec<&'static str> {
    report.failures.iter().map(|f| f.reason.kind()).collect()
}

fn ten() -> SampleBundle {
    sample_bundle(&BundleSpec::full(10))
}

#[test]
fn a_good_bundle_verifies() {
    let bundle = ten();
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.entries_total, 10);
    assert_eq!(report.entries_valid, 10);
    assert_eq!(report.found_range, report.certified_range);
    assert_eq!(report.first_bad_seq(), None);
    assert_eq!(
        report.certificate_signature,
        SignatureCheck::Valid {
            key_ids: vec![test_audit_key().key_id()]
        }
    );
    assert!(report.checkpoint_signature.is_valid());
    assert!(report.warnings.is_empty());
}

#[test]
fn a_partial_export_recomputes_the_root_from_the_left_frontier() {
    let bundle = sample_bundle(&BundleSpec {
        first_seq: 6,
        last_seq: 13,
        checkpoint_size: 21,
        ..BundleSpec::full(0)
    });
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.entries_total, 8);
    let cert = Certificate::from_json(&bundle.certificate).unwrap();
    assert_eq!(cert.left_frontier.len(), 2); // tree of 5 leaves: subtrees of 4 and 1
    assert!(!cert.checkpoint_consistency.is_empty());

    // A wrong frontier hash gives a root that does not match, even if re-signed.
    let mut forged = cert.clone();
    forged.left_frontier[1] = Hash::of(b"forged");
    let forged = fixtures::sign_certificate(forged, &test_signing_key());
    let report = verify_bundle(
        bundle.log.as_slice(),
        forged.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert_eq!(kinds(&report), vec!["merkle-root-mismatch"]);
}

#[test]
fn key_rotation_both_keys_sign_the_checkpoint() {
    let old = test_signing_key();
    let new = signing_key_from_byte(2);
    let bundle = sample_bundle(&BundleSpec {
        signers: vec![old.clone(), new.clone()],
        ..BundleSpec::full(7)
    });
    // The auditor holds the new key only; the old one is vouched for by the key history.
    let report = verify(&bundle, &[fixtures::audit_key(&new)]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(
        report.checkpoint_signature,
        SignatureCheck::Valid {
            key_ids: vec![
                fixtures::audit_key(&old).key_id(),
                fixtures::audit_key(&new).key_id()
            ]
        }
    );
    // Holding only the old key: the certificate (signed by the new key) is not trusted.
    let report = verify(&bundle, &[fixtures::audit_key(&old)]);
    assert_eq!(report.failures_of("certificate-signature").len(), 1);
}

/// A real rotation: the old key's window ends at the rotation, the first checkpoint after it is
/// co-signed by both (the old key outside its window), and the certificate by the new key.
#[test]
fn the_first_export_after_a_rotation_verifies_with_the_retired_key_co_signing() {
    let old = test_signing_key();
    let new = signing_key_from_byte(2);
    // The old key's window ends at the rotation, the new one's begins there.
    let rotated = |bundle: &SampleBundle| {
        let rotated_at = "2026-11-24T08:00:00.000Z";
        let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
        cert.key_history = vec![
            KeyRecord::new(
                &fixtures::audit_key(&old),
                fixtures::TEST_ORIGIN,
                "2026-01-01T00:00:00.000Z",
                Some(rotated_at),
            ),
            KeyRecord::new(
                &fixtures::audit_key(&new),
                fixtures::TEST_ORIGIN,
                rotated_at,
                None,
            ),
        ];
        fixtures::sign_certificate(cert, &new)
    };
    let bundle = sample_bundle(&BundleSpec {
        signers: vec![old.clone(), new.clone()],
        ..BundleSpec::full(7)
    });
    let cert = rotated(&bundle);
    let report = verify_bundle(
        bundle.log.as_slice(),
        cert.to_json().as_bytes(),
        &[fixtures::audit_key(&new)],
    )
    .unwrap();
    assert!(report.is_valid(), "{:#?}", report.failures);

    // The retired key alone does not make a checkpoint after its window.
    let alone = sample_bundle(&BundleSpec {
        signers: vec![old.clone()],
        ..BundleSpec::full(7)
    });
    let cert = rotated(&alone);
    let report = verify_bundle(
        alone.log.as_slice(),
        cert.to_json().as_bytes(),
        &[fixtures::audit_key(&new)],
    )
    .unwrap();
    assert_eq!(kinds(&report), vec!["checkpoint-signature"]);
    assert!(matches!(
        report.checkpoint_signature,
        SignatureCheck::Invalid { .. }
    ));

    // Nor does a key sign before its window opens.
    let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
    cert.key_history[1].valid_from = "2026-11-24T10:00:00.000Z".into();
    let cert = fixtures::sign_certificate(cert, &new);
    let report = verify_bundle(
        bundle.log.as_slice(),
        cert.to_json().as_bytes(),
        &[fixtures::audit_key(&new)],
    )
    .unwrap();
    assert!(
        report
            .failures_of("checkpoint-signature")
            .iter()
            .any(|f| f.reason.to_string().contains("before its validity window")),
        "{:#?}",
        report.failures
    );
}

#[test]
fn edited_entry_is_a_hash_mismatch_at_its_seq() {
    let mut bundle = ten();
    let mut l = lines(&bundle.log);
    let text = String::from_utf8(l[3].clone()).unwrap();
    assert!(text.contains("\"outcome\":\"success\""));
    l[3] = text
        .replace("\"outcome\":\"success\"", "\"outcome\":\"partial\"")
        .into_bytes();
    bundle.log = join(&l);
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(!report.is_valid());
    assert_eq!(report.first_bad_seq(), Some(4));
    assert_eq!(report.failures[0].reason.kind(), "hash-mismatch");
    assert_eq!(report.entries_valid, 9);
    assert_eq!(kinds(&report), vec!["hash-mismatch", "log-digest-mismatch"]);
}

#[test]
fn edited_and_rehashed_entry_breaks_the_next_link() {
    let mut bundle = ten();
    let mut l = lines(&bundle.log);
    let mut entry = Entry::from_json(&l[3]).unwrap();
    entry.detail = serde_json::json!({"version": 99});
    entry.hash = entry.compute_hash().unwrap();
    l[3] = entry.canonical_json().unwrap();
    bundle.log = join(&l);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(5));
    assert_eq!(
        kinds(&report),
        vec![
            "prev-hash-mismatch",
            "log-digest-mismatch",
            "merkle-root-mismatch"
        ]
    );
}

#[test]
fn deleted_entry_is_a_gap_at_its_seq() {
    let mut bundle = ten();
    let mut l = lines(&bundle.log);
    l.remove(4);
    bundle.log = join(&l);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(5));
    assert_eq!(
        report.failures[0].reason,
        FailureReason::Entry(ChainBreak::SeqGap {
            expected: 5,
            found: 6
        })
    );
    assert_eq!(report.entries_total, 9);
    assert_eq!(report.entries_valid, 8);
    assert_eq!(
        kinds(&report),
        vec!["seq-gap", "log-digest-mismatch", "entry-count-mismatch"]
    );
}

#[test]
fn swapped_entries_are_out_of_order_at_the_first_of_them() {
    let mut bundle = ten();
    let mut l = lines(&bundle.log);
    l.swap(2, 3);
    bundle.log = join(&l);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(3));
    assert_eq!(
        report.failures[0].reason,
        FailureReason::Entry(ChainBreak::SeqOutOfOrder {
            expected: 3,
            found: 4
        })
    );
    assert_eq!(report.failures[1].reason.kind(), "seq-out-of-order");
    assert!(kinds(&report).contains(&"merkle-root-mismatch"));
}

#[test]
fn truncated_tail_is_missing_entries_after_the_last_one_found() {
    let mut bundle = ten();
    let l = lines(&bundle.log);
    bundle.log = join(&l[..8]);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(9));
    assert_eq!(report.entries_valid, 8);
    assert_eq!(
        kinds(&report),
        vec![
            "log-digest-mismatch",
            "entry-count-mismatch",
            "missing-entries"
        ]
    );
}

/// An export whose certificate (re-signed, found range and all) simply stops short of what was
/// asked for and what the checkpoint signs is a truncated tail, not a valid shorter export.
#[test]
fn an_export_short_of_its_requested_range_and_checkpoint_is_a_missing_tail() {
    let bundle = sample_bundle(&BundleSpec {
        last_seq: 3,
        checkpoint_size: 5,
        ..BundleSpec::full(5)
    });
    // Asked for 1..=3: complete.
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    for requested in [Some(5), Some(9)] {
        let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
        cert.requested_range.last_seq = requested;
        let cert = fixtures::sign_certificate(cert, &test_signing_key());
        let report = verify_bundle(
            bundle.log.as_slice(),
            cert.to_json().as_bytes(),
            &[test_audit_key()],
        )
        .unwrap();
        assert_eq!(kinds(&report), vec!["missing-tail"], "{requested:?}");
        assert_eq!(report.first_bad_seq(), Some(4));
        assert!(
            report.failures[0]
                .reason
                .to_string()
                .contains("runs to seq 5"),
            "{:#?}",
            report.failures
        );
    }
    // Asked for to the end: the checkpoint may have grown while the export was made (exports
    // made before the server stopped at the checkpoint's size).
    let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
    cert.requested_range.last_seq = None;
    let cert = fixtures::sign_certificate(cert, &test_signing_key());
    let report = verify_bundle(
        bundle.log.as_slice(),
        cert.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(report.is_valid(), "{:#?}", report.failures);
}

#[test]
fn a_line_cut_short_is_malformed_and_reported() {
    let mut bundle = ten();
    let cut = bundle.log.len() - 40;
    bundle.log.truncate(cut);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(10));
    assert_eq!(report.failures[0].reason.kind(), "malformed");
    assert!(kinds(&report).contains(&"missing-final-newline"));
}

#[test]
fn appended_forged_entry_is_outside_the_certified_range() {
    let mut bundle = ten();
    let l = lines(&bundle.log);
    let last = Entry::from_json(l.last().unwrap()).unwrap();
    // Correctly hashed and chained: only the certificate can tell it does not belong.
    let forged = sample_event(TEST_AGENCY_ID, 11)
        .seal(11, last.hash)
        .unwrap();
    bundle.log.extend(forged.to_line().unwrap());
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(11));
    assert_eq!(report.entries_valid, 10);
    assert_eq!(
        kinds(&report),
        vec![
            "outside-certified-range",
            "log-digest-mismatch",
            "entry-count-mismatch"
        ]
    );
}

#[test]
fn entry_of_another_agency_is_reported() {
    let mut bundle = ten();
    let mut l = lines(&bundle.log);
    let text = String::from_utf8(l[1].clone()).unwrap();
    l[1] = text.replace(TEST_AGENCY_ID, "another-agency").into_bytes();
    bundle.log = join(&l);
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(report.first_bad_seq(), Some(2));
    assert_eq!(report.failures[0].reason.kind(), "wrong-agency");
}

#[test]
fn replaced_public_key_in_key_history_fails_the_certificate_signature() {
    let bundle = ten();
    let attacker = signing_key_from_byte(9);
    let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
    cert.key_history = vec![KeyRecord::new(
        &fixtures::audit_key(&attacker),
        fixtures::TEST_ORIGIN,
        fixtures::TEST_KEY_VALID_FROM,
        None,
    )];
    // Not re-signed: the signature no longer matches.
    let unsigned_edit = cert.clone();
    let report = verify_bundle(
        bundle.log.as_slice(),
        unsigned_edit.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(matches!(
        report.certificate_signature,
        SignatureCheck::Invalid { .. }
    ));
    assert_eq!(kinds(&report)[0], "certificate-signature");
    assert!(!report.is_valid());

    // Re-signed by the attacker: signed by a key the auditor does not trust.
    let resigned = fixtures::sign_certificate(cert, &attacker);
    let report = verify_bundle(
        bundle.log.as_slice(),
        resigned.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert_eq!(
        report.certificate_signature,
        SignatureCheck::Invalid {
            key_id: Some(fixtures::audit_key(&attacker).key_id()),
            reason: format!(
                "certificate is signed by key {}, which is not a trusted key",
                fixtures::audit_key(&attacker).key_id()
            ),
        }
    );
    assert!(!report.is_valid());
}

#[test]
fn replaced_key_file_in_the_bundle_is_reported() {
    let bundle = ten();
    let mut verifier =
        writ_audit_chain::BundleVerifier::new(&bundle.certificate, &[test_audit_key()]);
    verifier.update(&bundle.log);
    verifier.check_checkpoint_file(bundle.checkpoint.as_bytes());
    let attacker_pem = fixtures::audit_key(&signing_key_from_byte(9)).to_pem();
    verifier.check_key_file(&bundle.keys[0].0, attacker_pem.as_bytes());
    verifier.check_key_file("garbage.pem", b"not a key");
    let report = verifier.finish();
    assert_eq!(kinds(&report), vec!["key-file", "key-file"]);
}

#[test]
fn certificate_re_signed_with_another_key_is_untrusted() {
    let bundle = ten();
    let other = signing_key_from_byte(3);
    let cert = Certificate::from_json(&bundle.certificate).unwrap();
    let resigned = fixtures::sign_certificate(cert, &other);
    let report = verify_bundle(
        bundle.log.as_slice(),
        resigned.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(!report.certificate_signature.is_valid());
    assert_eq!(kinds(&report), vec!["certificate-signature"]);
    // Trusting that other key instead: the signature verifies, but the key is not in the
    // certificate's own key history.
    let report = verify_bundle(
        bundle.log.as_slice(),
        resigned.to_json().as_bytes(),
        &[fixtures::audit_key(&other)],
    )
    .unwrap();
    assert!(report.certificate_signature.is_valid());
    assert_eq!(kinds(&report), vec!["key-history"]);
}

#[test]
fn edited_certificate_counts_fail_the_signature() {
    let bundle = ten();
    let text = String::from_utf8(bundle.certificate.clone()).unwrap();
    assert!(text.contains("\"entryCount\": 10"));
    let edited = text.replace("\"entryCount\": 10", "\"entryCount\": 9");
    let report = verify_bundle(
        bundle.log.as_slice(),
        edited.as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(matches!(
        report.certificate_signature,
        SignatureCheck::Invalid { .. }
    ));
    assert_eq!(
        kinds(&report),
        vec![
            "certificate-signature",
            "certificate",
            "entry-count-mismatch"
        ]
    );
}

#[test]
fn unknown_members_in_the_certificate_are_signed_over_and_refused() {
    let bundle = ten();
    let mut value: serde_json::Value = serde_json::from_slice(&bundle.certificate).unwrap();
    value["note"] = serde_json::json!("added later");
    let report = verify_bundle(
        bundle.log.as_slice(),
        value.to_string().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert_eq!(kinds(&report), vec!["certificate-signature", "certificate"]);
}

#[test]
fn stale_checkpoint_is_a_warning() {
    let bundle = sample_bundle(&BundleSpec {
        checkpoint_time: "2026-11-24T06:00:00.000Z".into(),
        ..BundleSpec::full(5)
    });
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.warnings.len(), 1);
}

#[test]
fn checkpoint_signed_after_the_certificate_is_refused() {
    let bundle = sample_bundle(&BundleSpec {
        checkpoint_time: "2026-11-25T00:00:00.000Z".into(),
        ..BundleSpec::full(5)
    });
    let report = verify(&bundle, &[test_audit_key()]);
    assert_eq!(kinds(&report), vec!["checkpoint"]);
}

#[test]
fn checkpoint_by_a_retired_key_is_refused() {
    let bundle = ten();
    let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
    let old = fixtures::audit_key(&signing_key_from_byte(5));
    cert.key_history[0].valid_to = Some("2026-06-01T00:00:00.000Z".into());
    cert.key_history.push(KeyRecord::new(
        &old,
        fixtures::TEST_ORIGIN,
        "2026-06-01T00:00:00.000Z",
        None,
    ));
    let cert = fixtures::sign_certificate(cert, &test_signing_key());
    let report = verify_bundle(
        bundle.log.as_slice(),
        cert.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    // The test key signed both the checkpoint and the certificate after its validTo.
    assert_eq!(kinds(&report), vec!["key-history", "checkpoint-signature"]);
}

#[test]
fn garbage_inputs_are_failures_not_panics() {
    let bundle = ten();
    let key = test_audit_key();
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (log, cert) in [
        (&b""[..], &bundle.certificate[..]),
        (&garbage[..], &bundle.certificate[..]),
        (&bundle.log[..], &garbage[..]),
        (&garbage[..], &garbage[..]),
        (&b"\n\n\n"[..], &b"{}"[..]),
        (&b"{}\n[]\nnull\n"[..], &b"null"[..]),
        (&bundle.log[..], &b"{\"signature\":{\"keyId\":\"zz\"}}"[..]),
    ] {
        let report = verify_bundle(log, cert, std::slice::from_ref(&key)).unwrap();
        assert!(!report.is_valid());
    }
    // A single huge line is dropped without being held, and reported.
    let mut huge = bundle.log.clone();
    huge.extend(std::iter::repeat_n(b'x', 3 << 20));
    huge.push(b'\n');
    let report = verify_bundle(huge.as_slice(), &bundle.certificate, &[key]).unwrap();
    assert_eq!(report.first_bad_seq(), Some(11));
    assert_eq!(report.failures[0].reason.kind(), "malformed");
}

#[test]
fn chunk_boundaries_do_not_matter() {
    let bundle = ten();
    for chunk in [1usize, 7, 64, 1000] {
        let mut v = writ_audit_chain::BundleVerifier::new(&bundle.certificate, &[test_audit_key()]);
        for part in bundle.log.chunks(chunk) {
            v.update(part);
        }
        let report = v.finish();
        assert!(report.is_valid(), "chunk {chunk}: {:#?}", report.failures);
    }
}

#[test]
fn streams_a_large_log() {
    let n = 20_000;
    let cert = fixtures::streaming_certificate(n);
    let report = verify_bundle(
        SampleLogReader::new(1, n),
        cert.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.entries_valid, n);
}

/// One million entries in bounded memory (run in release:
/// `cargo test --release -p writ-audit-chain --test bundle -- --ignored`).
#[test]
#[ignore]
fn streams_a_million_entries() {
    let n = 1_000_000;
    let cert = fixtures::streaming_certificate(n);
    let report = verify_bundle(
        SampleLogReader::new(1, n),
        cert.to_json().as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.entries_valid, n);
}

// ---------------------------------------------------------------------------------------------
// Pruned logs: a signed minimum index explains a missing head; nothing else does.
// ---------------------------------------------------------------------------------------------

fn pruned() -> SampleBundle {
    sample_bundle(&BundleSpec::pruned(10, 4))
}

/// The pruned bundle's certificate with another statement (or none), re-signed with the test key
/// as the server would have signed it.
fn with_statement(bundle: &SampleBundle, statement: Option<String>) -> Vec<u8> {
    let mut cert = Certificate::from_json(&bundle.certificate).unwrap();
    cert.minimum_index = statement;
    fixtures::sign_certificate(cert, &test_signing_key())
        .to_json()
        .into_bytes()
}

fn statement_of(bundle: &SampleBundle) -> MinimumIndex {
    writ_audit_chain::SignedNote::parse(bundle.minimum_index.as_deref().unwrap())
        .unwrap()
        .minimum_index()
        .unwrap()
}

#[test]
fn a_pruned_log_verifies_from_its_signed_minimum_index() {
    let bundle = pruned();
    let report = verify(&bundle, &[test_audit_key()]);
    assert!(report.is_valid(), "{:#?}", report.failures);
    assert_eq!(report.requested_range.unwrap().first_seq, 1);
    assert_eq!(report.found_range.unwrap().first_seq, 4);
    assert_eq!(report.entries_valid, 7);
    let summary = report.minimum_index.unwrap();
    assert_eq!(summary.minimum_index, 4);
    assert_eq!(summary.prev_hash, fixtures::sample_entries(3)[2].hash);
    assert!(summary.signature.is_valid());
    // A log that was never pruned carries no statement.
    assert_eq!(verify(&ten(), &[test_audit_key()]).minimum_index, None);
}

#[test]
fn a_missing_head_without_a_statement_is_reported() {
    let bundle = pruned();
    let cert = with_statement(&bundle, None);
    let report = verify_bundle(bundle.log.as_slice(), &cert, &[test_audit_key()]).unwrap();
    assert_eq!(kinds(&report), vec!["missing-head"]);
    assert_eq!(report.first_bad_seq(), Some(1));
    assert!(!report.is_valid());
}

#[test]
fn a_statement_naming_another_prev_hash_is_refused() {
    let bundle = pruned();
    let mut statement = statement_of(&bundle);
    statement.prev_hash = Hash::of(b"not entry 3");
    let note = fixtures::signed_minimum_index(&statement, &[&test_signing_key()]).to_text();
    let cert = with_statement(&bundle, Some(note));
    let report = verify_bundle(bundle.log.as_slice(), &cert, &[test_audit_key()]).unwrap();
    assert_eq!(kinds(&report), vec!["minimum-index"]);
    assert_eq!(report.first_bad_seq(), Some(4));
}

#[test]
fn a_statement_with_another_root_is_refused() {
    let bundle = pruned();
    let mut statement = statement_of(&bundle);
    statement.root = Hash::of(b"another tree");
    let note = fixtures::signed_minimum_index(&statement, &[&test_signing_key()]).to_text();
    let cert = with_statement(&bundle, Some(note));
    let report = verify_bundle(bundle.log.as_slice(), &cert, &[test_audit_key()]).unwrap();
    assert_eq!(kinds(&report), vec!["minimum-index"]);
}

#[test]
fn a_statement_signed_by_another_key_explains_nothing() {
    let bundle = pruned();
    let forged =
        fixtures::signed_minimum_index(&statement_of(&bundle), &[&signing_key_from_byte(9)])
            .to_text();
    let cert = with_statement(&bundle, Some(forged));
    let report = verify_bundle(bundle.log.as_slice(), &cert, &[test_audit_key()]).unwrap();
    assert_eq!(
        kinds(&report),
        vec!["minimum-index-signature", "missing-head"]
    );
    assert!(!report.minimum_index.unwrap().signature.is_valid());

    // An edited statement inside the signed certificate breaks both signatures.
    let text = String::from_utf8(bundle.certificate.clone()).unwrap();
    let edited = text.replace("minimum-index 4", "minimum-index 3");
    assert_ne!(edited, text);
    let report = verify_bundle(
        bundle.log.as_slice(),
        edited.as_bytes(),
        &[test_audit_key()],
    )
    .unwrap();
    assert!(!report.certificate_signature.is_valid());
    assert!(kinds(&report).contains(&"minimum-index-signature"));
}

#[test]
fn the_minimum_index_file_must_match_the_certificate() {
    let bundle = pruned();
    let run = |file: Option<&[u8]>| {
        let mut v = writ_audit_chain::BundleVerifier::new(&bundle.certificate, &[test_audit_key()]);
        v.update(&bundle.log);
        v.check_minimum_index_file(file);
        kinds(&v.finish())
    };
    let text = bundle.minimum_index.clone().unwrap();
    assert!(run(Some(text.as_bytes())).is_empty());
    assert_eq!(run(None), vec!["missing-file"]);
    assert_eq!(run(Some(b"other")), vec!["minimum-index-file"]);

    let full = ten();
    let mut v = writ_audit_chain::BundleVerifier::new(&full.certificate, &[test_audit_key()]);
    v.update(&full.log);
    v.check_minimum_index_file(Some(text.as_bytes()));
    assert_eq!(kinds(&v.finish()), vec!["minimum-index-file"]);
}
