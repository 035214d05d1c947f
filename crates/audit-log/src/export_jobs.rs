//! Export jobs: a request queues a job in its own transaction (audited as
//! `admin.export.requested`); an export worker in any replica claims it with
//! `FOR UPDATE SKIP LOCKED` under a lease it keeps renewing, writes the signed bundle with
//! [`crate::export_bundle`] under the export directory, and records its size and SHA-256. A job
//! whose worker died is claimed again once its lease runs out, [`MAX_ATTEMPTS`] times at most.
//! The bundle files are written to one directory per agency (mode 0700), which replicas must share
//! for any of them to serve a download, and removed after the retention period (the job becomes
//! `expired`, audited as `admin.export.expired`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_keys::KeyProvider;
use writ_tenancy::{Agency, TenantTx};

use crate::{AuditError, Caller, ExportSummary, export_bundle, record};

/// A job whose lease ran out this many times (its worker died each time) is failed for good.
pub const MAX_ATTEMPTS: i32 = 3;

/// The audit codes of exports.
pub const EXPORT_REQUESTED: &str = "admin.export.requested";
pub const EXPORT_DOWNLOADED: &str = "admin.export.downloaded";
pub const EXPORT_EXPIRED: &str = "admin.export.expired";

const NOTIFY_CHANNEL: &str = "writ_audit_export";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    Failed,
    /// Done, and its bundle removed after the retention period; the job stays as the record.
    Expired,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Done => "done",
            ExportStatus::Failed => "failed",
            ExportStatus::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(ExportStatus::Queued),
            "running" => Some(ExportStatus::Running),
            "done" => Some(ExportStatus::Done),
            "failed" => Some(ExportStatus::Failed),
            "expired" => Some(ExportStatus::Expired),
            _ => None,
        }
    }
}

/// An export job as stored.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub id: Uuid,
    pub status: ExportStatus,
    /// The range asked for; `None` means from the first / up to the latest entry.
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the bundle holds, once done.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub entry_count: Option<u64>,
    pub checkpoint_size: Option<u64>,
    pub size_bytes: Option<u64>,
    /// Lowercase hex SHA-256 of the `.tar.gz`, as `sha256sum` prints it.
    pub sha256: Option<String>,
    /// Why it failed, in words fit for the requester (details are in the server log).
    pub error: Option<String>,
    /// Where the worker wrote the bundle.
    pub file_path: Option<PathBuf>,
    /// When the bundle is (or was) removed.
    pub expires_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "id, status, from_seq, to_seq, requested_by, requested_at, started_at, \
     finished_at, first_seq, last_seq, entry_count, checkpoint_size, size_bytes, sha256, error, \
     file_path, expires_at";

fn opt_u64(row: &PgRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v as u64))
}

fn job_from_row(agency: Uuid, row: &PgRow) -> Result<ExportJob, AuditError> {
    let status: String = row.try_get("status")?;
    Ok(ExportJob {
        id: row.try_get("id")?,
        status: ExportStatus::parse(&status)
            .ok_or_else(|| crate::store::corrupt(agency, format!("export status {status:?}")))?,
        from_seq: opt_u64(row, "from_seq")?,
        to_seq: opt_u64(row, "to_seq")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: row.try_get("requested_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        first_seq: opt_u64(row, "first_seq")?,
        last_seq: opt_u64(row, "last_seq")?,
        entry_count: opt_u64(row, "entry_count")?,
        checkpoint_size: opt_u64(row, "checkpoint_size")?,
        size_bytes: opt_u64(row, "size_bytes")?,
        sha256: row.try_get("sha256")?,
        error: row.try_get("error")?,
        file_path: row
            .try_get::<Option<String>, _>("file_path")?
            .map(PathBuf::from),
        expires_at: row.try_get("expires_at")?,
    })
}

fn to_i64(field: &str, v: u64) -> Result<i64, AuditError> {
    i64::try_from(v).map_err(|_| AuditError::InvalidRequest(format!("{field} is too large")))
}

/// Queues an export of seqs `from..=to` (defaults: the whole log, as it stands when the job
/// runs) and records `admin.export.requested` in the same transaction.
pub async fn request_export(
    tx: &mut TenantTx,
    caller: &Caller,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
) -> Result<ExportJob, AuditError> {
    let from = from_seq.map(|v| to_i64("fromSeq", v)).transpose()?;
    let to = to_seq.map(|v| to_i64("toSeq", v)).transpose()?;
    if from.is_some_and(|f| f < 1) || to.is_some_and(|t| t < 1) {
        return Err(AuditError::InvalidRequest(
            "fromSeq and toSeq start at 1".into(),
        ));
    }
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(AuditError::InvalidRequest(format!(
            "fromSeq ({f}) is after toSeq ({t})"
        )));
    }
    if let Some(f) = from {
        let size = crate::store::tree_size(tx.conn()).await?;
        if f as u64 > size {
            return Err(AuditError::InvalidRequest(format!(
                "fromSeq ({f}) is beyond the log, which holds {size} entries"
            )));
        }
    }
    let id = Uuid::now_v7();
    let agency = tx.agency_id();
    // Every job time is the database's clock at the statement (clock_timestamp, not now(), the
    // transaction's start): a worker sees the job only after this commits, so its start is never
    // earlier than the request.
    let sql = format!(
        "INSERT INTO audit_exports (id, from_seq, to_seq, requested_by, requested_at) \
         VALUES ($1, $2, $3, $4, clock_timestamp()) RETURNING {JOB_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(caller.user_id())
        .fetch_one(tx.conn())
        .await?;
    let job = job_from_row(agency, &row)?;
    let event = caller
        .event(EXPORT_REQUESTED)
        .resource("exportId", id.to_string())
        .detail(serde_json::json!({ "fromSeq": from_seq, "toSeq": to_seq }));
    record(tx, &event).await?;
    Ok(job)
}

/// The job `id` of the transaction's agency; another agency's job is [`AuditError::NotFound`].
pub async fn get_export(tx: &mut TenantTx, id: Uuid) -> Result<ExportJob, AuditError> {
    let agency = tx.agency_id();
    let sql = format!("SELECT {JOB_COLUMNS} FROM audit_exports WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(AuditError::NotFound)?;
    job_from_row(agency, &row)
}

/// Records `admin.export.downloaded` for `job` in the caller's transaction.
pub async fn record_download(
    tx: &mut TenantTx,
    caller: &Caller,
    job: &ExportJob,
) -> Result<(), AuditError> {
    let event = caller
        .event(EXPORT_DOWNLOADED)
        .resource("exportId", job.id.to_string())
        .detail(serde_json::json!({
            "firstSeq": job.first_seq,
            "lastSeq": job.last_seq,
            "sha256": job.sha256,
        }));
    record(tx, &event).await?;
    Ok(())
}

/// Days a finished bundle is kept unless `WRIT_EXPORT_RETENTION_DAYS` says otherwise.
pub const DEFAULT_RETENTION_DAYS: u64 = 7;
/// How often the worker looks for bundles past their retention.
const EXPIRY_CHECK: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct ExportWorkerConfig {
    /// `WRIT_EXPORT_DIR`: bundles go to `<dir>/<agency id>/<job id>.tar.gz`.
    pub dir: PathBuf,
    /// Look for jobs this often even without a notification (and for expired leases).
    pub sweep_interval: Duration,
    /// A claimed job is another worker's to take when its lease is not renewed for this long.
    pub lease: Duration,
    /// `WRIT_EXPORT_RETENTION_DAYS`: a finished bundle is removed this long after it was written.
    pub retention: Duration,
}

impl ExportWorkerConfig {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            sweep_interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            retention: Duration::from_secs(DEFAULT_RETENTION_DAYS * 24 * 3600),
        }
    }
}

/// Runs forever; spawn it next to the HTTP server. Safe in every replica. `listen_pool` is
/// [`crate::listener_pool`]'s.
pub async fn run_export_worker(
    pool: PgPool,
    listen_pool: PgPool,
    keys: KeyProvider,
    config: ExportWorkerConfig,
) {
    // Stored paths must not depend on the working directory of whoever reads them.
    let config = ExportWorkerConfig {
        dir: std::path::absolute(&config.dir).unwrap_or(config.dir),
        ..config
    };
    let mut wakeups =
        crate::background::Wakeups::new(listen_pool, NOTIFY_CHANNEL, config.sweep_interval);
    let mut expiry_checked: Option<tokio::time::Instant> = None;
    loop {
        if expiry_checked.is_none_or(|at| at.elapsed() >= EXPIRY_CHECK) {
            expiry_checked = Some(tokio::time::Instant::now());
            for agency in writ_tenancy::active_agencies(&pool, "audit export expiry").await {
                if let Err(e) = expire_exports(&pool, &agency).await {
                    tracing::warn!(agency_id = %agency.id, error = %e, "audit export: removing expired bundles");
                }
            }
        }
        let agencies = match wakeups.next().await {
            Some(id) => match writ_tenancy::agency_by_id(&pool, id).await {
                Ok(a) => a.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "audit export: cannot read agency");
                    Vec::new()
                }
            },
            None => writ_tenancy::active_agencies(&pool, "audit export").await,
        };
        for agency in agencies.iter().filter(|a| a.status == "active") {
            if let Err(e) = run_agency_jobs(&pool, &keys, agency, &config).await {
                tracing::error!(agency_id = %agency.id, error = %e, "audit export worker");
            }
        }
    }
}

/// Runs the agency's claimable jobs one after the other; returns how many ran.
pub async fn run_agency_jobs(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    config: &ExportWorkerConfig,
) -> Result<usize, AuditError> {
    let mut ran = 0;
    while let Some(claimed) = claim(pool, agency, config.lease).await? {
        run_job(pool, keys, agency, config, claimed).await;
        ran += 1;
    }
    Ok(ran)
}

struct Claimed {
    id: Uuid,
    claim: Uuid,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
}

async fn claim(
    pool: &PgPool,
    agency: &Agency,
    lease: Duration,
) -> Result<Option<Claimed>, AuditError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    sqlx::query(
        "UPDATE audit_exports SET status = 'failed', finished_at = clock_timestamp(), claim = NULL, \
                lease_until = NULL, \
                error = 'the export was interrupted ' || attempts || ' times; request it again' \
         WHERE status = 'running' AND lease_until < now() AND attempts >= $1",
    )
    .bind(MAX_ATTEMPTS)
    .execute(tx.conn())
    .await?;
    let claim = Uuid::new_v4();
    let row = sqlx::query(
        "UPDATE audit_exports SET status = 'running', claim = $1, attempts = attempts + 1, \
                lease_until = now() + $2 * interval '1 second', \
                started_at = coalesce(started_at, clock_timestamp()) \
         WHERE id = (SELECT id FROM audit_exports \
                     WHERE status = 'queued' OR (status = 'running' AND lease_until < now()) \
                     ORDER BY requested_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, from_seq, to_seq",
    )
    .bind(claim)
    .bind(lease.as_secs_f64())
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    row.map(|r| {
        Ok(Claimed {
            id: r.try_get("id")?,
            claim,
            from_seq: opt_u64(&r, "from_seq")?,
            to_seq: opt_u64(&r, "to_seq")?,
        })
    })
    .transpose()
}

/// Where the bundle of job `job` of `agency` goes, under claim `claim`: a worker whose lease ran
/// out and the one that took the job over never write the same file.
fn bundle_path(dir: &Path, agency: Uuid, job: Uuid, claim: Uuid) -> PathBuf {
    dir.join(agency.to_string())
        .join(format!("{job}.{}.tar.gz", claim.simple()))
}

async fn run_job(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    config: &ExportWorkerConfig,
    job: Claimed,
) {
    let path = bundle_path(&config.dir, agency.id, job.id, job.claim);
    let work = export_to_file(pool, keys, agency, job.from_seq, job.to_seq, &path);
    tokio::pin!(work);
    // Renew the lease while the export runs, so no other replica takes the job over.
    let mut renew = tokio::time::interval((config.lease / 3).max(Duration::from_millis(100)));
    renew.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = renew.tick() => {
                if let Err(e) = renew_lease(pool, agency, &job, config.lease).await {
                    tracing::warn!(agency_id = %agency.id, job = %job.id, error = %e, "audit export: lease renewal");
                }
            }
        }
    };
    let finished = match result {
        Ok(written) => {
            let kept = finish_done(pool, agency, &job, &path, &written, config).await;
            if let Ok(false) = kept {
                // Another worker took the job over (this one's lease ran out): its bundle is the
                // one on record.
                let _ = std::fs::remove_file(&path);
            }
            kept.map(|_| ())
        }
        Err(e) => {
            tracing::error!(agency_id = %agency.id, job = %job.id, error = %e, "audit export failed");
            finish_failed(pool, agency, &job, &public_reason(&e)).await
        }
    };
    if let Err(e) = finished {
        tracing::error!(agency_id = %agency.id, job = %job.id, error = %e, "audit export: recording the outcome");
    }
}

/// A bundle written to a file: what it holds, its size and its SHA-256 (lowercase hex).
#[derive(Debug, Clone)]
pub struct WrittenExport {
    pub summary: ExportSummary,
    pub size: u64,
    pub sha256: String,
}

/// Writes a signed `.tar.gz` export of seqs `from..=to` to `path`, in a directory readable by
/// the server's user only.
pub async fn export_to_file(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    from: Option<u64>,
    to: Option<u64>,
    path: &Path,
) -> Result<WrittenExport, AuditError> {
    prepare_dir(path.parent().unwrap_or(Path::new(".")))?;
    let summary = export_bundle(pool, keys, agency, from, to, path).await?;
    let file = path.to_owned();
    let (size, sha256) = tokio::task::spawn_blocking(move || hash_file(&file))
        .await
        .map_err(|e| AuditError::Io(e.to_string()))??;
    Ok(WrittenExport {
        summary,
        size,
        sha256,
    })
}

/// The agency's bundle directory, readable by the server's user only.
fn prepare_dir(dir: &Path) -> Result<(), AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Size and SHA-256 (lowercase hex) of a file, read in pieces.
pub fn hash_file(path: &Path) -> Result<(u64, String), AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex_lower(&sha.finalize())))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A failure as the requester may read it: no SQL, no paths.
fn public_reason(e: &AuditError) -> String {
    match e {
        AuditError::InvalidRequest(m) => m.clone(),
        AuditError::Corrupt { reason, .. } => {
            format!("the audit chain does not verify, so it was not certified: {reason}")
        }
        AuditError::Keys(_) => "the agency's signing key is unavailable; retry later".into(),
        _ => "internal error; the server log has the details".into(),
    }
}

async fn renew_lease(
    pool: &PgPool,
    agency: &Agency,
    job: &Claimed,
    lease: Duration,
) -> Result<(), AuditError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    sqlx::query(
        "UPDATE audit_exports SET lease_until = now() + $3 * interval '1 second' \
         WHERE id = $1 AND claim = $2 AND status = 'running'",
    )
    .bind(job.id)
    .bind(job.claim)
    .bind(lease.as_secs_f64())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn finish_done(
    pool: &PgPool,
    agency: &Agency,
    job: &Claimed,
    path: &Path,
    written: &WrittenExport,
    config: &ExportWorkerConfig,
) -> Result<bool, AuditError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let updated = sqlx::query(
        "UPDATE audit_exports SET status = 'done', finished_at = clock_timestamp(), lease_until = NULL, \
                error = NULL, first_seq = $3, last_seq = $4, entry_count = $5, \
                checkpoint_size = $6, file_path = $7, size_bytes = $8, sha256 = $9, \
                expires_at = clock_timestamp() + $10 * interval '1 second' \
         WHERE id = $1 AND claim = $2 AND status = 'running'",
    )
    .bind(job.id)
    .bind(job.claim)
    .bind(written.summary.first_seq as i64)
    .bind(written.summary.last_seq as i64)
    .bind(written.summary.entry_count as i64)
    .bind(written.summary.checkpoint_size as i64)
    .bind(path.to_string_lossy().into_owned())
    .bind(written.size as i64)
    .bind(&written.sha256)
    .bind(config.retention.as_secs_f64())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(updated.rows_affected() == 1)
}

/// Removes the bundles of `agency` past their retention: each file goes, then its job becomes
/// `expired` with an `admin.export.expired` entry (a bundle that is already gone is not an
/// error). Answers how many expired.
pub async fn expire_exports(pool: &PgPool, agency: &Agency) -> Result<u64, AuditError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let due: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT id, file_path FROM audit_exports \
         WHERE status = 'done' AND expires_at <= now() ORDER BY expires_at LIMIT 500 \
         FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(tx.conn())
    .await?;
    let mut expired = 0;
    for (id, file) in due {
        if let Some(file) = &file {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(export = %id, file, error = %e, "audit export: bundle not removed; kept for the next check");
                    continue;
                }
            }
        }
        sqlx::query("UPDATE audit_exports SET status = 'expired', file_path = NULL WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?;
        record(
            &mut tx,
            &Caller::system()
                .event(EXPORT_EXPIRED)
                .resource("exportId", id.to_string()),
        )
        .await?;
        expired += 1;
    }
    tx.commit().await?;
    Ok(expired)
}

async fn finish_failed(
    pool: &PgPool,
    agency: &Agency,
    job: &Claimed,
    reason: &str,
) -> Result<(), AuditError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    sqlx::query(
        "UPDATE audit_exports SET status = 'failed', finished_at = clock_timestamp(), lease_until = NULL, \
                error = $3 \
         WHERE id = $1 AND claim = $2 AND status = 'running'",
    )
    .bind(job.id)
    .bind(job.claim)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}
