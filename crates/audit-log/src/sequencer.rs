//! The sequencer gives committed events their place in the chain. Requests never touch the chain
//! head: they insert into `audit_pending` and commit. One sequencer pass per agency at a time
//! (an advisory lock, so across server replicas too) takes every committed pending event, seals
//! them onto the chain in order, stores the Merkle nodes they complete and deletes them from
//! pending — all in one transaction, so a crash leaves either nothing or the whole batch done.
//! A pending row it cannot seal (recording refuses such events, but a row may predate that or be
//! written otherwise) is moved to `audit_quarantine` and replaced in the chain by a
//! `system.error` entry naming it, rather than stopping the agency's chain.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_chain::{Hash, PendingEvent, genesis_hash, leaf_hash};
use writ_tenancy::{AgencyIdent, TenantTx};

use crate::AuditError;
use crate::store::{SEQUENCER_LOCK, corrupt, frontier, hash_from, head, lock_key};

/// Events integrated per transaction at most; the rest wait for the next pass.
const BATCH: i64 = 5000;

/// Where an event landed in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    pub hash: Hash,
}

/// Integrates the committed pending events of one agency; returns how many were sequenced.
pub async fn sequence_agency(
    pool: &PgPool,
    agency_id: Uuid,
    ident: &AgencyIdent,
) -> Result<usize, AuditError> {
    let mut total = 0;
    loop {
        let n = sequence_batch(pool, agency_id, ident).await?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

async fn sequence_batch(
    pool: &PgPool,
    agency_id: Uuid,
    ident: &AgencyIdent,
) -> Result<usize, AuditError> {
    let mut tx = TenantTx::begin_for(pool, agency_id, ident.clone()).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(agency_id, SEQUENCER_LOCK))
        .execute(tx.conn())
        .await?;
    // Planned afresh, as the chain reads in `store`: the pending table swings between empty and
    // a backlog of thousands, with dead rows until vacuum.
    let pending = sqlx::query(
        "SELECT id, recorded_at, event FROM audit_pending ORDER BY recorded_at, id LIMIT $1",
    )
    .bind(BATCH)
    .persistent(false)
    .fetch_all(tx.conn())
    .await?;
    if pending.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let (size, last) = head(tx.conn(), agency_id).await?;
    let mut prev = match last {
        Some(h) => h,
        None => genesis_hash(&agency_id.to_string()),
    };
    let mut range = frontier(tx.conn(), agency_id, size).await?;

    let n = pending.len();
    let mut ids = Vec::with_capacity(n);
    let mut entry_ids = Vec::with_capacity(n);
    let mut quarantined = Quarantined::default();
    let (mut seqs, mut times, mut actions, mut actors, mut lines, mut hashes, mut prevs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut levels, mut idxs, mut node_hashes) = (Vec::new(), Vec::new(), Vec::new());
    for (i, row) in pending.iter().enumerate() {
        let id: Uuid = row.try_get("id")?;
        let raw: serde_json::Value = row.try_get("event")?;
        let seq = size + i as u64 + 1;
        let sealed = serde_json::from_value::<PendingEvent>(raw.clone())
            .map_err(|e| e.to_string())
            .and_then(|event| event.seal(seq, prev).map_err(|e| e.to_string()));
        let entry = match sealed {
            Ok(entry) => entry,
            Err(reason) => {
                // One row the chain cannot hold must not hold up every later event: it is kept
                // aside as it was, and a `system.error` entry takes its place, naming it.
                tracing::error!(agency_id = %agency_id, event = %id, %reason, "audit event quarantined");
                let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
                let stand_in = quarantine_entry(agency_id, id, &raw, recorded_at, &reason);
                quarantined.push(id, recorded_at, raw, reason);
                stand_in
                    .seal(seq, prev)
                    .map_err(|e| corrupt(agency_id, format!("quarantine entry: {e}")))?
            }
        };
        entry_ids.push(
            Uuid::parse_str(&entry.id)
                .map_err(|e| corrupt(agency_id, format!("entry id {}: {e}", entry.id)))?,
        );
        let line = entry
            .canonical_json()
            .map_err(|e| corrupt(agency_id, e.to_string()))?;
        let ts = DateTime::parse_from_rfc3339(&entry.timestamp)
            .map_err(|e| corrupt(agency_id, format!("event {id} timestamp: {e}")))?;
        for (node, hash) in range
            .append(leaf_hash(&entry.hash))
            .map_err(|e| corrupt(agency_id, e.to_string()))?
        {
            levels.push(i16::from(node.level));
            idxs.push(node.index as i64);
            node_hashes.push(hash.0.to_vec());
        }
        ids.push(id);
        seqs.push(seq as i64);
        times.push(ts.to_utc());
        actions.push(entry.action.clone());
        actors.push(
            entry
                .actor
                .user_id
                .as_deref()
                .and_then(|u| Uuid::parse_str(u).ok()),
        );
        lines.push(String::from_utf8(line).map_err(|e| corrupt(agency_id, e.to_string()))?);
        hashes.push(entry.hash.0.to_vec());
        prevs.push(prev.0.to_vec());
        prev = entry.hash;
    }
    sqlx::query(
        "INSERT INTO audit_log (seq, id, ts, action, actor_user_id, entry, hash, prev_hash, resource_ids) \
         SELECT u.seq, u.id, u.ts, u.action, u.actor, u.entry, u.hash, u.prev, \
                ARRAY(SELECT value FROM jsonb_each_text((u.entry::jsonb) -> 'resource')) \
         FROM unnest($1::bigint[], $2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[], $6::text[], $7::bytea[], $8::bytea[]) \
              AS u(seq, id, ts, action, actor, entry, hash, prev)",
    )
    .bind(&seqs)
    .bind(&entry_ids)
    .bind(&times)
    .bind(&actions)
    .bind(&actors)
    .bind(&lines)
    .bind(&hashes)
    .bind(&prevs)
    .execute(tx.conn())
    .await?;
    sqlx::query("INSERT INTO audit_merkle_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])")
        .bind(&levels)
        .bind(&idxs)
        .bind(&node_hashes)
        .execute(tx.conn())
        .await?;
    if !quarantined.ids.is_empty() {
        sqlx::query(
            "INSERT INTO audit_quarantine (id, recorded_at, event, reason) \
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[], $4::text[])",
        )
        .bind(&quarantined.ids)
        .bind(&quarantined.recorded_at)
        .bind(&quarantined.events)
        .bind(&quarantined.reasons)
        .execute(tx.conn())
        .await?;
    }
    sqlx::query("DELETE FROM audit_pending WHERE id = ANY($1)")
        .bind(&ids)
        .persistent(false)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// Pending events set aside in one pass ([`quarantine_entry`]).
#[derive(Default)]
struct Quarantined {
    ids: Vec<Uuid>,
    recorded_at: Vec<DateTime<Utc>>,
    events: Vec<serde_json::Value>,
    reasons: Vec<String>,
}

impl Quarantined {
    fn push(&mut self, id: Uuid, at: DateTime<Utc>, event: serde_json::Value, reason: String) {
        self.ids.push(id);
        self.recorded_at.push(at);
        self.events.push(event);
        self.reasons.push(reason);
    }
}

/// The `system.error` entry that takes the place in the chain of pending event `id`, which
/// cannot be sealed (`reason`): it names the event, when it was recorded and the SHA-256 of what
/// was stored, which `audit_quarantine` keeps.
fn quarantine_entry(
    agency_id: Uuid,
    id: Uuid,
    raw: &serde_json::Value,
    recorded_at: DateTime<Utc>,
    reason: &str,
) -> PendingEvent {
    let stored = raw.to_string();
    let reason: String = reason.chars().take(1000).collect();
    let event = crate::Event::new("system.error", crate::Actor::system())
        .failure()
        .resource("quarantinedEventId", id.to_string())
        .detail(serde_json::json!({
            "error": "audit event quarantined",
            "reason": reason,
            "recordedAt": recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "storedSha256": hex::encode(Sha256::digest(stored.as_bytes())),
        }));
    event.pending(agency_id)
}

/// Where the committed event `event_id` landed, sequencing it now if no sequencer has yet: a
/// request that needs its receipt gets it within milliseconds of its commit.
pub async fn receipt(
    pool: &PgPool,
    agency_id: Uuid,
    ident: &AgencyIdent,
    event_id: Uuid,
) -> Result<Receipt, AuditError> {
    for attempt in 0..3 {
        let mut tx = TenantTx::begin_for(pool, agency_id, ident.clone()).await?;
        let row = sqlx::query("SELECT seq, hash FROM audit_log WHERE id = $1")
            .bind(event_id)
            .persistent(false)
            .fetch_optional(tx.conn())
            .await?;
        tx.rollback().await?;
        if let Some(r) = row {
            let seq: i64 = r.try_get("seq")?;
            let hash: Vec<u8> = r.try_get("hash")?;
            return Ok(Receipt {
                seq: seq as u64,
                hash: hash_from(agency_id, &hash)?,
            });
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sequence_agency(pool, agency_id, ident).await?;
    }
    Err(AuditError::ReceiptTimeout(event_id))
}
