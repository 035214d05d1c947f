//! A warrant's evidence certificate (`writ.evidence.v1`, docs/EVIDENCE-CERTIFICATE.md): what the
//! warrant is, its documents and their hashes, its affidavit versions, every step with who and
//! when (reviews, decisions, seal events), the oaths, every signature record, the execution
//! window against the execution time, the return, and the audit entries that recorded all of it
//! with inclusion proofs to one signed checkpoint — signed with the agency's key. Made afresh on
//! each request (a later one covers later events), and recorded as `esign.certificate`.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use writ_agency_keys::Keyring;
use writ_audit_chain::Entry;
use writ_audit_chain::evidence::{
    AuditFacts, DocumentFacts, EVIDENCE_FORMAT, EvidenceCertificate, OathFacts, ProvenEntry,
    SignedEvidenceCertificate, StepFacts, signing_bytes,
};
use writ_audit_log::{Caller, EventFilter, MAX_PAGE};
use writ_tenancy::{Agency, TenantTx};

use crate::EsignError;
use crate::error::slug;
use crate::signing::{complete, signature_ids};
use crate::timestamp::TimestampAuthority;

/// Entries about a warrant that are reads, not events of its life: left out of its certificate.
const READS: &[&str] = &[
    "warrant.viewed",
    "document.view",
    "document.download",
    "document.decrypt",
    "esign.verified",
    "esign.certificate",
];

fn millis(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The evidence certificate of warrant `warrant_id`, which the caller may read.
pub async fn certificate(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    tsa: Option<&TimestampAuthority>,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<SignedEvidenceCertificate, EsignError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let facts =
        writ_warrant_workflow::facts::certificate_facts(&mut tx, caller, warrant_id).await?;
    let documents = writ_documents::store::list_all(&mut tx, caller, warrant_id).await?;
    let sessions = writ_warrant_workflow::video::store::list(&mut tx, caller, warrant_id).await?;
    let ids = signature_ids(&mut tx, warrant_id).await?;
    // The session listing is a read of the oath records, recorded like any.
    tx.commit().await?;

    let mut signatures = Vec::with_capacity(ids.len());
    for id in ids {
        signatures.push(complete(pool, agency, keys, tsa, id).await?.record);
    }
    let documents = documents
        .into_iter()
        .map(|d| {
            Ok(DocumentFacts {
                id: d.id.to_string(),
                kind: d.kind,
                filename: d.filename,
                content_type: d.content_type,
                classification: d.classification,
                sha256: d.document_hash.trim_start_matches("sha256:").to_owned(),
                size: u64::try_from(d.size)
                    .map_err(|_| EsignError::Corrupt("negative document size".into()))?,
                uploaded_at: millis(d.uploaded_at),
                uploaded_by: d.uploaded_by.to_string(),
                erased_at: d.erased_at.map(millis),
                deleted_at: d.deleted_at.map(millis),
            })
        })
        .collect::<Result<Vec<_>, EsignError>>()?;
    let oaths = sessions
        .into_iter()
        .filter(|s| s.oath.is_some())
        .map(|s| {
            Ok(OathFacts {
                session_id: s.id.to_string(),
                record: json!({
                    "oath": s.oath,
                    "recording": s.recording,
                    "recordingMissing": s.recording_missing,
                    "transcript": s.transcript,
                    "judgeId": s.judge_id,
                    "affiantId": s.affiant_id,
                }),
            })
        })
        .collect::<Result<Vec<_>, EsignError>>()?;

    // Every event of the warrant in the chain, then one checkpoint that holds them all.
    writ_audit_log::sequence_agency(pool, agency.id, &agency.ident).await?;
    let document_ids: Vec<&str> = documents.iter().map(|d| d.id.as_str()).collect();
    let entries = warrant_entries(pool, agency, warrant_id, &document_ids).await?;
    // Every signature's entry must be there to prove it, and the warrant's history from its
    // creation on: retention may have pruned the older part of it.
    let missing = signatures.iter().find(|e| {
        e.record
            .audit
            .as_ref()
            .is_none_or(|a| !entries.iter().any(|x| x.seq == a.seq))
    });
    let warrant = warrant_id.to_string();
    let created = entries.iter().any(|e| {
        e.action == "warrant.created"
            && e.resource.get("warrantId").and_then(Value::as_str) == Some(warrant.as_str())
    });
    if !created || missing.is_some() {
        return Err(EsignError::conflict(
            slug::CERTIFICATE_UNAVAILABLE,
            "the audit entries of this warrant are no longer all in the agency's log (pruned \
             by retention after archiving): its certificate cannot prove them; the archived \
             export holds them",
        ));
    }
    let needed = entries.last().map_or(0, |e| e.seq);
    let mut tx = TenantTx::begin(pool, agency).await?;
    let mut checkpoint = writ_audit_log::latest_checkpoint(&mut tx).await?;
    tx.rollback().await?;
    if checkpoint.as_ref().is_none_or(|c| c.tree_size < needed) {
        writ_audit_log::checkpoint_agency(pool, keys.provider(), agency, Duration::ZERO, true)
            .await?;
        let mut tx = TenantTx::begin(pool, agency).await?;
        checkpoint = writ_audit_log::latest_checkpoint(&mut tx).await?;
        tx.rollback().await?;
    }
    let checkpoint = checkpoint
        .filter(|c| c.tree_size >= needed)
        .ok_or_else(|| {
            EsignError::conflict(
                slug::CERTIFICATE_UNAVAILABLE,
                "no signed checkpoint covers the warrant's events yet; try again in a moment",
            )
        })?;
    let mut tx = TenantTx::begin(pool, agency).await?;
    let mut proven = Vec::with_capacity(entries.len());
    for entry in entries {
        let inclusion_proof =
            writ_audit_log::inclusion_proof(&mut tx, entry.seq, checkpoint.tree_size).await?;
        proven.push(ProvenEntry {
            entry,
            inclusion_proof,
        });
    }
    let mut steps: Vec<StepFacts> = proven.iter().filter_map(|p| step(&p.entry)).collect();
    name_people(&mut tx, &mut steps).await?;

    let certificate_id = Uuid::now_v7();
    let certificate = EvidenceCertificate {
        format: EVIDENCE_FORMAT.to_owned(),
        certificate_id: certificate_id.to_string(),
        agency_id: agency.id.to_string(),
        issued_at: millis(Utc::now()),
        warrant: facts.warrant,
        documents,
        affidavit_versions: facts.affidavit_versions,
        steps,
        oaths,
        signatures,
        execution: facts.execution,
        return_filed: facts.return_filed,
        audit: AuditFacts {
            checkpoint: checkpoint.note.clone(),
            tree_size: checkpoint.tree_size,
            entries: proven,
        },
    };
    let bytes = signing_bytes(&certificate).map_err(|e| EsignError::Corrupt(e.to_string()))?;
    let signature = writ_agency_keys::sign(&mut tx, keys, &bytes).await?;
    let signed = SignedEvidenceCertificate::assemble(
        certificate,
        signature.key_id,
        signature.key_version,
        &signature.signature,
    )
    .map_err(|e| EsignError::Corrupt(e.to_string()))?;
    let sha256 = signed
        .sha256()
        .map_err(|e| EsignError::Corrupt(e.to_string()))?;
    let event = caller
        .event("esign.certificate")
        .resource("warrantId", warrant_id.to_string())
        .resource("certificateId", certificate_id.to_string())
        .detail(json!({
            "certificateSha256": sha256.to_string(),
            "treeSize": checkpoint.tree_size,
            "entries": signed.certificate.audit.entries.len(),
            "signatures": signed.certificate.signatures.len(),
        }));
    writ_audit_log::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(signed)
}

/// The sequenced entries naming the warrant, reads left out, in seq order.
async fn warrant_entries(
    pool: &PgPool,
    agency: &Agency,
    warrant_id: Uuid,
    document_ids: &[&str],
) -> Result<Vec<Entry>, EsignError> {
    let warrant = warrant_id.to_string();
    // The filter matches any value of `resource`: an extension's creation names its parent, for
    // one. Kept are the warrant's own entries and its documents'.
    let ours = |e: &Entry| {
        let named = |key: &str| e.resource.get(key).and_then(Value::as_str);
        named("warrantId") == Some(warrant.as_str())
            || named("documentId").is_some_and(|d| document_ids.contains(&d))
    };
    let filter = EventFilter {
        resource: Some(warrant_id.to_string()),
        ..Default::default()
    };
    let mut tx = TenantTx::begin(pool, agency).await?;
    let mut out = Vec::new();
    let mut start = 1;
    loop {
        let page = writ_audit_log::list_events(&mut tx, &filter, start, MAX_PAGE).await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|e| !READS.contains(&e.action.as_str()) && ours(e)),
        );
        match page.next_seq {
            Some(next) => start = next,
            None => break,
        }
    }
    tx.rollback().await?;
    Ok(out)
}

/// Names the people of the steps, as the agency has them now (`Name (badge or judicial id)`).
async fn name_people(tx: &mut TenantTx, steps: &mut [StepFacts]) -> Result<(), EsignError> {
    let ids: Vec<Uuid> = steps
        .iter()
        .filter_map(|s| s.by.as_deref())
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let people: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT id, display_name, badge_or_judicial_id FROM users WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?;
    for step in steps.iter_mut() {
        let person = step
            .by
            .as_deref()
            .and_then(|by| people.iter().find(|(id, _, _)| id.to_string() == by));
        step.name = person.map(|(_, name, badge)| match badge {
            Some(badge) => format!("{name} ({badge})"),
            None => name.clone(),
        });
    }
    Ok(())
}

/// A step of the warrant's life, from the entry that recorded it: its own changes (reviews,
/// decisions, execution, return, seals, amendments), not its documents' or signatures'.
fn step(entry: &Entry) -> Option<StepFacts> {
    if !entry.action.starts_with("warrant.") {
        return None;
    }
    let reason = entry
        .detail
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(StepFacts {
        action: entry.action.clone(),
        by: entry.actor.user_id.clone(),
        name: None,
        role: entry.actor.role.clone(),
        at: entry.timestamp.clone(),
        reason,
        audit_seq: entry.seq,
    })
}
