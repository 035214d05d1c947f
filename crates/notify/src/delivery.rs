//! The delivery loop: takes due `pending` notifications (`FOR UPDATE SKIP LOCKED`, so replicas
//! share the work and never send one twice), renders each from its stored facts, hands it to the
//! [`Notifier`] and records the outcome: `sent`; a transient failure retried after an exponential
//! backoff (capped) until the attempts run out; `failed` with the reason otherwise. Each sent or
//! failed notification is one audit entry (`notification.sent`, `notification.failed`), with ids
//! only in it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use writ_audit_log::Caller;
use writ_tenancy::{Agency, TenantTx};

use crate::error::{NotifyError, SendError};
use crate::message::{Channel, Kind, WarrantRef, render};
use crate::transport::{Notifier, Outgoing};

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `WRIT_PUBLIC_URL`: the base of the links in messages.
    pub public_url: String,
    /// `WRIT_NOTIFY_POLL_MS`: how often due notifications are looked for.
    pub poll: Duration,
    /// `WRIT_NOTIFY_MAX_ATTEMPTS`: attempts before a notification is `failed`.
    pub max_attempts: u32,
    /// `WRIT_NOTIFY_BACKOFF_MS`: the wait after the first failed attempt; doubled after each.
    pub backoff_base: Duration,
    /// `WRIT_NOTIFY_BACKOFF_MAX_SECS`: the longest wait between attempts.
    pub backoff_max: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            poll: Duration::from_secs(2),
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// The wait after `failed` failed attempts (1, 2, …): base × 2^(failed−1), at most the cap.
pub fn backoff(config: &DeliveryConfig, failed: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed.saturating_sub(1));
    config
        .backoff_base
        .saturating_mul(factor)
        .min(config.backoff_max)
}

/// Notifications one pass sends per agency at most; the rest wait for the next pass.
const BATCH: usize = 50;

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    kind: String,
    channel: String,
    recipient_id: Uuid,
    warrant_id: Option<Uuid>,
    warrant_number: Option<String>,
    urgency: Option<String>,
    due_at: Option<DateTime<Utc>>,
    attempts: i32,
}

#[derive(sqlx::FromRow)]
struct Contact {
    email: Option<String>,
    phone: Option<String>,
    status: String,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Not sent: the warrant no longer needs it (see [`moot`]).
    pub cancelled: usize,
}

/// Sends the agency's due notifications, one transaction each.
pub async fn deliver_due<N: Notifier>(
    pool: &PgPool,
    agency: &Agency,
    notifier: &N,
    config: &DeliveryConfig,
) -> Result<DeliveryReport, NotifyError> {
    let mut report = DeliveryReport::default();
    for _ in 0..BATCH {
        // Not under the agency's lock: a send can take seconds, and an offboarding waits for
        // that lock's holders only a bounded time.
        let mut tx = TenantTx::begin(pool, agency).await?;
        let due = sqlx::query_as::<_, Due>(
            // The most urgent first: a backlog of routine reminders never holds up an exigent
            // warrant's alert past its acknowledgement time.
            "SELECT id, kind, channel, recipient_id, warrant_id, warrant_number, urgency, due_at, \
               attempts FROM notifications \
             WHERE state = 'pending' AND next_attempt_at <= now() \
             ORDER BY CASE urgency WHEN 'exigent' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, \
                      next_attempt_at \
             LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(tx.conn())
        .await?;
        let Some(due) = due else {
            tx.rollback().await?;
            break;
        };
        if let Some(why) = moot(&mut tx, &due).await? {
            sqlx::query(
                "UPDATE notifications SET state = 'cancelled', cancelled_at = now(), \
                 last_error = $2, updated_at = now() WHERE id = $1",
            )
            .bind(due.id)
            .bind(why)
            .execute(tx.conn())
            .await?;
            record(&mut tx, &due, "notification.cancelled", due.attempts, None).await?;
            tx.commit().await?;
            report.cancelled += 1;
            continue;
        }
        let outcome = attempt(&mut tx, &due, notifier, config).await?;
        let attempts = due.attempts + 1;
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE notifications SET state = 'sent', attempts = $2, sent_at = now(), \
                     last_error = NULL, updated_at = now() WHERE id = $1",
                )
                .bind(due.id)
                .bind(attempts)
                .execute(tx.conn())
                .await?;
                record(&mut tx, &due, "notification.sent", attempts, None).await?;
                report.sent += 1;
            }
            Err(e) if e.is_permanent() || attempts >= config.max_attempts as i32 => {
                let reason = e.to_string();
                sqlx::query(
                    "UPDATE notifications SET state = 'failed', attempts = $2, failed_at = now(), \
                     last_error = $3, updated_at = now() WHERE id = $1",
                )
                .bind(due.id)
                .bind(attempts)
                .bind(&reason)
                .execute(tx.conn())
                .await?;
                // The audit entry and the log get the class only: a relay's reply may quote the
                // address, which is personal data (the row keeps the full reason for admins).
                record(
                    &mut tx,
                    &due,
                    "notification.failed",
                    attempts,
                    Some(e.class()),
                )
                .await?;
                tracing::warn!(notification = %due.id, channel = due.channel, error = e.class(), "notification failed");
                report.failed += 1;
            }
            Err(e) => {
                let wait = backoff(config, u32::try_from(attempts).unwrap_or(u32::MAX));
                sqlx::query(
                    "UPDATE notifications SET attempts = $2, last_error = $3, updated_at = now(), \
                     next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
                )
                .bind(due.id)
                .bind(attempts)
                .bind(e.to_string())
                .bind(wait.as_secs_f64())
                .execute(tx.conn())
                .await?;
                report.retried += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// Why an alert is no longer wanted when its turn comes, if it is not: a judge queue alert once
/// the warrant was opened, claimed, decided or queued again since (that queueing alerts anew); a
/// deadline reminder once the warrant is no longer issued (executed, withdrawn, expired).
async fn moot(tx: &mut TenantTx, due: &Due) -> Result<Option<&'static str>, NotifyError> {
    let Some(warrant_id) = due.warrant_id else {
        return Ok(None);
    };
    let Some(kind) = Kind::parse(&due.kind) else {
        return Ok(None);
    };
    let wanted: bool = match kind {
        // The hop that wrote the alert belongs to one queueing of the warrant; the warrant
        // still waits in that same queueing, unopened. (Compared as recorded, not by clocks:
        // the replica that queued it and the database may disagree.)
        Kind::WarrantOffered | Kind::WarrantEscalated => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM warrants w JOIN warrant_routing_hops h \
                   ON h.warrant_id = w.id AND h.queued_at = w.queued_at \
                 WHERE w.id = $1 AND w.state = 'pending_judge' AND w.opened_at IS NULL \
                   AND $2 = ANY (h.notification_ids))",
            )
            .bind(warrant_id)
            .bind(due.id)
            .fetch_one(tx.conn())
            .await?
        }
        Kind::DeadlineReminder => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM warrants WHERE id = $1 AND state = 'issued')",
            )
            .bind(warrant_id)
            .fetch_one(tx.conn())
            .await?
        }
    };
    Ok((!wanted).then_some(match kind {
        Kind::DeadlineReminder => "the warrant is no longer issued and waiting to be executed",
        _ => "the warrant no longer waits in the judge queue unopened since this alert",
    }))
}

/// One attempt: the recipient's address for the channel, the rendered message, the transport.
async fn attempt<N: Notifier>(
    tx: &mut TenantTx,
    due: &Due,
    notifier: &N,
    config: &DeliveryConfig,
) -> Result<Result<(), SendError>, NotifyError> {
    let (Some(kind), Some(channel)) = (Kind::parse(&due.kind), Channel::parse(&due.channel)) else {
        return Err(NotifyError::Corrupt(format!(
            "kind {:?} or channel {:?}",
            due.kind, due.channel
        )));
    };
    let contact =
        sqlx::query_as::<_, Contact>("SELECT email, phone, status FROM users WHERE id = $1")
            .bind(due.recipient_id)
            .fetch_optional(tx.conn())
            .await?;
    let Some(contact) = contact else {
        return Ok(Err(SendError::Unreachable("no such recipient".into())));
    };
    if contact.status != "active" {
        return Ok(Err(SendError::Unreachable(format!(
            "the recipient's account is {}",
            contact.status
        ))));
    }
    let address = match channel {
        Channel::Email => contact.email,
        Channel::Sms | Channel::Voice => contact.phone,
    };
    let Some(address) = address else {
        let what = if channel == Channel::Email {
            "e-mail address"
        } else {
            "phone number"
        };
        return Ok(Err(SendError::Unreachable(format!(
            "the recipient has no {what} on file"
        ))));
    };
    let (Some(warrant_id), Some(number)) = (due.warrant_id, due.warrant_number.clone()) else {
        return Err(NotifyError::Corrupt(
            "a notification without a warrant".into(),
        ));
    };
    let warrant = WarrantRef {
        id: warrant_id,
        number,
        urgency: due.urgency.clone().unwrap_or_else(|| "routine".into()),
    };
    let rendered = render(kind, channel, &warrant, due.due_at, &config.public_url);
    Ok(notifier
        .send(&Outgoing {
            channel,
            to: &address,
            subject: &rendered.subject,
            body: &rendered.body,
        })
        .await)
}

async fn record(
    tx: &mut TenantTx,
    due: &Due,
    action: &str,
    attempts: i32,
    error: Option<&str>,
) -> Result<(), NotifyError> {
    let mut event = Caller::system()
        .event(action)
        .resource("notificationId", due.id.to_string())
        .detail(json!({
            "kind": due.kind,
            "channel": due.channel,
            "recipientId": due.recipient_id,
            "attempts": attempts,
            "error": error,
        }));
    if let Some(w) = due.warrant_id {
        event = event.resource("warrantId", w.to_string());
    }
    if let Some(n) = &due.warrant_number {
        event = event.resource("number", n.clone());
    }
    if error.is_some() {
        event = event.failure();
    }
    writ_audit_log::record(tx, &event).await?;
    Ok(())
}

/// Delivers every active agency's due notifications every `config.poll`, until dropped.
pub async fn run_delivery<N: Notifier>(pool: PgPool, notifier: N, config: DeliveryConfig) {
    let mut tick = tokio::time::interval(config.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for agency in writ_tenancy::active_agencies(&pool, "notification delivery").await {
            match deliver_due(&pool, &agency, &notifier, &config).await {
                Ok(r) if r == DeliveryReport::default() => {}
                Ok(r) => tracing::info!(
                    agency = %agency.slug,
                    sent = r.sent,
                    retried = r.retried,
                    failed = r.failed,
                    "notifications delivered"
                ),
                Err(e) => {
                    tracing::warn!(agency = %agency.slug, error = %e, "notification delivery failed; retrying")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = DeliveryConfig {
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(300),
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&c, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(backoff(&c, 100).as_secs(), 300);
    }
}
