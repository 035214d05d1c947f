//! The outbox: `notifications` in the agency's schema. A domain function [`enqueue`]s an alert in
//! the transaction of the event that causes it, so the alert exists if and only if the event
//! committed; the delivery loop ([`crate::delivery`]) sends it later, with retries, and leaves a
//! failure visible in the table (and `GET /v1/notifications`), never silent.
//!
//! A row keeps what a message may say (warrant id, number, urgency, a deadline), not the message:
//! it is rendered at delivery from these facts only ([`crate::message`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;
use writ_tenancy::TenantTx;

use crate::error::NotifyError;
use crate::message::{Channel, Kind, WarrantRef};

/// An alert to send.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub kind: Kind,
    pub channel: Channel,
    /// A user of the agency; the address (e-mail, phone) is read at delivery, so a contact
    /// corrected meanwhile is used by the next attempt.
    pub recipient_id: Uuid,
    pub warrant: WarrantRef,
    /// A reminder's deadline.
    pub due: Option<DateTime<Utc>>,
    /// The `warrant_reminders` row a reminder delivers (its `delivered_at` is set when sent).
    pub reminder_id: Option<Uuid>,
}

/// Queues `n` in the caller's transaction; due at once (the database's clock).
pub async fn enqueue(tx: &mut TenantTx, n: &NewNotification) -> Result<Uuid, NotifyError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (id, kind, channel, recipient_id, warrant_id, warrant_number, \
           urgency, due_at, reminder_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(n.kind.as_str())
    .bind(n.channel.as_str())
    .bind(n.recipient_id)
    .bind(n.warrant.id)
    .bind(&n.warrant.number)
    .bind(&n.warrant.urgency)
    .bind(n.due)
    .bind(n.reminder_id)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// `pending` (queued or waiting for a retry), `sent`, `failed` (permanently: the reason is in
/// `lastError`), or `cancelled` (not sent: the warrant no longer needed it, `lastError` says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Sent,
    Failed,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [State::Pending, State::Sent, State::Failed, State::Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A notification as agency admins (and the routing view) see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub kind: String,
    pub channel: String,
    pub recipient_id: Uuid,
    pub warrant_id: Option<Uuid>,
    pub warrant_number: Option<String>,
    pub state: String,
    pub attempts: i32,
    /// The next attempt of a pending notification.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, channel, recipient_id, warrant_id, warrant_number, state, \
    attempts, CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at, \
    last_error, created_at, sent_at, failed_at, cancelled_at";

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<State>,
    pub warrant_id: Option<Uuid>,
    /// Created before this id (ids are time-ordered): the next page.
    pub before: Option<Uuid>,
    pub limit: u32,
}

pub const MAX_PAGE: u32 = 200;

/// Newest first.
pub async fn list(tx: &mut TenantTx, f: &ListFilter) -> Result<Vec<Notification>, NotifyError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE ($1::text IS NULL OR state = $1) \
         AND ($2::uuid IS NULL OR warrant_id = $2) AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    );
    Ok(sqlx::query_as::<_, Notification>(sqlx::AssertSqlSafe(sql))
        .bind(f.state.map(State::as_str))
        .bind(f.warrant_id)
        .bind(f.before)
        .bind(i64::from(f.limit.clamp(1, MAX_PAGE)))
        .fetch_all(tx.conn())
        .await?)
}

/// The notifications of the given ids (the routing view shows each hop's), oldest first.
pub async fn by_ids(tx: &mut TenantTx, ids: &[Uuid]) -> Result<Vec<Notification>, NotifyError> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = ANY($1) ORDER BY id");
    Ok(sqlx::query_as::<_, Notification>(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(tx.conn())
        .await?)
}
