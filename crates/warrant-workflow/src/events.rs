//! Live status for clients: the changes of the warrants a caller may read, taken from the
//! agency's audit chain. Every change of a warrant records one audit entry in its own
//! transaction, and the sequencer gives committed entries a gap-free, increasing `seq`; so the
//! seq is a durable event id, and "everything after seq N" is an exact replay after a reconnect.
//!
//! An event carries no CJI: the action code, the warrant's id and number, its state and version
//! after the change, the time, the seq and whether it entered or left the judge queue — never
//! content, reasons, names or who acted. Who sees which event is decided per event with the
//! warrant as it is now (a warrant sealed later stops appearing at once):
//!
//! - officers: the warrants they wrote, while they may read them (not sealed);
//! - supervisors: every warrant they may read (not sealed);
//! - prosecutors, judges, agency_admin: every warrant, sealed ones included;
//! - anyone else (auditors, the system): nothing.
//!
//! Officers see less than `GET /v1/warrants` would show them: a live feed of every colleague's
//! applications is not what they need, and need-to-know is the rule for CJI.
//!
//! Nothing here knows HTTP or holds a transaction beyond one call; the caller polls.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use writ_audit_log::Entry;
use writ_auth_mfa::Role;
use writ_tenancy::TenantTx;

use crate::WarrantError;
use crate::caller::{Caller, role_of};
use crate::seal::may_read_warrant;
use crate::state::{WarrantState, audit};
use crate::store::{SEAL_RENEWED, SEALED, UNSEALED};

/// `warrant.updated`: a draft edited.
const UPDATED: &str = "warrant.updated";

/// The audit actions that are changes of a warrant, and so events. Reads (`warrant.viewed`,
/// `document.download`) are not changes and are never streamed: who read what is the audit
/// log's business, not a colleague's.
pub const ACTIONS: &[&str] = &[
    audit::CREATED,
    UPDATED,
    audit::SUBMITTED,
    audit::REVIEWED,
    audit::QUEUED,
    audit::RETURNED_FOR_REVISION,
    audit::CLAIMED,
    audit::APPROVED,
    audit::REJECTED,
    audit::EXECUTED,
    audit::RETURNED,
    audit::WITHDRAWN,
    audit::EXPIRED,
    SEALED,
    SEAL_RENEWED,
    UNSEALED,
    // Swearing an amendment writes it into the affidavit: a new version.
    crate::video::state::audit::AMENDMENT_SWORN,
];

/// The most audit entries one [`poll`] examines.
pub const MAX_BATCH: u32 = 500;

/// A warrant entering or leaving the judge queue (`pending_judge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueChange {
    Entered,
    Left,
}

/// One change of a warrant, as a client receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarrantEvent {
    /// The audit entry's seq: the event id.
    pub seq: u64,
    /// The audit action code, e.g. `warrant.submitted`.
    #[serde(rename = "type")]
    pub kind: String,
    pub warrant_id: Uuid,
    /// `W-2026-000847`.
    pub number: String,
    /// The state after the change; absent for seal events, which do not change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The warrant's version after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// When the change was recorded (the audit entry's timestamp).
    pub at: String,
    /// Present when the change moved the warrant into or out of the judge queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueChange>,
}

/// Why a stream cannot continue from the id the client gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResyncReason {
    /// Entries after the id were pruned by retention: the events in between are gone.
    Pruned,
    /// The id is beyond the agency's log: not one this agency's stream gave out.
    UnknownId,
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Replay everything after this seq.
    After(u64),
    /// The client must reload its state (the lists and warrants it shows), then follow from
    /// `head`.
    Resync { head: u64, reason: ResyncReason },
}

/// Where a stream for a client that last saw `last_seen` starts: after it (a replay), or at the
/// current head when there is no id (no backlog), or at the head with a resync when the events
/// after the id can no longer be replayed.
pub async fn start(tx: &mut TenantTx, last_seen: Option<u64>) -> Result<Start, WarrantError> {
    let head = writ_audit_log::sequenced_head(tx).await?;
    let Some(last) = last_seen else {
        return Ok(Start::After(head));
    };
    if last > head {
        return Ok(Start::Resync {
            head,
            reason: ResyncReason::UnknownId,
        });
    }
    // Entries below the minimum index in force may have been pruned.
    let floor = writ_audit_log::latest_minimum_index(tx)
        .await?
        .map_or(1, |m| m.minimum_index);
    if last.saturating_add(1) < floor {
        return Ok(Start::Resync {
            head,
            reason: ResyncReason::Pruned,
        });
    }
    Ok(Start::After(last))
}

/// One poll's result: the events the caller may see, in seq order, and the seq up to which the
/// log was examined — where the next poll starts, and a safe reconnection point even when none
/// of the entries was for this caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<WarrantEvent>,
    pub cursor: u64,
    /// The log was examined up to its head; `false`: poll again at once.
    pub caught_up: bool,
}

/// What visibility needs of a warrant.
#[derive(sqlx::FromRow)]
struct Seen {
    id: Uuid,
    author_id: Uuid,
    sealed: bool,
    seal_expires_at: Option<DateTime<Utc>>,
}

impl Seen {
    /// Sealed as of `now`: the flag, unless the seal's expiry has passed (as `store` reads it;
    /// the job that records the lapse may not have run yet).
    fn sealed_at(&self, now: DateTime<Utc>) -> bool {
        self.sealed && self.seal_expires_at.is_none_or(|e| now < e)
    }
}

/// Whether `caller` receives events of this warrant now (see the module documentation).
fn receives(caller: &Caller, w: &Seen, now: DateTime<Utc>) -> bool {
    let (Some(user), Some(role)) = (caller.user_id(), role_of(caller)) else {
        return false;
    };
    if !may_read_warrant(role, w.sealed_at(now)) {
        return false;
    }
    role != Role::Officer || w.author_id == user
}

/// The events after seq `after` that `caller` may see, examining at most `limit` (1..=
/// [`MAX_BATCH`]) matching entries. Reads only; the transaction may be rolled back.
pub async fn poll(
    tx: &mut TenantTx,
    caller: &Caller,
    after: u64,
    limit: u32,
) -> Result<Batch, WarrantError> {
    let scan = writ_audit_log::scan_actions(tx, after, ACTIONS, limit.clamp(1, MAX_BATCH)).await?;
    let mut changes = Vec::with_capacity(scan.items.len());
    for entry in &scan.items {
        match change_of(entry) {
            Some(e) => changes.push(e),
            // Every warrant entry names its warrant; one that does not is skipped, not fatal
            // to every stream of the agency.
            None => tracing::warn!(seq = entry.seq, action = %entry.action,
                "a warrant audit entry without a readable warrantId; not streamed"),
        }
    }
    let mut ids: Vec<Uuid> = changes.iter().map(|e| e.warrant_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let warrants: HashMap<Uuid, Seen> = if ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, Seen>(
            "SELECT id, author_id, sealed, seal_expires_at FROM warrants WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(|w| (w.id, w))
        .collect()
    };
    let now = Utc::now();
    let events = changes
        .into_iter()
        .filter(|e| {
            warrants
                .get(&e.warrant_id)
                .is_some_and(|w| receives(caller, w, now))
        })
        .collect();
    Ok(Batch {
        events,
        cursor: scan.scanned_to,
        caught_up: scan.scanned_to >= scan.head,
    })
}

/// The event an audit entry records; `None` when it names no warrant.
fn change_of(entry: &Entry) -> Option<WarrantEvent> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let warrant_id =
        text(entry.resource.get("warrantId")).and_then(|s| Uuid::parse_str(&s).ok())?;
    let number = text(entry.resource.get("number")).unwrap_or_default();
    let detail = &entry.detail;
    let from = text(detail.get("from"));
    let (state, version) = match entry.action.as_str() {
        // A new application (or extension request) is a draft at version 1 whatever its entry's
        // `to` says: an extension's entry carries the parent's transition.
        audit::CREATED => (Some(WarrantState::Draft.as_str().to_owned()), Some(1)),
        UPDATED => (
            Some(WarrantState::Draft.as_str().to_owned()),
            detail.get("version").and_then(Value::as_i64),
        ),
        _ => (
            text(detail.get("to")),
            detail.get("version").and_then(Value::as_i64),
        ),
    };
    let pending = WarrantState::PendingJudge.as_str();
    let queue = match (from.as_deref(), state.as_deref()) {
        _ if entry.action == audit::CREATED => None,
        (Some(f), Some(t)) if f != pending && t == pending => Some(QueueChange::Entered),
        (Some(f), Some(t)) if f == pending && t != pending => Some(QueueChange::Left),
        _ => None,
    };
    Some(WarrantEvent {
        seq: entry.seq,
        kind: entry.action.clone(),
        warrant_id,
        number,
        state,
        version,
        at: entry.timestamp.clone(),
        queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, detail: Value) -> Entry {
        let id = "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e";
        serde_json::from_value(json!({
            "seq": 7,
            "id": "0190f4d2-6c1e-7a3b-9d4f-000000000007",
            "timestamp": "2026-03-02T21:58:41.000Z",
            "actor": {"userId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e03", "role": "prosecutor",
                      "agencyId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e00"},
            "action": action,
            "resource": {"warrantId": id, "number": "W-2026-000847"},
            "outcome": "success",
            "sourceIp": "10.0.0.1",
            "detail": detail,
            "prevHash": format!("sha256:{}", "0".repeat(64)),
            "hash": format!("sha256:{}", "1".repeat(64)),
        }))
        .expect("entry")
    }

    #[test]
    fn a_warrant_reaching_the_judge_enters_the_queue_and_a_claim_takes_it_out() {
        let queued = change_of(&entry(
            audit::QUEUED,
            json!({"action": "prosecutor-approve", "from": "prosecutor_review",
                   "to": "pending_judge", "version": 4}),
        ))
        .expect("event");
        assert_eq!(queued.state.as_deref(), Some("pending_judge"));
        assert_eq!(queued.version, Some(4));
        assert_eq!(queued.queue, Some(QueueChange::Entered));
        let claimed = change_of(&entry(
            audit::CLAIMED,
            json!({"from": "pending_judge", "to": "judge_review", "version": 5}),
        ))
        .expect("event");
        assert_eq!(claimed.queue, Some(QueueChange::Left));
        let executed = change_of(&entry(
            audit::EXECUTED,
            json!({"from": "issued", "to": "executed", "version": 8}),
        ))
        .expect("event");
        assert_eq!(executed.queue, None);
    }

    #[test]
    fn a_sworn_amendment_is_streamed_as_a_new_version_without_a_state() {
        let kind = crate::video::state::audit::AMENDMENT_SWORN;
        assert!(ACTIONS.contains(&kind));
        let e = change_of(&entry(
            kind,
            json!({"amendmentId": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e", "version": 7,
                   "affidavitVersion": 2}),
        ))
        .expect("event");
        assert_eq!((e.state, e.version, e.queue), (None, Some(7), None));
    }

    #[test]
    fn an_event_carries_no_reason_actor_or_address() {
        let e = change_of(&entry(
            audit::REJECTED,
            json!({"from": "judge_review", "to": "rejected", "version": 6,
                   "reason": "the affidavit names the subject"}),
        ))
        .expect("event");
        let wire = serde_json::to_value(&e).expect("json");
        let keys: Vec<&str> = wire
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "at",
                "number",
                "seq",
                "state",
                "type",
                "version",
                "warrantId"
            ]
        );
        assert!(!wire.to_string().contains("subject"));
    }

    #[test]
    fn an_extension_is_a_new_draft_at_version_one() {
        let e = change_of(&entry(
            audit::CREATED,
            json!({"action": "extend", "state": "draft", "version": 1, "extends": "W-2026-1",
                "parentState": "issued"}),
        ))
        .expect("event");
        assert_eq!(e.state.as_deref(), Some("draft"));
        assert_eq!(e.version, Some(1));
        assert_eq!(e.queue, None);
    }

    #[test]
    fn an_entry_without_a_warrant_id_is_no_event() {
        let mut e = entry(audit::SUBMITTED, json!({}));
        e.resource.remove("warrantId");
        assert!(change_of(&e).is_none());
    }

    fn seen(author: Uuid, sealed: bool) -> Seen {
        Seen {
            id: Uuid::nil(),
            author_id: author,
            sealed,
            seal_expires_at: None,
        }
    }

    fn caller(role: Role, user: Uuid) -> Caller {
        Caller::user(user, role.as_str(), Some(Uuid::nil()), None, None)
    }

    #[test]
    fn officers_follow_their_own_unsealed_warrants_and_auditors_nothing() {
        let now = Utc::now();
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let officer = caller(Role::Officer, me);
        assert!(receives(&officer, &seen(me, false), now));
        assert!(!receives(&officer, &seen(other, false), now));
        assert!(!receives(&officer, &seen(me, true), now));
        let supervisor = caller(Role::Supervisor, Uuid::now_v7());
        assert!(receives(&supervisor, &seen(other, false), now));
        assert!(!receives(&supervisor, &seen(other, true), now));
        for role in [Role::Prosecutor, Role::Judge, Role::AgencyAdmin] {
            assert!(receives(
                &caller(role, Uuid::now_v7()),
                &seen(other, true),
                now
            ));
        }
        assert!(!receives(
            &caller(Role::Auditor, Uuid::now_v7()),
            &seen(other, false),
            now
        ));
        assert!(!receives(&Caller::system(), &seen(other, false), now));
        let mut lapsed = seen(me, true);
        lapsed.seal_expires_at = Some(now - chrono::Duration::seconds(1));
        assert!(receives(&officer, &lapsed, now));
    }
}
