//! Tokens made by OpenSSL's TSA (an independent implementation; see tests/data/timestamp):
//! RSA with ESSCertID (SHA-1), and P-256 with ESSCertIDv2.

use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader};
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
    // Every single-byte change and every truncation is an error or a verdict, never a panic.
    let trusted = trust("openssl-rsa-ca.pem");
    let response = read("openssl-rsa-response.tsr");
    for i in 0..response.len() {
        let mut changed = response.clone();
        changed[i] ^= 0x01;
        let _ = parse_response(&changed, &digest(), 0x194F_389C_11D6_42BA);
        assert!(parse_response(&response[..i], &digest(), 0x194F_389C_11D6_42BA).is_err());
    }
    // What the TSA signed: the TSTInfo, the signed attributes and the signature itself. Any
    // change there fails. (Elsewhere — the unsigned digest algorithm list, a second copy of the
    // certificate OpenSSL puts in — a change may leave the token verifying, as it should.)
    let content_info = children(children(&token)[0].value());
    let signed_data = children(children(content_info[1].value())[0].value());
    let encap = children(signed_data[2].value());
    let tst_info = children(encap[1].value())[0].value();
    let signer_infos = children(signed_data[signed_data.len() - 1].value());
    let signer = children(signer_infos[0].value());
    let signed_parts = [tst_info, signer[3].value(), signer[5].value()];
    let mut checked = 0;
    for part in signed_parts {
        let start = token
            .windows(part.len())
            .position(|w| w == part)
            .expect("signed part found in the token");
        for i in start..start + part.len() {
            let mut changed = token.clone();
            changed[i] ^= 0x01;
            assert!(
                verify_token(&changed, &digest(), &trusted).is_err(),
                "byte {i} changed and the token still verifies"
            );
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked}");
    for i in 0..token.len() {
        let mut changed = token.clone();
        changed[i] ^= 0x01;
        let _ = verify_token(&changed, &digest(), &trusted);
        assert!(verify_token(&token[..i], &digest(), &trusted).is_err());
    }
}

/// The TLVs inside a constructed value.
fn children(value: &[u8]) -> Vec<AnyRef<'_>> {
    let mut reader = SliceReader::new(value).unwrap();
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(AnyRef::decode(&mut reader).unwrap());
    }
    out
}
