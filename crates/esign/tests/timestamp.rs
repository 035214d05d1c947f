//! The TSA client against the local fake TSA: a verified token, and each way a TSA can let the
//! server down ending in an error, never in a token nobody could check.

use sha2::{Digest, Sha256};
use writ_audit_chain::timestamp::{TimestampError, TsaCertificate, verify_token};
use writ_error_kind::{Classify, ErrorKind};
use writ_esign::timestamp::{TimestampAuthority, TsaError};
use writ_fake_tsa::{FakeTsa, Misbehaviour, TsaSigner};

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn authority(tsa: &FakeTsa) -> TimestampAuthority {
    TimestampAuthority::new(
        &tsa.url(),
        TsaCertificate::all_from_pem(tsa.certificate_pem()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_stamp_is_a_verified_token_over_the_digest() {
    let tsa = FakeTsa::start().await.unwrap();
    let client = authority(&tsa);
    let d = digest("agency signature");
    let stamped = client.stamp(&d).await.unwrap();
    assert_eq!(tsa.requests(), 1);
    assert!(stamped.info.tsa.contains("Writ Test TSA"));
    let again = verify_token(&stamped.token_der, &d, client.trusted()).unwrap();
    assert_eq!(again, stamped.info);
    // Each request has its own nonce, so two stamps are two tokens.
    let other = client.stamp(&d).await.unwrap();
    assert_ne!(other.token_der, stamped.token_der);
}

#[tokio::test]
async fn a_failing_tsa_is_an_unavailable_error() {
    let tsa = FakeTsa::start().await.unwrap();
    tsa.set_failing(true);
    let err = authority(&tsa).stamp(&digest("x")).await.unwrap_err();
    assert!(matches!(err, TsaError::Status { status: 500, .. }), "{err}");
    assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }));
    assert!(err.to_string().contains(&tsa.url()), "{err}");

    // Nothing listening at all.
    let gone = tsa.url();
    drop(tsa);
    let client = TimestampAuthority::new(
        &gone,
        TsaCertificate::all_from_pem(TsaSigner::new().unwrap().ca_pem()).unwrap(),
    )
    .unwrap();
    let err = client.stamp(&digest("x")).await.unwrap_err();
    assert!(matches!(err, TsaError::Transport { .. }), "{err}");
    assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }));
}

#[tokio::test]
async fn a_token_for_another_digest_or_nonce_or_a_rejection_is_refused() {
    let tsa = FakeTsa::start().await.unwrap();
    let client = authority(&tsa);
    let cases = [
        (Misbehaviour::WrongDigest, "ImprintMismatch"),
        (Misbehaviour::WrongNonce, "NonceMismatch"),
        (Misbehaviour::Reject, "Rejected"),
    ];
    for (misbehaviour, expected) in cases {
        tsa.set_misbehaviour(Some(misbehaviour));
        let err = client.stamp(&digest("x")).await.unwrap_err();
        let TsaError::Token { source, .. } = &err else {
            panic!("{misbehaviour:?}: {err}");
        };
        assert!(format!("{source:?}").starts_with(expected), "{source:?}");
    }
}

#[tokio::test]
async fn a_tsa_that_is_not_the_trusted_one_is_refused() {
    let tsa = FakeTsa::start().await.unwrap();
    let client = TimestampAuthority::new(
        &tsa.url(),
        TsaCertificate::all_from_pem(TsaSigner::new().unwrap().ca_pem()).unwrap(),
    )
    .unwrap();
    let err = client.stamp(&digest("x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            TsaError::Token {
                source: TimestampError::Untrusted { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn settings_no_url_is_off_and_a_url_needs_a_certificate() {
    assert!(
        TimestampAuthority::from_settings(None, None)
            .unwrap()
            .is_none()
    );
    assert!(
        TimestampAuthority::from_settings(Some(" "), None)
            .unwrap()
            .is_none()
    );
    let err = TimestampAuthority::from_settings(Some("http://127.0.0.1:1/"), None).unwrap_err();
    assert!(err.contains("WRIT_TSA_CERT"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("tsa.pem");
    std::fs::write(&pem, TsaSigner::new().unwrap().ca_pem()).unwrap();
    let tsa = TimestampAuthority::from_settings(Some("http://127.0.0.1:1/"), Some(&pem))
        .unwrap()
        .unwrap();
    assert_eq!(tsa.trusted().len(), 1);

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    assert!(TimestampAuthority::from_settings(Some("http://127.0.0.1:1/"), Some(&junk)).is_err());
    assert!(
        TimestampAuthority::from_settings(
            Some("http://127.0.0.1:1/"),
            Some(&dir.path().join("missing.pem"))
        )
        .is_err()
    );
    assert!(TimestampAuthority::from_settings(Some("ftp://tsa.example/"), Some(&pem)).is_err());
}

#[tokio::test]
async fn stamping_an_envelope_sets_a_token_that_checks() {
    use writ_audit_chain::fixtures::{audit_key, sign_der, test_signing_key};
    use writ_audit_chain::signature_record::{SignatureEnvelope, signing_bytes};
    let record = writ_audit_chain::fixtures::sample_signature_record(b"doc");
    let sk = test_signing_key();
    let sig = sign_der(&sk, &signing_bytes(&record).unwrap());
    let mut envelope =
        SignatureEnvelope::assemble(record, audit_key(&sk).key_id(), 1, &sig).unwrap();
    let tsa = FakeTsa::start().await.unwrap();
    let client = authority(&tsa);
    let info = client.stamp_envelope(&mut envelope).await.unwrap();
    assert!(envelope.timestamp.is_some());
    assert_eq!(client.check(&envelope).unwrap(), info);
    let exported = SignatureEnvelope::from_json(envelope.to_json().as_bytes()).unwrap();
    assert_eq!(exported.check_timestamp(client.trusted()).unwrap(), info);
}
