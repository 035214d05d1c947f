//! Re-verification of the live chain in the database: every entry's hash and link, the stored
//! columns against the entry, every stored Merkle node against the recomputed tree, and every
//! checkpoint's signature and root. Reports the first bad seq.

use std::collections::BTreeMap;

use sqlx::{PgPool, Row};
use writ_audit_chain::{ChainVerifier, CompactRange, Entry, NodeId, SignedNote, verify_note};
use writ_tenancy::{Agency, TenantTx};

use crate::store::nodes;
use crate::{AuditError, verifier_keys};

const PAGE: i64 = 10_000;

/// The outcome of [`verify_live`].
#[derive(Debug, Clone, Default)]
pub struct LiveReport {
    pub entries: u64,
    pub checkpoints: u64,
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

    let mut chain = ChainVerifier::from_genesis(&id.to_string());
    let mut tree = CompactRange::new();
    if let Some(root) = roots_wanted.get(&0)
        && root.iter().any(|r| *r != tree.root())
    {
        report.fail(None, "checkpoint of the empty tree has a wrong root".into());
    }
    let mut next: i64 = 1;
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
                    format!("a signed checkpoint at size {} has another root: entries before it were changed", tree.size()),
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
            .filter(|(s, _)| **s > report.entries)
    {
        report.fail(
            Some(report.entries + 1),
            format!(
                "log truncated: a checkpoint was signed at size {size}, the log holds {} entries",
                report.entries
            ),
        );
    }
    tx.rollback().await?;
    Ok(report)
}
