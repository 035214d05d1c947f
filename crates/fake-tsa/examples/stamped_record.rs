//! Writes a timestamped sample signature record to try the checks of docs/ESIGN-FORMAT.md by
//! hand: `cargo run -p writ-fake-tsa --example stamped_record -- DIR` writes `signature.json`,
//! `warrant.pdf`, `agency.pem` (the test agency key) and `tsa.pem` (the fake TSA's CA) to DIR.

use std::path::PathBuf;

use writ_audit_chain::fixtures::{sign_der, test_audit_key, test_signing_key};
use writ_audit_chain::signature_record::{SignatureEnvelope, signing_bytes};
use writ_audit_chain::timestamp::{parse_response, timestamp_request};
use writ_fake_tsa::TsaSigner;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: stamped_record DIR")?);
    std::fs::create_dir_all(&dir)?;
    let document = b"%PDF-1.7\nSearch warrant, signed\n%%EOF\n";
    let record = writ_audit_chain::fixtures::sample_signature_record(document);
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
