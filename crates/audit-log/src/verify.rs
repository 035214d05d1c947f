//! Re-verification of the live chain in the database: every entry's hash and link, the stored
//! columns against the entry, every stored Merkle node against the recomputed tree, and every
//! checkpoint's signature and root. Reports the first bad seq.
//!
//! A pruned log is verified from its signed minimum index: the statement's signature, the chain
//! resumed at its index with its prevHash, the tree resumed from the stored frontier before it,
//! its root checked like a checkpoint's, and the checkpoints signed before the pruned entries'
//! end checked by consistency proofs from stored nodes. Without a valid statement, a log that
//! does not start at seq 1 fails at seq 1.

use std::collections::BTreeMap;

use sqlx::{PgPool, Row};
use writ_audit_chain::{
    ChainVerifier, CompactRange, Entry, Hash, MinimumIndex, NodeId, SignedNote,
    consistency_proof_nodes, empty_root, fold_range, verify_consistency, verify_note,
};
use writ_tenancy::{Agency, TenantTx};

use crate::retention::{StoredMinimumIndex, lock_against_pruning, minimum_indexes};
use crate::store::{element_hashes, frontier, nodes};
use crate::{AuditError, origin, verifier_keys};

const PAGE: i64 = 10_000;

/// The outcome of [`verify_live`].
#[derive(Debug, Clone, Default)]
pub struct LiveReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// The signed minimum index the log starts at, when it was pruned.
    pub minimum_index: Option<u64>,
    /// The first failure: (seq when it concerns an entry, reason).
    pub failure: Option<(Option<u64>, String)>,
}

impl LiveReport {
    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }

    fn fail(&mut self, seq: Option<u64>, reason: String) {
        if self.failure.is_none() {
            self.failure = Some((seq, reason));
        }
    }
}

pub async fn verify_live(pool: &PgPool, agency: &Agency) -> Result<LiveReport, AuditError> {
    let id = agency.id;
    let keys = verifier_keys(pool, id).await?;
    let mut tx = TenantTx::begin(pool, agency).await?;
    lock_against_pruning(&mut tx).await?;
    let mut report = LiveReport::default();

    // Checkpoints first, so the stream below can compare roots as it passes their sizes.
    let mut roots_wanted: BTreeMap<u64, Vec<writ_audit_chain::Hash>> = BTreeMap::new();
    for row in sqlx::query("SELECT tree_size, note FROM audit_checkpoints ORDER BY id")
        .fetch_all(tx.conn())
        .await?
    {
        report.checkpoints += 1;
        let size = row.try_get::<i64, _>("tree_size")? as u64;
        let note: String = row.try_get("note")?;
        let checked = SignedNote::parse(&note)
            .map_err(|e| e.to_string())
            .and_then(|n| {
                verify_note(&n, &keys)
                    .map_err(|e| e.to_string())
                    .and(n.checkpoint().map_err(|e| e.to_string()))
            });
        match checked {
            Ok(cp) if cp.size == size => roots_wanted.entry(size).or_default().push(cp.root),
            Ok(cp) => report.fail(
                None,
                format!(
                    "checkpoint row of size {size} carries a note of size {}",
                    cp.size
                ),
            ),
            Err(e) => report.fail(
                None,
                format!("checkpoint at size {size}: signature or format invalid: {e}"),
            ),
        }
    }

    // Where the chain starts: seq 1, or the signed minimum index of a pruned log.
    let statements = minimum_indexes(tx.conn(), id).await?;
    let start = check_statements(&statements, &keys, id, &mut report, &mut roots_wanted);
    let (mut chain, mut tree, mut next) = match &start {
        Some(s) => {
            report.minimum_index = Some(s.minimum_index);
            let before = match frontier(tx.conn(), id, s.minimum_index - 1).await {
                Ok(tree) => tree,
                Err(AuditError::Corrupt { reason, .. }) => {
                    report.fail(None, reason);
                    tx.rollback().await?;
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            (
                ChainVerifier::resume(&id.to_string(), s.minimum_index, s.prev_hash),
                before,
                s.minimum_index as i64,
            )
        }
        None => (
            ChainVerifier::from_genesis(&id.to_string()),
            CompactRange::new(),
            1,
        ),
    };
    if let Some(s) = &start {
        // Signed heads the stream never reaches: their trees must be prefixes of the statement's
        // (whose root the stream checks), by proofs from the stored nodes.
        let below: Vec<(u64, Hash)> = roots_wanted
            .range(..tree.size())
            .flat_map(|(size, roots)| roots.iter().map(|r| (*size, *r)))
            .collect();
        for (size, root) in below {
            if !consistent(&mut tx, size, root, s.tree_size, s.root).await? {
                report.fail(
                    None,
                    format!(
                        "the signed tree head at size {size} is not a prefix of the tree the minimum index was cut from"
                    ),
                );
            }
        }
    }
    if let Some(root) = roots_wanted.get(&tree.size())
        && root.iter().any(|r| *r != tree.root())
    {
        report.fail(
            None,
            format!(
                "a signed tree head at size {} has another root than the stored nodes",
                tree.size()
            ),
        );
    }
    'pages: loop {
        let rows = sqlx::query("SELECT seq, entry, hash, prev_hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(next)
            .bind(PAGE)
            .fetch_all(tx.conn())
            .await?;
        if rows.is_empty() {
            break;
        }
        let mut completed: Vec<(NodeId, writ_audit_chain::Hash)> = Vec::new();
        for row in &rows {
            let seq = row.try_get::<i64, _>("seq")? as u64;
            let text: String = row.try_get("entry")?;
            let entry = match Entry::from_json(text.as_bytes()) {
                Ok(e) => e,
                Err(e) => {
                    report.fail(
                        Some(seq),
                        format!("entry is not valid JSON of the format: {e}"),
                    );
                    break 'pages;
                }
            };
            if let Err(f) = chain.push(&entry) {
                report.fail(Some(f.seq), f.reason.to_string());
                break 'pages;
            }
            let hash: Vec<u8> = row.try_get("hash")?;
            let prev: Vec<u8> = row.try_get("prev_hash")?;
            if entry.seq != seq || hash != entry.hash.0 || prev != entry.prev_hash.0 {
                report.fail(
                    Some(seq),
                    "stored seq/hash/prev_hash columns disagree with the entry".into(),
                );
                break 'pages;
            }
            match tree.append(entry.leaf_hash()) {
                Ok(nodes) => completed.extend(nodes),
                Err(e) => {
                    report.fail(Some(seq), e.to_string());
                    break 'pages;
                }
            }
            report.entries += 1;
            if let Some(roots) = roots_wanted.get(&tree.size())
                && roots.iter().any(|r| *r != tree.root())
            {
                report.fail(
                    Some(seq),
                    format!("a signed checkpoint or minimum index at size {} has another root: entries before it were changed", tree.size()),
                );
                break 'pages;
            }
            next = seq as i64 + 1;
        }
        let ids: Vec<NodeId> = completed.iter().map(|(n, _)| *n).collect();
        match nodes(tx.conn(), id, &ids).await {
            Ok(stored) => {
                if let Some(((node, _), _)) = completed
                    .iter()
                    .zip(&stored)
                    .find(|((_, want), got)| want != *got)
                {
                    let seq = node.leaf_range().map(|(_, end)| end).unwrap_or(0);
                    report.fail(
                        Some(seq),
                        format!(
                            "stored Merkle node {}/{} differs from the entries",
                            node.level, node.index
                        ),
                    );
                    break;
                }
            }
            Err(AuditError::Corrupt { reason, .. }) => {
                report.fail(None, reason);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if report.failure.is_none()
        && let Some((&size, _)) = roots_wanted
            .iter()
            .next_back()
            .filter(|(s, _)| **s > tree.size())
    {
        report.fail(
            Some(tree.size() + 1),
            format!(
                "log truncated: a checkpoint was signed at size {size}, the log ends at seq {}",
                tree.size()
            ),
        );
    }
    tx.rollback().await?;
    Ok(report)
}

/// Checks every stored minimum-index statement (signature, stored columns against the note, the
/// index never going down), adds each one's tree head to the roots to check, and returns the one
/// in force when they are all sound.
fn check_statements(
    statements: &[StoredMinimumIndex],
    keys: &[writ_audit_chain::VerifierKey],
    agency: uuid::Uuid,
    report: &mut LiveReport,
    roots_wanted: &mut BTreeMap<u64, Vec<Hash>>,
) -> Option<MinimumIndex> {
    let mut latest: Option<MinimumIndex> = None;
    for stored in statements {
        let at = stored.minimum_index;
        let statement = match MinimumIndex::from_signed_note(&stored.note, keys) {
            Ok((statement, _)) => statement,
            Err(e) => {
                report.fail(
                    None,
                    format!("minimum index {at}: signature or format invalid: {e}"),
                );
                return None;
            }
        };
        let matches = statement.origin == origin(agency)
            && statement.minimum_index == stored.minimum_index
            && statement.prev_hash == stored.prev_hash
            && statement.tree_size == stored.tree_size
            && statement.root == stored.root;
        if !matches {
            report.fail(
                None,
                format!("minimum index {at}: the stored row disagrees with its signed statement"),
            );
            return None;
        }
        if latest
            .as_ref()
            .is_some_and(|l| statement.minimum_index < l.minimum_index)
        {
            report.fail(None, format!("minimum index {at} is below an earlier one"));
            return None;
        }
        roots_wanted
            .entry(statement.tree_size)
            .or_default()
            .push(statement.root);
        latest = Some(statement);
    }
    latest
}

/// Whether the tree of `size` with `root` is a prefix of the tree of `to_size` with `to_root`,
/// by a consistency proof from the stored nodes.
async fn consistent(
    tx: &mut TenantTx,
    size: u64,
    root: Hash,
    to_size: u64,
    to_root: Hash,
) -> Result<bool, AuditError> {
    if size == 0 {
        return Ok(root == empty_root());
    }
    let id = tx.agency_id();
    let Ok(ids) = consistency_proof_nodes(size, to_size) else {
        return Ok(false);
    };
    let proof: Vec<Hash> = match element_hashes(tx.conn(), id, &ids).await {
        Ok(elements) => elements.iter().map(|e| fold_range(e)).collect(),
        Err(AuditError::Corrupt { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(verify_consistency(size, to_size, &root, &to_root, &proof).is_ok())
}
