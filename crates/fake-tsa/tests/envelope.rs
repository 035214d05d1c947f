//! A timestamp on a signature record (`SignatureEnvelope::timestamp`): it stamps the agency's
//! signature, survives export and import, and leaves the signed record alone.

use writ_audit_chain::fixtures::{audit_key, sample_signature_record, sign_der, test_signing_key};
use writ_audit_chain::signature_record::{
    Intent, SignatureEnvelope, SignatureRecord, SignatureRecordError, signing_bytes, verify,
};
use writ_audit_chain::timestamp::{
    TimestampError, TsaCertificate, parse_response, timestamp_request,
};
use writ_fake_tsa::TsaSigner;

const DOCUMENT: &[u8] = b"%PDF-1.7\nAffidavit\n%%EOF\n";

fn record() -> SignatureRecord {
    SignatureRecord {
        intent: Intent::new("I sign this warrant."),
        ..sample_signature_record(DOCUMENT)
    }
}

/// A signed record, stamped by `tsa` as the server does it.
fn stamped(tsa: &TsaSigner) -> SignatureEnvelope {
    let sk = test_signing_key();
    let record = record();
    let sig = sign_der(&sk, &signing_bytes(&record).unwrap());
    let mut envelope =
        SignatureEnvelope::assemble(record, audit_key(&sk).key_id(), 1, &sig).unwrap();
    assert_eq!(envelope.timestamp, None);
    let digest = envelope.timestamp_digest().unwrap();
    let response = tsa.respond(&timestamp_request(&digest, 99), None).unwrap();
    envelope.set_timestamp_token(&parse_response(&response, &digest, 99).unwrap());
    envelope
}

fn trust(pem: &str) -> Vec<TsaCertificate> {
    TsaCertificate::all_from_pem(pem).unwrap()
}

#[test]
fn a_stamped_record_exports_imports_and_checks() {
    let tsa = TsaSigner::new().unwrap();
    let envelope = stamped(&tsa);
    let json = envelope.to_json();
    assert!(json.contains("\"timestamp\": {"), "{json}");
    let imported = SignatureEnvelope::from_json(json.as_bytes()).unwrap();
    assert_eq!(imported, envelope);

    let info = imported.check_timestamp(&trust(tsa.ca_pem())).unwrap();
    assert!(info.tsa.contains("Writ Test TSA"));
    // The agency signature is untouched by the timestamp.
    let pem = audit_key(&test_signing_key()).to_pem();
    verify(&imported, Some(DOCUMENT), &pem).unwrap();
}

#[test]
fn the_timestamp_stamps_the_der_signature() {
    use sha2::Digest as _;
    let envelope = record_only();
    let der = base64_decode(&envelope.signature.value);
    let expected: [u8; 32] = sha2::Sha256::digest(&der).into();
    assert_eq!(envelope.timestamp_digest().unwrap(), expected);
}

#[test]
fn a_timestamp_moved_to_another_signature_fails() {
    let tsa = TsaSigner::new().unwrap();
    let stamped = stamped(&tsa);
    // Another record's signature, carrying the first one's timestamp.
    let mut other = record_only();
    let mut changed = record();
    changed.user_agent = "curl/8".into();
    let sk = test_signing_key();
    other.signature.value = base64_encode(&sign_der(&sk, &signing_bytes(&changed).unwrap()));
    other.record = changed;
    other.timestamp = stamped.timestamp.clone();
    assert!(matches!(
        other.check_timestamp(&trust(tsa.ca_pem())),
        Err(SignatureRecordError::Timestamp(
            TimestampError::ImprintMismatch { .. }
        ))
    ));
}

#[test]
fn a_missing_or_malformed_timestamp_is_an_error() {
    let tsa = TsaSigner::new().unwrap();
    assert_eq!(
        record_only().check_timestamp(&trust(tsa.ca_pem())),
        Err(SignatureRecordError::NoTimestamp)
    );
    let mut envelope = stamped(&tsa);
    envelope.timestamp.as_mut().unwrap().token = "not base64!".into();
    assert_eq!(
        envelope.check_timestamp(&trust(tsa.ca_pem())),
        Err(SignatureRecordError::TimestampEncoding)
    );
    // Unknown members inside the timestamp are refused like everywhere else.
    let mut value: serde_json::Value = serde_json::from_str(&stamped(&tsa).to_json()).unwrap();
    value["timestamp"]["extra"] = 1.into();
    assert!(SignatureEnvelope::from_json(value.to_string().as_bytes()).is_err());
}

fn record_only() -> SignatureEnvelope {
    let sk = test_signing_key();
    let record = record();
    let sig = sign_der(&sk, &signing_bytes(&record).unwrap());
    SignatureEnvelope::assemble(record, audit_key(&sk).key_id(), 1, &sig).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
