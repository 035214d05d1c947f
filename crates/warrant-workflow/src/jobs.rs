//! The warrant jobs no person asks for: issued warrants past their execution window expire
//! (`warrant.expired`, through the same [`crate::store::apply_at`] as every transition), authors
//! are reminded before a deadline (the court's `reminderLeadHours`; an e-mail queued in the
//! `writ-notify` outbox in the same transaction), and seals end at their
//! expiry unless renewed (`warrant.unsealed`). Each run is one transaction per agency;
//! replicas running it together skip each other's rows (`SKIP LOCKED`).

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use writ_tenancy::TenantTx;

use crate::caller::Caller;
use crate::deadline::reminder_at;
use crate::error::WarrantError;
use crate::state::Action;
use crate::store::{ActionRequest, Row, UNSEALED, apply_at, audit, columns, warrant_types};
use crate::types::{DEFAULT_REMINDER_LEAD_HOURS, MAX_REMINDER_LEAD_HOURS};

/// Rows one run handles per kind of work; the rest wait for the next run.
const BATCH: i64 = 200;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobReport {
    pub expired: usize,
    pub reminded: usize,
    pub unsealed: usize,
}

/// Does every due job of the agency as of `now`, in `tx`.
pub async fn run_due(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<JobReport, WarrantError> {
    let now = now.trunc_subsecs(3);
    let mut report = JobReport::default();
    let system = Caller::system();

    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM warrants WHERE state = 'issued' AND execution_deadline <= $1 \
         ORDER BY execution_deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(tx.conn())
    .await?;
    for id in due {
        savepoint(tx).await?;
        let expired = apply_at(
            tx,
            &system,
            id,
            Action::Expire,
            &ActionRequest::default(),
            None,
            now,
        )
        .await;
        if settle(tx, expired.map(drop), "expire", id).await? {
            report.expired += 1;
        }
    }

    // No court reminds earlier than the longest lead a policy may set. Only reminders already
    // due are taken (each court's lead, bound as lists), so that warrants of courts with short
    // leads cannot fill the batch while another court's reminder waits behind them.
    let horizon = now + chrono::Duration::hours(i64::from(MAX_REMINDER_LEAD_HOURS));
    let policy = warrant_types(tx).await?;
    let (courts, leads): (Vec<String>, Vec<i64>) = policy
        .courts
        .iter()
        .map(|c| (c.court.clone(), c.reminder_lead().num_seconds()))
        .unzip();
    let default_lead = chrono::Duration::hours(i64::from(DEFAULT_REMINDER_LEAD_HOURS));
    let candidates = sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM warrants w WHERE state = 'issued' AND reminder_sent_at IS NULL \
           AND execution_deadline > $1 AND execution_deadline <= $2 \
           AND execution_deadline - make_interval(secs => coalesce( \
                 (SELECT l.secs FROM unnest($4::text[], $5::bigint[]) AS l(court, secs) \
                  WHERE l.court = w.court), $6)) <= $1 \
         ORDER BY execution_deadline LIMIT $3 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(horizon)
    .bind(BATCH)
    .bind(&courts)
    .bind(&leads)
    .bind(default_lead.num_seconds())
    .fetch_all(tx.conn())
    .await?;
    if !candidates.is_empty() {
        for row in candidates {
            let Some(deadline) = row.execution_deadline else {
                continue;
            };
            let remind_at = reminder_at(deadline, crate::store::reminder_lead(&policy, &row.court));
            if remind_at > now {
                continue;
            }
            savepoint(tx).await?;
            let reminded = remind(tx, &row, deadline, remind_at, now).await;
            if settle(tx, reminded, "remind", row.id).await? {
                report.reminded += 1;
            }
        }
    }

    let lapsed = sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM warrants WHERE sealed AND seal_expires_at <= $1 \
         ORDER BY seal_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(BATCH)
    .fetch_all(tx.conn())
    .await?;
    for row in lapsed {
        savepoint(tx).await?;
        let unsealed = lift_lapsed_seal(tx, &system, &row, now).await;
        if settle(tx, unsealed, "unseal", row.id).await? {
            report.unsealed += 1;
        }
    }
    Ok(report)
}

/// Each warrant's job runs under a savepoint, so one warrant the job cannot handle (rules that
/// no longer read, an entry refused) is logged and left for the next run while the agency's
/// other expiries, reminders and seal lapses go on. A database failure ends the run.
async fn savepoint(tx: &mut TenantTx) -> Result<(), WarrantError> {
    sqlx::query("SAVEPOINT warrant_job")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Keeps a row's work (`true`), or undoes it and logs why (`false`); a database or tenancy
/// failure is the run's.
async fn settle(
    tx: &mut TenantTx,
    done: Result<(), WarrantError>,
    job: &str,
    warrant: Uuid,
) -> Result<bool, WarrantError> {
    match done {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT warrant_job")
                .execute(tx.conn())
                .await?;
            Ok(true)
        }
        Err(e) if ends_run(&e) => Err(e),
        Err(e) => {
            // Undone, then let go of, so the next warrant's savepoint does not nest inside it.
            sqlx::query("ROLLBACK TO SAVEPOINT warrant_job")
                .execute(tx.conn())
                .await?;
            sqlx::query("RELEASE SAVEPOINT warrant_job")
                .execute(tx.conn())
                .await?;
            tracing::error!(%warrant, job, error = %e, "a warrant job failed for this warrant; the others go on");
            Ok(false)
        }
    }
}

/// A failure of the connection or of the agency's walls ends the run; a statement the server
/// refused, or anything else, is the one warrant's.
fn ends_run(e: &WarrantError) -> bool {
    match e {
        WarrantError::Database(sqlx::Error::Database(_)) => false,
        WarrantError::Database(_) | WarrantError::Tenancy(_) => true,
        _ => false,
    }
}

/// Writes the author's reminder of `deadline` and queues its e-mail, once per warrant and deadline.
async fn remind(
    tx: &mut TenantTx,
    row: &Row,
    deadline: DateTime<Utc>,
    remind_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    let reminder: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO warrant_reminders (id, warrant_id, recipient_id, deadline, remind_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (warrant_id, deadline) DO NOTHING \
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(row.id)
    .bind(row.author_id)
    .bind(deadline)
    .bind(remind_at)
    .fetch_optional(tx.conn())
    .await?;
    // The reminder is delivered by e-mail through the outbox, in this transaction: it is
    // queued exactly when the reminder row is written, once per warrant and deadline.
    if let Some(reminder_id) = reminder {
        writ_notify::enqueue(
            tx,
            &writ_notify::NewNotification {
                kind: writ_notify::Kind::DeadlineReminder,
                channel: writ_notify::Channel::Email,
                recipient_id: row.author_id,
                warrant: writ_notify::WarrantRef {
                    id: row.id,
                    number: row.number.clone(),
                    urgency: row.urgency.clone(),
                },
                due: Some(deadline),
                reminder_id: Some(reminder_id),
            },
        )
        .await
        .map_err(crate::oncall::routing::notify_error)?;
    }
    sqlx::query("UPDATE warrants SET reminder_sent_at = $2 WHERE id = $1")
        .bind(row.id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A seal at its expiry ends: `warrant.unsealed` with `reason: expired`.
async fn lift_lapsed_seal(
    tx: &mut TenantTx,
    system: &Caller,
    row: &Row,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    let version: i32 = sqlx::query_scalar(
        "UPDATE warrants SET sealed = false, version = version + 1, updated_at = $2 \
         WHERE id = $1 RETURNING version",
    )
    .bind(row.id)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    audit(
        tx,
        system,
        UNSEALED,
        row,
        &[],
        json!({ "reason": "expired", "expiredAt": row.seal_expires_at, "version": version }),
    )
    .await?;
    Ok(())
}

/// Runs [`run_due`] for every active agency every `every`, until dropped.
pub async fn run_warrant_jobs(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for agency in writ_tenancy::active_agencies(&pool, "warrant jobs").await {
            let run = async {
                let mut tx = TenantTx::begin_still_active(&pool, &agency).await?;
                let report = run_due(&mut tx, Utc::now()).await?;
                tx.commit().await?;
                Ok::<_, WarrantError>(report)
            };
            match run.await {
                Ok(r) if r == JobReport::default() => {}
                Ok(r) => tracing::info!(
                    agency = %agency.slug,
                    expired = r.expired,
                    reminded = r.reminded,
                    unsealed = r.unsealed,
                    "warrant jobs"
                ),
                Err(e) => {
                    tracing::warn!(agency = %agency.slug, error = %e, "warrant jobs failed; retrying")
                }
            }
        }
    }
}
