//! Writes a timestamped sample signature record to try the checks of docs/ESIGN-FORMAT.md by
//! hand: `cargo run -p writ-fake-tsa --example stamped_record -- DIR` writes `signature.json`,
//! `warrant.pdf`, `agency.pem` (the test agency key) and `tsa.pem` (the fake TSA's CA) to DIR.

use std::path::PathBuf;

use writ_audit_chain::Hash;
use writ_audit_chain::fixtures::{sign_der, test_audit_key, test_signing_key};
use writ_audit_chain::signature_record::{
    Authentication, Intent, SIGNATURE_RECORD_FORMAT, SignatureEnvelope, SignatureRecord,
    SignedDocument, Signer, signing_bytes,
};
use writ_audit_chain::timestamp::{parse_response, timestamp_request};
use writ_fake_tsa::TsaSigner;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: stamped_record DIR")?);
    std::fs::create_dir_all(&dir)?;
    let document = b"%PDF-1.7\nSearch warrant, signed\n%%EOF\n";
    let record = SignatureRecord {
        format: SIGNATURE_RECORD_FORMAT.to_owned(),
        record_id: "0b6d5c1e-6f3a-4c2e-9a51-2f7d8e4b1c90".into(),
        agency_id: "4f1c2b7e-9a3d-4e8f-b6a1-0c5d7e9f2a31".into(),
        warrant_id: "9e2a4d61-3b7c-4f08-a1d5-6c8e0f2b7a43".into(),
        signer: Signer {
            user_id: "c3a1e5f7-2d4b-4a6c-8e0f-1b3d5f7a9c2e".into(),
            role: "judge".into(),
            name: "Hon. Maria Alvarez".into(),
            badge_or_judicial_id: "J-20431".into(),
        },
        authentication: Authentication {
            methods: vec!["password".into(), "totp".into()],
            strength: "aal2".into(),
            auth_time: "2026-12-04T08:01:12.000Z".into(),
            stepped_up_at: "2026-12-04T09:14:03.512Z".into(),
        },
        intent: Intent::new("I have reviewed the affidavit and find probable cause."),
        document: SignedDocument {
            id: "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c".into(),
            sha256: Hash::of(document),
            size: document.len() as u64,
        },
        signed_at: "2026-12-04T09:15:27.104Z".into(),
        source_ip: "203.0.113.24".into(),
        user_agent: "Mozilla/5.0".into(),
        oath_reference: None,
        audit: None,
    };
    let signature = sign_der(&test_signing_key(), &signing_bytes(&record)?);
    let mut envelope =
        SignatureEnvelope::assemble(record, test_audit_key().key_id(), 2, &signature)?;
    let tsa = TsaSigner::new()?;
    let digest = envelope.timestamp_digest()?;
    let nonce = 0x5eed;
    let response = tsa.respond(&timestamp_request(&digest, nonce), None)?;
    envelope.set_timestamp_token(&parse_response(&response, &digest, nonce)?);
    std::fs::write(dir.join("signature.json"), envelope.to_json())?;
    std::fs::write(dir.join("warrant.pdf"), document)?;
    std::fs::write(dir.join("agency.pem"), test_audit_key().to_pem())?;
    std::fs::write(dir.join("tsa.pem"), tsa.ca_pem())?;
    println!(
        "wrote signature.json, warrant.pdf, agency.pem, tsa.pem to {}",
        dir.display()
    );
    Ok(())
}
