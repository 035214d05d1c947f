//! Reads for auditors: sequenced entries by filter, a page at a time in seq order, and the
//! history of the agency's signing keys.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;
use writ_audit_chain::{AuditKey, Entry};
use writ_keys::KeyPurpose;
use writ_tenancy::TenantTx;

use crate::store::corrupt;
use crate::{AuditError, Caller, record};

/// The most entries one page may hold.
pub const MAX_PAGE: u32 = 1000;

/// Which entries to list; every bound is inclusive and every filter optional.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    /// Exact action code, e.g. `warrant.submitted`.
    pub action: Option<String>,
    /// The acting user.
    pub actor: Option<Uuid>,
    /// Any value of the entry's `resource` object (a warrant id, a document id, …).
    pub resource: Option<String>,
    pub from_time: Option<DateTime<Utc>>,
    pub to_time: Option<DateTime<Utc>>,
}

/// One page of entries in seq order; `next_seq` is where the next page starts, `None` at the end.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub items: Vec<Entry>,
    pub next_seq: Option<u64>,
}

/// The entries matching `filter` from seq `start` on, at most `limit` (1..=[`MAX_PAGE`]).
/// Only sequenced entries are listed: an event committed a moment ago may not be yet.
pub async fn list_events(
    tx: &mut TenantTx,
    filter: &EventFilter,
    start: u64,
    limit: u32,
) -> Result<EventPage, AuditError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(AuditError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let id = tx.agency_id();
    let first = start.max(filter.from_seq.unwrap_or(1)).max(1);
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT seq, entry FROM audit_log WHERE seq >= ");
    q.push_bind(to_i64(first));
    if let Some(to) = filter.to_seq {
        q.push(" AND seq <= ").push_bind(to_i64(to));
    }
    if let Some(action) = &filter.action {
        q.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(actor) = filter.actor {
        q.push(" AND actor_user_id = ").push_bind(actor);
    }
    if let Some(resource) = &filter.resource {
        q.push(" AND resource_ids @> ARRAY[")
            .push_bind(resource.clone())
            .push("]::text[]");
    }
    if let Some(from) = filter.from_time {
        q.push(" AND ts >= ").push_bind(from);
    }
    if let Some(to) = filter.to_time {
        q.push(" AND ts <= ").push_bind(to);
    }
    // One more than asked says whether another page follows.
    q.push(" ORDER BY seq LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = q.build().fetch_all(tx.conn()).await?;

    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut next_seq = None;
    for row in rows {
        let seq = row.try_get::<i64, _>("seq")? as u64;
        if items.len() == limit as usize {
            next_seq = Some(seq);
            break;
        }
        let text: String = row.try_get("entry")?;
        let entry = Entry::from_json(text.as_bytes())
            .map_err(|e| corrupt(id, format!("entry {seq}: {e}")))?;
        items.push(entry);
    }
    Ok(EventPage { items, next_seq })
}

/// Recorded when someone reads the log's entries (CJIS: access to the audit log itself).
pub const LOG_READ: &str = "admin.audit.read";

/// Records [`LOG_READ`] in the caller's transaction: what was asked (every filter given, the
/// first seq, the page size) and what was answered (how many entries, up to which seq).
pub async fn record_read(
    tx: &mut TenantTx,
    caller: &Caller,
    filter: &EventFilter,
    start: u64,
    limit: u32,
    page: &EventPage,
) -> Result<(), AuditError> {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut detail = serde_json::json!({
        "fromSeq": filter.from_seq,
        "toSeq": filter.to_seq,
        "action": filter.action,
        "actor": filter.actor,
        "resource": filter.resource,
        "from": filter.from_time.map(stamp),
        "to": filter.to_time.map(stamp),
        "start": start,
        "limit": limit,
        "returned": page.items.len(),
        "lastSeq": page.items.last().map(|e| e.seq),
    });
    if let Some(map) = detail.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    record(tx, &caller.event(LOG_READ).detail(detail)).await?;
    Ok(())
}

/// What [`scan_actions`] found: the matching entries in seq order, the chain's head, and the
/// seq up to which every entry was examined (matching or not), where the next scan starts.
#[derive(Debug, Clone)]
pub struct ActionScan {
    pub items: Vec<Entry>,
    pub head: u64,
    pub scanned_to: u64,
}

/// The sequenced entries after seq `after` whose action is one of `actions`, at most `limit`
/// (1..=[`MAX_PAGE`]), for readers that follow the log as it grows (the live event stream).
/// Head and entries come from one statement, so one snapshot: the sequencer publishes a whole
/// pass at once and in seq order, so nothing at or below `scanned_to` can appear later.
pub async fn scan_actions(
    tx: &mut TenantTx,
    after: u64,
    actions: &[&str],
    limit: u32,
) -> Result<ActionScan, AuditError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(AuditError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let id = tx.agency_id();
    let actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
    // Planned afresh each time, like the sequencer's reads (see store.rs): a plan cached while
    // the log was tiny would scan it sequentially forever after.
    let rows = sqlx::query(
        "SELECT h.head, e.seq, e.entry \
         FROM (SELECT coalesce(max(seq), 0) AS head FROM audit_log) h \
         LEFT JOIN LATERAL (SELECT seq, entry FROM audit_log \
                            WHERE seq > $1 AND action = ANY($2) ORDER BY seq LIMIT $3) e ON true \
         ORDER BY e.seq",
    )
    .persistent(false)
    .bind(to_i64(after))
    .bind(&actions)
    .bind(i64::from(limit))
    .fetch_all(tx.conn())
    .await?;
    let mut head = 0;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        head = row.try_get::<i64, _>("head")? as u64;
        let Some(seq) = row.try_get::<Option<i64>, _>("seq")? else {
            continue;
        };
        let text: String = row.try_get("entry")?;
        let entry = Entry::from_json(text.as_bytes())
            .map_err(|e| corrupt(id, format!("entry {seq}: {e}")))?;
        items.push(entry);
    }
    // A full page may stop short of the head; otherwise everything up to the head was examined.
    let scanned_to = match items.last() {
        Some(last) if items.len() == limit as usize => last.seq,
        _ => head.max(after),
    };
    Ok(ActionScan {
        items,
        head,
        scanned_to,
    })
}

/// The highest seq the sequencer has given out (0 for an empty chain).
pub async fn sequenced_head(tx: &mut TenantTx) -> Result<u64, AuditError> {
    crate::store::tree_size(tx.conn()).await
}

/// Seqs beyond `i64::MAX` match nothing; clamping keeps such a bound from overflowing the bind.
fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// One version of the agency's audit signing key, as auditors need it to verify notes and
/// certificates (the key record of docs/AUDIT-FORMAT.md §9, with version and state).
#[derive(Debug, Clone)]
pub struct SigningKeyVersion {
    pub version: i32,
    /// C2SP signed-note key id: 8 lowercase hex digits.
    pub key_id: String,
    /// The name it signs checkpoints under (the log origin).
    pub key_name: String,
    pub public_key_pem: String,
    /// `enabled`, `disabled` (revoked: its signatures no longer count) or `pending_deletion`.
    pub state: String,
    pub valid_from: String,
    pub valid_to: Option<String>,
}

/// Every version of the agency's audit signing key, oldest first.
pub async fn signing_key_history(
    pool: &sqlx::PgPool,
    agency_id: Uuid,
) -> Result<Vec<SigningKeyVersion>, AuditError> {
    let name = crate::origin(agency_id);
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = Vec::new();
    for record in writ_tenancy::agency_keys(pool, agency_id, KeyPurpose::Signing).await? {
        let Some(pem) = record.public_key_pem else {
            continue;
        };
        let key =
            AuditKey::from_pem(&pem).map_err(|e| corrupt(agency_id, format!("public key: {e}")))?;
        out.push(SigningKeyVersion {
            version: record.key.version,
            key_id: key.key_id().to_string(),
            key_name: name.clone(),
            public_key_pem: key.to_pem(),
            state: record.key.state.as_str().to_owned(),
            valid_from: ts(record.valid_from),
            valid_to: record.valid_to.map(ts),
        });
    }
    Ok(out)
}
