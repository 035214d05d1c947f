//! Automated export of each agency's audit log to storage the agency controls (DESIGN §6), set by
//! the agency policy `audit.archive`: `{"url": "s3://bucket/prefix" | "file:///abs/dir",
//! "everyHours": N}`. Each run exports the entries not archived yet as a signed `.tar.gz` bundle
//! (the same bundle as [`crate::export_bundle`], verifiable with `writ-verify bundle`), uploads it
//! to `<prefix>/<agency-id>/<from>-<to>-<timestamp>.tar.gz` together with the latest signed
//! checkpoint (`<prefix>/<agency-id>/checkpoints/<tree size>.txt`), and only then records the
//! range in `audit_archives` and `audit.archived` in the chain, in one transaction. A failed upload
//! records nothing, so the next run tries the same range again.
//!
//! S3 credentials, region and endpoint come from the server's standard AWS environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, …), never from the policy, which agency admins write and which holds no
//! secrets. Plain HTTP is allowed only towards an explicit endpoint override (a test server such
//! as moto, or a private S3-compatible store); AWS itself is always reached over TLS.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use tokio::io::AsyncReadExt;
use uuid::Uuid;
use writ_keys::KeyProvider;
use writ_tenancy::{Agency, TenantTx};

use crate::store::lock_key;
use crate::{Actor, AuditError, Event, export_bundle, latest_checkpoint, record};

/// The policy name, in the agency's `policies` table.
pub const ARCHIVE_POLICY: &str = "audit.archive";
/// The audit code of an archive run that uploaded a bundle.
pub const ARCHIVED: &str = "audit.archived";
/// Archive every this many hours unless the policy says otherwise.
pub const DEFAULT_ARCHIVE_HOURS: u32 = 24;
/// At least weekly: an agency's copy should never lag its log by more.
pub const MAX_ARCHIVE_HOURS: u32 = 168;

const ARCHIVE_LOCK: u8 = 0xa4;
/// Bundles above this size are uploaded in parts of this size (S3 wants at least 5 MiB a part),
/// never read into memory whole.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: bounds the memory of an upload to a few parts.
const PARTS_IN_FLIGHT: usize = 4;

/// Where an agency's archives go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveDestination {
    /// A bucket and a key prefix (empty for the bucket's root), without slashes at either end.
    S3 { bucket: String, prefix: String },
    /// An absolute path to a directory that must exist on the server.
    Directory(PathBuf),
}

impl ArchiveDestination {
    /// The URL of an object `key` (relative to the destination) at this destination.
    fn object_url(&self, key: &Path) -> String {
        match self {
            ArchiveDestination::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
            ArchiveDestination::Directory(dir) => {
                format!(
                    "file://{}/{key}",
                    dir.display().to_string().trim_end_matches('/')
                )
            }
        }
    }

    /// The key of `name` under the agency's folder, in the store [`Self::open`] returns.
    fn key(&self, agency: Uuid, name: &str) -> Path {
        match self {
            ArchiveDestination::S3 { prefix, .. } if !prefix.is_empty() => {
                Path::from(format!("{prefix}/{agency}/{name}"))
            }
            _ => Path::from(format!("{agency}/{name}")),
        }
    }

    fn url(&self) -> String {
        match self {
            ArchiveDestination::S3 { bucket, prefix } if prefix.is_empty() => {
                format!("s3://{bucket}")
            }
            ArchiveDestination::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            ArchiveDestination::Directory(dir) => format!("file://{}", dir.display()),
        }
    }

    /// A client for the destination. S3 settings come from the server's AWS environment; the
    /// directory must exist (it is the agency's storage, mounted by the operator, never created
    /// here).
    fn open(&self) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        let failed = |e: object_store::Error| ArchiveError::Destination {
            url: self.url(),
            reason: e.to_string(),
        };
        match self {
            ArchiveDestination::S3 { bucket, .. } => {
                let builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let store = http_only_to_endpoint_override(builder)
                    // A store that is down fails the run within a minute; the next run retries.
                    .with_retry(RetryConfig {
                        max_retries: 4,
                        retry_timeout: Duration::from_secs(60),
                        ..Default::default()
                    })
                    .build()
                    .map_err(failed)?;
                Ok(Arc::new(store))
            }
            ArchiveDestination::Directory(dir) => {
                if !dir.is_dir() {
                    return Err(ArchiveError::Destination {
                        url: self.url(),
                        reason: "no such directory on this server".into(),
                    });
                }
                Ok(Arc::new(
                    LocalFileSystem::new_with_prefix(dir).map_err(failed)?,
                ))
            }
        }
    }
}

/// Plain HTTP only towards an explicit endpoint override (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_S3`), whatever `AWS_ALLOW_HTTP` says: AWS itself only over TLS.
fn http_only_to_endpoint_override(builder: AmazonS3Builder) -> AmazonS3Builder {
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let http = endpoint
        .as_deref()
        .and_then(|e| e.get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    builder.with_allow_http(http)
}

/// The destinations this server archives to (`WRIT_ARCHIVE_DESTINATIONS`, the operator's list):
/// an agency's `audit.archive` URL must be one of them or below one. The server writes with its
/// own S3 credentials and file permissions, so an agency admin must not be able to point it at
/// another agency's bucket or anywhere on the server's disk. Empty: nothing is archived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveDestinations(Vec<ArchiveDestination>);

impl ArchiveDestinations {
    /// A comma-separated list of archive URLs (`s3://bucket[/prefix]`, `file:///dir`).
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(parse_destination)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `destination` is one of the listed ones or below one (whole names only: a
    /// listed `s3://county/audit` allows `s3://county/audit/pd`, not `s3://county/audit-x`).
    pub fn allows(&self, destination: &ArchiveDestination) -> bool {
        self.0.iter().any(|allowed| match (allowed, destination) {
            (
                ArchiveDestination::S3 { bucket, prefix },
                ArchiveDestination::S3 {
                    bucket: b,
                    prefix: p,
                },
            ) => {
                bucket == b
                    && (prefix.is_empty()
                        || p == prefix
                        || p.strip_prefix(prefix.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            }
            (ArchiveDestination::Directory(dir), ArchiveDestination::Directory(d)) => {
                d.starts_with(dir)
            }
            _ => false,
        })
    }

    /// Why `destination` is refused, naming what this server allows.
    pub fn check(&self, destination: &ArchiveDestination) -> Result<(), String> {
        if self.allows(destination) {
            return Ok(());
        }
        if self.0.is_empty() {
            return Err(format!(
                "{}: this server archives to no destination; its operator lists those agencies \
                 may use in WRIT_ARCHIVE_DESTINATIONS",
                destination.url()
            ));
        }
        let allowed: Vec<String> = self.0.iter().map(ArchiveDestination::url).collect();
        Err(format!(
            "{}: not among this server's archive destinations; use one of these or a path \
             below one: {}",
            destination.url(),
            allowed.join(", ")
        ))
    }

    /// Checks a policy value's destination (the value's shape is checked by its validator).
    pub fn check_policy(&self, value: &Value) -> Result<(), String> {
        match ArchivePolicy::from_value(value) {
            Ok(policy) => self.check(&policy.destination),
            Err(shape) => Err(shape),
        }
    }
}

/// An agency's archive policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePolicy {
    pub destination: ArchiveDestination,
    pub every_hours: u32,
}

impl ArchivePolicy {
    /// Reads a policy value: `{"url": "s3://bucket/prefix" | "file:///abs/dir", "everyHours": N}`
    /// with N from 1 to 168 (default 24) and nothing else.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let shape = || {
            format!(
                "{ARCHIVE_POLICY} is {{\"url\": \"s3://bucket/prefix\" or \"file:///absolute/dir\", \
                 \"everyHours\": N}}, N a whole number of hours from 1 to {MAX_ARCHIVE_HOURS} \
                 (default {DEFAULT_ARCHIVE_HOURS})"
            )
        };
        let object = value.as_object().ok_or_else(shape)?;
        if object.keys().any(|k| k != "url" && k != "everyHours") {
            return Err(shape());
        }
        let url = object
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(shape)?;
        let every_hours = match object.get("everyHours") {
            None => DEFAULT_ARCHIVE_HOURS,
            Some(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_ARCHIVE_HOURS).contains(n))
                .ok_or_else(shape)?,
        };
        Ok(Self {
            destination: parse_destination(url)?,
            every_hours,
        })
    }

    /// The agency's policy; `None` when it has none (nothing is archived).
    pub async fn load(tx: &mut TenantTx) -> Result<Option<Self>, ArchiveError> {
        let value: Option<Value> = sqlx::query("SELECT value FROM policies WHERE name = $1")
            .bind(ARCHIVE_POLICY)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get("value"))
            .transpose()?;
        value
            .map(|v| Self::from_value(&v).map_err(ArchiveError::InvalidPolicy))
            .transpose()
    }
}

fn parse_destination(url: &str) -> Result<ArchiveDestination, String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let b = bucket.as_bytes();
        let bucket_ok = (3..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && !bucket.contains("..");
        if !bucket_ok {
            return Err(format!(
                "{url:?}: an S3 bucket name is 3 to 63 lowercase letters, digits, '.' and '-' \
                 (no credentials, no query: those come from the server's AWS environment)"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        let safe = |c: char| c.is_ascii_alphanumeric() || "-_.!*'()".contains(c);
        if !prefix.is_empty()
            && !prefix
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && s.chars().all(safe))
        {
            return Err(format!(
                "{url:?}: the key prefix is '/'-separated names of letters, digits and -_.!*'() \
                 (no empty, '.' or '..' names)"
            ));
        }
        return Ok(ArchiveDestination::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!(
                "{url:?}: a directory is an absolute path, file:///path/to/dir (no host, not relative)"
            ));
        }
        let path = path.trim_end_matches('/');
        if path.is_empty()
            || path.contains('%')
            || path.chars().any(char::is_control)
            || path
                .split('/')
                .skip(1)
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(format!(
                "{url:?}: the directory must be a plain absolute path below '/' (no '.', '..', \
                 empty names, percent-escapes or control characters)"
            ));
        }
        return Ok(ArchiveDestination::Directory(PathBuf::from(path)));
    }
    Err(format!(
        "{url:?}: the archive URL is s3://bucket/prefix or file:///absolute/dir"
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the agency has no {ARCHIVE_POLICY} policy: nothing to archive to")]
    NotConfigured,
    /// The stored policy is not one Writ would accept.
    #[error("{ARCHIVE_POLICY} policy: {0}")]
    InvalidPolicy(String),
    /// The destination is misconfigured or unreachable, or refused the upload.
    #[error("archive destination {url}: {reason}")]
    Destination { url: String, reason: String },
    #[error("another process is archiving this agency's audit log; retry")]
    Busy,
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for ArchiveError {
    fn from(e: sqlx::Error) -> Self {
        Self::Audit(e.into())
    }
}

impl From<writ_tenancy::TenancyError> for ArchiveError {
    fn from(e: writ_tenancy::TenancyError) -> Self {
        Self::Audit(e.into())
    }
}

fn io(e: std::io::Error) -> ArchiveError {
    ArchiveError::Audit(AuditError::Io(e.to_string()))
}

/// One uploaded archive, as recorded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveRecord {
    pub id: Uuid,
    pub from_seq: u64,
    pub to_seq: u64,
    /// The bundle: `s3://bucket/key` or `file:///path`.
    pub object_path: String,
    /// The signed checkpoint uploaded with it.
    pub checkpoint_path: String,
    /// Lowercase hex SHA-256 of the `.tar.gz`, as `sha256sum` prints it.
    pub sha256: String,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub enum ArchiveOutcome {
    Archived(ArchiveRecord),
    /// No entry past the last archive other than the `audit.archived` entries of earlier runs
    /// (those go with the next archive): nothing was uploaded.
    NothingNew {
        archived_to: u64,
        tree_size: u64,
    },
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The latest archive of the agency, if any.
pub async fn last_archive(tx: &mut TenantTx) -> Result<Option<ArchiveRecord>, ArchiveError> {
    let row = sqlx::query(
        "SELECT id, from_seq, to_seq, object_path, checkpoint_path, sha256, bytes, created_at \
         FROM audit_archives ORDER BY to_seq DESC LIMIT 1",
    )
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(ArchiveRecord {
            id: r.try_get("id")?,
            from_seq: r.try_get::<i64, _>("from_seq")? as u64,
            to_seq: r.try_get::<i64, _>("to_seq")? as u64,
            object_path: r.try_get("object_path")?,
            checkpoint_path: r.try_get("checkpoint_path")?,
            sha256: r.try_get("sha256")?,
            bytes: r.try_get::<i64, _>("bytes")? as u64,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Archives the agency's entries after the last archive up to the current tree size, now,
/// whether or not the policy's interval has passed (`writ audit archive`; [`run_archiver`] checks
/// the interval). `now` names the bundle and dates the record.
pub async fn archive_agency(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    now: DateTime<Utc>,
    destinations: &ArchiveDestinations,
) -> Result<ArchiveOutcome, ArchiveError> {
    let id = agency.id;
    crate::sequence_agency(pool, id, &agency.ident).await?;
    // This transaction holds the agency's archive lock from the read of the last archive to the
    // commit of the new one, so two replicas never upload or record one range twice.
    // Not under the agency's lock: the export and upload can take minutes, and an offboarding
    // waits for that lock's holders only a bounded time.
    let mut tx = TenantTx::begin(pool, agency).await?;
    let policy = ArchivePolicy::load(&mut tx)
        .await?
        .ok_or(ArchiveError::NotConfigured)?;
    // Checked at each run too: the operator may have narrowed the list since the policy was set.
    destinations
        .check(&policy.destination)
        .map_err(|reason| ArchiveError::Destination {
            url: policy.destination.url(),
            reason,
        })?;
    let locked: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock_key(id, ARCHIVE_LOCK))
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    if !locked {
        return Err(ArchiveError::Busy);
    }
    let archived_to = last_archive(&mut tx).await?.map_or(0, |r| r.to_seq);
    let tree_size = crate::store::tree_size(tx.conn()).await?;
    // An archive run adds its own entry; that alone is not worth another upload.
    let new: i64 = sqlx::query("SELECT count(*) FROM audit_log WHERE seq > $1 AND action <> $2")
        .bind(archived_to as i64)
        .bind(ARCHIVED)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    if new == 0 {
        tx.rollback().await?;
        return Ok(ArchiveOutcome::NothingNew {
            archived_to,
            tree_size,
        });
    }

    let store = policy.destination.open()?;
    let staging = tempfile::Builder::new()
        .prefix("writ-archive-")
        .tempdir()
        .map_err(io)?;
    let bundle = staging.path().join("bundle.tar.gz");
    // Starts at the signed minimum index instead when retention pruned entries never archived.
    let summary = export_bundle(
        pool,
        keys,
        agency,
        Some(archived_to + 1),
        Some(tree_size),
        &bundle,
    )
    .await?;
    let checkpoint = latest_checkpoint(&mut tx)
        .await?
        .filter(|c| c.tree_size >= summary.last_seq)
        .ok_or_else(|| crate::store::corrupt(id, "no checkpoint covers the archive"))?;

    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let key = policy.destination.key(
        id,
        &format!("{}-{}-{stamp}.tar.gz", summary.first_seq, summary.last_seq),
    );
    let checkpoint_key = policy
        .destination
        .key(id, &format!("checkpoints/{}.txt", checkpoint.tree_size));
    let failed = |what: &Path, e: object_store::Error| ArchiveError::Destination {
        url: policy.destination.url(),
        reason: format!("uploading {what}: {e}"),
    };
    let (sha256, bytes) = upload_file(store.as_ref(), &key, &bundle, PART_SIZE)
        .await
        .map_err(|e| match e {
            Upload::Store(e) => failed(&key, e),
            Upload::Io(e) => io(e),
        })?;
    store
        .put(
            &checkpoint_key,
            PutPayload::from(checkpoint.note.clone().into_bytes()),
        )
        .await
        .map_err(|e| failed(&checkpoint_key, e))?;
    drop(staging);

    let archive = ArchiveRecord {
        id: Uuid::now_v7(),
        from_seq: summary.first_seq,
        to_seq: summary.last_seq,
        object_path: policy.destination.object_url(&key),
        checkpoint_path: policy.destination.object_url(&checkpoint_key),
        sha256,
        bytes,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO audit_archives \
         (id, from_seq, to_seq, object_path, checkpoint_path, sha256, bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(archive.id)
    .bind(archive.from_seq as i64)
    .bind(archive.to_seq as i64)
    .bind(&archive.object_path)
    .bind(&archive.checkpoint_path)
    .bind(&archive.sha256)
    .bind(archive.bytes as i64)
    .bind(archive.created_at)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        &Event::new(ARCHIVED, Actor::system())
            .resource("archiveId", archive.id.to_string())
            .detail(json!({
                "path": archive.object_path,
                "checkpointPath": archive.checkpoint_path,
                "fromSeq": archive.from_seq,
                "toSeq": archive.to_seq,
                "entryCount": summary.entry_count,
                "checkpointSize": checkpoint.tree_size,
                "sha256": archive.sha256,
                "bytes": archive.bytes,
                "createdAt": ts(now),
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(ArchiveOutcome::Archived(archive))
}

enum Upload {
    Store(object_store::Error),
    Io(std::io::Error),
}

/// Uploads `file` to `key` and returns its SHA-256 (hex) and size: in one request when it fits
/// in one part, else as a multipart upload of `part_size` parts read from disk as they go (a
/// failed multipart upload is aborted, so no parts linger in the bucket).
async fn upload_file(
    store: &dyn ObjectStore,
    key: &Path,
    file: &FsPath,
    part_size: usize,
) -> Result<(String, u64), Upload> {
    let mut file = tokio::fs::File::open(file).await.map_err(Upload::Io)?;
    let len = file.metadata().await.map_err(Upload::Io)?.len();
    let mut sha = Sha256::new();
    if len <= part_size as u64 {
        let mut body = Vec::with_capacity(len as usize);
        file.read_to_end(&mut body).await.map_err(Upload::Io)?;
        sha.update(&body);
        let bytes = body.len() as u64;
        store
            .put(key, PutPayload::from(body))
            .await
            .map_err(Upload::Store)?;
        return Ok((hex::encode(sha.finalize()), bytes));
    }
    let upload = store.put_multipart(key).await.map_err(Upload::Store)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
    let mut buf = vec![0u8; part_size];
    let mut bytes = 0u64;
    let fed: Result<(), Upload> = async {
        loop {
            let n = read_full(&mut file, &mut buf).await.map_err(Upload::Io)?;
            if n == 0 {
                return Ok(());
            }
            sha.update(&buf[..n]);
            bytes += n as u64;
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(Upload::Store)?;
            writer.write(&buf[..n]);
        }
    }
    .await;
    match fed {
        Ok(()) => {
            writer.finish().await.map_err(Upload::Store)?;
            Ok((hex::encode(sha.finalize()), bytes))
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Whether the agency's policy interval has passed since its last archive (or it has none).
/// `None` when the agency archives nothing.
pub async fn archive_due(
    pool: &PgPool,
    agency: &Agency,
    now: DateTime<Utc>,
) -> Result<Option<bool>, ArchiveError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let Some(policy) = ArchivePolicy::load(&mut tx).await? else {
        return Ok(None);
    };
    let last = last_archive(&mut tx).await?;
    tx.rollback().await?;
    Ok(Some(last.is_none_or(|l| {
        now - l.created_at >= chrono::Duration::hours(i64::from(policy.every_hours))
    })))
}

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// Look for agencies whose archive is due this often.
    pub interval: Duration,
    /// Where archives may go.
    pub destinations: ArchiveDestinations,
}

impl ArchiveConfig {
    pub fn new(destinations: ArchiveDestinations) -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            destinations,
        }
    }
}

/// Runs forever: every `config.interval`, archives each active agency whose policy interval has
/// passed since its last archive. Spawn it next to the HTTP server; safe in every replica (an
/// advisory lock keeps one archiver per agency). A failed run is logged and retried on the next
/// look, then after pauses that double with each failure in a row (up to about an hour), so a
/// store that is down does not cost a full export every few minutes.
pub async fn run_archiver(pool: PgPool, keys: KeyProvider, config: ArchiveConfig) {
    let mut tick = tokio::time::interval(config.interval);
    let max_skip = (3600 / config.interval.as_secs().max(1)).clamp(1, 1024) as u32;
    // agency → (failures in a row, looks still to skip)
    let mut backoff: HashMap<Uuid, (u32, u32)> = HashMap::new();
    loop {
        tick.tick().await;
        for agency in &writ_tenancy::active_agencies(&pool, "audit archiver").await {
            if let Some((_, skip)) = backoff.get_mut(&agency.id).filter(|(_, s)| *s > 0) {
                *skip -= 1;
                continue;
            }
            let now = Utc::now();
            let result = match archive_due(&pool, agency, now).await {
                Ok(Some(true)) => {
                    archive_agency(&pool, &keys, agency, now, &config.destinations).await
                }
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match result {
                Ok(outcome) => {
                    backoff.remove(&agency.id);
                    if let ArchiveOutcome::Archived(a) = outcome {
                        tracing::info!(
                            agency_id = %agency.id, from_seq = a.from_seq, to_seq = a.to_seq,
                            path = %a.object_path, bytes = a.bytes, "audit log archived"
                        );
                    }
                }
                Err(ArchiveError::Busy) => {}
                Err(e) => {
                    let failures = backoff.get(&agency.id).map_or(0, |(n, _)| *n) + 1;
                    let skip = ((1u32 << (failures - 1).min(10)) - 1).min(max_skip);
                    backoff.insert(agency.id, (failures, skip));
                    tracing::error!(agency_id = %agency.id, error = %e, failures, "audit archiver");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn policy(v: Value) -> Result<ArchivePolicy, String> {
        ArchivePolicy::from_value(&v)
    }

    #[test]
    fn policies_name_a_bucket_or_an_absolute_directory() {
        assert_eq!(
            policy(json!({ "url": "s3://agency-audit/writ/exports/" })).unwrap(),
            ArchivePolicy {
                destination: ArchiveDestination::S3 {
                    bucket: "agency-audit".into(),
                    prefix: "writ/exports".into()
                },
                every_hours: DEFAULT_ARCHIVE_HOURS,
            }
        );
        assert_eq!(
            policy(json!({ "url": "file:///srv/agency/audit", "everyHours": 168 })).unwrap(),
            ArchivePolicy {
                destination: ArchiveDestination::Directory("/srv/agency/audit".into()),
                every_hours: 168,
            }
        );
        let bucket_only = policy(json!({ "url": "s3://abc", "everyHours": 1 })).unwrap();
        let id = Uuid::nil();
        let key = bucket_only.destination.key(id, "1-2-x.tar.gz");
        assert_eq!(
            bucket_only.destination.object_url(&key),
            format!("s3://abc/{id}/1-2-x.tar.gz")
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            json!({ "url": "s3://bucket/p", "everyHours": 0 }),
            json!({ "url": "s3://bucket/p", "everyHours": 169 }),
            json!({ "url": "s3://bucket/p", "everyHours": 2.5 }),
            json!({ "url": "s3://bucket/p", "everyHours": "24" }),
            json!({ "url": "s3://bucket/p", "secretAccessKey": "x" }),
            json!({ "everyHours": 24 }),
            json!("s3://bucket/p"),
            json!({ "url": "https://bucket.s3.amazonaws.com/p" }),
            json!({ "url": "gs://bucket/p" }),
            json!({ "url": "S3://bucket/p" }),
            json!({ "url": "s3://AKIA:secret@bucket/p" }),
            json!({ "url": "s3://bucket?x=1" }),
            json!({ "url": "s3://ab/p" }),
            json!({ "url": "s3://bucket/a//b" }),
            json!({ "url": "s3://bucket/a/../b" }),
            json!({ "url": "file://relative/dir" }),
            json!({ "url": "file:relative" }),
            json!({ "url": "/srv/audit" }),
            json!({ "url": "file:///" }),
            json!({ "url": "file:///srv/../etc" }),
            json!({ "url": "file:///srv/a%20b" }),
        ] {
            assert!(policy(bad.clone()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn plain_http_only_towards_an_explicit_endpoint() {
        use object_store::ClientConfigKey::AllowHttp;
        let allowed = |b: AmazonS3Builder| {
            http_only_to_endpoint_override(b)
                .get_config_value(&AmazonS3ConfigKey::Client(AllowHttp))
                .as_deref()
                == Some("true")
        };
        let asked = || AmazonS3Builder::new().with_allow_http(true);
        assert!(!allowed(asked()), "AWS itself, over HTTP");
        assert!(!allowed(asked().with_endpoint("https://s3.example.net")));
        assert!(allowed(asked().with_endpoint("http://127.0.0.1:5000")));
        assert!(allowed(AmazonS3Builder::new().with_config(
            AmazonS3ConfigKey::S3Endpoint,
            "HTTP://minio:9000"
        )));
    }

    #[tokio::test]
    async fn a_large_bundle_is_uploaded_in_parts_and_hashed_as_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle.tar.gz");
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(&file, &data).unwrap();
        let store = InMemory::new();
        for (part, name) in [(1024, "parts"), (1 << 20, "single")] {
            let key = Path::from(name);
            let (sha, bytes) = upload_file(&store, &key, &file, part)
                .await
                .unwrap_or_else(|_| panic!("upload {name}"));
            assert_eq!(bytes, data.len() as u64);
            assert_eq!(sha, hex::encode(Sha256::digest(&data)));
            let stored = store.get(&key).await.unwrap().bytes().await.unwrap();
            assert_eq!(stored.as_ref(), data.as_slice(), "{name}");
        }
    }
}
