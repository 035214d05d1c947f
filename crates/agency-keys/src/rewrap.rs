//! Re-wrapping data keys after a key-encryption key rotation, in small batches in the background,
//! with progress a caller can read. Data keys wrapped by a disabled version cannot be read, so
//! they are counted as not re-wrapped rather than retried for ever.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_log::{Actor, Event, record};
use writ_keys::{KeyError, KeyProvider, KeyPurpose, KeyState, WrappedKey};
use writ_tenancy::{Agency, TenantTx, agency_keys};

use crate::KeyLifecycleError;

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewrapJob {
    pub id: Uuid,
    pub to_version: i32,
    pub total: i64,
    pub done: i64,
    /// Data keys left under a disabled version: unreadable by design, so not re-wrapped.
    pub failed: i64,
    /// `running`, `done`, `failed`, or `superseded` by a later rotation (which takes over).
    pub status: String,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str =
    "id, to_version, total, done, failed, status, error, started_at, finished_at";

fn job_from_row(r: &sqlx::postgres::PgRow) -> Result<RewrapJob, sqlx::Error> {
    Ok(RewrapJob {
        id: r.try_get("id")?,
        to_version: r.try_get("to_version")?,
        total: r.try_get("total")?,
        done: r.try_get("done")?,
        failed: r.try_get("failed")?,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Starts a re-wrap to `to_version` in the rotation's transaction; a run still going towards an
/// older version is superseded (this one covers its data keys too).
pub(crate) async fn start(tx: &mut TenantTx, to_version: i32) -> Result<Uuid, KeyLifecycleError> {
    sqlx::query(
        "UPDATE key_rewraps SET status = 'superseded', finished_at = now() WHERE status = 'running'",
    )
    .execute(tx.conn())
    .await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO key_rewraps (id, to_version, total) \
         VALUES ($1, $2, (SELECT count(*) FROM data_keys WHERE kek_version < $2))",
    )
    .bind(id)
    .bind(to_version)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn rewrap_job(tx: &mut TenantTx, id: Uuid) -> Result<RewrapJob, KeyLifecycleError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM key_rewraps WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(KeyLifecycleError::NotFound)?;
    Ok(job_from_row(&row)?)
}

/// Re-wraps up to `batch` data keys of the agency's running job. Returns the job's progress, or
/// `None` when no job is running (or another replica holds it).
pub async fn rewrap_step(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    batch: i64,
) -> Result<Option<RewrapJob>, KeyLifecycleError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM key_rewraps WHERE status = 'running' \
         ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(tx.conn())
        .await?
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let mut job = job_from_row(&row)?;
    let versions = agency_keys(pool, agency.id, KeyPurpose::KeyEncryption).await?;
    let Some(target) = versions.iter().find(|k| k.key.version == job.to_version) else {
        return fail(tx, job, "the target key version does not exist").await;
    };
    let readable: Vec<i32> = versions
        .iter()
        .filter(|k| k.key.version < job.to_version && k.key.state == KeyState::Enabled)
        .map(|k| k.key.version)
        .collect();
    let rows = sqlx::query(
        "SELECT id, kek_version, wrapped FROM data_keys WHERE kek_version = ANY($1) \
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(&readable)
    .bind(batch)
    .fetch_all(tx.conn())
    .await?;
    let mut moved = 0i64;
    for row in &rows {
        let id: Uuid = row.try_get("id")?;
        let wrapped = WrappedKey {
            kek_version: row.try_get("kek_version")?,
            ciphertext: row.try_get("wrapped")?,
        };
        let Some(old) = versions
            .iter()
            .find(|k| k.key.version == wrapped.kek_version)
        else {
            continue;
        };
        let rewrapped = async {
            let plain = keys.unwrap_data_key(agency.id, &old.key, &wrapped).await?;
            keys.wrap_data_key(agency.id, &target.key, &plain).await
        }
        .await;
        let rewrapped = match rewrapped {
            Ok(w) => w,
            // An outage, or a replica started without this agency's provider: keep the job
            // running and try again on the next step (here or in another replica).
            Err(e @ (KeyError::Unavailable(_) | KeyError::NotConfigured(_))) => {
                return Err(e.into());
            }
            Err(e) => {
                return fail(tx, job, &format!("data key {id}: {e}")).await;
            }
        };
        sqlx::query(
            "UPDATE data_keys SET kek_version = $2, wrapped = $3, rewrapped_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(rewrapped.kek_version)
        .bind(&rewrapped.ciphertext)
        .execute(tx.conn())
        .await?;
        moved += 1;
    }
    job.done += moved;
    // A short batch means nothing readable is left, unless rows were skipped because another
    // transaction held them: those are re-wrapped on a later step, not counted as unreadable.
    let (skipped, unreadable): (i64, i64) = if (rows.len() as i64) < batch {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kek_version = ANY($2)), \
                    count(*) FILTER (WHERE NOT kek_version = ANY($2)) \
             FROM data_keys WHERE kek_version < $1",
        )
        .bind(job.to_version)
        .bind(&readable)
        .fetch_one(tx.conn())
        .await?
    } else {
        (1, 0)
    };
    if skipped == 0 {
        job.failed = unreadable;
        job.status = "done".into();
        job.finished_at = Some(Utc::now());
        record(
            &mut tx,
            &Event::new("key.rewrap.completed", Actor::system())
                .resource("keyPurpose", KeyPurpose::KeyEncryption.as_str())
                .resource("keyVersion", job.to_version)
                .detail(json!({
                    "rewrapId": job.id,
                    "total": job.total,
                    "rewrapped": job.done,
                    "unreadable": job.failed,
                })),
        )
        .await?;
    }
    sqlx::query(
        "UPDATE key_rewraps SET done = $2, failed = $3, status = $4, finished_at = $5 WHERE id = $1",
    )
    .bind(job.id)
    .bind(job.done)
    .bind(job.failed)
    .bind(&job.status)
    .bind(job.finished_at)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}

async fn fail(
    mut tx: TenantTx,
    mut job: RewrapJob,
    error: &str,
) -> Result<Option<RewrapJob>, KeyLifecycleError> {
    job.status = "failed".into();
    job.error = Some(error.to_owned());
    job.finished_at = Some(Utc::now());
    sqlx::query(
        "UPDATE key_rewraps SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1",
    )
    .bind(job.id)
    .bind(error)
    .bind(job.finished_at)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        &Event::new("key.rewrap.failed", Actor::system())
            .failure()
            .resource("keyVersion", job.to_version)
            .detail(json!({ "rewrapId": job.id, "error": error })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(job))
}
