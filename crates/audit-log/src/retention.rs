//! Retention: each agency keeps its audit entries for `audit.retention` days (never under 365,
//! CJIS AU-11), then prunes them — unless a legal hold is active.
//!
//! Pruning signs a minimum-index statement (docs/AUDIT-FORMAT.md §8) naming the new first seq N,
//! the hash entry N links to and the tree head it was cut from, stores it, deletes the entries
//! below N and records `audit.pruned`, all in one transaction. The Merkle nodes and checkpoints
//! stay, so every proof of the remaining entries still verifies. The agency role may not delete
//! entries: the delete runs as the owner, and the database itself refuses any delete at or above
//! the latest signed minimum index or under a legal hold.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;
use writ_audit_chain::{ChainVerifier, Entry, Hash, MinimumIndex, NodeId, genesis_hash};
use writ_keys::KeyProvider;
use writ_tenancy::{Agency, TenantTx};

use crate::store::{corrupt, frontier, hash_from, lock_key, nodes};
use crate::{Actor, AuditError, Caller, Event, origin, record};

/// The policy name, in the agency's `policies` table: `{"days": N}`.
pub const RETENTION_POLICY: &str = "audit.retention";
/// CJIS AU-11: audit records are kept at least one year.
pub const MIN_RETENTION_DAYS: u32 = 365;
/// A hundred years: longer is a typo, not a policy.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

const PAGE: i64 = 10_000;

/// How long an agency keeps its audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    pub days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            days: MIN_RETENTION_DAYS,
        }
    }
}

impl RetentionPolicy {
    /// Reads a policy value, which must be exactly `{"days": N}` with N whole and at least 365.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let shape = || {
            format!(
                "{RETENTION_POLICY} is {{\"days\": N}}, a whole number of days from \
                 {MIN_RETENTION_DAYS} (CJIS AU-11: at least one year) to {MAX_RETENTION_DAYS}"
            )
        };
        let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
            return Err(shape());
        };
        let days = object
            .get("days")
            .and_then(Value::as_u64)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(d))
            .ok_or_else(shape)?;
        Ok(Self { days })
    }

    /// The agency's policy, or the default of 365 days when none is set.
    pub async fn load(tx: &mut TenantTx) -> Result<Self, RetentionError> {
        Self::load_conn(tx.conn()).await
    }

    async fn load_conn(conn: &mut PgConnection) -> Result<Self, RetentionError> {
        let value: Option<Value> = sqlx::query("SELECT value FROM policies WHERE name = $1")
            .bind(RETENTION_POLICY)
            .fetch_optional(conn)
            .await?
            .map(|r| r.try_get("value"))
            .transpose()?;
        match value {
            None => Ok(Self::default()),
            Some(v) => Self::from_value(&v).map_err(RetentionError::InvalidPolicy),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Pruning refused: legal holds are active.
    #[error(
        "the audit log is under {0} active legal hold(s): nothing is pruned until they are released"
    )]
    LegalHold(u64),
    /// The stored retention policy is not one Writ would accept.
    #[error("retention policy: {0}")]
    InvalidPolicy(String),
    /// A request field is invalid.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such legal hold")]
    HoldNotFound,
    #[error("the legal hold was already released")]
    HoldAlreadyReleased,
    /// The archive policy or record could not be read.
    #[error("archive state: {0}")]
    Archive(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for RetentionError {
    fn from(e: sqlx::Error) -> Self {
        Self::Audit(e.into())
    }
}

impl From<writ_tenancy::TenancyError> for RetentionError {
    fn from(e: writ_tenancy::TenancyError) -> Self {
        Self::Audit(e.into())
    }
}

impl From<writ_keys::KeyError> for RetentionError {
    fn from(e: writ_keys::KeyError) -> Self {
        Self::Audit(e.into())
    }
}

// ---------------------------------------------------------------------------------------------
// Legal holds
// ---------------------------------------------------------------------------------------------

/// A legal hold on the agency's audit log.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalHold {
    pub id: Uuid,
    pub reason: String,
    pub placed_by: Uuid,
    pub placed_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<Uuid>,
}

impl LegalHold {
    pub fn is_active(&self) -> bool {
        self.released_at.is_none()
    }

    fn from_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            reason: r.try_get("reason")?,
            placed_by: r.try_get("placed_by")?,
            placed_at: r.try_get("placed_at")?,
            released_at: r.try_get("released_at")?,
            released_by: r.try_get("released_by")?,
        })
    }
}

const HOLD_COLUMNS: &str = "id, reason, placed_by, placed_at, released_at, released_by";

/// Every legal hold of the agency, newest first.
pub async fn list_legal_holds(tx: &mut TenantTx) -> Result<Vec<LegalHold>, RetentionError> {
    let rows = sqlx::query(
        "SELECT id, reason, placed_by, placed_at, released_at, released_by \
         FROM audit_legal_holds ORDER BY placed_at DESC, id",
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .iter()
        .map(LegalHold::from_row)
        .collect::<Result<_, _>>()?)
}

fn placing_user(caller: &Caller) -> Result<Uuid, RetentionError> {
    caller.user_id().ok_or(RetentionError::Invalid {
        field: "actor",
        reason: "legal holds are placed and released by a user".into(),
    })
}

/// Places a hold (recorded as `audit.legal_hold.placed` in the same transaction).
pub async fn place_legal_hold(
    tx: &mut TenantTx,
    caller: &Caller,
    reason: &str,
) -> Result<LegalHold, RetentionError> {
    let user = placing_user(caller)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(RetentionError::Invalid {
            field: "reason",
            reason: "1 to 2000 characters: the matter, case or order the hold is for".into(),
        });
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_legal_holds (id, reason, placed_by) VALUES ($1, $2, $3) RETURNING {HOLD_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(reason)
    .bind(user)
    .fetch_one(tx.conn())
    .await?;
    let hold = LegalHold::from_row(&row)?;
    record(
        tx,
        &caller
            .event("audit.legal_hold.placed")
            .resource("legalHoldId", hold.id.to_string())
            .detail(json!({ "reason": hold.reason })),
    )
    .await?;
    Ok(hold)
}

/// Releases an active hold (recorded as `audit.legal_hold.released` in the same transaction).
pub async fn release_legal_hold(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<LegalHold, RetentionError> {
    let user = placing_user(caller)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE audit_legal_holds SET released_at = now(), released_by = $2 \
         WHERE id = $1 AND released_at IS NULL RETURNING {HOLD_COLUMNS}"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        let exists = sqlx::query("SELECT 1 FROM audit_legal_holds WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .is_some();
        return Err(if exists {
            RetentionError::HoldAlreadyReleased
        } else {
            RetentionError::HoldNotFound
        });
    };
    let hold = LegalHold::from_row(&row)?;
    record(
        tx,
        &caller
            .event("audit.legal_hold.released")
            .resource("legalHoldId", hold.id.to_string())
            .detail(json!({ "reason": hold.reason, "placedAt": hold.placed_at })),
    )
    .await?;
    Ok(hold)
}

// ---------------------------------------------------------------------------------------------
// Minimum index
// ---------------------------------------------------------------------------------------------

/// A stored minimum-index statement.
#[derive(Debug, Clone)]
pub struct StoredMinimumIndex {
    pub minimum_index: u64,
    pub prev_hash: Hash,
    pub tree_size: u64,
    pub root: Hash,
    /// The signed note text.
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

fn stored_from_row(
    agency: Uuid,
    r: &sqlx::postgres::PgRow,
) -> Result<StoredMinimumIndex, AuditError> {
    Ok(StoredMinimumIndex {
        minimum_index: r.try_get::<i64, _>("minimum_index")? as u64,
        prev_hash: hash_from(agency, &r.try_get::<Vec<u8>, _>("prev_hash")?)?,
        tree_size: r.try_get::<i64, _>("tree_size")? as u64,
        root: hash_from(agency, &r.try_get::<Vec<u8>, _>("root")?)?,
        note: r.try_get("note")?,
        signed_at: r.try_get("signed_at")?,
    })
}

const STATEMENT_COLUMNS: &str = "minimum_index, prev_hash, tree_size, root, note, signed_at";

/// Every minimum-index statement of the agency, in the order they were made.
pub(crate) async fn minimum_indexes(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Vec<StoredMinimumIndex>, AuditError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {STATEMENT_COLUMNS} FROM audit_minimum_index ORDER BY id"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| stored_from_row(agency, r)).collect()
}

/// The statement in force (the highest minimum index), if the log was ever pruned.
pub async fn latest_minimum_index(
    tx: &mut TenantTx,
) -> Result<Option<StoredMinimumIndex>, AuditError> {
    let agency = tx.agency_id();
    latest_conn(tx.conn(), agency).await
}

async fn latest_conn(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Option<StoredMinimumIndex>, AuditError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {STATEMENT_COLUMNS} FROM audit_minimum_index ORDER BY minimum_index DESC, id DESC LIMIT 1"
    )))
    .fetch_optional(conn)
    .await?;
    row.map(|r| stored_from_row(agency, &r)).transpose()
}

/// Pruning and the readers that must see a log whole (exports, live verification) exclude each
/// other: readers take this lock shared, pruning exclusive.
pub(crate) const PRUNE_LOCK: u8 = 0xa3;

pub(crate) async fn lock_against_pruning(tx: &mut TenantTx) -> Result<(), AuditError> {
    let key = lock_key(tx.agency_id(), PRUNE_LOCK);
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(key)
        .execute(tx.conn())
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------------------------

/// Whether [`prune_agency`] deletes, or only says what it would delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneMode {
    Prune,
    DryRun,
}

/// What a pruning did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    pub retention_days: u32,
    /// Entries older than this are due.
    pub cutoff: DateTime<Utc>,
    /// The minimum index before this pruning (1 when never pruned).
    pub previous_minimum_index: u64,
    /// The minimum index after it (equal to the previous one when nothing was due).
    pub minimum_index: u64,
    /// Entries deleted (or due, in a dry run).
    pub pruned: u64,
    pub tree_size: u64,
    /// The signed statement, when entries were deleted.
    pub statement: Option<String>,
    /// The `audit.pruned` event, when entries were deleted.
    pub event_id: Option<Uuid>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Prunes the agency's entries older than its retention period as of `as_of` (the signing time
/// is the real clock): computes the new minimum index N (every entry below it is older than the
/// cutoff, and at least the last entry stays), checks the chain it is about to delete, signs and
/// stores the minimum-index statement, deletes entries below N and records `audit.pruned` — in
/// one transaction. Refuses while a legal hold is active.
pub async fn prune_agency(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    as_of: DateTime<Utc>,
    mode: PruneMode,
) -> Result<PruneReport, RetentionError> {
    let mut tx = TenantTx::begin_still_active(pool, agency).await?;
    // Roll back at once on failure: the locks taken must not wait for the pooled connection's
    // next use to be released.
    match prune_in(&mut tx, pool, keys, agency, as_of, mode).await {
        Ok(report) if report.event_id.is_some() => {
            tx.commit().await?;
            Ok(report)
        }
        Ok(report) => {
            tx.rollback().await?;
            Ok(report)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "audit pruning: rollback failed");
            }
            Err(e)
        }
    }
}

/// [`prune_agency`] inside its transaction; commits nothing itself.
async fn prune_in(
    tx: &mut TenantTx,
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    as_of: DateTime<Utc>,
    mode: PruneMode,
) -> Result<PruneReport, RetentionError> {
    let id = agency.id;
    // As the owner (the session user) for the rest: the agency role may not delete entries.
    sqlx::query("SELECT set_config('role', 'none', true)")
        .execute(tx.conn())
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(id, PRUNE_LOCK))
        .execute(tx.conn())
        .await?;
    // Holds placed while this runs wait for it, and it sees every hold committed before.
    sqlx::query("LOCK TABLE audit_legal_holds IN SHARE MODE")
        .execute(tx.conn())
        .await?;
    let holds: i64 =
        sqlx::query("SELECT count(*) FROM audit_legal_holds WHERE released_at IS NULL")
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
    if holds > 0 {
        return Err(RetentionError::LegalHold(holds as u64));
    }
    let policy = RetentionPolicy::load_conn(tx.conn()).await?;
    let cutoff = as_of - chrono::Duration::days(i64::from(policy.days));
    let latest = latest_conn(tx.conn(), id).await?;
    let current = latest.as_ref().map_or(1, |l| l.minimum_index);
    let size = crate::store::tree_size(tx.conn()).await?;

    // The first entry that is not due; when all are, the last one stays so the chain keeps a head.
    let first_kept: Option<i64> =
        sqlx::query("SELECT seq FROM audit_log WHERE seq >= $1 AND ts >= $2 ORDER BY seq LIMIT 1")
            .bind(current as i64)
            .bind(cutoff)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    let mut target = first_kept.map_or(size, |s| s as u64).min(size);
    // An agency that archives to its own storage loses nothing to pruning that is not archived:
    // the minimum index never passes the end of the last archived range.
    let archives = crate::archive::ArchivePolicy::load(tx)
        .await
        .map_err(|e| RetentionError::Archive(e.to_string()))?;
    if archives.is_some() {
        let archived_to = crate::archive::last_archive(tx)
            .await
            .map_err(|e| RetentionError::Archive(e.to_string()))?
            .map_or(0, |a| a.to_seq);
        target = target.min(archived_to + 1);
    }
    let mut report = PruneReport {
        dry_run: mode == PruneMode::DryRun,
        retention_days: policy.days,
        cutoff,
        previous_minimum_index: current,
        minimum_index: current,
        pruned: 0,
        tree_size: size,
        statement: None,
        event_id: None,
    };
    if target <= current {
        return Ok(report);
    }
    report.minimum_index = target;
    report.pruned = target - current;

    let start_prev = match &latest {
        Some(l) => l.prev_hash,
        None => genesis_hash(&id.to_string()),
    };
    let prev_hash = check_segment(tx.conn(), id, current, target, start_prev).await?;
    if mode == PruneMode::DryRun {
        return Ok(report);
    }

    let root = frontier(tx.conn(), id, size).await?.root();
    let signed_at = Utc::now();
    let statement = MinimumIndex {
        origin: origin(id),
        tree_size: size,
        root,
        minimum_index: target,
        prev_hash,
        time: ts(signed_at),
    };
    statement
        .validate()
        .map_err(|e| corrupt(id, e.to_string()))?;
    // Only the current key signs: a statement is made once, at the time of pruning.
    let note =
        crate::checkpoint::sign_note(pool, keys, id, statement.body(), |k| k.valid_to.is_none())
            .await?;
    sqlx::query(
        "INSERT INTO audit_minimum_index \
         (minimum_index, prev_hash, tree_size, root, note, signed_at, pruned, retention_days) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(target as i64)
    .bind(prev_hash.0.to_vec())
    .bind(size as i64)
    .bind(root.0.to_vec())
    .bind(&note)
    .bind(signed_at)
    .bind(report.pruned as i64)
    .bind(policy.days as i32)
    .execute(tx.conn())
    .await?;
    let deleted = sqlx::query("DELETE FROM audit_log WHERE seq < $1")
        .bind(target as i64)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if deleted != report.pruned {
        return Err(corrupt(
            id,
            format!(
                "pruning below seq {target} deleted {deleted} entries, expected {}",
                report.pruned
            ),
        )
        .into());
    }
    sqlx::query("SELECT set_config('role', $1, true)")
        .bind(agency.ident.as_str())
        .execute(tx.conn())
        .await?;
    let event_id = record(
        tx,
        &Event::new("audit.pruned", Actor::system()).detail(json!({
            "count": deleted,
            "minimumIndex": target,
            "previousMinimumIndex": current,
            "retentionDays": policy.days,
            "cutoff": ts(cutoff),
            "treeSize": size,
        })),
    )
    .await?;
    report.statement = Some(note);
    report.event_id = Some(event_id);
    Ok(report)
}

/// Verifies the entries `from .. to` about to be pruned (hash, link from `start_prev`, stored
/// leaf) and returns the hash entry `to` links to: evidence of tampering is never deleted.
async fn check_segment(
    conn: &mut PgConnection,
    agency: Uuid,
    from: u64,
    to: u64,
    start_prev: Hash,
) -> Result<Hash, AuditError> {
    let mut chain = ChainVerifier::resume(&agency.to_string(), from, start_prev);
    let mut prev = start_prev;
    let mut next = from;
    while next < to {
        let upto = (next + PAGE as u64).min(to);
        let rows = sqlx::query(
            "SELECT seq, entry FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(next as i64)
        .bind(upto as i64)
        .fetch_all(&mut *conn)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut leaves = Vec::with_capacity(rows.len());
        for row in &rows {
            let text: String = row.try_get("entry")?;
            let entry = Entry::from_json(text.as_bytes())
                .map_err(|e| corrupt(agency, format!("cannot prune: {e}")))?;
            chain
                .push(&entry)
                .map_err(|f| corrupt(agency, format!("cannot prune a broken chain: {f}")))?;
            ids.push(NodeId::leaf(entry.seq - 1));
            leaves.push(entry.leaf_hash());
            prev = entry.hash;
        }
        if rows.len() as u64 != upto - next {
            return Err(corrupt(
                agency,
                format!("cannot prune: entries missing between seq {next} and {upto}"),
            ));
        }
        if let Some((node, _)) = ids
            .iter()
            .zip(nodes(conn, agency, &ids).await?)
            .zip(&leaves)
            .find(|((_, stored), leaf)| stored != *leaf)
            .map(|(pair, _)| pair)
        {
            return Err(corrupt(
                agency,
                format!(
                    "cannot prune: stored leaf of seq {} differs from the entry",
                    node.index + 1
                ),
            ));
        }
        next = upto;
    }
    let row = sqlx::query("SELECT prev_hash FROM audit_log WHERE seq = $1")
        .bind(to as i64)
        .fetch_one(&mut *conn)
        .await?;
    let link = hash_from(agency, &row.try_get::<Vec<u8>, _>("prev_hash")?)?;
    if link != prev {
        return Err(corrupt(
            agency,
            format!("cannot prune: entry {to} does not link to entry {}", to - 1),
        ));
    }
    Ok(prev)
}

/// Runs forever: prunes every active agency now and then every `interval`. Spawn it next to the
/// HTTP server; safe in every replica (pruning takes a per-agency lock).
pub async fn run_pruner(pool: PgPool, keys: KeyProvider, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        for agency in &writ_tenancy::active_agencies(&pool, "audit pruner").await {
            match prune_agency(&pool, &keys, agency, Utc::now(), PruneMode::Prune).await {
                Ok(r) if r.pruned > 0 => tracing::info!(
                    agency_id = %agency.id, pruned = r.pruned, minimum_index = r.minimum_index,
                    "audit entries pruned"
                ),
                Ok(_) => {}
                Err(RetentionError::LegalHold(n)) => {
                    tracing::info!(agency_id = %agency.id, holds = n, "audit pruning held")
                }
                Err(e) => tracing::error!(agency_id = %agency.id, error = %e, "audit pruner"),
            }
        }
    }
}
