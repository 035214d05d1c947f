//! Re-checking a stored signature as a court would: the record's form and intent hash, the
//! agency's signature over it, the stored document's bytes against the hash the record names,
//! and the audit entry that recorded the signature. Each check is reported on its own, and the
//! verification itself is recorded as `esign.verified` with its outcome.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;
use writ_agency_keys::{AgencySignature, Keyring};
use writ_audit_chain::signature_record::signing_bytes;
use writ_audit_log::{Caller, EventFilter};
use writ_documents::{DocumentError, DocumentStore};
use writ_tenancy::{Agency, TenantTx};

use crate::EsignError;
use crate::signing::{Signature, get};
use crate::timestamp::TimestampAuthority;

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `record`, `agencySignature`, `document`, `auditEntry`, `timestamp`.
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub signature_id: Uuid,
    /// Every check passed.
    pub valid: bool,
    pub checks: Vec<Check>,
    pub signature: Signature,
}

fn check(name: &'static str, outcome: Result<String, String>) -> Check {
    match outcome {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

/// Verifies signature `id` (which the caller may see) and records `esign.verified`.
pub async fn verify(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    store: &DocumentStore,
    tsa: Option<&TimestampAuthority>,
    caller: &Caller,
    id: Uuid,
) -> Result<Verification, EsignError> {
    let signature = get(pool, agency, keys, tsa, caller, id).await?;
    let envelope = &signature.record;
    let record = &envelope.record;
    let mut checks = vec![check(
        "record",
        record
            .validate()
            .and_then(|()| record.check_intent())
            .map(|()| {
                format!(
                    "{} record; the intent statement matches its SHA-256",
                    record.format
                )
            })
            .map_err(|e| e.to_string()),
    )];

    let mut tx = TenantTx::begin(pool, agency).await?;
    checks.push(check(
        "agencySignature",
        agency_signature(&mut tx, keys, envelope).await?,
    ));
    checks.push(check("auditEntry", audit_entry(&mut tx, &signature).await?));
    // Opening the content is recorded (download, decrypt) like any read of it.
    let opened =
        writ_documents::store::open_content(&mut tx, keys, caller, signature.document_id, None)
            .await;
    tx.commit().await?;
    let document = match opened {
        Ok(opened) => document_bytes(pool, agency, store, opened, &signature).await?,
        Err(DocumentError::Erased(at)) => Err(format!(
            "document {} was erased at {at}: its bytes can no longer be checked",
            signature.document_id
        )),
        Err(e) => return Err(e.into()),
    };
    checks.push(check("document", document));
    if envelope.timestamp.is_some() {
        let outcome = match tsa {
            Some(tsa) => tsa
                .check(envelope)
                .map(|info| format!("RFC 3161 time {} from {}", info.gen_time, info.tsa))
                .map_err(|e| e.to_string()),
            None => Err("the record carries a timestamp, but this server trusts no \
                         time-stamping authority (WRIT_TSA_CERT) to check it with"
                .into()),
        };
        checks.push(check("timestamp", outcome));
    }

    let valid = checks.iter().all(|c| c.ok);
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let mut event = caller
        .event("esign.verified")
        .resource("warrantId", signature.warrant_id.to_string())
        .resource("documentId", signature.document_id.to_string())
        .resource("signatureId", id.to_string())
        .detail(json!({ "valid": valid, "failed": failed }));
    if !valid {
        event = event.failure();
    }
    let mut tx = TenantTx::begin(pool, agency).await?;
    writ_audit_log::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(Verification {
        signature_id: id,
        valid,
        checks,
        signature,
    })
}

async fn agency_signature(
    tx: &mut TenantTx,
    keys: &Keyring,
    envelope: &writ_audit_chain::signature_record::SignatureEnvelope,
) -> Result<Result<String, String>, EsignError> {
    use base64::Engine as _;
    let Ok(der) =
        base64::engine::general_purpose::STANDARD.decode(envelope.signature.value.as_bytes())
    else {
        return Ok(Err("the signature value is not base64".to_owned()));
    };
    let message = match signing_bytes(&envelope.record) {
        Ok(m) => m,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let signature = AgencySignature {
        algorithm: envelope.signature.algorithm.clone(),
        key_version: envelope.signature.key_version,
        key_id: envelope.signature.key_id,
        signature: der,
    };
    match writ_agency_keys::verify(tx, keys, &message, &signature).await {
        Ok(v) => Ok(signed_in_window(&envelope.record.signed_at, &v).map(|()| {
            format!(
                "signed by the agency's signing key version {} (key id {})",
                v.key_version, v.key_id
            )
        })),
        // The keys could not be read (database, provider): an outage, not a failed check.
        Err(writ_agency_keys::SignatureError::Key(e)) => Err(e.into()),
        Err(e) => Ok(Err(format!("the agency signature over the record: {e}"))),
    }
}

/// How far a record's `signedAt` may precede its key version's start: the time is taken just
/// before the current key is looked up, and a rotation may commit in between.
const WINDOW_GRACE: chrono::Duration = chrono::Duration::minutes(1);

/// The key version that signed was the agency's signing key when the record says it was signed
/// (ESIGN-FORMAT §4): a version that began later, or was retired earlier, did not sign it then.
fn signed_in_window(
    signed_at: &str,
    key: &writ_agency_keys::VerifiedSignature,
) -> Result<(), String> {
    let at = chrono::DateTime::parse_from_rfc3339(signed_at)
        .map_err(|_| format!("signedAt {signed_at:?} is not a time"))?
        .to_utc();
    let before = at < key.valid_from - WINDOW_GRACE;
    let after = key.valid_to.is_some_and(|to| at >= to);
    if before || after {
        return Err(format!(
            "signed at {signed_at}, but signing key version {} signed from {} {}",
            key.key_version,
            key.valid_from
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key.valid_to.map_or("on".to_owned(), |t| format!(
                "until {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ))
        ));
    }
    Ok(())
}

/// The entry the record names is in the chain with that hash, intact, and is the one that
/// recorded this signature.
async fn audit_entry(
    tx: &mut TenantTx,
    signature: &Signature,
) -> Result<Result<String, String>, EsignError> {
    let Some(reference) = &signature.record.record.audit else {
        return Ok(Err("the record names no audit entry".into()));
    };
    let filter = EventFilter {
        from_seq: Some(reference.seq),
        to_seq: Some(reference.seq),
        ..Default::default()
    };
    let page = writ_audit_log::list_events(tx, &filter, reference.seq, 1).await?;
    let Some(entry) = page.items.first() else {
        return Ok(Err(format!(
            "audit entry {} is not in the chain (pruned, or never sequenced)",
            reference.seq
        )));
    };
    let names_it = entry.action == "esign.applied"
        && entry.resource.get("signatureId").and_then(|v| v.as_str())
            == Some(signature.id.to_string().as_str());
    Ok(if !entry.hash_is_valid() {
        Err(format!(
            "audit entry {}: its hash does not match its content",
            entry.seq
        ))
    } else if entry.hash != reference.entry_hash {
        Err(format!(
            "audit entry {} has hash {}, the record names {}",
            entry.seq, entry.hash, reference.entry_hash
        ))
    } else if !names_it {
        Err(format!(
            "audit entry {} ({}) does not record this signature",
            entry.seq, entry.action
        ))
    } else {
        Ok(format!(
            "esign.applied at seq {}, hash {}",
            entry.seq, entry.hash
        ))
    })
}

/// Decrypts the stored document and compares its SHA-256 and size with the record's.
async fn document_bytes(
    pool: &PgPool,
    agency: &Agency,
    store: &DocumentStore,
    opened: writ_documents::OpenedDocument,
    signature: &Signature,
) -> Result<Result<String, String>, EsignError> {
    let id = signature.document_id;
    let named = &signature.record.record.document;
    // Only a failed authentication is a failed check; a store that cannot deliver is an outage.
    let mut stream = writ_documents::store::plaintext(pool, agency, store, opened).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                size += bytes.len() as u64;
                hasher.update(&bytes);
            }
            Err(DocumentError::Seal(e)) => {
                return Ok(Err(format!(
                    "document {id}: the stored content failed authentication ({e}); it is not \
                     the signed document"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let found = hex::encode(hasher.finalize());
    Ok(if found != named.sha256.to_hex() || size != named.size {
        Err(format!(
            "document {id}: the stored bytes hash to {found} ({size} bytes), the record names {} \
             ({} bytes)",
            named.sha256.to_hex(),
            named.size
        ))
    } else {
        Ok(format!(
            "document {id}: SHA-256 {found}, {size} bytes, as signed"
        ))
    })
}

#[cfg(test)]
mod window_tests {
    use chrono::{DateTime, Utc};
    use writ_agency_keys::VerifiedSignature;

    use super::signed_in_window;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn version(from: &str, to: Option<&str>) -> VerifiedSignature {
        VerifiedSignature {
            key_version: 2,
            key_id: writ_audit_chain::fixtures::test_audit_key().key_id(),
            current: to.is_none(),
            valid_from: utc(from),
            valid_to: to.map(utc),
        }
    }

    #[test]
    fn a_record_is_signed_by_the_version_in_force_when_it_says_it_was_signed() {
        let retired = version("2026-03-01T00:00:00Z", Some("2026-06-01T00:00:00Z"));
        assert!(signed_in_window("2026-04-01T10:00:00.000Z", &retired).is_ok());
        // Signed after the version was retired, or well before it began: not by it.
        let late = signed_in_window("2026-06-01T00:00:00.000Z", &retired).unwrap_err();
        assert!(late.contains("until 2026-06-01T00:00:00.000Z"), "{late}");
        let early = signed_in_window("2026-02-27T00:00:00.000Z", &retired).unwrap_err();
        assert!(early.contains("signing key version 2"), "{early}");
        // A few seconds before it began: the time taken just before a rotation committed.
        let current = version("2026-06-01T00:00:00Z", None);
        assert!(signed_in_window("2026-05-31T23:59:58.000Z", &current).is_ok());
        assert!(signed_in_window("2030-01-01T00:00:00.000Z", &current).is_ok());
        assert!(signed_in_window("yesterday", &current).is_err());
    }
}
