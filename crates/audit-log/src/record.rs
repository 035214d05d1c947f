use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use writ_audit_chain::{EntryError, Outcome, PendingEvent};
use writ_tenancy::TenantTx;

use crate::AuditError;

/// Who runs this process, when it is a command-line action rather than the server: an event the
/// process records without a [`Caller`] of its own (pruning, archiving, a lockout ending) carries
/// it as `detail.invokedBy` too (docs/AUDIT-FORMAT.md), so an entry by the `system` actor still
/// names the person behind it.
static INVOKED_BY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// Names the person behind every event this process records from now on (`{"osUser", "host",
/// "via": "cli"}`). Set once, by the command line; the server never sets it. Returns false when
/// it was set already.
pub fn set_invoked_by(who: Value) -> bool {
    INVOKED_BY.set(who).is_ok()
}

/// Who acted: a user with a role, or the system (`user_id: None`, role `system`).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: String,
}

impl Actor {
    pub fn user(user_id: Uuid, role: impl Into<String>) -> Self {
        Self {
            user_id: Some(user_id),
            role: role.into(),
        }
    }

    pub fn system() -> Self {
        Self {
            user_id: None,
            role: "system".into(),
        }
    }

    /// A caller not (yet) authenticated, e.g. a failed login.
    pub fn anonymous() -> Self {
        Self {
            user_id: None,
            role: "anonymous".into(),
        }
    }
}

/// Where a request came from, before (or without) knowing who sent it: the address and the
/// request's `X-Request-Id`, recorded as `sourceIp` and `detail.requestId`.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
}

/// Who is acting, and from where: everything an audit entry says about its caller besides the
/// action. Made once per request (from the verified token and the connection) or per command, and
/// passed to every domain function that records, so an entry never gets its actor from one place
/// and its address from another. [`Caller::event`] starts an event with all of it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The agency the caller belongs to; `None` for platform operators and the system.
    pub agency_id: Option<Uuid>,
    pub source_ip: Option<String>,
    /// The request's `X-Request-Id`, recorded as `detail.requestId`.
    pub request_id: Option<String>,
    /// The person behind a command-line action, recorded as `detail.invokedBy`.
    pub invoked_by: Option<Value>,
}

impl Caller {
    /// A user of `agency_id` (or a platform operator, `None`) acting through the API.
    pub fn user(
        user_id: Uuid,
        role: impl Into<String>,
        agency_id: Option<Uuid>,
        source_ip: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            actor: Actor::user(user_id, role),
            agency_id,
            source_ip,
            request_id,
            invoked_by: None,
        }
    }

    /// The server's own background work (rotation by policy, re-wraps, pruning).
    pub fn system() -> Self {
        Self {
            actor: Actor::system(),
            agency_id: None,
            source_ip: None,
            request_id: None,
            invoked_by: None,
        }
    }

    /// A command-line action: the `system` actor, naming the person who ran it (`{"via": "cli",
    /// "osUser", "host"}`, see docs/AUDIT-FORMAT.md).
    pub fn cli(invoked_by: Value) -> Self {
        Self {
            invoked_by: Some(invoked_by),
            ..Self::system()
        }
    }

    /// Where the caller's request came from.
    pub fn origin(&self) -> Origin {
        Origin {
            source_ip: self.source_ip.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// The acting user's id; `None` for the system.
    pub fn user_id(&self) -> Option<Uuid> {
        self.actor.user_id
    }

    /// An event by this caller: actor, source address, request id and (from the command line)
    /// who invoked it are filled in.
    pub fn event(&self, action: impl Into<String>) -> Event {
        Event {
            source_ip: self.source_ip.clone(),
            request_id: self.request_id.clone(),
            invoked_by: self.invoked_by.clone(),
            ..Event::new(action, self.actor.clone())
        }
    }
}

/// `text` as an entry records something of unbounded length: at most `max_chars` characters,
/// marked `…` when cut, so that nobody can fill the log through it.
pub fn clipped(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// An event to record, built fluently: `caller.event("warrant.submitted").resource("warrantId", id)`,
/// or `Event::new(action, actor)` where there is no caller (a failed login, a sampled record).
#[derive(Debug, Clone)]
pub struct Event {
    pub action: String,
    pub actor: Actor,
    pub resource: Map<String, Value>,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub detail: Value,
    /// Added to the detail as `requestId` when recorded.
    pub request_id: Option<String>,
    /// Added to the detail as `invokedBy` when recorded.
    pub invoked_by: Option<Value>,
}

impl Event {
    pub fn new(action: impl Into<String>, actor: Actor) -> Self {
        Self {
            action: action.into(),
            actor,
            resource: Map::new(),
            outcome: Outcome::Success,
            source_ip: None,
            detail: Value::Object(Map::new()),
            request_id: None,
            invoked_by: None,
        }
    }

    pub fn resource(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource.insert(key.to_owned(), value.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn failure(self) -> Self {
        self.outcome(Outcome::Failure)
    }

    pub fn source_ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }

    /// Where the request came from, for events whose actor is decided on the way (a login
    /// names the user only once the credentials are checked).
    pub fn origin(mut self, origin: &Origin) -> Self {
        self.source_ip = origin.source_ip.clone();
        self.request_id = origin.request_id.clone();
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// The detail as recorded: the event's own, with `requestId` and `invokedBy` added where it
    /// does not set them itself (an event whose detail is not an object gets neither).
    pub fn recorded_detail(&self) -> Value {
        let mut detail = self.detail.clone();
        if let Value::Object(map) = &mut detail {
            if let Some(id) = &self.request_id {
                map.entry("requestId")
                    .or_insert_with(|| Value::String(id.clone()));
            }
            if let Some(who) = self.invoked_by.as_ref().or(INVOKED_BY.get()) {
                map.entry("invokedBy").or_insert_with(|| who.clone());
            }
        }
        detail
    }

    pub(crate) fn pending(&self, agency_id: Uuid) -> PendingEvent {
        let detail = self.recorded_detail();
        PendingEvent {
            id: Uuid::now_v7().to_string(),
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            actor: writ_audit_chain::Actor {
                user_id: self.actor.user_id.map(|u| u.to_string()),
                role: self.actor.role.clone(),
                agency_id: agency_id.to_string(),
            },
            action: self.action.clone(),
            resource: self.resource.clone(),
            outcome: self.outcome,
            source_ip: self.source_ip.clone(),
            detail,
        }
    }
}

/// Records `event` in the control plane's platform events (`control.platform_events`): what
/// platform operators do, and what happens to an agency that no longer has a chain to record it.
/// Never changed afterwards.
pub async fn record_platform(
    conn: &mut sqlx::PgConnection,
    event: &Event,
) -> Result<Uuid, AuditError> {
    let id = Uuid::now_v7();
    let body = serde_json::json!({
        "action": event.action,
        "actor": { "userId": event.actor.user_id, "role": event.actor.role },
        "resource": event.resource,
        "outcome": event.outcome,
        "sourceIp": event.source_ip,
        "detail": event.recorded_detail(),
    });
    sqlx::query("INSERT INTO control.platform_events (id, event) VALUES ($1, $2)")
        .bind(id)
        .bind(body)
        .execute(conn)
        .await?;
    Ok(id)
}

/// Records `event` in the caller's transaction: it enters the chain if and only if that
/// transaction commits. Returns the event id, for [`crate::receipt`].
pub async fn record(tx: &mut TenantTx, event: &Event) -> Result<Uuid, AuditError> {
    let pending = event.pending(tx.agency_id());
    pending.validate().map_err(|e| match e {
        EntryError::TooLarge { bytes, limit } => AuditError::EventTooLarge { bytes, limit },
        e => AuditError::InvalidEvent(e.to_string()),
    })?;
    let id = Uuid::parse_str(&pending.id).map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
    let json =
        serde_json::to_value(&pending).map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
    if tx.appended_audit_event() {
        // The commit wakes this process's sequencer itself (see `CommitWake`).
        sqlx::query("INSERT INTO audit_pending (id, event) VALUES ($1, $2)")
            .bind(id)
            .bind(json)
            .execute(tx.conn())
            .await?;
    } else {
        // Delivered at commit; PostgreSQL folds a transaction's identical notifications.
        let agency_id = tx.agency_id().to_string();
        sqlx::query(
            "INSERT INTO audit_pending (id, event) \
             SELECT $1, $2 FROM (SELECT pg_notify('writ_audit_pending', $3)) AS wake",
        )
        .bind(id)
        .bind(json)
        .bind(agency_id)
        .execute(tx.conn())
        .await?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_callers_event_carries_its_address_and_request_id() {
        let user = Uuid::now_v7();
        let caller = Caller::user(
            user,
            "officer",
            Some(Uuid::nil()),
            Some("192.0.2.7".into()),
            Some("req-1".into()),
        );
        let event = caller
            .event("warrant.submitted")
            .detail(json!({ "warrantNumber": "W-1" }));
        let pending = event.pending(Uuid::nil());
        assert_eq!(pending.actor.user_id, Some(user.to_string()));
        assert_eq!(pending.actor.role, "officer");
        assert_eq!(pending.source_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            pending.detail,
            json!({ "warrantNumber": "W-1", "requestId": "req-1" })
        );
    }

    #[test]
    fn a_command_line_caller_names_who_ran_it() {
        let who = json!({ "via": "cli", "osUser": "ops", "host": "h" });
        let event = Caller::cli(who.clone()).event("key.rotation");
        assert_eq!(event.actor.role, "system");
        assert_eq!(event.actor.user_id, None);
        assert_eq!(event.recorded_detail(), json!({ "invokedBy": who }));
    }
}
