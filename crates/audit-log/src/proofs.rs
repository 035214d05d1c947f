//! Inclusion and consistency proofs served from stored subtree hashes: O(log n) rows each.

use sqlx::Row;
use writ_audit_chain::{
    ConsistencyProof, Hash, InclusionProof, consistency_proof_nodes, inclusion_proof_nodes,
};
use writ_tenancy::TenantTx;

use crate::store::{element_hashes, frontier, hash_from};
use crate::{AuditError, store};

fn out_of_range(what: String) -> AuditError {
    AuditError::InvalidRequest(what)
}

/// Root of the tree of `size` leaves.
pub async fn root_at(tx: &mut TenantTx, size: u64) -> Result<Hash, AuditError> {
    let id = tx.agency_id();
    Ok(frontier(tx.conn(), id, size).await?.root())
}

/// Proof that entry `seq` is in the tree of `tree_size` leaves.
pub async fn inclusion_proof(
    tx: &mut TenantTx,
    seq: u64,
    tree_size: u64,
) -> Result<InclusionProof, AuditError> {
    let id = tx.agency_id();
    let current = tree_size_checked(tx, tree_size).await?;
    if seq == 0 || seq > tree_size {
        return Err(out_of_range(format!(
            "seq must be between 1 and treeSize ({tree_size}); the log holds {current}"
        )));
    }
    let row = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(seq as i64)
        .persistent(false)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AuditError::NotFound)?;
    let entry_hash = hash_from(id, &row.try_get::<Vec<u8>, _>("hash")?)?;
    let nodes =
        inclusion_proof_nodes(seq - 1, tree_size).map_err(|e| store::corrupt(id, e.to_string()))?;
    let elements = element_hashes(tx.conn(), id, &nodes).await?;
    let root = root_at(tx, tree_size).await?;
    Ok(InclusionProof::from_node_hashes(
        seq,
        tree_size,
        &entry_hash,
        &elements,
        root,
    ))
}

/// Proof that the tree of `from` leaves is a prefix of the tree of `to` leaves.
pub async fn consistency_proof(
    tx: &mut TenantTx,
    from: u64,
    to: u64,
) -> Result<ConsistencyProof, AuditError> {
    let id = tx.agency_id();
    tree_size_checked(tx, to).await?;
    if from == 0 || from > to {
        return Err(out_of_range(format!(
            "need 1 ≤ from ≤ to, got from={from} to={to}"
        )));
    }
    let nodes = consistency_proof_nodes(from, to).map_err(|e| store::corrupt(id, e.to_string()))?;
    let elements = element_hashes(tx.conn(), id, &nodes).await?;
    let from_root = root_at(tx, from).await?;
    let to_root = root_at(tx, to).await?;
    Ok(ConsistencyProof::from_node_hashes(
        from, to, from_root, to_root, &elements,
    ))
}

async fn tree_size_checked(tx: &mut TenantTx, size: u64) -> Result<u64, AuditError> {
    let current = store::tree_size(tx.conn()).await?;
    if size == 0 || size > current {
        return Err(out_of_range(format!(
            "treeSize must be between 1 and {current}"
        )));
    }
    Ok(current)
}
