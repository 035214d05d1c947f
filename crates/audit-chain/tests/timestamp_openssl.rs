//! Tokens made by OpenSSL's TSA (an independent implementation; see tests/data/timestamp):
//! RSA with ESSCertID (SHA-1), and P-256 with ESSCertIDv2.

use sha2::{Digest, Sha256};
use writ_audit_chain::timestamp::{TimestampError, TsaCertificate, parse_response, verify_token};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/timestamp/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap()
}

fn digest() -> [u8; 32] {
    Sha256::digest(read("data.txt")).into()
}

fn trust(name: &str) -> Vec<TsaCertificate> {
    TsaCertificate::all_from_pem(&String::from_utf8(read(name)).unwrap()).unwrap()
}

#[test]
fn an_openssl_rsa_token_with_an_ess_cert_id_verifies() {
    let info = verify_token(
        &read("openssl-rsa-token.tsr"),
        &digest(),
        &trust("openssl-rsa-ca.pem"),
    )
    .unwrap();
    assert_eq!(info.gen_time, "2026-12-04T14:48:19.864Z");
    assert_eq!(info.serial, "0x02");
    assert_eq!(info.policy, "1.3.6.1.4.1.99999.1");
    assert!(info.tsa.contains("CN=OpenSSL Test TSA"), "{}", info.tsa);
}

#[test]
fn an_openssl_ec_token_with_an_ess_cert_id_v2_verifies() {
    let info = verify_token(
        &read("openssl-ec-token.tsr"),
        &digest(),
        &trust("openssl-ec-ca.pem"),
    )
    .unwrap();
    assert_eq!(info.gen_time, "2026-12-04T14:48:26.642Z");
    assert!(info.tsa.contains("CN=OpenSSL Test EC TSA"), "{}", info.tsa);
}

#[test]
fn an_openssl_response_gives_its_token() {
    let token = parse_response(
        &read("openssl-rsa-response.tsr"),
        &digest(),
        0x194F_389C_11D6_42BA,
    )
    .unwrap();
    assert_eq!(token, read("openssl-rsa-token.tsr"));
    assert_eq!(
        parse_response(&read("openssl-rsa-response.tsr"), &digest(), 1),
        Err(TimestampError::NonceMismatch)
    );
}

#[test]
fn openssl_tokens_fail_with_another_digest_or_another_ca() {
    let token = read("openssl-rsa-token.tsr");
    assert!(matches!(
        verify_token(&token, &[0; 32], &trust("openssl-rsa-ca.pem")),
        Err(TimestampError::ImprintMismatch { .. })
    ));
    assert!(matches!(
        verify_token(&token, &digest(), &trust("openssl-ec-ca.pem")),
        Err(TimestampError::Untrusted { .. })
    ));
    // Every single-byte change is an error, never a panic; most fail the checks outright.
    let trusted = trust("openssl-rsa-ca.pem");
    for i in 0..token.len() {
        let mut changed = token.clone();
        changed[i] ^= 0x01;
        let _ = verify_token(&changed, &digest(), &trusted);
    }
}
