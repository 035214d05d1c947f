//! Reads of the stored chain shared by the sequencer, the checkpointer and the proof server.

use sqlx::{PgConnection, Row};
use uuid::Uuid;
use writ_audit_chain::{CompactRange, Hash, NodeId};

use crate::AuditError;

pub(crate) fn corrupt(agency: Uuid, reason: impl Into<String>) -> AuditError {
    AuditError::Corrupt {
        agency: agency.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn hash_from(agency: Uuid, bytes: &[u8]) -> Result<Hash, AuditError> {
    Hash::from_slice(bytes).map_err(|_| corrupt(agency, "stored hash is not 32 bytes"))
}

/// Advisory-lock keys, one per agency and purpose, derived from the agency id.
pub(crate) fn lock_key(agency: Uuid, purpose: u8) -> i64 {
    let b = agency.as_bytes();
    let mut k = [0u8; 8];
    k.copy_from_slice(&b[..8]);
    k[0] ^= purpose;
    i64::from_be_bytes(k)
}
pub(crate) const SEQUENCER_LOCK: u8 = 0xa1;
pub(crate) const CHECKPOINTER_LOCK: u8 = 0xa2;

// The reads below are planned afresh on every call (`persistent(false)`: one more round trip).
// A prepared statement keeps the plan it got when first run on its pooled connection, and a new
// agency's chain tables are empty then: PostgreSQL rightly scans a one-page table, then keeps
// scanning it sequentially per pass while it grows to millions of rows, until autovacuum
// happens to analyze it or the connection is recycled. Planned now, they use the indexes.

/// Number of entries in the chain.
pub(crate) async fn tree_size(conn: &mut PgConnection) -> Result<u64, AuditError> {
    let size: i64 = sqlx::query("SELECT coalesce(max(seq), 0) FROM audit_log")
        .persistent(false)
        .fetch_one(conn)
        .await?
        .try_get(0)?;
    Ok(size as u64)
}

/// How many events of the agency are in its chain past `seq`, or still waiting to be sequenced:
/// what an export up to `seq` does not hold.
pub async fn events_after(tx: &mut writ_tenancy::TenantTx, seq: u64) -> Result<u64, AuditError> {
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_pending")
        .fetch_one(tx.conn())
        .await?;
    let size = tree_size(tx.conn()).await?;
    Ok(size.saturating_sub(seq) + pending as u64)
}

/// (size, hash of the last entry) of the chain; (0, None) when empty.
pub(crate) async fn head(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<(u64, Option<Hash>), AuditError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .persistent(false)
        .fetch_optional(conn)
        .await?;
    match row {
        None => Ok((0, None)),
        Some(r) => {
            let seq: i64 = r.try_get("seq")?;
            let hash: Vec<u8> = r.try_get("hash")?;
            Ok((seq as u64, Some(hash_from(agency, &hash)?)))
        }
    }
}

/// Fetches stored subtree hashes, in the order asked, in one query.
pub(crate) async fn nodes(
    conn: &mut PgConnection,
    agency: Uuid,
    ids: &[NodeId],
) -> Result<Vec<Hash>, AuditError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let levels: Vec<i16> = ids.iter().map(|n| i16::from(n.level)).collect();
    let idxs: Vec<i64> = ids.iter().map(|n| n.index as i64).collect();
    let rows = sqlx::query(
        "SELECT q.ord, n.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS q(level, idx, ord) \
         LEFT JOIN audit_merkle_nodes n ON n.level = q.level AND n.idx = q.idx ORDER BY q.ord",
    )
    .bind(&levels)
    .bind(&idxs)
    .persistent(false)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .zip(ids)
        .map(|(r, id)| {
            let hash: Option<Vec<u8>> = r.try_get("hash")?;
            let hash = hash.ok_or_else(|| {
                corrupt(
                    agency,
                    format!("missing Merkle node {}/{}", id.level, id.index),
                )
            })?;
            hash_from(agency, &hash)
        })
        .collect()
}

/// The compact range (frontier) of the tree of `size` leaves.
pub(crate) async fn frontier(
    conn: &mut PgConnection,
    agency: Uuid,
    size: u64,
) -> Result<CompactRange, AuditError> {
    let hashes = nodes(conn, agency, &CompactRange::frontier_ids(size)).await?;
    CompactRange::from_parts(size, hashes).map_err(|e| corrupt(agency, e.to_string()))
}

/// Fetches the hashes of proof elements, each a list of nodes folded into one range hash.
pub(crate) async fn element_hashes(
    conn: &mut PgConnection,
    agency: Uuid,
    elements: &[Vec<NodeId>],
) -> Result<Vec<Vec<Hash>>, AuditError> {
    let flat: Vec<NodeId> = elements.iter().flatten().copied().collect();
    let mut hashes = nodes(conn, agency, &flat).await?.into_iter();
    Ok(elements
        .iter()
        .map(|e| hashes.by_ref().take(e.len()).collect())
        .collect())
}
