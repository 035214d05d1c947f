//! Signing a request, completing its record once the audit entry has its place in the chain,
//! and reading signatures.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use writ_agency_keys::Keyring;
use writ_audit_chain::signature_record::{
    AuditReference, Authentication, Intent, SIGNATURE_RECORD_FORMAT, SignatureEnvelope,
    SignatureRecord, SignedDocument, Signer, signing_bytes,
};
use writ_audit_log::Caller;
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_warrant_workflow::signing::{SignedKind, document_for_signature, may_sign};

use crate::EsignError;
use crate::error::slug;
use crate::requests::{SignatureRequest, load, load_signer, now_ms};
use crate::timestamp::TimestampAuthority;

/// How the signer is authenticated, from the session the request came with.
#[derive(Debug, Clone)]
pub struct SignerSession {
    /// The factors of the session's login.
    pub methods: Vec<String>,
    /// NIST SP 800-63B assurance level of those factors.
    pub strength: String,
    pub auth_time: DateTime<Utc>,
    /// When the signer last re-entered a TOTP code (the step-up this signature rests on).
    pub stepped_up_at: DateTime<Utc>,
    pub user_agent: String,
}

/// A signature as the API shows it: its ids and the signed record (with its audit reference
/// once complete).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    pub id: Uuid,
    pub request_id: Uuid,
    pub warrant_id: Uuid,
    pub document_id: Uuid,
    pub signer_id: Uuid,
    pub signed_at: DateTime<Utc>,
    /// Whether the record names its audit entry yet (it does once the entry is sequenced).
    pub complete: bool,
    /// Whether the record carries an RFC 3161 timestamp.
    pub timestamped: bool,
    /// The signature record (docs/ESIGN-FORMAT.md), as `writ-verify signature` reads it.
    pub record: SignatureEnvelope,
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Signs request `id` as the caller, who must be its signer, having accepted its intent
/// statement (`intent_accepted`). The caller's permission carries the step-up. Writes the
/// signature with a first record signed by the agency and records `esign.applied`, in `tx`;
/// after committing, call [`complete`].
pub async fn sign(
    tx: &mut TenantTx,
    keys: &Keyring,
    caller: &Caller,
    session: &SignerSession,
    id: Uuid,
    intent_accepted: bool,
) -> Result<Uuid, EsignError> {
    let request: SignatureRequest = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} WHERE r.id = $1 FOR UPDATE OF r",
        crate::requests::REQUEST_SELECT
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(EsignError::NotFound)?;
    // The warrant must be the caller's to see, as for any of its documents.
    let document = writ_documents::store::for_signing(tx, caller, request.document_id).await;
    let user = caller
        .user_id()
        .ok_or_else(|| EsignError::Corrupt("a signature by the system".into()))?;
    if request.signer_id != user {
        // Told apart from "not found" only for those who may see the warrant.
        document?;
        return Err(EsignError::Forbidden(
            "only the signer the request names may sign it".into(),
        ));
    }
    let document = document.map_err(|e| match e {
        writ_documents::DocumentError::Erased(_) => EsignError::conflict(
            slug::DOCUMENT_UNAVAILABLE,
            "the document was erased: it can no longer be signed",
        ),
        other => other.into(),
    })?;
    if request.status != "pending" {
        return Err(EsignError::conflict(
            slug::REQUEST_NOT_PENDING,
            format!("the request is {}", request.status),
        ));
    }
    if !intent_accepted {
        return Err(EsignError::IntentNotAccepted);
    }
    let sha256 = document
        .document_hash
        .trim_start_matches("sha256:")
        .to_owned();
    if sha256 != request.document_sha256 {
        return Err(EsignError::Corrupt(format!(
            "document {} no longer has the hash it was requested with",
            document.id
        )));
    }
    let signer = load_signer(tx, user)
        .await?
        .ok_or_else(|| EsignError::Forbidden("the signer is not an active user".into()))?;
    let role: Role = signer
        .role
        .parse()
        .map_err(|_| EsignError::Corrupt(format!("role {:?}", signer.role)))?;
    // A made document must still be what the warrant gives now, and its signer the right one.
    let kind = match document.kind.as_str() {
        "affidavit" => Some(SignedKind::Affidavit),
        "warrant" => Some(SignedKind::Warrant),
        _ => None,
    };
    if let Some(kind) = kind {
        let terms = request.terms.as_ref().map(|t| t.0);
        let now = document_for_signature(tx, caller, request.warrant_id, kind, terms).await?;
        if now.sha256 != sha256 {
            return Err(EsignError::conflict(
                slug::DOCUMENT_OUTDATED,
                format!(
                    "the {} changed after this request was made: request a signature on it as \
                     it stands",
                    kind.as_str()
                ),
            ));
        }
        if !may_sign(&now, user, role) {
            return Err(EsignError::Forbidden(format!(
                "the {} is signed by {}",
                kind.as_str(),
                match kind {
                    SignedKind::Affidavit => "its affiant",
                    SignedKind::Warrant => "the judge who claimed the warrant",
                }
            )));
        }
    }
    // The oath of this review only: one sworn before the warrant was last submitted or returned
    // covers an earlier affidavit, not what is signed now.
    let oath: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM oath_records o WHERE o.warrant_id = $1 \
           AND (o.judge_id = $2 OR o.affiant_id = $2) \
           AND o.administered_at >= coalesce((SELECT max(created_at) FROM affidavit_versions \
               WHERE warrant_id = $1 AND reason IN ('submitted', 'returned_for_revision')), \
               '-infinity') \
         ORDER BY o.administered_at DESC LIMIT 1",
    )
    .bind(request.warrant_id)
    .bind(user)
    .fetch_optional(tx.conn())
    .await?;

    let signature_id = Uuid::now_v7();
    let signed_at = now_ms();
    let size = u64::try_from(document.size)
        .map_err(|_| EsignError::Corrupt("negative document size".into()))?;
    let record = SignatureRecord {
        format: SIGNATURE_RECORD_FORMAT.to_owned(),
        record_id: signature_id.to_string(),
        agency_id: tx.agency_id().to_string(),
        warrant_id: request.warrant_id.to_string(),
        signer: Signer {
            user_id: user.to_string(),
            role: role.as_str().to_owned(),
            name: signer.display_name.clone(),
            badge_or_judicial_id: signer.badge_or_judicial_id.clone().unwrap_or_default(),
        },
        authentication: Authentication {
            methods: session.methods.clone(),
            strength: session.strength.clone(),
            auth_time: millis(session.auth_time),
            stepped_up_at: millis(session.stepped_up_at),
        },
        intent: Intent::new(request.intent.clone()),
        document: SignedDocument {
            id: document.id.to_string(),
            sha256: hex_hash(&sha256)?,
            size,
        },
        signed_at: millis(signed_at),
        source_ip: caller.source_ip.clone().unwrap_or_default(),
        user_agent: session.user_agent.clone(),
        oath_reference: oath.map(|o| o.to_string()),
        audit: None,
    };
    let initial = seal_record(tx, keys, record.clone(), None).await?;
    let event = caller
        .event("esign.applied")
        .resource("warrantId", request.warrant_id.to_string())
        .resource("documentId", document.id.to_string())
        .resource("documentHash", document.document_hash.clone())
        .resource("signatureId", signature_id.to_string())
        .resource("signatureRequestId", request.id.to_string())
        .detail(json!({
            "documentKind": document.kind,
            "intentSha256": record.intent.sha256.to_hex(),
            "signedAt": record.signed_at,
            "authentication": {
                "methods": record.authentication.methods,
                "strength": record.authentication.strength,
                "steppedUpAt": record.authentication.stepped_up_at,
            },
            "oathReference": record.oath_reference,
            "keyId": initial.signature.key_id.to_string(),
        }));
    let event_id = writ_audit_log::record(tx, &event).await?;
    sqlx::query(
        "INSERT INTO signatures (id, request_id, warrant_id, document_id, document_sha256, \
         signer_id, signer_role, signed_at, audit_event_id, initial_record) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(signature_id)
    .bind(request.id)
    .bind(request.warrant_id)
    .bind(document.id)
    .bind(&sha256)
    .bind(user)
    .bind(role.as_str())
    .bind(signed_at)
    .bind(event_id)
    .bind(to_json(&initial)?)
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE signature_requests SET status = 'signed', signed_at = $2 WHERE id = $1")
        .bind(request.id)
        .bind(signed_at)
        .execute(tx.conn())
        .await?;
    Ok(signature_id)
}

fn hex_hash(hex: &str) -> Result<writ_audit_chain::Hash, EsignError> {
    writ_audit_chain::Hash::from_hex(hex).map_err(|e| EsignError::Corrupt(e.to_string()))
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, EsignError> {
    serde_json::to_value(v).map_err(|e| EsignError::Corrupt(e.to_string()))
}

/// Signs `record` with the agency's signing key: the current one, or `version` (the one the
/// record was begun under, when it is completed after a rotation).
async fn seal_record(
    tx: &mut TenantTx,
    keys: &Keyring,
    record: SignatureRecord,
    version: Option<i32>,
) -> Result<SignatureEnvelope, EsignError> {
    let message = signing_bytes(&record)?;
    let signature = match version {
        Some(v) => writ_agency_keys::sign_as(tx, keys, v, &message).await?,
        None => writ_agency_keys::sign(tx, keys, &message).await?,
    };
    Ok(SignatureEnvelope::assemble(
        record,
        signature.key_id,
        signature.key_version,
        &signature.signature,
    )?)
}

#[derive(sqlx::FromRow)]
struct SignatureRow {
    id: Uuid,
    request_id: Uuid,
    warrant_id: Uuid,
    document_id: Uuid,
    signer_id: Uuid,
    signed_at: DateTime<Utc>,
    audit_event_id: Uuid,
    initial_record: serde_json::Value,
    record: Option<serde_json::Value>,
}

const SIGNATURE_COLUMNS: &str = "id, request_id, warrant_id, document_id, signer_id, signed_at, \
    audit_event_id, initial_record, record";

impl SignatureRow {
    fn view(&self) -> Result<Signature, EsignError> {
        let stored = self.record.as_ref().unwrap_or(&self.initial_record);
        let record: SignatureEnvelope = serde_json::from_value(stored.clone())
            .map_err(|e| EsignError::Corrupt(format!("signature record: {e}")))?;
        Ok(Signature {
            id: self.id,
            request_id: self.request_id,
            warrant_id: self.warrant_id,
            document_id: self.document_id,
            signer_id: self.signer_id,
            signed_at: self.signed_at,
            complete: self.record.is_some(),
            timestamped: record.timestamp.is_some(),
            record,
        })
    }
}

async fn load_row(tx: &mut TenantTx, id: Uuid) -> Result<Option<SignatureRow>, EsignError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SIGNATURE_COLUMNS} FROM signatures WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Completes signature `id`'s record — its audit entry's `seq` and hash, the agency's signature
/// over the whole, and a timestamp when `tsa` is set — and stores it once; a complete record is
/// returned as stored. Outside any transaction of the caller's: the entry must have committed.
/// A time-stamping authority that fails leaves the record without a timestamp (logged): a
/// warrant is not held up at 3 a.m. by a third party's outage.
pub async fn complete(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    tsa: Option<&TimestampAuthority>,
    id: Uuid,
) -> Result<Signature, EsignError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let row = load_row(&mut tx, id).await?.ok_or(EsignError::NotFound)?;
    tx.rollback().await?;
    if row.record.is_some() {
        return row.view();
    }
    let receipt =
        writ_audit_log::receipt(pool, agency.id, &agency.ident, row.audit_event_id).await?;
    let initial: SignatureEnvelope = serde_json::from_value(row.initial_record.clone())
        .map_err(|e| EsignError::Corrupt(format!("signature record: {e}")))?;
    let mut record = initial.record;
    record.audit = Some(AuditReference {
        seq: receipt.seq,
        entry_hash: receipt.hash,
    });
    // The key that signed at `signedAt` finishes the record, even after a rotation.
    let version = Some(initial.signature.key_version);
    let mut tx = TenantTx::begin(pool, agency).await?;
    let mut envelope = seal_record(&mut tx, keys, record, version).await?;
    tx.rollback().await?;
    if let Some(tsa) = tsa
        && let Err(e) = tsa.stamp_envelope(&mut envelope).await
    {
        tracing::warn!(signature = %id, error = %e, "the time-stamping authority failed; the signature record is kept without a timestamp");
    }
    let mut tx = TenantTx::begin(pool, agency).await?;
    // Two readers may complete at once; the first stored record is the one.
    sqlx::query(
        "UPDATE signatures SET record = $2, completed_at = $3 WHERE id = $1 AND record IS NULL",
    )
    .bind(id)
    .bind(to_json(&envelope)?)
    .bind(now_ms())
    .execute(tx.conn())
    .await?;
    let row = load_row(&mut tx, id).await?.ok_or(EsignError::NotFound)?;
    tx.commit().await?;
    row.view()
}

/// Signature `id` as stored, complete or not: for answering a signature whose completion
/// failed (the next read completes it).
pub async fn stored(pool: &PgPool, agency: &Agency, id: Uuid) -> Result<Signature, EsignError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let row = load_row(&mut tx, id).await?.ok_or(EsignError::NotFound)?;
    tx.rollback().await?;
    row.view()
}

/// Signature `id` if the caller may see its warrant, completed first if it is not yet.
pub async fn get(
    pool: &PgPool,
    agency: &Agency,
    keys: &Keyring,
    tsa: Option<&TimestampAuthority>,
    caller: &Caller,
    id: Uuid,
) -> Result<Signature, EsignError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let row = load_row(&mut tx, id).await?.ok_or(EsignError::NotFound)?;
    check_visible(&mut tx, caller, row.warrant_id).await?;
    tx.rollback().await?;
    complete(pool, agency, keys, tsa, id).await
}

/// `NotFound` unless the caller may read the warrant.
pub(crate) async fn check_visible(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<(), EsignError> {
    writ_warrant_workflow::store::check_readable(tx, caller, warrant_id)
        .await
        .map_err(EsignError::from)
}

/// The ids of a warrant's signatures, oldest first.
pub async fn signature_ids(tx: &mut TenantTx, warrant_id: Uuid) -> Result<Vec<Uuid>, EsignError> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM signatures WHERE warrant_id = $1 ORDER BY signed_at, id",
        )
        .bind(warrant_id)
        .fetch_all(tx.conn())
        .await?,
    )
}

/// Re-reads the request after signing (for the response).
pub async fn request_of(tx: &mut TenantTx, id: Uuid) -> Result<SignatureRequest, EsignError> {
    load(tx, id).await
}
