//! Retention: the daily job erases documents of tiers 1 to 3 older than the agency's
//! `documents.retention` period for their tier; tier 4 (CJI) never, nothing under a legal hold,
//! and nothing signed or awaiting a signature. Each erasure is recorded like a requested one (`document.erase`, actor `system`,
//! `detail.kind: "retention"`) with an erasure record whose certificate is signed on first read.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use writ_audit_log::Caller;
use writ_tenancy::TenantTx;

use crate::DocumentError;
use crate::erasure::{destroy_object, erase};
use crate::storage::DocumentStore;
use crate::store::{COLUMNS, Row};

/// A document in no signing record (the e-signature tables, in the agency's schema): one signed
/// or awaiting a signature stays whatever its tier's period, as a held one does.
const NOT_IN_SIGNING_RECORD: &str = "NOT EXISTS (SELECT 1 FROM signatures s \
       WHERE s.document_id = documents.id) \
     AND NOT EXISTS (SELECT 1 FROM signature_requests r \
       WHERE r.document_id = documents.id AND r.status = 'pending')";

/// Documents erased per tier and run at most; the next run takes the rest.
const BATCH: i64 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Documents erased.
    pub erased: u64,
    /// Documents past their period but kept: by a legal hold, or as part of a signing record
    /// (signed, or awaiting a signature).
    pub held: u64,
}

/// Erases what the agency's retention policy says is due as of `now`, in `tx` (tests drive time
/// through `now`). Rows are taken `FOR UPDATE SKIP LOCKED`, so replicas share the work.
pub async fn run_due(
    tx: &mut TenantTx,
    now: DateTime<Utc>,
) -> Result<RetentionReport, DocumentError> {
    let now = now.trunc_subsecs(3);
    let policy = crate::policy::retention(tx).await?;
    let system = Caller::system();
    let mut report = RetentionReport::default();
    for (tier, days) in policy.tiers() {
        let Some(days) = days else { continue };
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let due: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM documents WHERE classification = $1 AND erased_at IS NULL \
               AND legal_hold_at IS NULL AND uploaded_at <= $2 AND {NOT_IN_SIGNING_RECORD} \
             ORDER BY uploaded_at LIMIT $3 FOR UPDATE SKIP LOCKED"
        )))
        .bind(tier)
        .bind(cutoff)
        .bind(BATCH)
        .fetch_all(tx.conn())
        .await?;
        for row in due {
            let erasure_id = Uuid::now_v7();
            let reason = format!("retention: tier {tier}, {days} days after upload");
            // A request still waiting for its second person has nothing left to approve.
            let superseded: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE erasure_requests SET status = 'superseded' \
                 WHERE document_id = $1 AND status = 'pending' RETURNING id",
            )
            .bind(row.id)
            .fetch_all(tx.conn())
            .await?;
            let event = erase(
                tx,
                &system,
                &row,
                erasure_id,
                now,
                json!({
                    "step": "erased",
                    "kind": "retention",
                    "erasureId": erasure_id,
                    "reason": reason,
                    "classification": tier,
                    "retentionDays": days,
                    "supersededRequests": superseded,
                }),
            )
            .await?;
            sqlx::query(
                "INSERT INTO erasure_requests (id, document_id, reason, kind, status, \
                   requested_at, erased_at, audit_event_id) \
                 VALUES ($1, $2, $3, 'retention', 'erased', $4, $4, $5)",
            )
            .bind(erasure_id)
            .bind(row.id)
            .bind(&reason)
            .bind(now)
            .bind(event)
            .execute(tx.conn())
            .await?;
            report.erased += 1;
        }
        let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM documents WHERE classification = $1 AND erased_at IS NULL \
               AND uploaded_at <= $2 AND (legal_hold_at IS NOT NULL OR NOT {NOT_IN_SIGNING_RECORD})"
        )))
        .bind(tier)
        .bind(cutoff)
        .fetch_one(tx.conn())
        .await?;
        report.held += u64::try_from(held).unwrap_or(0);
    }
    Ok(report)
}

/// Objects of erased documents still in the store (the delete after the erasure failed):
/// removed now. Their data keys are gone already, so what remains is undecryptable.
pub async fn purge_objects(
    pool: &PgPool,
    agency: &writ_tenancy::Agency,
    store: &DocumentStore,
) -> Result<u64, DocumentError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let pending: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, storage_key FROM documents WHERE erased_at IS NOT NULL \
           AND ciphertext_destroyed_at IS NULL AND storage_key IS NOT NULL AND storage = $1 \
         LIMIT 1000",
    )
    .bind(store.kind())
    .fetch_all(tx.conn())
    .await?;
    tx.rollback().await?;
    let mut n = 0;
    for (id, key) in pending {
        destroy_object(pool, agency, store, id, &key).await?;
        n += 1;
    }
    Ok(n)
}

/// The retention job of `writ serve`: every `every` (a day), for each active agency, one
/// transaction of [`run_due`], then the pending object deletions.
pub async fn run_retention_job(pool: PgPool, store: DocumentStore, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for agency in writ_tenancy::active_agencies(&pool, "document retention").await {
            let run = async {
                // Not under the agency's lock: a day's erasures can take a while, and an offboarding
                // waits for that lock's holders only a bounded time.
                let mut tx = TenantTx::begin(&pool, &agency).await?;
                let report = run_due(&mut tx, Utc::now()).await?;
                tx.commit().await?;
                let purged = if store.keeps_objects() {
                    purge_objects(&pool, &agency, &store).await?
                } else {
                    0
                };
                Ok::<_, DocumentError>((report, purged))
            };
            match run.await {
                Ok((r, 0)) if r == RetentionReport::default() => {}
                Ok((r, purged)) => tracing::info!(
                    agency = %agency.slug,
                    erased = r.erased,
                    held = r.held,
                    purged,
                    "document retention"
                ),
                Err(e) => tracing::warn!(
                    agency = %agency.slug,
                    error = %e,
                    "document retention failed; retrying at the next run"
                ),
            }
        }
    }
}
