//! Tokens from the fake TSA through the verifier in `writ-audit-chain` (and through OpenSSL):
//! what verifies, and that each kind of damage fails naming what is wrong.

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::OctetString;
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use writ_audit_chain::timestamp::{
    TimestampError, TsaCertificate, parse_response, timestamp_request, verify_token,
};
use writ_fake_tsa::{Eku, FakeTsa, Misbehaviour, POLICY, TsaOptions, TsaSigner};

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn trust(pem: &str) -> Vec<TsaCertificate> {
    TsaCertificate::all_from_pem(pem).unwrap()
}

/// Stamps `digest` through the request/response path, as the server does.
fn stamped(signer: &TsaSigner, digest: &[u8; 32]) -> Vec<u8> {
    let nonce = 0xfeed_beef_u64;
    let response = signer
        .respond(&timestamp_request(digest, nonce), None)
        .unwrap();
    parse_response(&response, digest, nonce).unwrap()
}

/// Takes the token apart, lets `edit` change the SignedData, puts it back together.
fn edited(token: &[u8], edit: impl FnOnce(&mut SignedData)) -> Vec<u8> {
    let mut info = ContentInfo::from_der(token).unwrap();
    let mut signed_data: SignedData = info.content.decode_as().unwrap();
    edit(&mut signed_data);
    info.content = der::Any::encode_from(&signed_data).unwrap();
    info.to_der().unwrap()
}

#[test]
fn a_token_from_the_fake_tsa_verifies_against_its_ca_or_its_own_certificate() {
    let signer = TsaSigner::new().unwrap();
    let d = digest("the agency's signature");
    let token = stamped(&signer, &d);

    let info = verify_token(&token, &d, &trust(signer.ca_pem())).unwrap();
    assert_eq!(info.policy, POLICY);
    assert!(info.tsa.contains("CN=Writ Test TSA"), "{}", info.tsa);
    assert!(info.serial.starts_with("0x"), "{}", info.serial);
    assert!(info.gen_time.starts_with("20") && info.gen_time.ends_with('Z'));
    let now_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now_millis - info.gen_time_millis).abs() < 60_000);

    let direct = verify_token(&token, &d, &trust(signer.certificate_pem())).unwrap();
    assert_eq!(direct, info);
    // The CA and the TSA certificate in one file, as an operator might configure it.
    let both = format!("{}{}", signer.certificate_pem(), signer.ca_pem());
    assert_eq!(verify_token(&token, &d, &trust(&both)).unwrap(), info);
}

#[test]
fn a_token_for_another_digest_fails() {
    let signer = TsaSigner::new().unwrap();
    let token = stamped(&signer, &digest("one"));
    let err = verify_token(&token, &digest("two"), &trust(signer.ca_pem())).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_response_with_the_wrong_digest_or_nonce_or_a_rejection_is_refused() {
    let signer = TsaSigner::new().unwrap();
    let d = digest("record");
    let request = timestamp_request(&d, 42);

    let wrong_digest = signer
        .respond(&request, Some(Misbehaviour::WrongDigest))
        .unwrap();
    assert!(matches!(
        parse_response(&wrong_digest, &d, 42),
        Err(TimestampError::ImprintMismatch { .. })
    ));

    let wrong_nonce = signer
        .respond(&request, Some(Misbehaviour::WrongNonce))
        .unwrap();
    assert_eq!(
        parse_response(&wrong_nonce, &d, 42),
        Err(TimestampError::NonceMismatch)
    );
    // A correct response to another request (another nonce) is refused the same way.
    let correct = signer.respond(&request, None).unwrap();
    assert_eq!(
        parse_response(&correct, &d, 43),
        Err(TimestampError::NonceMismatch)
    );
    assert!(parse_response(&correct, &d, 42).is_ok());

    let rejected = signer
        .respond(&request, Some(Misbehaviour::Reject))
        .unwrap();
    let err = parse_response(&rejected, &d, 42).unwrap_err();
    assert!(
        matches!(&err, TimestampError::Rejected { text: Some(t), .. } if t.contains("not accepting")),
        "{err:?}"
    );

    let garbage = signer.respond(b"not a request", None).unwrap();
    assert!(matches!(
        parse_response(&garbage, &d, 42),
        Err(TimestampError::Rejected { .. })
    ));
}

#[test]
fn a_tampered_tst_info_fails_the_message_digest() {
    let signer = TsaSigner::new().unwrap();
    let d = digest("record");
    let token = stamped(&signer, &d);
    let tampered = edited(&token, |sd| {
        let content = sd.encap_content_info.econtent.as_ref().unwrap();
        let mut tst = content.decode_as::<OctetString>().unwrap().into_bytes();
        // The last byte is in the nonce: the imprint still matches, the time and serial too.
        *tst.last_mut().unwrap() ^= 1;
        sd.encap_content_info.econtent =
            Some(der::Any::encode_from(&OctetString::new(tst).unwrap()).unwrap());
    });
    assert_eq!(
        verify_token(&tampered, &d, &trust(signer.ca_pem())),
        Err(TimestampError::MessageDigestMismatch)
    );
}

#[test]
fn a_tampered_signature_fails() {
    let signer = TsaSigner::new().unwrap();
    let d = digest("record");
    let token = stamped(&signer, &d);
    let other = stamped(&signer, &digest("another record"));
    // A well-formed signature, by the right key, over other attributes.
    let other_signature = ContentInfo::from_der(&other)
        .unwrap()
        .content
        .decode_as::<SignedData>()
        .unwrap()
        .signer_infos
        .0
        .as_slice()[0]
        .signature
        .clone();
    let tampered = edited(&token, |sd| {
        let mut infos = sd.signer_infos.0.clone().into_vec();
        infos[0].signature = other_signature;
        sd.signer_infos.0 = infos.try_into().unwrap();
    });
    assert_eq!(
        verify_token(&tampered, &d, &trust(signer.ca_pem())),
        Err(TimestampError::BadSignature)
    );
}

#[test]
fn another_tsa_is_not_trusted() {
    let signer = TsaSigner::new().unwrap();
    let stranger = TsaSigner::new().unwrap();
    let d = digest("record");
    let token = stamped(&stranger, &d);
    let err = verify_token(&token, &d, &trust(signer.ca_pem())).unwrap_err();
    assert!(matches!(err, TimestampError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("CN=Writ Test TSA"), "{err}");
    assert!(matches!(
        verify_token(&token, &d, &[]),
        Err(TimestampError::Untrusted { .. })
    ));
    // Another TSA's end-entity certificate is not a CA: it cannot vouch for a certificate with
    // the same issuer name either.
    assert!(matches!(
        verify_token(&token, &d, &trust(signer.certificate_pem())),
        Err(TimestampError::Untrusted { .. })
    ));
}

#[test]
fn a_certificate_without_a_critical_timestamping_usage_is_refused() {
    for eku in [Eku::Absent, Eku::NonCriticalTimeStamping] {
        let signer = TsaSigner::with_options(TsaOptions {
            eku,
            ..TsaOptions::default()
        })
        .unwrap();
        let d = digest("record");
        let token = stamped(&signer, &d);
        let err = verify_token(&token, &d, &trust(signer.ca_pem())).unwrap_err();
        assert!(
            matches!(err, TimestampError::NotTimestampingCertificate { .. }),
            "{eku:?}: {err}"
        );
    }
}

#[test]
fn a_certificate_expired_at_the_tokens_time_is_refused() {
    let signer = TsaSigner::with_options(TsaOptions {
        expired: true,
        ..TsaOptions::default()
    })
    .unwrap();
    let d = digest("record");
    let token = stamped(&signer, &d);
    assert!(matches!(
        verify_token(&token, &d, &trust(signer.ca_pem())),
        Err(TimestampError::CertificateNotValid { .. })
    ));
}

#[test]
fn a_token_without_its_certificate_needs_the_tsa_certificate_trusted() {
    let signer = TsaSigner::new().unwrap();
    let d = digest("record");
    let token = signer
        .token_with(&d, None, "20261204091527.104Z", false)
        .unwrap();
    assert_eq!(
        verify_token(&token, &d, &trust(signer.ca_pem())),
        Err(TimestampError::SignerCertificateNotFound)
    );
    let info = verify_token(&token, &d, &trust(signer.certificate_pem())).unwrap();
    assert_eq!(info.gen_time, "2026-12-04T09:15:27.104Z");
}

#[test]
fn openssl_verifies_a_token_from_the_fake_tsa() {
    // The by-hand check of docs/ESIGN-FORMAT.md §7 (`.ci/run` installs openssl when missing).
    assert!(
        std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok(),
        "the openssl command is needed to check tokens the way the docs say"
    );
    let signer = TsaSigner::new().unwrap();
    let d = digest("record");
    let token = stamped(&signer, &d);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.tsr"), &token).unwrap();
    std::fs::write(dir.path().join("tsa.pem"), signer.ca_pem()).unwrap();
    let verify = |hex: &str| {
        std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(["ts", "-verify", "-digest", hex, "-in", "token.tsr"])
            .args(["-token_in", "-CAfile", "tsa.pem"])
            .output()
            .unwrap()
    };
    let ok = verify(&hex::encode(d));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains("Verification: OK"),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = verify(&hex::encode(digest("other")));
    assert!(!wrong.status.success());
}

#[tokio::test]
async fn the_http_tsa_answers_queries_and_can_be_made_to_fail() {
    let tsa = FakeTsa::start().await.unwrap();
    let d = digest("record");
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(tsa.url())
            .header("content-type", "application/timestamp-query")
            .body(timestamp_request(&d, 7))
            .send()
    };
    let response = post().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/timestamp-reply"
    );
    let body = response.bytes().await.unwrap();
    let token = parse_response(&body, &d, 7).unwrap();
    verify_token(&token, &d, &trust(tsa.certificate_pem())).unwrap();
    assert_eq!(tsa.requests(), 1);

    tsa.set_failing(true);
    assert_eq!(post().await.unwrap().status(), 500);
    assert_eq!(tsa.requests(), 2);
    tsa.set_failing(false);
    tsa.set_misbehaviour(Some(Misbehaviour::WrongDigest));
    let body = post().await.unwrap().bytes().await.unwrap();
    assert!(parse_response(&body, &d, 7).is_err());
}
