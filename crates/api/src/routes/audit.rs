//! The agency's audit chain for auditors and agency_admin: entries by filter, the latest signed
//! checkpoint, inclusion and consistency proofs (in the JSON `writ-verify` reads), export jobs
//! and their signed bundles, and the signing-key history. Formats: docs/AUDIT-FORMAT.md.

use std::io::Read as _;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_audit_log::{AuditError, EventFilter, ExportJob, ExportStatus};
use writ_auth_mfa::Permission;

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_events)
        .service(checkpoint)
        .service(inclusion_proof)
        .service(consistency_proof)
        .service(create_export)
        .service(get_export)
        .service(download_export)
        .service(signing_keys);
}

const DEFAULT_PAGE: u32 = 100;

/// A route's query string: only the names it knows, each at most once, values checked by name
/// so a bad one is answered 422 naming the parameter.
struct Params(Vec<(String, String)>);

/// A seq, tree size or cursor: from 1 to the largest integer the log's canonical JSON holds
/// exactly (2^53 - 1), since the request's own audit entry records it.
fn is_seq(n: u64) -> bool {
    (1..=writ_audit_chain::canonical::MAX_SAFE_INTEGER).contains(&n)
}

const NOT_A_SEQ: &str = "must be a positive integer of at most 9007199254740991";

impl Params {
    fn parse(req: &HttpRequest, known: &[&str]) -> Result<Params, ApiError> {
        let pairs = crate::json::query_pairs(req)?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; this route takes {}",
                    known.join(", ")
                )));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_request(format!(
                    "query parameter {name:?} given more than once"
                )));
            }
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) if v.is_empty() => Err(invalid(name, "must not be empty")),
            Some((_, v)) => Ok(Some(v)),
        }
    }

    /// A positive integer (seqs and tree sizes start at 1).
    fn positive(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)?
            .map(|v| match v.parse::<u64>() {
                Ok(n) if is_seq(n) => Ok(n),
                _ => Err(invalid(name, NOT_A_SEQ)),
            })
            .transpose()
    }

    fn required(&self, name: &str) -> Result<u64, ApiError> {
        self.positive(name)?
            .ok_or_else(|| invalid(name, "is required"))
    }

    fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc())
                    .map_err(|_| {
                        invalid(
                            name,
                            "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z (percent-encode a +)",
                        )
                    })
            })
            .transpose()
    }
}

fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::Validation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A domain refusal of the request (`InvalidRequest`) is about `field`; anything else maps as usual.
fn about(field: &'static str) -> impl Fn(AuditError) -> ApiError {
    move |e| match e {
        AuditError::InvalidRequest(reason) => ApiError::Validation {
            field: field.into(),
            reason,
        },
        other => other.into(),
    }
}

/// One page of entries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPageView {
    /// Entries in seq order, each exactly as hashed into the chain (docs/AUDIT-FORMAT.md §2):
    /// `seq`, `id`, `timestamp`, `actor` {`userId`, `role`, `agencyId`}, `action`, `resource`,
    /// `outcome`, `sourceIp`, `detail`, `prevHash`, `hash`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<writ_audit_log::Entry>,
    /// Pass as `cursor` (with the same filters) for the next page; null after the last one.
    next_cursor: Option<String>,
}

/// List audit entries
///
/// The agency's audit entries in seq order, filtered, a page at a time (auditor, agency_admin).
/// Entries appear once the sequencer has placed them (milliseconds after their transaction
/// commits). Each page read is itself recorded as `admin.audit.read` (the filters, how many
/// entries, up to which seq).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(
        ("fromSeq" = Option<u64>, Query, minimum = 1, description = "First seq (inclusive)"),
        ("toSeq" = Option<u64>, Query, minimum = 1, description = "Last seq (inclusive)"),
        ("action" = Option<String>, Query, description = "Exact action code, e.g. warrant.submitted"),
        ("actor" = Option<Uuid>, Query, description = "The acting user's id"),
        ("resource" = Option<String>, Query, description = "Any value of the entry's resource object, e.g. a warrant id"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Earliest timestamp (inclusive), RFC 3339"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Latest timestamp (inclusive), RFC 3339"),
        ("cursor" = Option<String>, Query, description = "Opaque: the nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Entries per page (default 100)"),
    ),
    responses((status = 200, description = "One page of entries", body = EventPageView,
            example = json!({"items": [{"seq": 1042, "id": "0190f4c9-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
                "timestamp": "2026-03-02T15:04:05.123Z",
                "actor": {"userId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01", "role": "agency_admin",
                    "agencyId": "0190f4a0-0000-7000-8000-00000000a001"},
                "action": "audit.legal_hold.placed",
                "resource": {"legalHoldId": "0190f4c2-7a51-7c3e-9a0b-2f4d8e1c6b11"},
                "outcome": "success", "sourceIp": "203.0.113.7",
                "detail": {"reason": "Litigation hold, Doe v. County, case 2026-CV-0412"},
                "prevHash": "sha256:9087ddf479c5e5e3e4118f24708e57828555d6575145d93588dda6bdf608d48c",
                "hash": "sha256:47c0c36926192ce710d3f218cb2afd6b6e625bef9d63112af85b1a856d1e8f63"}],
                "nextCursor": "1043"})),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A parameter's value is invalid; `errors` names it (`validation`)", body = Problem,
            content_type = "application/problem+json",
            example = json!({"type": "urn:writ:problem:validation", "title": "Unprocessable Entity", "status": 422,
                "detail": "limit: must be an integer from 1 to 1000", "instance": "/v1/audit/events",
                "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f",
                "errors": [{"field": "limit", "reason": "must be an integer from 1 to 1000"}]}))))]
#[get("/v1/audit/events")]
pub async fn list_events(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let p = Params::parse(
        &req,
        &[
            "fromSeq", "toSeq", "action", "actor", "resource", "from", "to", "cursor", "limit",
        ],
    )?;
    let filter = EventFilter {
        from_seq: p.positive("fromSeq")?,
        to_seq: p.positive("toSeq")?,
        action: p.get("action")?.map(str::to_owned),
        actor: p
            .get("actor")?
            .map(|v| Uuid::parse_str(v).map_err(|_| invalid("actor", "must be a user id (UUID)")))
            .transpose()?,
        resource: p.get("resource")?.map(str::to_owned),
        from_time: p.time("from")?,
        to_time: p.time("to")?,
    };
    if let (Some(from), Some(to)) = (filter.from_seq, filter.to_seq)
        && from > to
    {
        return Err(invalid("toSeq", "must not be below fromSeq"));
    }
    if let (Some(from), Some(to)) = (filter.from_time, filter.to_time)
        && from > to
    {
        return Err(invalid("to", "must not be before from"));
    }
    let start = p
        .get("cursor")?
        .map(|c| match c.parse::<u64>() {
            Ok(n) if is_seq(n) => Ok(n),
            _ => Err(invalid("cursor", "not a cursor this API returned")),
        })
        .transpose()?
        .unwrap_or(1);
    let limit = match p.get("limit")? {
        None => DEFAULT_PAGE,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=writ_audit_log::MAX_PAGE).contains(&n) => n,
            _ => return Err(invalid("limit", "must be an integer from 1 to 1000")),
        },
    };
    let mut tx = user.begin().await?;
    let page = writ_audit_log::list_events(&mut tx, &filter, start, limit).await?;
    writ_audit_log::record_read(&mut tx, user.caller(), &filter, start, limit, &page).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(EventPageView {
        items: page.items,
        next_cursor: page.next_seq.map(|s| s.to_string()),
    }))
}

/// Latest checkpoint
///
/// The latest signed checkpoint: a C2SP tlog-checkpoint signed note (origin, tree size, root
/// hash, signing time; then the agency key's signature lines), exactly as signed (auditor,
/// agency_admin).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The signed note", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 404, description = "No checkpoint signed yet (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/audit/checkpoint")]
pub async fn checkpoint(user: AgencyUser) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let mut tx = user.begin().await?;
    let latest = writ_audit_log::latest_checkpoint(&mut tx).await?;
    tx.commit().await?;
    let cp = latest.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(cp.note))
}

/// Proof that the entry `seq` is in the tree of `treeSize` entries (RFC 9162; hashes standard
/// base64). The JSON is the file `writ-verify inclusion --proof` reads.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProofView {
    seq: u64,
    tree_size: u64,
    /// SHA-256(0x00 ‖ entry hash).
    leaf_hash: String,
    /// From the leaf's sibling up to the root's child.
    proof: Vec<String>,
    root_hash: String,
}

/// Inclusion proof
///
/// Proof that the entry `seq` is in the tree of `treeSize` entries (auditor, agency_admin).
/// Take `treeSize` from a checkpoint, so the proof's `rootHash` can be checked against the signed
/// root.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(
        ("seq" = u64, Query, minimum = 1, description = "The entry's seq"),
        ("treeSize" = u64, Query, minimum = 1, description = "Tree size, seq ≤ treeSize ≤ the log's size"),
    ),
    responses((status = 200, description = "The proof, in the JSON `writ-verify inclusion --proof` reads", body = InclusionProofView),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "The entry is no longer stored (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`seq` or `treeSize` missing or out of range (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/audit/proofs/inclusion")]
pub async fn inclusion_proof(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let p = Params::parse(&req, &["seq", "treeSize"])?;
    let seq = p.required("seq")?;
    let tree_size = p.required("treeSize")?;
    if seq > tree_size {
        return Err(invalid("seq", "must not exceed treeSize"));
    }
    let mut tx = user.begin().await?;
    let proof = writ_audit_log::inclusion_proof(&mut tx, seq, tree_size)
        .await
        .map_err(about("treeSize"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(InclusionProofView {
        seq: proof.seq,
        tree_size: proof.tree_size,
        leaf_hash: proof.leaf_hash.to_base64(),
        proof: proof.proof.iter().map(|h| h.to_base64()).collect(),
        root_hash: proof.root_hash.to_base64(),
    }))
}

/// Proof that the tree of `fromSize` entries is a prefix of the tree of `toSize` entries (RFC
/// 9162; hashes standard base64). The JSON is the file `writ-verify consistency --proof` reads.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProofView {
    from_size: u64,
    to_size: u64,
    from_root: String,
    to_root: String,
    proof: Vec<String>,
}

/// Consistency proof
///
/// Proof that an older tree (of `from` entries) is a prefix of a newer one (of `to` entries)
/// (auditor, agency_admin): take both sizes from checkpoints.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(
        ("from" = u64, Query, minimum = 1, description = "The older tree size"),
        ("to" = u64, Query, minimum = 1, description = "The newer tree size, from ≤ to ≤ the log's size"),
    ),
    responses((status = 200, description = "The proof, in the JSON `writ-verify consistency --proof` reads", body = ConsistencyProofView),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`from` or `to` missing or out of range (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/audit/proofs/consistency")]
pub async fn consistency_proof(
    user: AgencyUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    let p = Params::parse(&req, &["from", "to"])?;
    let from = p.required("from")?;
    let to = p.required("to")?;
    if from > to {
        return Err(invalid("from", "must not exceed to"));
    }
    let mut tx = user.begin().await?;
    let proof = writ_audit_log::consistency_proof(&mut tx, from, to)
        .await
        .map_err(about("to"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ConsistencyProofView {
        from_size: proof.from_size,
        to_size: proof.to_size,
        from_root: proof.from_root.to_base64(),
        to_root: proof.to_root.to_base64(),
        proof: proof.proof.iter().map(|h| h.to_base64()).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateExportRequest {
    /// First seq (default 1).
    from_seq: Option<u64>,
    /// Last seq (default: the latest entry when the export runs).
    to_seq: Option<u64>,
}

/// An export job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportJobView {
    id: Uuid,
    /// `queued`, `running`, `done`, `failed`, or `expired` (done, and the bundle removed after
    /// the server's retention period, `WRIT_EXPORT_RETENTION_DAYS`).
    status: String,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
    requested_by: Option<Uuid>,
    requested_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// The seqs the bundle holds, once done.
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    entry_count: Option<u64>,
    /// Size of the signed checkpoint the certificate covers.
    checkpoint_size: Option<u64>,
    /// Size of the `.tar.gz` in bytes.
    size_bytes: Option<u64>,
    /// Lowercase hex SHA-256 of the `.tar.gz`.
    sha256: Option<String>,
    /// Why the export failed.
    error: Option<String>,
    /// Where to download the bundle, once done.
    bundle: Option<String>,
    /// When the bundle is removed from the server (or was, once `expired`).
    expires_at: Option<DateTime<Utc>>,
}

fn job_url(id: Uuid) -> String {
    format!("/v1/audit/exports/{id}")
}

impl From<ExportJob> for ExportJobView {
    fn from(j: ExportJob) -> Self {
        Self {
            id: j.id,
            status: j.status.as_str().to_owned(),
            from_seq: j.from_seq,
            to_seq: j.to_seq,
            requested_by: j.requested_by,
            requested_at: j.requested_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            first_seq: j.first_seq,
            last_seq: j.last_seq,
            entry_count: j.entry_count,
            checkpoint_size: j.checkpoint_size,
            size_bytes: j.size_bytes,
            sha256: j.sha256,
            error: j.error,
            bundle: (j.status == ExportStatus::Done).then(|| format!("{}/bundle", job_url(j.id))),
            expires_at: j.expires_at,
        }
    }
}

/// Request an export
///
/// A signed export of the audit log (auditor, agency_admin; audited as
/// `admin.export.requested`). The bundle is built in the background: follow `Location` until
/// `status` is `done`, then download `bundle`.
#[utoipa::path(tag = "audit",
    request_body(content = CreateExportRequest, example = json!({"fromSeq": 1})),
    security(("bearer" = [])),
    responses((status = 202, description = "The export job, queued", body = ExportJobView,
            headers(("Location" = String, description = "The job")),
            example = json!({"id": "0190f4f0-5b6c-7d8e-9fa0-b1c2d3e4f5a6", "status": "queued", "fromSeq": 1, "toSeq": null,
                "requestedBy": "0190f4b7-3c2d-7e1f-a0b1-c2d3e4f5a6b7", "requestedAt": "2026-03-02T15:04:05Z",
                "startedAt": null, "finishedAt": null, "firstSeq": null, "lastSeq": null, "entryCount": null,
                "checkpointSize": null, "sizeBytes": null, "sha256": null, "error": null, "bundle": null})),
        (status = 422, description = "`fromSeq` or `toSeq` not a positive integer, or `toSeq` below `fromSeq` (`validation`)",
            body = Problem, content_type = "application/problem+json")))]
#[post("/v1/audit/exports")]
pub async fn create_export(
    user: AgencyUser,
    body: crate::json::Json<CreateExportRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditExport).await?;
    let CreateExportRequest { from_seq, to_seq } = body.into_inner();
    for (field, v) in [("fromSeq", from_seq), ("toSeq", to_seq)] {
        if v.is_some_and(|v| !is_seq(v)) {
            return Err(invalid(field, NOT_A_SEQ));
        }
    }
    if let (Some(from), Some(to)) = (from_seq, to_seq)
        && from > to
    {
        return Err(invalid("toSeq", "must not be below fromSeq"));
    }
    let mut tx = user.begin().await?;
    let job = writ_audit_log::request_export(&mut tx, user.caller(), from_seq, to_seq)
        .await
        .map_err(about("fromSeq"))?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, job_url(job.id)))
        .json(ExportJobView::from(job)))
}

/// Read an export job
///
/// Its status, and once done the bundle's size, digest and download link (auditor,
/// agency_admin); another agency's job is 404.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The export job")),
    responses((status = 200, description = "The export job", body = ExportJobView,
            example = json!({"id": "0190f4f0-5b6c-7d8e-9fa0-b1c2d3e4f5a6", "status": "done", "fromSeq": 1, "toSeq": null,
                "requestedBy": "0190f4b7-3c2d-7e1f-a0b1-c2d3e4f5a6b7", "requestedAt": "2026-03-02T15:04:05Z",
                "startedAt": "2026-03-02T15:04:06Z", "finishedAt": "2026-03-02T15:04:09Z",
                "firstSeq": 1, "lastSeq": 48211, "entryCount": 48211, "checkpointSize": 48211,
                "sizeBytes": 9387211, "sha256": "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
                "error": null, "bundle": "/v1/audit/exports/0190f4f0-5b6c-7d8e-9fa0-b1c2d3e4f5a6/bundle",
                "expiresAt": "2026-03-09T15:04:09Z"})),
        (status = 404, description = "No such export in the agency (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/audit/exports/{id}")]
pub async fn get_export(
    user: AgencyUser,
    id: crate::json::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditExport).await?;
    let mut tx = user.begin().await?;
    let job = writ_audit_log::get_export(&mut tx, *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ExportJobView::from(job)))
}

/// The bundle's bytes (for the OpenAPI document).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BundleFile(pub Vec<u8>);

const CHUNK: usize = 256 * 1024;

/// The file, read on the blocking pool a chunk at a time.
fn file_chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 'static {
    futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let read = web::block(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match read {
            Ok((_, buf)) if buf.is_empty() => None,
            Ok((file, buf)) => Some((Ok(Bytes::from(buf)), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Download an export
///
/// The finished bundle: a gzip-compressed tar of `log.jsonl`, `certificate.json`, `checkpoint`
/// and `keys/<keyId>.pem`, for `writ-verify bundle` (auditor, agency_admin; audited as
/// `admin.export.downloaded`). 409 while the job is not done.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The export job")),
    responses((status = 200, description = "The bundle", body = BundleFile, content_type = "application/gzip"),
        (status = 404, description = "No such export in the agency, or its file is missing (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The export is not done (yet) (`conflict`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 410, description = "The bundle was removed after the retention period (`export-expired`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/audit/exports/{id}/bundle")]
pub async fn download_export(
    user: AgencyUser,
    id: crate::json::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditExport).await?;
    let mut tx = user.begin().await?;
    let job = writ_audit_log::get_export(&mut tx, *id).await?;
    if job.status == ExportStatus::Expired {
        return Err(ApiError::Gone {
            slug: "export-expired",
            detail: "the bundle was removed after the retention period; request a new export"
                .into(),
        });
    }
    if job.status != ExportStatus::Done {
        return Err(ApiError::conflict(format!(
            "the export is {}; download it once it is done",
            job.status.as_str()
        )));
    }
    let path = job
        .file_path
        .clone()
        .ok_or_else(|| ApiError::internal(format!("export {} done without a file", job.id)))?;
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        // Written by a replica that does not share WRIT_EXPORT_DIR with this one, or removed.
        std::io::ErrorKind::NotFound => {
            tracing::warn!(export = %job.id, path = %path.display(), "export bundle missing");
            ApiError::NotFound
        }
        _ => ApiError::internal(format!("{}: {e}", path.display())),
    })?;
    let len = file
        .metadata()
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
    writ_audit_log::record_download(&mut tx, user.caller(), &job).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .content_type("application/gzip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"writ-audit-{}.tar.gz\"", job.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .no_chunking(len)
        .streaming(file_chunks(file)))
}

/// One version of the agency's audit signing key (docs/AUDIT-FORMAT.md §9).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyView {
    version: i32,
    /// C2SP signed-note key id (8 lowercase hex digits): the signature lines of checkpoints and
    /// the certificate name it.
    key_id: String,
    /// The name checkpoints are signed under (the log origin).
    key_name: String,
    /// SubjectPublicKeyInfo PEM of the ECDSA P-256 key.
    public_key_pem: String,
    /// `enabled`, `disabled` (revoked) or `pending_deletion`.
    state: String,
    valid_from: String,
    /// Until when it signed (exclusive); null while current.
    valid_to: Option<String>,
}

/// Signing key history
///
/// The agency's audit signing keys, oldest first, with validity windows: the public keys that
/// verify its checkpoints and export certificates (auditor, agency_admin).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The signing keys, oldest first", body = [SigningKeyView])))]
#[get("/v1/audit/keys")]
pub async fn signing_keys(
    user: AgencyUser,
    state: web::Data<crate::AppState>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::AuditRead).await?;
    // Key references live in the control plane, out of the agency's walls.
    user.release().await?;
    let keys = writ_audit_log::signing_key_history(&state.pool, user.agency.id).await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(|k| SigningKeyView {
                version: k.version,
                key_id: k.key_id,
                key_name: k.key_name,
                public_key_pem: k.public_key_pem,
                state: k.state,
                valid_from: k.valid_from,
                valid_to: k.valid_to,
            })
            .collect::<Vec<_>>(),
    ))
}
