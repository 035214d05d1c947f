//! Crypto-erase: a document's data key and ciphertext are destroyed, its row (hash, size, who,
//! when) stays as the record. On request it takes two people — one requests, a different
//! prosecutor or agency_admin approves (with step-up, the matrix's `documentsEraseApprove`) — and
//! never under a legal hold; the retention job erases without a person. Either way the
//! `document.erase` entry is recorded in the erasing transaction, and once the sequencer has
//! given it its `seq` a certificate of deletion naming that `seq` is signed with the agency's key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;
use writ_agency_keys::{AgencySignature, Keyring};
use writ_audit_log::Caller;
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};

use crate::DocumentError;
use crate::storage::DocumentStore;
use crate::store::{
    Lookup, Row, audit, load_visible, now_ms, refuse_if_in_signing_record, role_of,
};

/// The format of a certificate of deletion.
pub const CERTIFICATE_FORMAT: &str = "writ-document-erasure/1";

/// An erasure request, as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ErasureRequest {
    pub id: Uuid,
    pub document_id: Uuid,
    pub reason: String,
    /// `request` (two people) or `retention` (the daily job).
    pub kind: String,
    /// `pending`, `erased`, `superseded` (retention erased the document while the request
    /// waited for its second person) or `withdrawn`.
    pub status: String,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub approved_by: Option<Uuid>,
    pub erased_at: Option<DateTime<Utc>>,
    /// Who withdrew it (its requester, or another who declined it), when and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_by: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw_reason: Option<String>,
}

const REQUEST_COLUMNS: &str = "id, document_id, reason, kind, status, requested_by, requested_at, \
     approved_by, erased_at, withdrawn_by, withdrawn_at, withdraw_reason";

/// A reason given by a person: 1 to 1000 bytes once trimmed.
fn reason_of<'a>(reason: &'a str, what: &str) -> Result<&'a str, DocumentError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 1000 {
        return Err(DocumentError::invalid(
            "reason",
            format!("{what}: 1 to 1000 bytes"),
        ));
    }
    Ok(reason)
}

/// What a certificate of deletion states; signed as its RFC 8785 canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletionCertificate {
    /// [`CERTIFICATE_FORMAT`].
    pub format: String,
    pub agency_id: Uuid,
    pub erasure_id: Uuid,
    pub document_id: Uuid,
    pub warrant_id: Uuid,
    /// `sha256:<hex>` of the plaintext that was destroyed.
    pub document_hash: String,
    /// Plaintext bytes.
    pub size: i64,
    pub classification: i16,
    pub content_type: String,
    /// `request` or `retention`.
    pub kind: String,
    pub reason: String,
    /// The person who asked (none for retention).
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    /// The second person who approved (none for retention).
    pub approved_by: Option<Uuid>,
    pub erased_at: DateTime<Utc>,
    /// What was destroyed: the wrapped data key and the ciphertext.
    pub destroyed: Vec<String>,
    /// The audit entry that recorded the erasure (`document.erase`): its place in the chain.
    pub audit_seq: u64,
    pub audit_entry_hash: String,
    pub issued_at: DateTime<Utc>,
}

/// A certificate and the agency's signature over its canonical JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedDeletionCertificate {
    pub certificate: DeletionCertificate,
    pub signature: AgencySignature,
}

impl DeletionCertificate {
    /// The signed bytes: RFC 8785 canonical JSON.
    pub fn canonical(&self) -> Result<Vec<u8>, DocumentError> {
        serde_jcs::to_vec(self).map_err(|e| DocumentError::Corrupt(e.to_string()))
    }
}

async fn load_request(
    tx: &mut TenantTx,
    id: Uuid,
    for_update: bool,
) -> Result<ErasureRequest, DocumentError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM erasure_requests WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)
}

/// The pending request `id` and its document, both locked: the document first, then the request
/// (the order retention takes them in). Whether the request is pending, and `check`, are asked of
/// the request as read before the locks and again under them.
async fn lock_pending(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    check: impl Fn(&ErasureRequest) -> Result<(), DocumentError>,
) -> Result<(ErasureRequest, Row), DocumentError> {
    let pending = |request: &ErasureRequest| {
        if request.status != "pending" {
            return Err(DocumentError::Conflict(format!(
                "the erasure request is {} already",
                request.status
            )));
        }
        check(request)
    };
    let request = load_request(tx, id, false).await?;
    pending(&request)?;
    let (row, _) = load_visible(tx, caller, request.document_id, Lookup::Retained).await?;
    let request = load_request(tx, id, true).await?;
    pending(&request)?;
    Ok((request, row))
}

/// Asks for a document's erasure; a different person approves it. Refused under a legal hold
/// (`LegalHold`), for a document in a signing record (`InSigningRecord`), for an erased document,
/// or while another request is open. Recorded as
/// `document.erase` with `detail.step: "requested"`.
pub async fn request_erasure(
    tx: &mut TenantTx,
    caller: &Caller,
    document_id: Uuid,
    reason: &str,
) -> Result<ErasureRequest, DocumentError> {
    let user = caller.user_id().ok_or_else(|| {
        DocumentError::Corrupt("an erasure request was made as the system".into())
    })?;
    let reason = reason_of(reason, "why the document must be destroyed")?;
    let (row, _) = load_visible(tx, caller, document_id, Lookup::Retained).await?;
    row.check_not_erased()?;
    if let Some(hold) = &row.legal_hold_reason {
        return Err(DocumentError::LegalHold(hold.clone()));
    }
    refuse_if_in_signing_record(tx, document_id).await?;
    let id = Uuid::now_v7();
    let inserted: Option<ErasureRequest> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO erasure_requests (id, document_id, reason, requested_by, requested_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (document_id) WHERE status = 'pending' DO NOTHING \
         RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(id)
    .bind(document_id)
    .bind(reason)
    .bind(user)
    .bind(now_ms())
    .fetch_optional(tx.conn())
    .await?;
    let Some(request) = inserted else {
        return Err(DocumentError::Conflict(
            "an erasure of this document is already requested and awaits approval".into(),
        ));
    };
    audit(
        tx,
        caller,
        "document.erase",
        &row,
        json!({ "step": "requested", "erasureId": id, "reason": reason }),
    )
    .await?;
    Ok(request)
}

/// Withdraws a pending erasure request: its requester changing their mind, or a prosecutor (who
/// would have been the second person) declining it. The document stays as it was. Recorded as `document.erase` with
/// `detail.step: "withdrawn"`.
pub async fn withdraw_erasure(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    reason: &str,
) -> Result<ErasureRequest, DocumentError> {
    let user = caller.user_id().ok_or_else(|| {
        DocumentError::Corrupt("an erasure request was withdrawn as the system".into())
    })?;
    let reason = reason_of(reason, "why the erasure is not to be carried out")?;
    let (request, row) = lock_pending(tx, caller, id, |request| {
        if request.requested_by != Some(user) && role_of(caller) != Some(Role::Prosecutor) {
            return Err(DocumentError::Forbidden(
                "an erasure request is withdrawn by its requester or declined by a prosecutor"
                    .into(),
            ));
        }
        Ok(())
    })
    .await?;
    let withdrawn: ErasureRequest = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE erasure_requests SET status = 'withdrawn', withdrawn_by = $2, withdrawn_at = $3, \
           withdraw_reason = $4 \
         WHERE id = $1 RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(id)
    .bind(user)
    .bind(now_ms())
    .bind(reason)
    .fetch_one(tx.conn())
    .await?;
    audit(
        tx,
        caller,
        "document.erase",
        &row,
        json!({
            "step": "withdrawn",
            "erasureId": id,
            "reason": reason,
            "byRequester": request.requested_by == Some(user),
        }),
    )
    .await?;
    Ok(withdrawn)
}

/// One erasure request; `NotFound` for another agency's.
pub async fn get_request(tx: &mut TenantTx, id: Uuid) -> Result<ErasureRequest, DocumentError> {
    load_request(tx, id, false).await
}

/// Pending erasure requests, oldest first (at most 200).
pub async fn pending_requests(tx: &mut TenantTx) -> Result<Vec<ErasureRequest>, DocumentError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM erasure_requests WHERE status = 'pending' \
         ORDER BY requested_at, id LIMIT 200"
    )))
    .fetch_all(tx.conn())
    .await?)
}

/// Approves an erasure and carries it out: the approver must not be the requester (`Forbidden`);
/// a legal hold placed since the request blocks it (`LegalHold`). The data key and the
/// PostgreSQL ciphertext are destroyed in `tx`; an S3 object goes after the commit
/// ([`complete_erasure`]).
pub async fn approve_erasure(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<ErasureRequest, DocumentError> {
    let user = caller
        .user_id()
        .ok_or_else(|| DocumentError::Corrupt("an erasure was approved as the system".into()))?;
    let (request, row) = lock_pending(tx, caller, id, |request| {
        if request.requested_by == Some(user) {
            return Err(DocumentError::Forbidden(
                "an erasure needs two people: its requester cannot approve it".into(),
            ));
        }
        Ok(())
    })
    .await?;
    row.check_not_erased()?;
    if let Some(hold) = &row.legal_hold_reason {
        return Err(DocumentError::LegalHold(hold.clone()));
    }
    // Signed, or a signature requested, since the erasure was asked for.
    refuse_if_in_signing_record(tx, row.id).await?;
    let now = now_ms();
    let event = erase(
        tx,
        caller,
        &row,
        id,
        now,
        json!({
            "step": "erased",
            "kind": "request",
            "erasureId": id,
            "reason": request.reason,
            "requestedBy": request.requested_by,
            "approvedBy": user,
        }),
    )
    .await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE erasure_requests SET status = 'erased', approved_by = $2, erased_at = $3, \
           audit_event_id = $4 WHERE id = $1 RETURNING {REQUEST_COLUMNS}"
    )))
    .bind(id)
    .bind(user)
    .bind(now)
    .bind(event)
    .fetch_one(tx.conn())
    .await?)
}

/// Destroys a document's data key and its PostgreSQL ciphertext, marks it erased and records
/// `document.erase`; returns the entry's event id.
pub(crate) async fn erase(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &Row,
    erasure_id: Uuid,
    now: DateTime<Utc>,
    detail: serde_json::Value,
) -> Result<Uuid, DocumentError> {
    sqlx::query(
        "UPDATE documents SET erased_at = $2, erasure_id = $3, \
           ciphertext_destroyed_at = CASE WHEN storage = 'postgres' THEN $2 END WHERE id = $1",
    )
    .bind(row.id)
    .bind(now)
    .bind(erasure_id)
    .execute(tx.conn())
    .await?;
    // The triggers of 0010 allow these deletes only for a document marked erased just above.
    sqlx::query("DELETE FROM document_chunks WHERE document_id = $1")
        .bind(row.id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM data_keys WHERE id = $1")
        .bind(row.id)
        .execute(tx.conn())
        .await?;
    audit(tx, caller, "document.erase", row, detail).await
}

/// Finishes an erasure after its commit: removes an S3 object (retried by the retention job
/// if the bucket is down) and signs the certificate of deletion. Idempotent.
pub async fn complete_erasure(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    store: &DocumentStore,
    erasure_id: Uuid,
) -> Result<SignedDeletionCertificate, DocumentError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let key: Option<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT d.id, d.storage_key FROM erasure_requests e JOIN documents d ON d.id = e.document_id \
         WHERE e.id = $1 AND e.status = 'erased' AND d.ciphertext_destroyed_at IS NULL \
           AND d.storage = $2",
    )
    .bind(erasure_id)
    .bind(store.kind())
    .fetch_optional(tx.conn())
    .await?;
    tx.rollback().await?;
    if let Some((document_id, Some(key))) = key {
        destroy_object(pool, agency, store, document_id, &key).await?;
    }
    certificate(pool, agency, keys, erasure_id).await
}

/// Deletes an erased document's S3 object and notes when.
pub(crate) async fn destroy_object(
    pool: &PgPool,
    agency: &Agency,
    store: &DocumentStore,
    document_id: Uuid,
    key: &str,
) -> Result<(), DocumentError> {
    store.delete_object(key).await?;
    let mut tx = TenantTx::begin(pool, agency).await?;
    sqlx::query(
        "UPDATE documents SET ciphertext_destroyed_at = $2 WHERE id = $1 AND erased_at IS NOT NULL",
    )
    .bind(document_id)
    .bind(now_ms())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The certificate of deletion of an erasure: signed once (when the `document.erase` entry has
/// its `seq`) and then served as stored. `Conflict` while the erasure awaits approval.
pub async fn certificate(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    erasure_id: Uuid,
) -> Result<SignedDeletionCertificate, DocumentError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let request = load_request(&mut tx, erasure_id, false).await?;
    let stored: (Option<serde_json::Value>, Option<Uuid>) =
        sqlx::query_as("SELECT certificate, audit_event_id FROM erasure_requests WHERE id = $1")
            .bind(erasure_id)
            .fetch_one(tx.conn())
            .await?;
    tx.rollback().await?;
    let (stored_certificate, event_id) = stored;
    if let Some(value) = stored_certificate {
        return serde_json::from_value(value)
            .map_err(|e| DocumentError::Corrupt(format!("stored certificate: {e}")));
    }
    let (Some(erased_at), Some(event_id)) = (request.erased_at, event_id) else {
        return Err(DocumentError::Conflict(
            "the erasure awaits approval: there is no certificate yet".into(),
        ));
    };
    // Outside any transaction of ours: the receipt sequences the committed entry if no sequencer
    // has yet.
    let receipt = writ_audit_log::receipt(pool, agency.id, &agency.ident, event_id).await?;
    let mut tx = TenantTx::begin(pool, agency).await?;
    let doc: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM documents WHERE id = $1",
        crate::store::COLUMNS
    )))
    .bind(request.document_id)
    .fetch_one(tx.conn())
    .await?;
    let certificate = DeletionCertificate {
        format: CERTIFICATE_FORMAT.into(),
        agency_id: agency.id,
        erasure_id,
        document_id: doc.id,
        warrant_id: doc.warrant_id,
        document_hash: doc.document_hash(),
        size: doc.size,
        classification: doc.classification,
        content_type: doc.content_type.clone(),
        kind: request.kind.clone(),
        reason: request.reason.clone(),
        requested_by: request.requested_by,
        requested_at: request.requested_at,
        approved_by: request.approved_by,
        erased_at,
        destroyed: vec!["wrapped data key".into(), "ciphertext".into()],
        audit_seq: receipt.seq,
        audit_entry_hash: receipt.hash.to_string(),
        issued_at: now_ms(),
    };
    let signature = writ_agency_keys::sign(&mut tx, keys, &certificate.canonical()?).await?;
    let signed = SignedDeletionCertificate {
        certificate,
        signature,
    };
    let value = serde_json::to_value(&signed).map_err(|e| DocumentError::Corrupt(e.to_string()))?;
    // Two readers may sign at once; the first stored certificate is the one.
    let kept: Option<serde_json::Value> = sqlx::query_scalar(
        "UPDATE erasure_requests SET certificate = $2 WHERE id = $1 AND certificate IS NULL \
         RETURNING certificate",
    )
    .bind(erasure_id)
    .bind(&value)
    .fetch_optional(tx.conn())
    .await?;
    let value = match kept {
        Some(v) => v,
        None => {
            sqlx::query_scalar("SELECT certificate FROM erasure_requests WHERE id = $1")
                .bind(erasure_id)
                .fetch_one(tx.conn())
                .await?
        }
    };
    tx.commit().await?;
    serde_json::from_value(value)
        .map_err(|e| DocumentError::Corrupt(format!("stored certificate: {e}")))
}
