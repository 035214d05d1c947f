//! Where sealed documents live: PostgreSQL (the default: the sealed header on the document row,
//! every record a row of `document_chunks`), or objects through `object_store` (one object per
//! document, header and records, written as a multipart upload) — an S3 bucket for deployments
//! whose documents outgrow the database, or a directory of the server's (a local or mounted
//! volume) for a single server that wants document bytes off the database's WAL. Either way only ciphertext is stored, and reading streams it
//! back a bounded batch at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart,
};
use sqlx::PgPool;
use uuid::Uuid;
use writ_tenancy::{Agency, TenantTx};

use crate::DocumentError;

/// Sealed records written to PostgreSQL per statement, and read back per page: 16 records are
/// about 1 MiB, which keeps round trips few and memory bounded.
pub(crate) const RECORDS_PER_BATCH: usize = 16;
/// Multipart part size for S3 (S3's minimum is 5 MiB for every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The configured document storage (`WRIT_DOCUMENT_STORE`).
#[derive(Clone, Default)]
pub enum DocumentStore {
    /// Records in the agency's `document_chunks` table.
    #[default]
    Postgres,
    /// One object per document under `prefix/<agency id>/<document id>.sealed`.
    S3 {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
    },
    /// One file per document under `root/<agency id>/<document id>.sealed`.
    Directory {
        store: Arc<dyn ObjectStore>,
        root: std::path::PathBuf,
    },
}

impl std::fmt::Debug for DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

impl DocumentStore {
    /// `postgres` (also for `None` or empty), `s3://bucket[/prefix]` with the S3 settings of the
    /// server's standard AWS environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for an
    /// S3-compatible store; plain HTTP only towards such an explicit endpoint), or
    /// `file:///absolute/directory` (created, mode 0700, when missing).
    pub fn from_url(url: Option<&str>) -> Result<Self, String> {
        let url = url.map(str::trim).unwrap_or_default();
        if url.is_empty() || url == "postgres" {
            return Ok(DocumentStore::Postgres);
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Self::directory(std::path::Path::new(path))
                .map_err(|e| format!("{url:?}: {e}"));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(format!(
                "{url:?}: expected `postgres`, `s3://bucket[/prefix]` or `file:///directory`"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?}: no bucket"));
        }
        let builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let http = endpoint
            .as_deref()
            .and_then(|e| e.get(..7))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
        let store = builder
            .with_allow_http(http)
            // A store that is down fails the request within half a minute (503), never hangs.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .build()
            .map_err(|e| format!("{url:?}: {e}"))?;
        Ok(DocumentStore::S3 {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    /// Documents as files under `root`, an absolute directory readable by the server's user only.
    fn directory(root: &std::path::Path) -> Result<Self, String> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !root.is_absolute() {
            return Err("the directory must be an absolute path".into());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| e.to_string())?;
        let mode = std::fs::metadata(root)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by others (mode {:o}): make it 0700",
                root.display(),
                mode & 0o777
            ));
        }
        let store = LocalFileSystem::new_with_prefix(root).map_err(|e| e.to_string())?;
        Ok(DocumentStore::Directory {
            store: Arc::new(store),
            root: root.to_owned(),
        })
    }

    pub fn url(&self) -> String {
        match self {
            DocumentStore::Postgres => "postgres".into(),
            DocumentStore::S3 { bucket, prefix, .. } if prefix.is_empty() => {
                format!("s3://{bucket}")
            }
            DocumentStore::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            DocumentStore::Directory { root, .. } => format!("file://{}", root.display()),
        }
    }

    /// The `storage` column's value.
    pub fn kind(&self) -> &'static str {
        match self {
            DocumentStore::Postgres => "postgres",
            DocumentStore::S3 { .. } => "s3",
            DocumentStore::Directory { .. } => "file",
        }
    }

    /// Whether documents are kept as objects (S3, a directory) rather than in PostgreSQL.
    pub(crate) fn keeps_objects(&self) -> bool {
        !matches!(self, DocumentStore::Postgres)
    }

    pub(crate) fn object_key(&self, agency_id: Uuid, document_id: Uuid) -> String {
        format!("{}/{document_id}.sealed", self.agency_prefix(agency_id))
    }

    /// Where every object of one agency lives.
    fn agency_prefix(&self, agency_id: Uuid) -> String {
        match self {
            DocumentStore::S3 { prefix, .. } if !prefix.is_empty() => {
                format!("{prefix}/{agency_id}")
            }
            _ => agency_id.to_string(),
        }
    }

    /// Removes every document object of an agency (the end of its offboarding: the keys that
    /// sealed them are gone, so this tidies rather than protects). Answers how many were removed;
    /// with PostgreSQL storage the agency's schema held them and there is nothing to do here.
    pub async fn remove_agency(&self, agency_id: Uuid) -> Result<u64, DocumentError> {
        if !self.keeps_objects() {
            return Ok(0);
        }
        let prefix = Path::from(self.agency_prefix(agency_id));
        // Listed whole before deleting: a listing is not guaranteed stable under deletes.
        let found: Vec<_> = self
            .objects()?
            .list(Some(&prefix))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for meta in &found {
            self.delete_object(meta.location.as_ref()).await?;
        }
        if let DocumentStore::Directory { root, .. } = self {
            match std::fs::remove_dir(root.join(agency_id.to_string())) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DocumentError::Corrupt(format!("{}: {e}", root.display()))),
            }
        }
        Ok(found.len() as u64)
    }

    fn objects(&self) -> Result<&Arc<dyn ObjectStore>, DocumentError> {
        match self {
            DocumentStore::S3 { store, .. } | DocumentStore::Directory { store, .. } => Ok(store),
            DocumentStore::Postgres => Err(DocumentError::Corrupt(
                "a document stored as an object, but this server has no object store \
                 (WRIT_DOCUMENT_STORE)"
                    .into(),
            )),
        }
    }

    /// The object store holding documents of storage `kind` (the row's `storage`).
    pub(crate) fn objects_for(&self, kind: &str) -> Result<&Arc<dyn ObjectStore>, DocumentError> {
        if kind != self.kind() {
            return Err(DocumentError::Corrupt(format!(
                "a document stored in `{kind}`, but this server keeps documents in {} \
                 (WRIT_DOCUMENT_STORE)",
                self.url()
            )));
        }
        self.objects()
    }

    /// Removes a document's object (erasure). Removing one already gone succeeds.
    pub(crate) async fn delete_object(&self, key: &str) -> Result<(), DocumentError> {
        match self.objects()?.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Where an upload's sealed pieces go, one at a time, in order: the header first.
pub(crate) enum Sink {
    Postgres {
        document_id: Uuid,
        header: Option<Bytes>,
        batch: Vec<Vec<u8>>,
        next_idx: i32,
    },
    Objects {
        writer: Option<WriteMultipart>,
    },
}

impl Sink {
    pub(crate) async fn open(
        store: &DocumentStore,
        document_id: Uuid,
        key: Option<&str>,
    ) -> Result<Sink, DocumentError> {
        match (store, key) {
            (
                DocumentStore::S3 { store, .. } | DocumentStore::Directory { store, .. },
                Some(key),
            ) => {
                let upload = store.put_multipart(&Path::from(key)).await?;
                Ok(Sink::Objects {
                    writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
                })
            }
            _ => Ok(Sink::Postgres {
                document_id,
                header: None,
                batch: Vec::with_capacity(RECORDS_PER_BATCH),
                next_idx: 0,
            }),
        }
    }

    pub(crate) async fn write(
        &mut self,
        tx: &mut TenantTx,
        piece: Bytes,
    ) -> Result<(), DocumentError> {
        match self {
            Sink::Postgres { header, batch, .. } => {
                if header.is_none() {
                    *header = Some(piece);
                    return Ok(());
                }
                batch.push(Vec::from(piece));
                if batch.len() >= RECORDS_PER_BATCH {
                    self.flush(tx).await?;
                }
                Ok(())
            }
            Sink::Objects { writer } => {
                let Some(w) = writer.as_mut() else {
                    return Err(DocumentError::Corrupt("upload already finished".into()));
                };
                w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                w.put(piece);
                Ok(())
            }
        }
    }

    async fn flush(&mut self, tx: &mut TenantTx) -> Result<(), DocumentError> {
        let Sink::Postgres {
            document_id,
            batch,
            next_idx,
            ..
        } = self
        else {
            return Ok(());
        };
        if batch.is_empty() {
            return Ok(());
        }
        let first = *next_idx;
        let n = i32::try_from(batch.len()).map_err(|_| DocumentError::Corrupt("batch".into()))?;
        let idx: Vec<i32> = (first..first + n).collect();
        sqlx::query(
            "INSERT INTO document_chunks (document_id, idx, bytes) \
             SELECT $1, i, b FROM unnest($2::integer[], $3::bytea[]) AS t (i, b)",
        )
        .bind(*document_id)
        .bind(&idx)
        .bind(&*batch)
        .execute(tx.conn())
        .await?;
        *next_idx = first + n;
        batch.clear();
        Ok(())
    }

    /// Writes what is left; returns the sealed header for the document row (PostgreSQL).
    pub(crate) async fn finish(
        &mut self,
        tx: &mut TenantTx,
    ) -> Result<Option<Vec<u8>>, DocumentError> {
        self.flush(tx).await?;
        match self {
            Sink::Postgres { header, .. } => Ok(header.take().map(Vec::from)),
            Sink::Objects { writer } => {
                if let Some(w) = writer.take() {
                    w.finish().await?;
                }
                Ok(None)
            }
        }
    }

    /// Gives up an upload: a multipart upload is aborted, so no parts linger in the bucket
    /// (PostgreSQL rows go with the transaction's rollback).
    pub(crate) async fn abort(&mut self) {
        if let Sink::Objects { writer } = self
            && let Some(w) = writer.take()
            && let Err(e) = w.abort().await
        {
            tracing::warn!(error = %e, "aborting a document's multipart upload failed");
        }
    }
}

/// What is needed to read one stored document back.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub document_id: Uuid,
    /// The row's `storage`: `postgres`, `s3` or `file`.
    pub storage: String,
    pub header: Option<Vec<u8>>,
    pub key: Option<String>,
}

/// The sealed bytes of a document as a stream, the header followed by the records from chunk
/// `first_chunk` on: for PostgreSQL the records in `idx` order, a page per short transaction
/// (nothing is held open while the client reads); for objects (S3, a directory) the object's body,
/// or its header and the body from that record on.
pub(crate) async fn read_sealed(
    store: &DocumentStore,
    pool: &PgPool,
    agency: &Agency,
    stored: Stored,
    first_chunk: u64,
) -> Result<BoxStream<'static, Result<Bytes, DocumentError>>, DocumentError> {
    let skipped = writ_agency_keys::record_offset(first_chunk);
    if let (Some(key), DocumentStore::Directory { root, .. }) = (&stored.key, store) {
        store.objects_for(&stored.storage)?;
        let path = root.join(key);
        match tokio::fs::metadata(&path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DocumentError::ObjectMissing(key.clone()));
            }
            Err(e) => return Err(file_error(e)),
            Ok(_) => {}
        }
        return Ok(read_file(path, skipped));
    }
    if let Some(key) = &stored.key {
        let objects = store.objects_for(&stored.storage)?;
        let location = Path::from(key.as_str());
        let missing = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => DocumentError::ObjectMissing(key.clone()),
            e => e.into(),
        };
        if first_chunk == 0 {
            let object = objects.get(&location).await.map_err(missing)?;
            return Ok(object
                .into_stream()
                .map(|r| r.map_err(DocumentError::from))
                .boxed());
        }
        // An object cut short before the range (or the header) gives what it has, and the
        // opener finds it truncated: evidence, where a refused range would read as an outage.
        let size = objects.head(&location).await.map_err(missing)?.size;
        let header_size = writ_agency_keys::HEADER_SIZE as u64;
        if size <= skipped {
            if size == 0 {
                return Ok(stream::empty().boxed());
            }
            let header = objects
                .get_range(&location, 0..size.min(header_size))
                .await
                .map_err(missing)?;
            return Ok(stream::iter([Ok(header)]).boxed());
        }
        let header = objects
            .get_range(&location, 0..header_size)
            .await
            .map_err(missing)?;
        let records = objects
            .get_opts(
                &location,
                GetOptions::new().with_range(Some(GetRange::Offset(skipped))),
            )
            .await
            .map_err(missing)?;
        return Ok(stream::iter([Ok(header)])
            .chain(
                records
                    .into_stream()
                    .map(|r| r.map_err(DocumentError::from)),
            )
            .boxed());
    }
    let Some(header) = stored.header else {
        return Err(DocumentError::Corrupt(format!(
            "document {} has neither a sealed header nor an object",
            stored.document_id
        )));
    };
    // A reader task fetches the records a page per short transaction into a bounded queue, so
    // the next page is read from the database while the current one is decrypted and sent; it
    // stops when the response is dropped (the queue's receiver goes away).
    let (records, queue) = tokio::sync::mpsc::channel(2 * RECORDS_PER_BATCH);
    let (pool, agency, document_id) = (pool.clone(), agency.clone(), stored.document_id);
    let Ok(mut next_idx) = i32::try_from(first_chunk) else {
        return Err(DocumentError::Corrupt(format!(
            "document {}: no chunk {first_chunk}",
            stored.document_id
        )));
    };
    tokio::spawn(async move {
        loop {
            let page = async {
                let mut tx = TenantTx::begin(&pool, &agency).await?;
                let rows: Vec<(i32, Vec<u8>)> = sqlx::query_as(
                    "SELECT idx, bytes FROM document_chunks WHERE document_id = $1 AND idx >= $2 \
                     ORDER BY idx LIMIT $3",
                )
                .bind(document_id)
                .bind(next_idx)
                .bind(2 * RECORDS_PER_BATCH as i64)
                .fetch_all(tx.conn())
                .await?;
                tx.rollback().await?;
                Ok::<_, DocumentError>(rows)
            }
            .await;
            let rows = match page {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = records.send(Err(e)).await;
                    return;
                }
            };
            let last_page = rows.len() < 2 * RECORDS_PER_BATCH;
            for (idx, bytes) in rows {
                next_idx = idx + 1;
                if records.send(Ok(Bytes::from(bytes))).await.is_err() {
                    return;
                }
            }
            if last_page {
                return;
            }
        }
    });
    let records = stream::unfold(queue, |mut q| async move { q.recv().await.map(|r| (r, q)) });
    Ok(stream::iter([Ok(Bytes::from(header))])
        .chain(records)
        .boxed())
}

/// Large reads for the whole file.
const FILE_READ: usize = 1024 * 1024;

/// A stored file's bytes in 1 MiB pieces, read on a blocking thread a few pieces ahead: the
/// local store of `object_store` reads 8 KiB per blocking task, which costs the download most of
/// its throughput. With `skipped` past the header, the header and then the bytes from there.
fn read_file(
    path: std::path::PathBuf,
    skipped: u64,
) -> BoxStream<'static, Result<Bytes, DocumentError>> {
    use std::io::{Read, Seek, SeekFrom};
    let (pieces, queue) = tokio::sync::mpsc::channel::<Result<Bytes, DocumentError>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = pieces.blocking_send(Err(file_error(e)));
                return;
            }
        };
        let header_size = writ_agency_keys::HEADER_SIZE as u64;
        if skipped > header_size {
            let mut header = vec![0u8; writ_agency_keys::HEADER_SIZE];
            let read = file
                .read_exact(&mut header)
                .and_then(|()| file.seek(SeekFrom::Start(skipped)));
            let sent = match read {
                Ok(_) => pieces.blocking_send(Ok(Bytes::from(header))).is_ok(),
                // Shorter than a header: the stream ends and the opener finds it truncated.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
                Err(e) => {
                    let _ = pieces.blocking_send(Err(file_error(e)));
                    false
                }
            };
            if !sent {
                return;
            }
        }
        loop {
            let mut buf = vec![0u8; FILE_READ];
            let mut filled = 0;
            while filled < FILE_READ {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = pieces.blocking_send(Err(file_error(e)));
                        return;
                    }
                }
            }
            if filled == 0 {
                return;
            }
            buf.truncate(filled);
            // The reader went away (the response was dropped): stop reading.
            if pieces.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return;
            }
        }
    });
    stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|item| (item, queue))
    })
    .boxed()
}

fn file_error(e: std::io::Error) -> DocumentError {
    DocumentError::Storage(object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    })
}
