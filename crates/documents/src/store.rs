//! Documents in the agency's schema: upload (sniff, seal, store, all in one transaction), metadata,
//! listing, content (streamed decryption), soft delete and legal holds. Visibility follows the
//! warrant: whoever may not read the warrant (warrant-workflow's rule, sealed included) gets
//! `NotFound` for its documents, exactly as for a missing one.

use std::io;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;
use writ_agency_keys::{Keyring, Opener, StreamError};
use writ_audit_log::Caller;
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};

use crate::DocumentError;
use crate::range::{ByteRange, RangeAsk};
use crate::sniff::{DocumentType, SNIFF_LEN, essence, sniff};
use crate::storage::{DocumentStore, Sink, Stored, read_sealed};

/// The sealing label of documents: bound into every chunk's associated data.
pub const SEAL_LABEL: &str = "document";
/// The classification a document gets when the upload names none: criminal-justice information.
pub const DEFAULT_CLASSIFICATION: i16 = 4;
const MAX_FILENAME: usize = 255;

pub(crate) fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

pub(crate) fn role_of(caller: &Caller) -> Option<Role> {
    caller
        .actor
        .role
        .parse()
        .ok()
        .filter(|r| Role::AGENCY.contains(r))
}

/// A document's legal hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LegalHold {
    pub reason: String,
    pub placed_by: Option<Uuid>,
    pub placed_at: DateTime<Utc>,
}

/// A document's metadata, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: Uuid,
    pub warrant_id: Uuid,
    /// `attachment` (uploaded), or a document the server made for signing: `affidavit`,
    /// `warrant`.
    pub kind: String,
    pub filename: Option<String>,
    /// Judged from the bytes at upload.
    pub content_type: String,
    /// 1 public, 2 internal, 3 sensitive, 4 criminal-justice information.
    pub classification: i16,
    /// Plaintext bytes.
    pub size: i64,
    /// `sha256:<hex>` of the plaintext, computed while it streamed in.
    pub document_hash: String,
    pub chunks: i64,
    /// `postgres` or `s3`.
    pub storage: String,
    pub uploaded_by: Uuid,
    pub uploaded_at: DateTime<Utc>,
    pub legal_hold: Option<LegalHold>,
    /// Set once the document has been crypto-erased (its content then answers 410).
    pub erased_at: Option<DateTime<Utc>>,
    pub erasure_id: Option<Uuid>,
    /// Soft-deleted (hidden from readers, kept): shown only where the whole record of a warrant
    /// is (its evidence certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Document {
    /// The strong validator of its content (`ETag`, `If-Range`): the content never changes, so
    /// its SHA-256 names it.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.document_hash.trim_start_matches("sha256:"))
    }
}

#[derive(Debug, Clone, FromRow)]
pub(crate) struct Row {
    pub id: Uuid,
    pub warrant_id: Uuid,
    pub kind: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub classification: i16,
    pub size: i64,
    pub sha256: String,
    pub chunks: i64,
    pub storage: String,
    pub storage_key: Option<String>,
    pub seal_header: Option<Vec<u8>>,
    pub uploaded_by: Uuid,
    pub uploaded_at: DateTime<Utc>,
    pub legal_hold_reason: Option<String>,
    pub legal_hold_by: Option<Uuid>,
    pub legal_hold_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
    pub erasure_id: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
}

pub(crate) const COLUMNS: &str = "id, warrant_id, kind, filename, content_type, classification, size, \
    sha256, chunks, storage, storage_key, seal_header, uploaded_by, uploaded_at, \
    legal_hold_reason, legal_hold_by, legal_hold_at, erased_at, erasure_id, deleted_at";

impl Row {
    pub(crate) fn view(&self) -> Document {
        Document {
            id: self.id,
            warrant_id: self.warrant_id,
            kind: self.kind.clone(),
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            classification: self.classification,
            size: self.size,
            document_hash: self.document_hash(),
            chunks: self.chunks,
            storage: self.storage.clone(),
            uploaded_by: self.uploaded_by,
            uploaded_at: self.uploaded_at,
            legal_hold: match (&self.legal_hold_reason, self.legal_hold_at) {
                (Some(reason), Some(at)) => Some(LegalHold {
                    reason: reason.clone(),
                    placed_by: self.legal_hold_by,
                    placed_at: at,
                }),
                _ => None,
            },
            erased_at: self.erased_at,
            erasure_id: self.erasure_id,
            deleted_at: self.deleted_at,
        }
    }

    pub(crate) fn document_hash(&self) -> String {
        format!("sha256:{}", self.sha256)
    }

    pub(crate) fn held(&self) -> bool {
        self.legal_hold_at.is_some()
    }

    /// Erased documents keep their metadata; their content is gone.
    pub(crate) fn check_not_erased(&self) -> Result<(), DocumentError> {
        match self.erased_at {
            Some(at) => Err(DocumentError::Erased(at)),
            None => Ok(()),
        }
    }
}

/// The warrant a document belongs to, as far as document access needs it.
struct WarrantAccess {
    author_id: Uuid,
}

/// The warrant if the caller may read it (the system reads everything); else `NotFound`.
async fn warrant_access(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<WarrantAccess, DocumentError> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT author_id, sealed AND (seal_expires_at IS NULL OR seal_expires_at > $2) \
         FROM warrants WHERE id = $1",
    )
    .bind(warrant_id)
    .bind(Utc::now())
    .fetch_optional(tx.conn())
    .await?;
    let Some((author_id, sealed)) = row else {
        return Err(DocumentError::NotFound);
    };
    let allowed = match (caller.user_id(), role_of(caller)) {
        (None, _) => true,
        (Some(_), Some(role)) => writ_warrant_workflow::may_read_warrant(role, sealed),
        (Some(_), None) => false,
    };
    if !allowed {
        return Err(DocumentError::NotFound);
    }
    Ok(WarrantAccess { author_id })
}

/// How a document is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Reading: a soft-deleted document does not exist.
    Read,
    /// Reading, the row locked for a change.
    Change,
    /// Reading for a signature, the row locked against a change (a soft delete waits, then
    /// sees the signature or request; a signature after a delete finds nothing).
    Signing,
    /// Preservation and destruction (legal holds, erasure): a soft-deleted document is still
    /// there to be held or destroyed, by those who may see its warrant. Locked.
    Retained,
}

/// A document the caller may see (warrant readable; soft-deleted only for `Retained`).
pub(crate) async fn load_visible(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    lookup: Lookup,
) -> Result<(Row, Uuid), DocumentError> {
    let sql = match lookup {
        Lookup::Read => {
            format!("SELECT {COLUMNS} FROM documents WHERE id = $1 AND deleted_at IS NULL")
        }
        Lookup::Signing => format!(
            "SELECT {COLUMNS} FROM documents WHERE id = $1 AND deleted_at IS NULL FOR SHARE"
        ),
        Lookup::Change => format!(
            "SELECT {COLUMNS} FROM documents WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
        ),
        Lookup::Retained => format!("SELECT {COLUMNS} FROM documents WHERE id = $1 FOR UPDATE"),
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(DocumentError::NotFound)?;
    let access = warrant_access(tx, caller, row.warrant_id).await?;
    Ok((row, access.author_id))
}

/// Records one `document.*` entry about `row`.
pub(crate) async fn audit(
    tx: &mut TenantTx,
    caller: &Caller,
    action: &str,
    row: &Row,
    detail: serde_json::Value,
) -> Result<Uuid, DocumentError> {
    let event = event(caller, action, row).detail(detail);
    Ok(writ_audit_log::record(tx, &event).await?)
}

/// An event about `row`: resource `{documentId, warrantId, documentHash}`.
fn event(caller: &Caller, action: &str, row: &Row) -> writ_audit_log::Event {
    caller
        .event(action)
        .resource("documentId", row.id.to_string())
        .resource("warrantId", row.warrant_id.to_string())
        .resource("documentHash", row.document_hash())
}

fn user_id(caller: &Caller) -> Result<Uuid, DocumentError> {
    caller
        .user_id()
        .ok_or_else(|| DocumentError::Corrupt("a user operation was called as the system".into()))
}

// ---------------------------------------------------------------------------------------------
// Upload

/// What an upload asks for, before its body is read.
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    pub warrant_id: Uuid,
    pub filename: Option<String>,
    /// 1 to 4; 4 (CJI) when not given.
    pub classification: Option<i16>,
    /// The client's `Content-Type`, checked against the bytes.
    pub declared_type: Option<String>,
    /// The client's `Content-Length`, refused at once when over the limit.
    pub declared_length: Option<u64>,
}

/// An upload the caller may make, with the agency's limit: checked in the request's
/// transaction, which may then be committed before the body streams.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    warrant_id: Uuid,
    kind: &'static str,
    filename: Option<String>,
    classification: i16,
    declared_type: Option<String>,
    pub max_bytes: u64,
}

fn check_filename(name: &str) -> Result<(), DocumentError> {
    let bad = |reason: &str| Err(DocumentError::invalid("filename", reason));
    if name.is_empty() || name.len() > MAX_FILENAME {
        return bad("1 to 255 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return bad("no control characters, '/' or '\\'");
    }
    if name == "." || name == ".." {
        return bad("not a file name");
    }
    Ok(())
}

/// Checks an upload before its body is read: the warrant is the caller's own (officers upload to
/// their own warrants), the classification and file name are valid, and a declared length is
/// within the agency's `documents.max_bytes`.
pub async fn prepare_upload(
    tx: &mut TenantTx,
    caller: &Caller,
    new: NewDocument,
) -> Result<UploadPlan, DocumentError> {
    let user = user_id(caller)?;
    let access = warrant_access(tx, caller, new.warrant_id).await?;
    if access.author_id != user {
        return Err(DocumentError::Forbidden(
            "documents are uploaded to a warrant by its author".into(),
        ));
    }
    let classification = new.classification.unwrap_or(DEFAULT_CLASSIFICATION);
    if !(1..=4).contains(&classification) {
        return Err(DocumentError::invalid(
            "classification",
            "a tier from 1 to 4 (4: criminal-justice information)",
        ));
    }
    if let Some(name) = &new.filename {
        check_filename(name)?;
    }
    let max_bytes = crate::policy::max_bytes(tx).await?;
    if new.declared_length.is_some_and(|n| n > max_bytes) {
        return Err(DocumentError::TooLarge { limit: max_bytes });
    }
    Ok(UploadPlan {
        warrant_id: new.warrant_id,
        kind: "attachment",
        filename: new.filename,
        classification,
        declared_type: new.declared_type,
        max_bytes,
    })
}

/// Why the plaintext input of a sealing stream ended.
#[derive(Debug)]
enum InputError {
    Io(io::Error),
    TooLarge,
}

fn input_error(e: StreamError<InputError>, limit: u64) -> DocumentError {
    match e {
        StreamError::Input(InputError::TooLarge) => DocumentError::TooLarge { limit },
        StreamError::Input(InputError::Io(e)) => body_error(e),
        StreamError::Seal(e) => DocumentError::Seal(e),
    }
}

/// A failed read of the body: too slow (the server's pace rule ends it as `TimedOut`), or gone.
fn body_error(e: io::Error) -> DocumentError {
    match e.kind() {
        io::ErrorKind::TimedOut => DocumentError::Stalled(e.to_string()),
        _ => DocumentError::Body(e.to_string()),
    }
}

/// Reads the first bytes of `body` (up to [`SNIFF_LEN`], or all of a shorter body); whether the
/// body ended within them.
async fn read_prefix<S>(body: &mut S, limit: u64) -> Result<(Vec<u8>, bool), DocumentError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    let mut prefix = Vec::new();
    while prefix.len() < SNIFF_LEN {
        match body.next().await {
            Some(Ok(b)) => {
                prefix.extend_from_slice(&b);
                if prefix.len() as u64 > limit {
                    return Err(DocumentError::TooLarge { limit });
                }
            }
            Some(Err(e)) => return Err(body_error(e)),
            None => return Ok((prefix, true)),
        }
    }
    Ok((prefix, false))
}

fn check_type(
    prefix: &[u8],
    complete: bool,
    declared: Option<&str>,
) -> Result<DocumentType, DocumentError> {
    let Some(ty) = sniff(prefix, complete) else {
        return Err(DocumentError::UnsupportedType(
            "the content is not a document type the store accepts: PDF, PNG, JPEG, MP4, DOCX or \
             plain text (UTF-8)"
                .into(),
        ));
    };
    if let Some(declared) = declared.map(essence)
        && !declared.is_empty()
        && declared != "application/octet-stream"
        && declared != ty.mime()
    {
        return Err(DocumentError::UnsupportedType(format!(
            "Content-Type says {declared}, but the content is {}",
            ty.mime()
        )));
    }
    Ok(ty)
}

/// Streams an upload's body into the store: its type is judged from the first bytes before
/// anything is stored, then it is sealed under a fresh data key chunk by chunk and written as it
/// goes, with its SHA-256 and size computed on the way. The data key, the ciphertext (rows, or
/// the S3 object) and the document row commit together in one transaction with the
/// `document.upload` and `document.encrypt` entries, or nothing is kept: a body over the limit
/// (counted as it streams, whatever `Content-Length` said) is `TooLarge` with nothing stored.
///
/// The transaction holds the agency's key-encryption key lock shared for the upload (as every
/// new data key does): a key rotation waits for uploads in flight.
pub async fn upload<S>(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    store: &DocumentStore,
    caller: &Caller,
    plan: UploadPlan,
    mut body: S,
) -> Result<Document, DocumentError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    let limit = plan.max_bytes;
    let (prefix, complete) = read_prefix(&mut body, limit).await?;
    // An empty body is no evidence of anything (and would pass as empty text).
    if complete && prefix.is_empty() {
        return Err(DocumentError::invalid("body", "the document is empty"));
    }
    let ty = check_type(&prefix, complete, plan.declared_type.as_deref())?;

    let id = Uuid::now_v7();
    let key = store
        .keeps_objects()
        .then(|| store.object_key(agency.id, id));
    let mut tx = TenantTx::begin(pool, agency).await?;
    let sealer = writ_agency_keys::seal(&mut tx, keys, id, SEAL_LABEL).await?;
    let mut sink = Sink::open(store, id, key.as_deref()).await?;
    let written = write_sealed(&mut tx, &mut sink, sealer, prefix, body, limit).await;
    let (summary, header) = match written {
        Ok(v) => v,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    let sealed = Sealed {
        id,
        ty,
        storage: store.kind(),
        key: key.as_deref(),
        header,
        summary,
    };
    let row = match finish_upload(&mut tx, caller, &plan, sealed).await {
        Ok(row) => row,
        Err(e) => {
            remove_unrecorded_object(store, key.as_deref()).await;
            return Err(e);
        }
    };
    match tx.commit_resolved(pool).await {
        Ok(()) => Ok(row.view()),
        Err(e @ writ_tenancy::TenancyError::CommitUnknown(_)) => {
            if let Some(key) = &key {
                tracing::warn!(object = %key, error = %e, "an upload's commit has an unknown outcome; its object is left");
            }
            Err(e.into())
        }
        Err(e) => {
            remove_unrecorded_object(store, key.as_deref()).await;
            Err(e.into())
        }
    }
}

/// The object of an upload whose row did not commit: nothing refers to it.
async fn remove_unrecorded_object(store: &DocumentStore, key: Option<&str>) {
    if let Some(key) = key
        && let Err(cleanup) = store.delete_object(key).await
    {
        tracing::warn!(object = %key, error = %cleanup, "removing an uncommitted document object failed");
    }
}

/// A document the server made for signing (the affidavit, the warrant: `kind`), stored like an
/// upload of the caller's, unless the warrant has it already: the same bytes are one document.
pub async fn store_generated(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    store: &DocumentStore,
    caller: &Caller,
    generated: Generated,
) -> Result<Document, DocumentError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    warrant_access(&mut tx, caller, generated.warrant_id).await?;
    let existing: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM documents WHERE warrant_id = $1 AND kind = $2 AND sha256 = $3 \
         AND deleted_at IS NULL AND erased_at IS NULL ORDER BY uploaded_at LIMIT 1"
    )))
    .bind(generated.warrant_id)
    .bind(generated.kind)
    .bind(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        &generated.bytes,
    )))
    .fetch_optional(tx.conn())
    .await?;
    tx.rollback().await?;
    if let Some(row) = existing {
        return Ok(row.view());
    }
    check_filename(&generated.filename)?;
    let plan = UploadPlan {
        warrant_id: generated.warrant_id,
        kind: generated.kind,
        filename: Some(generated.filename),
        classification: DEFAULT_CLASSIFICATION,
        declared_type: None,
        // Made by the server from a bounded warrant: the agency's upload limit is not for it.
        max_bytes: u64::MAX,
    };
    let body = stream::iter([Ok::<_, io::Error>(Bytes::from(generated.bytes))]);
    upload(pool, agency, keys, store, caller, plan, body).await
}

/// A document made by the server, for [`store_generated`].
#[derive(Debug, Clone)]
pub struct Generated {
    pub warrant_id: Uuid,
    /// `affidavit` or `warrant`.
    pub kind: &'static str,
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// Seals the body into `sink`, sealing and writing concurrently (a bounded channel between them,
/// so the database or the bucket works while the next chunks are encrypted).
async fn write_sealed<S>(
    tx: &mut TenantTx,
    sink: &mut Sink,
    sealer: writ_agency_keys::Sealer,
    prefix: Vec<u8>,
    body: S,
    limit: u64,
) -> Result<(writ_agency_keys::SealSummary, Option<Vec<u8>>), DocumentError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    let mut seen = 0u64;
    let input = stream::iter([Ok(Bytes::from(prefix))])
        .chain(body)
        .map(move |item| match item {
            Ok(b) => {
                seen += b.len() as u64;
                if seen > limit {
                    Err(InputError::TooLarge)
                } else {
                    Ok(b)
                }
            }
            Err(e) => Err(InputError::Io(e)),
        });
    let mut sealing = sealer.into_parallel_stream(input);
    let completion = sealing.completion();
    let (pieces, mut queue) =
        tokio::sync::mpsc::channel::<Bytes>(2 * crate::storage::RECORDS_PER_BATCH);
    let produce = async move {
        while let Some(item) = sealing.next().await {
            let piece = item.map_err(|e| input_error(e, limit))?;
            if pieces.send(piece).await.is_err() {
                // The writer failed; its error is the one to report.
                break;
            }
        }
        Ok::<_, DocumentError>(())
    };
    let tx_ref = &mut *tx;
    let sink_ref = &mut *sink;
    let consume = async move {
        while let Some(piece) = queue.recv().await {
            sink_ref.write(tx_ref, piece).await?;
        }
        Ok::<_, DocumentError>(())
    };
    let (produced, consumed) = futures_util::future::join(produce, consume).await;
    produced?;
    consumed?;
    let summary = completion.get().ok_or_else(|| {
        DocumentError::Corrupt("the sealing stream ended without a summary".into())
    })?;
    let header = sink.finish(tx).await?;
    Ok((summary, header))
}

/// What an upload stored, for its document row.
struct Sealed<'a> {
    id: Uuid,
    ty: DocumentType,
    storage: &'static str,
    key: Option<&'a str>,
    header: Option<Vec<u8>>,
    summary: writ_agency_keys::SealSummary,
}

/// Writes the document row and its `document.upload` and `document.encrypt` entries.
async fn finish_upload(
    tx: &mut TenantTx,
    caller: &Caller,
    plan: &UploadPlan,
    sealed: Sealed<'_>,
) -> Result<Row, DocumentError> {
    let Sealed {
        id,
        ty,
        storage,
        key,
        header,
        summary,
    } = sealed;
    let as_i64 = |n: u64| {
        i64::try_from(n).map_err(|_| DocumentError::TooLarge {
            limit: plan.max_bytes,
        })
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO documents (id, warrant_id, filename, content_type, classification, size, \
           sha256, chunks, sealed_size, storage, storage_key, seal_header, uploaded_by, uploaded_at, \
           kind) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(plan.warrant_id)
    .bind(&plan.filename)
    .bind(ty.mime())
    .bind(plan.classification)
    .bind(as_i64(summary.bytes)?)
    .bind(hex::encode(summary.sha256))
    .bind(as_i64(summary.chunks)?)
    .bind(as_i64(summary.sealed_bytes)?)
    .bind(storage)
    .bind(key)
    .bind(header)
    .bind(user_id(caller)?)
    .bind(now_ms())
    .bind(plan.kind)
    .fetch_one(tx.conn())
    .await?;
    audit(
        tx,
        caller,
        "document.upload",
        &row,
        json!({
            "filename": row.filename,
            "contentType": row.content_type,
            "classification": row.classification,
            "bytes": row.size,
        }),
    )
    .await?;
    audit(
        tx,
        caller,
        "document.encrypt",
        &row,
        json!({
            "construction": "STREAM-BE32 AES-256-GCM, 64 KiB chunks",
            "dataKey": "fresh, wrapped by the agency key",
            "chunks": row.chunks,
            "sealedBytes": summary.sealed_bytes,
            "storage": row.storage,
        }),
    )
    .await?;
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One document's metadata; recorded as `document.view`.
pub async fn get(tx: &mut TenantTx, caller: &Caller, id: Uuid) -> Result<Document, DocumentError> {
    let (row, _) = load_visible(tx, caller, id, Lookup::Read).await?;
    audit(
        tx,
        caller,
        "document.view",
        &row,
        json!({ "read": "metadata" }),
    )
    .await?;
    Ok(row.view())
}

/// Refuses to hide or destroy a document that is part of a signing record: signed (a signature
/// stays verifiable against the exact bytes signed, and the court keeps an exact copy of what was
/// signed), or awaiting a signature (the request is cancelled first). The signature tables are
/// the e-signature crate's, in the same agency schema; the caller holds the document's row lock,
/// which a signature in progress holds shared, so what it sees cannot change before it commits.
pub async fn refuse_if_in_signing_record(
    tx: &mut TenantTx,
    document_id: Uuid,
) -> Result<(), DocumentError> {
    let (signed, pending): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM signatures WHERE document_id = $1), \
                EXISTS (SELECT 1 FROM signature_requests WHERE document_id = $1 \
                        AND status = 'pending')",
    )
    .bind(document_id)
    .fetch_one(tx.conn())
    .await?;
    if signed {
        return Err(DocumentError::InSigningRecord(
            "the document is signed: it stays with its signatures",
        ));
    }
    if pending {
        return Err(DocumentError::InSigningRecord(
            "a signature is requested on the document: cancel the request first",
        ));
    }
    Ok(())
}

/// A document the caller may see, for signing it or checking a signature on it: not erased,
/// and locked against a soft delete until the caller's transaction ends (a document in a signing
/// record is not hidden). Not recorded here: the `esign.*` entry that follows names the
/// document and its hash.
pub async fn for_signing(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<Document, DocumentError> {
    let (row, _) = load_visible(tx, caller, id, Lookup::Signing).await?;
    row.check_not_erased()?;
    Ok(row.view())
}

/// Every document of a warrant the caller may read, soft-deleted ones included, oldest first:
/// for the warrant's evidence certificate, which accounts for all of them.
pub async fn list_all(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<Vec<Document>, DocumentError> {
    listed(tx, caller, warrant_id, true).await
}

/// The documents of a warrant the caller may read, oldest first (soft-deleted ones are not
/// listed). A listing shows metadata only and is not recorded per document.
pub async fn list(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<Vec<Document>, DocumentError> {
    listed(tx, caller, warrant_id, false).await
}

async fn listed(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    with_deleted: bool,
) -> Result<Vec<Document>, DocumentError> {
    warrant_access(tx, caller, warrant_id).await?;
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM documents WHERE warrant_id = $1 AND ($2 OR deleted_at IS NULL) \
         ORDER BY uploaded_at, id"
    )))
    .bind(warrant_id)
    .bind(with_deleted)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.iter().map(Row::view).collect())
}

/// A document ready to stream: its metadata, its opened data key, and where its ciphertext is.
pub struct OpenedDocument {
    pub document: Document,
    /// The part of the plaintext to serve, when a range was asked for.
    pub range: Option<ByteRange>,
    opener: Opener,
    stored: Stored,
    /// The plaintext's SHA-256 as recorded at upload: the stream is checked against it.
    sha256: [u8; 32],
    /// Recorded if the content fails authentication while it streams.
    integrity_failure: writ_audit_log::Event,
}

impl std::fmt::Debug for OpenedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedDocument")
            .field("document", &self.document.id)
            .finish_non_exhaustive()
    }
}

/// Opens a document's content for the caller: checks visibility (`NotFound`) and erasure
/// (`Erased`), unwraps its data key and records `document.download` and `document.decrypt` in
/// `tx`, which the caller commits before streaming with [`plaintext`].
pub async fn open_content(
    tx: &mut TenantTx,
    keys: &Keyring,
    caller: &Caller,
    id: Uuid,
    range: Option<RangeAsk>,
) -> Result<OpenedDocument, DocumentError> {
    let (row, _) = load_visible(tx, caller, id, Lookup::Read).await?;
    row.check_not_erased()?;
    let size = u64::try_from(row.size).unwrap_or(0);
    let document = row.view();
    let range = match &range {
        Some(ask) => ask.resolve(size, &document.etag())?,
        None => None,
    };
    let opener = writ_agency_keys::open(tx, keys, id, SEAL_LABEL).await?;
    let detail = match range {
        Some(r) => json!({ "bytes": r.len(), "range": format!("{}-{}", r.start, r.end) }),
        None => json!({ "bytes": row.size }),
    };
    audit(tx, caller, "document.download", &row, detail).await?;
    audit(
        tx,
        caller,
        "document.decrypt",
        &row,
        json!({ "chunks": row.chunks, "storage": row.storage }),
    )
    .await?;
    let integrity_failure = event(caller, "document.decrypt", &row).failure();
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(&row.sha256, &mut sha256)
        .map_err(|_| DocumentError::Corrupt(format!("document {id}: the recorded hash")))?;
    Ok(OpenedDocument {
        document,
        range,
        stored: Stored {
            document_id: row.id,
            storage: row.storage.clone(),
            header: row.seal_header,
            key: row.storage_key,
        },
        opener,
        sha256,
        integrity_failure,
    })
}

/// The plaintext of an opened document (of its range, when one was asked for) as a stream of
/// authenticated chunks. A chunk that fails
/// authentication (altered, reordered, missing, cut short) ends the stream with an error before
/// any of its plaintext is released, and so does a plaintext whose SHA-256 is not the recorded
/// `documentHash` (the last two chunks are withheld); the plaintext is complete only when the stream
/// ends without one.
pub async fn plaintext(
    pool: &PgPool,
    agency: &Agency,
    store: &DocumentStore,
    opened: OpenedDocument,
) -> Result<BoxStream<'static, Result<Bytes, DocumentError>>, DocumentError> {
    let id = opened.document.id;
    // A range is read from the chunk that holds its first byte: what comes before it is neither
    // fetched nor decrypted. The plaintext's hash is then left to the client, which has only part.
    let first_chunk = opened
        .range
        .map_or(0, |r| writ_agency_keys::chunk_of(r.start));
    let skipped = first_chunk * writ_agency_keys::CHUNK_SIZE as u64;
    let range = opened.range.map(|r| ByteRange {
        start: r.start - skipped,
        end: r.end - skipped,
    });
    let sealed = match read_sealed(store, pool, agency, opened.stored, first_chunk).await {
        Ok(sealed) => sealed,
        Err(DocumentError::ObjectMissing(key)) => {
            return Err(missing_object(pool, agency, id, key, opened.integrity_failure).await);
        }
        Err(e) => return Err(e),
    };
    let mut opener = opened.opener;
    let opening = if first_chunk == 0 {
        opener.into_verified_stream(sealed, opened.sha256)
    } else {
        opener.start_at_chunk(first_chunk)?;
        opener.into_stream(sealed)
    };
    let (pool, agency, integrity_failure) =
        (pool.clone(), agency.clone(), opened.integrity_failure);
    Ok(opening
        .map(move |item| {
            item.map_err(|e| match e {
                // The store failed to deliver (down, unreachable): an outage, not evidence.
                StreamError::Input(e) => {
                    tracing::error!(document = %id, error = %e, "reading a document's ciphertext failed");
                    e
                }
                StreamError::Seal(e) if !e.is_integrity_failure() => {
                    let e = DocumentError::Seal(e);
                    tracing::error!(document = %id, error = %e, "streaming a document failed");
                    e
                }
                StreamError::Seal(e) => {
                    let e = DocumentError::Seal(e);
                    tracing::error!(document = %id, error = %e, "document content failed authentication");
                    record_integrity_failure(
                        pool.clone(),
                        agency.clone(),
                        id,
                        integrity_failure.clone(),
                        &e,
                    );
                    e
                }
            })
        })
        .boxed())
    .map(|whole| match range {
        Some(range) => crate::range::slice(whole, range),
        None => whole,
    })
}

/// When the document was erased, if it was (as committed now, not as the caller first read it).
async fn erased_at(tx: &mut TenantTx, id: Uuid) -> Result<Option<DateTime<Utc>>, DocumentError> {
    Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
        "SELECT erased_at FROM documents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .flatten())
}

/// The object of a document the store no longer has: gone with an erasure that committed since
/// the download was opened (410), or else taken from under the server, which is recorded as the
/// integrity failure it is.
async fn missing_object(
    pool: &PgPool,
    agency: &Agency,
    id: Uuid,
    key: String,
    integrity_failure: writ_audit_log::Event,
) -> DocumentError {
    let erased = async {
        let mut tx = TenantTx::begin(pool, agency).await?;
        let at = erased_at(&mut tx, id).await?;
        tx.rollback().await?;
        Ok::<_, DocumentError>(at)
    };
    match erased.await {
        Ok(Some(at)) => return DocumentError::Erased(at),
        Ok(None) => {}
        Err(e) => return e,
    }
    let e = DocumentError::ObjectMissing(key);
    tracing::error!(document = %id, error = %e, "a document's object is missing");
    record_integrity_failure(pool.clone(), agency.clone(), id, integrity_failure, &e);
    e
}

/// A download whose content failed authentication is evidence of tampering: it is recorded as a
/// failed `document.decrypt` in a transaction of its own (the request's has committed before the
/// stream began), off the stream's path so the client's response ends at once. A document erased
/// while it streamed lost its records to the erasure, not to tampering: that is not recorded.
fn record_integrity_failure(
    pool: PgPool,
    agency: Agency,
    document_id: Uuid,
    event: writ_audit_log::Event,
    error: &DocumentError,
) {
    let event = event.detail(json!({ "integrity": "failed", "error": error.to_string() }));
    tokio::spawn(async move {
        let recorded = async {
            let mut tx = TenantTx::begin(&pool, &agency).await?;
            if erased_at(&mut tx, document_id).await?.is_some() {
                tracing::info!(document = %document_id, "a download ended by the document's erasure");
                return tx.rollback().await.map_err(DocumentError::from);
            }
            writ_audit_log::record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok::<_, DocumentError>(())
        };
        if let Err(e) = recorded.await {
            tracing::error!(error = %e, "could not record a document integrity failure");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Soft delete and legal holds

/// Hides a document from every reader while keeping it (its ciphertext, key and row; retention
/// and legal holds still apply). Officers delete only documents of their own warrants. Recorded
/// as `document.delete`.
pub async fn soft_delete(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<(), DocumentError> {
    let user = user_id(caller)?;
    let (row, author) = load_visible(tx, caller, id, Lookup::Change).await?;
    if role_of(caller) == Some(Role::Officer) && author != user {
        return Err(DocumentError::Forbidden(
            "officers delete documents of their own warrants only".into(),
        ));
    }
    sqlx::query("UPDATE documents SET deleted_at = $2, deleted_by = $3 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .bind(user)
        .execute(tx.conn())
        .await?;
    audit(
        tx,
        caller,
        "document.delete",
        &row,
        json!({ "mode": "soft", "retained": true }),
    )
    .await?;
    Ok(())
}

/// Places a legal hold: while it stands the document is neither erased on request nor by
/// retention. Recorded as `document.legal_hold` (`detail.action: "placed"`).
pub async fn place_legal_hold(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    reason: &str,
) -> Result<Document, DocumentError> {
    let user = user_id(caller)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 1000 {
        return Err(DocumentError::invalid(
            "reason",
            "the matter, case or order the hold is for: 1 to 1000 bytes",
        ));
    }
    let (row, _) = load_visible(tx, caller, id, Lookup::Retained).await?;
    row.check_not_erased()?;
    if row.held() {
        return Err(DocumentError::Conflict(
            "the document is under a legal hold already".into(),
        ));
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE documents SET legal_hold_reason = $2, legal_hold_by = $3, legal_hold_at = $4 \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(reason)
    .bind(user)
    .bind(now_ms())
    .fetch_one(tx.conn())
    .await?;
    audit(
        tx,
        caller,
        "document.legal_hold",
        &row,
        json!({ "action": "placed", "reason": reason }),
    )
    .await?;
    Ok(row.view())
}

/// Releases a document's legal hold. Recorded as `document.legal_hold`
/// (`detail.action: "released"`).
pub async fn release_legal_hold(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<Document, DocumentError> {
    user_id(caller)?;
    let (row, _) = load_visible(tx, caller, id, Lookup::Retained).await?;
    let Some(reason) = row.legal_hold_reason.clone() else {
        return Err(DocumentError::Conflict(
            "the document is not under a legal hold".into(),
        ));
    };
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE documents SET legal_hold_reason = NULL, legal_hold_by = NULL, legal_hold_at = NULL \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(tx.conn())
    .await?;
    audit(
        tx,
        caller,
        "document.legal_hold",
        &row,
        json!({ "action": "released", "reason": reason }),
    )
    .await?;
    Ok(row.view())
}
