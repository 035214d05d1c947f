use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use writ_audit_chain::{Outcome, PendingEvent};
use writ_tenancy::TenantTx;

use crate::AuditError;

/// Who runs this process, when it is a command-line action rather than the server: every event
/// the process records carries it as `detail.invokedBy` (docs/AUDIT-FORMAT.md), so an entry by
/// the `system` actor still names the person behind it.
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

/// An event to record, built fluently: `Event::new("warrant.submitted", actor).resource("warrantId", id)`.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: String,
    pub actor: Actor,
    pub resource: Map<String, Value>,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub detail: Value,
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

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    fn pending(&self, agency_id: Uuid) -> PendingEvent {
        let mut detail = self.detail.clone();
        if let (Some(who), Value::Object(map)) = (INVOKED_BY.get(), &mut detail) {
            map.entry("invokedBy").or_insert_with(|| who.clone());
        }
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

/// Records `event` in the caller's transaction: it enters the chain if and only if that
/// transaction commits. Returns the event id, for [`crate::receipt`].
pub async fn record(tx: &mut TenantTx, event: &Event) -> Result<Uuid, AuditError> {
    let pending = event.pending(tx.agency_id());
    pending
        .validate()
        .map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
    let id = Uuid::parse_str(&pending.id).map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
    let json =
        serde_json::to_value(&pending).map_err(|e| AuditError::InvalidEvent(e.to_string()))?;
    sqlx::query("INSERT INTO audit_pending (id, event) VALUES ($1, $2)")
        .bind(id)
        .bind(json)
        .execute(tx.conn())
        .await?;
    Ok(id)
}
