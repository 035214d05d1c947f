//! The control plane's side of offboarding: the agency's status (`active` → `offboarding` →
//! `offboarded`), the record of each step in `control.offboardings`, and at the end the drop of
//! the agency's schema and role. The steps between (final export, certificate, keys) belong to the
//! crates that own them; each commits on its own and is noted here, so a run that stopped
//! part-way resumes where it stopped.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{Agency, ControlTx, TenancyError};

/// How long an offboarded agency's keys wait before the providers destroy them. AWS KMS allows
/// at most 30 days; until then an operator can still stop the destruction at the provider.
pub const OFFBOARDING_WAITING_DAYS: i64 = 30;

/// One agency's offboarding as recorded.
#[derive(Debug, Clone, FromRow)]
pub struct Offboarding {
    pub agency_id: Uuid,
    pub requested_by: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub deletion_after: DateTime<Utc>,
    pub final_export: Option<Value>,
    pub certificate: Option<Value>,
    pub keys_scheduled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Set when an operator called the offboarding off: no step runs any more.
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "agency_id, requested_by, reason, started_at, deletion_after, final_export, \
                       certificate, keys_scheduled_at, completed_at, cancel_requested_at";

/// A step of an offboarding whose outcome is kept.
#[derive(Debug, Clone, Copy)]
pub enum OffboardingStep {
    FinalExport,
    Certificate,
}

/// The offboarding of `agency_id`, if one was started.
pub async fn offboarding(
    db: impl PgExecutor<'_>,
    agency_id: Uuid,
) -> Result<Option<Offboarding>, TenancyError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM control.offboardings WHERE agency_id = $1"
    )))
    .bind(agency_id)
    .fetch_optional(db)
    .await?)
}

/// Starts offboarding `agency` in `ctl`: from then on it is not served (every tenant transaction
/// of a request needs `active`). An agency already offboarding gives its recorded offboarding
/// and `false` (the caller resumes it); an offboarded one is a conflict.
pub async fn start_offboarding(
    ctl: &mut ControlTx,
    agency: &Agency,
    requested_by: &str,
    reason: Option<&str>,
) -> Result<(Offboarding, bool), TenancyError> {
    crate::roles::act_as_owner(ctl.conn()).await?;
    // Every request's transaction and every key change holds this lock shared: taking it alone
    // waits for those in flight, so no request still commits into the chain after the final
    // export, and a key change under way finishes before the start (it reads the status under
    // the same lock, and refuses from then on).
    crate::tx::hold_agency_exclusive(ctl.conn(), agency.id).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM control.agencies WHERE id = $1 FOR UPDATE")
            .bind(agency.id)
            .fetch_optional(ctl.conn())
            .await?;
    match status.as_deref() {
        Some("active") => {}
        Some("offboarding") => {
            let found = offboarding(ctl.conn(), agency.id).await?.ok_or_else(|| {
                // Offboarded by an earlier release, which kept no steps: nothing to resume.
                TenancyError::Conflict(format!(
                    "agency {} is offboarding without a record of its steps",
                    agency.slug
                ))
            })?;
            return Ok((found, false));
        }
        Some(other) => {
            return Err(TenancyError::Conflict(format!(
                "agency {} is {other}",
                agency.slug
            )));
        }
        None => return Err(TenancyError::NoSuchAgency(agency.slug.clone())),
    }
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > 1000 || reason.chars().any(char::is_control) {
        return Err(TenancyError::invalid(
            "reason",
            "why the agency leaves: 1 to 1000 printable characters",
        ));
    }
    let deletion_after = Utc::now() + Duration::days(OFFBOARDING_WAITING_DAYS);
    let started: Offboarding = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO control.offboardings (agency_id, requested_by, reason, started_at, \
                                          deletion_after) \
         VALUES ($1, $2, $3, clock_timestamp(), date_trunc('milliseconds', $4::timestamptz)) \
         RETURNING {COLUMNS}"
    )))
    .bind(agency.id)
    .bind(requested_by)
    .bind(reason)
    .bind(deletion_after)
    .fetch_one(ctl.conn())
    .await?;
    sqlx::query("UPDATE control.agencies SET status = 'offboarding' WHERE id = $1")
        .bind(agency.id)
        .execute(ctl.conn())
        .await?;
    Ok((started, true))
}

/// Keeps the outcome of `step`; a step done before (a concurrent run) keeps its first outcome,
/// which is returned.
pub async fn note_offboarding_step(
    db: impl PgExecutor<'_>,
    agency_id: Uuid,
    step: OffboardingStep,
    outcome: &Value,
) -> Result<Value, TenancyError> {
    let column = match step {
        OffboardingStep::FinalExport => "final_export",
        OffboardingStep::Certificate => "certificate",
    };
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE control.offboardings SET {column} = coalesce({column}, $2) \
         WHERE agency_id = $1 RETURNING {column}"
    )))
    .bind(agency_id)
    .bind(outcome)
    .fetch_one(db)
    .await?)
}

/// Notes that every key version is scheduled for deletion.
pub async fn note_keys_scheduled(
    db: impl PgExecutor<'_>,
    agency_id: Uuid,
) -> Result<(), TenancyError> {
    sqlx::query(
        "UPDATE control.offboardings SET keys_scheduled_at = coalesce(keys_scheduled_at, now()) \
         WHERE agency_id = $1",
    )
    .bind(agency_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The right to run an agency's offboarding steps, held while the returned transaction is open
/// (one runner at a time, across replicas); `None` while another runner holds it.
pub async fn try_lock_offboarding(
    pool: &PgPool,
    agency_id: Uuid,
) -> Result<Option<Transaction<'static, Postgres>>, TenancyError> {
    let mut tx = pool.begin().await?;
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("writ.offboarding:{agency_id}"))
            .fetch_one(&mut *tx)
            .await?;
    Ok(ours.then_some(tx))
}

/// Offboardings with work left now: a step not done (a run stopped part-way), or the waiting
/// period over.
pub async fn offboardings_pending(db: impl PgExecutor<'_>) -> Result<Vec<Uuid>, TenancyError> {
    Ok(sqlx::query_scalar(
        "SELECT o.agency_id FROM control.offboardings o \
         JOIN control.agencies a ON a.id = o.agency_id AND a.status = 'offboarding' \
         WHERE o.completed_at IS NULL AND o.cancel_requested_at IS NULL \
           AND (o.keys_scheduled_at IS NULL OR o.deletion_after <= now()) \
         ORDER BY o.started_at",
    )
    .fetch_all(db)
    .await?)
}

/// Ends an offboarding in `ctl`: drops the agency's schema (every table, audit chain included)
/// and its role, erases any key material still held, and marks the agency `offboarded`. The
/// control plane keeps the agency's row, its key versions (public keys, for verifying what it
/// signed) and the offboarding record with its certificate. Refused before the waiting period
/// ends or while a key is not yet scheduled for deletion.
pub async fn finish_offboarding(
    ctl: &mut ControlTx,
    agency: &Agency,
) -> Result<Offboarding, TenancyError> {
    crate::roles::act_as_owner(ctl.conn()).await?;
    let due: Option<bool> = sqlx::query_scalar(
        "SELECT o.keys_scheduled_at IS NOT NULL AND o.deletion_after <= now() \
         FROM control.offboardings o JOIN control.agencies a ON a.id = o.agency_id \
         WHERE o.agency_id = $1 AND a.status = 'offboarding' AND o.completed_at IS NULL \
           AND o.cancel_requested_at IS NULL \
         FOR UPDATE",
    )
    .bind(agency.id)
    .fetch_optional(ctl.conn())
    .await?;
    if due != Some(true) {
        return Err(TenancyError::Conflict(format!(
            "agency {}'s offboarding cannot finish: its keys are not all scheduled for deletion \
             or the waiting period has not ended",
            agency.slug
        )));
    }
    let q = agency.ident.quoted();
    let ddl = format!("DROP SCHEMA IF EXISTS {q} CASCADE; DROP ROLE IF EXISTS {q}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(ctl.conn())
        .await?;
    sqlx::query("UPDATE control.agency_keys SET material = NULL WHERE agency_id = $1")
        .bind(agency.id)
        .execute(ctl.conn())
        .await?;
    sqlx::query("UPDATE control.agencies SET status = 'offboarded' WHERE id = $1")
        .bind(agency.id)
        .execute(ctl.conn())
        .await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE control.offboardings SET completed_at = now() WHERE agency_id = $1 \
         RETURNING {COLUMNS}"
    )))
    .bind(agency.id)
    .fetch_one(ctl.conn())
    .await?)
}

/// Calls an offboarding off (the first step of doing so): from now on none of its steps runs.
/// Refused when the agency is not offboarding, or once the waiting period is over (the providers
/// may have destroyed the keys) unless a call-off began before and is being finished.
pub async fn request_offboarding_cancel(
    db: impl PgExecutor<'_>,
    agency: &Agency,
) -> Result<Offboarding, TenancyError> {
    let marked: Option<Offboarding> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE control.offboardings SET cancel_requested_at = coalesce(cancel_requested_at, now()) \
         WHERE agency_id = $1 AND completed_at IS NULL \
           AND (deletion_after > now() OR cancel_requested_at IS NOT NULL) \
           AND EXISTS (SELECT 1 FROM control.agencies WHERE id = $1 AND status = 'offboarding') \
         RETURNING {COLUMNS}"
    )))
    .bind(agency.id)
    .fetch_optional(db)
    .await?;
    marked.ok_or_else(|| {
        TenancyError::Conflict(format!(
            "agency {} has no offboarding that can still be called off (none, finished, or past \
             its deletion date)",
            agency.slug
        ))
    })
}

/// Ends a call-off in `ctl`, once every key is usable again: the offboarding's record goes (the
/// caller keeps it in the platform events) and the agency is `active`, served again.
pub async fn finish_offboarding_cancel(
    ctl: &mut ControlTx,
    agency: &Agency,
) -> Result<Offboarding, TenancyError> {
    crate::roles::act_as_owner(ctl.conn()).await?;
    let scheduled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM control.agency_keys \
         WHERE agency_id = $1 AND state = 'pending_deletion'",
    )
    .bind(agency.id)
    .fetch_one(ctl.conn())
    .await?;
    if scheduled > 0 {
        return Err(TenancyError::Conflict(format!(
            "{scheduled} key version(s) of agency {} are still scheduled for deletion",
            agency.slug
        )));
    }
    let removed: Option<Offboarding> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM control.offboardings \
         WHERE agency_id = $1 AND cancel_requested_at IS NOT NULL AND completed_at IS NULL \
         RETURNING {COLUMNS}"
    )))
    .bind(agency.id)
    .fetch_optional(ctl.conn())
    .await?;
    let removed = removed.ok_or_else(|| {
        TenancyError::Conflict(format!("agency {} is not being called back", agency.slug))
    })?;
    sqlx::query("UPDATE control.agencies SET status = 'active' WHERE id = $1")
        .bind(agency.id)
        .execute(ctl.conn())
        .await?;
    Ok(removed)
}
