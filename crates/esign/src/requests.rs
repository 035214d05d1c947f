//! Requests to sign a document of a warrant: who must sign which exact bytes, under which intent
//! statement. The document is either one of the warrant's documents (`documentId`) or one the
//! server makes for signing from the warrant as it stands (`document`: the affidavit, the
//! warrant; see `writ_warrant_workflow::signing`). Recorded as `esign.requested`.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::FromRow;
use uuid::Uuid;
use writ_audit_log::Caller;
use writ_auth_mfa::Role;
use writ_documents::Document;
use writ_tenancy::TenantTx;
use writ_warrant_workflow::signing::{ForSignature, IssueTerms, SignedKind, may_sign};

use crate::EsignError;

/// Longest intent statement (characters).
pub const MAX_INTENT_CHARS: usize = 4_000;

pub(crate) fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// What a request asks for. Exactly one of `document_id` and `document`.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub document_id: Option<Uuid>,
    pub document: Option<SignedKind>,
    /// Default: who must sign the made document (the affiant, the claiming judge), else the
    /// caller.
    pub signer_id: Option<Uuid>,
    /// Default for a made document: its standard statement.
    pub intent: Option<String>,
    /// For the made warrant: the terms it will be issued on (default: no night service, a
    /// tracking device's maximum use).
    pub terms: Option<IssueTerms>,
}

/// A request as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SignatureRequest {
    pub id: Uuid,
    pub warrant_id: Uuid,
    pub document_id: Uuid,
    /// `attachment`, `affidavit` or `warrant`.
    pub document_kind: String,
    /// SHA-256 (hex) of the bytes to be signed.
    pub document_sha256: String,
    pub signer_id: Uuid,
    pub intent: String,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    /// `pending`, `signed` or `cancelled`.
    pub status: String,
    pub signed_at: Option<DateTime<Utc>>,
    pub signature_id: Option<Uuid>,
    /// The terms of issue the made warrant states, as requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms: Option<sqlx::types::Json<IssueTerms>>,
}

pub(crate) const REQUEST_SELECT: &str = "SELECT r.id, r.warrant_id, r.document_id, \
    d.kind AS document_kind, r.document_sha256, r.signer_id, r.intent, r.requested_by, \
    r.requested_at, r.status, r.signed_at, s.id AS signature_id, r.terms \
    FROM signature_requests r JOIN documents d ON d.id = r.document_id \
    LEFT JOIN signatures s ON s.request_id = r.id";

/// A request checked before its document is made or looked up.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The document the server makes for signing, if the request names one.
    pub made: Option<ForSignature>,
    pub signer: SignerRow,
    pub intent: String,
    /// The terms the made warrant states (`None` for other documents).
    pub terms: Option<IssueTerms>,
}

/// Checks a request before anything is stored: the document named one way, the intent (the
/// affidavit and the warrant are signed under their standard statements only, so that what
/// submission and issue count is an oath and an approval), the warrant signable now for a made
/// document, and the signer — an active officer, supervisor, prosecutor or judge who may read the
/// warrant, and for a made document the one who must sign it.
pub async fn plan(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    new: &NewRequest,
) -> Result<Plan, EsignError> {
    // A warrant the caller may not read is not found, before anything about it is told (whether
    // it is sealed, who may sign it).
    crate::signing::check_visible(tx, caller, warrant_id).await?;
    if let Some(intent) = &new.intent {
        check_intent(intent)?;
    }
    let made = match (new.document_id, new.document) {
        (Some(_), Some(_)) => {
            return Err(EsignError::invalid(
                "document",
                "give either documentId or document, not both",
            ));
        }
        (None, None) => {
            return Err(EsignError::invalid(
                "documentId",
                "name the document to sign: documentId, or document \"affidavit\" or \"warrant\"",
            ));
        }
        (Some(_), None) => {
            if new.terms.is_some() {
                return Err(EsignError::invalid(
                    "terms",
                    "terms of issue belong to the warrant the server makes (document \"warrant\")",
                ));
            }
            if new.signer_id.is_none() {
                return Err(EsignError::invalid(
                    "signerId",
                    "who must sign an uploaded document",
                ));
            }
            None
        }
        (None, Some(kind)) => Some(
            writ_warrant_workflow::signing::document_for_signature(
                tx, caller, warrant_id, kind, new.terms,
            )
            .await?,
        ),
    };
    let intent = match (&new.intent, &made) {
        (Some(i), Some(m)) if i != m.kind.default_intent() => {
            return Err(EsignError::invalid(
                "intent",
                format!(
                    "the {} is signed under its standard statement; leave intent out",
                    m.kind.as_str()
                ),
            ));
        }
        (Some(i), _) => i.clone(),
        (None, Some(m)) => m.kind.default_intent().to_owned(),
        (None, None) => {
            return Err(EsignError::invalid(
                "intent",
                "the statement the signer accepts for an uploaded document",
            ));
        }
    };
    let requester = caller
        .user_id()
        .ok_or_else(|| EsignError::Corrupt("a signature requested by the system".into()))?;
    let signer_id = new
        .signer_id
        .or(made.as_ref().and_then(|m| m.signer))
        .unwrap_or(requester);
    let signer = load_signer(tx, signer_id)
        .await?
        .ok_or_else(|| EsignError::invalid("signerId", "not an active user of the agency"))?;
    let role: Option<Role> = signer.role.parse().ok();
    let Some(role) = role.filter(|r| {
        matches!(
            r,
            Role::Officer | Role::Supervisor | Role::Prosecutor | Role::Judge
        )
    }) else {
        return Err(EsignError::invalid(
            "signerId",
            "signers are officers, supervisors, prosecutors and judges",
        ));
    };
    if let Some(m) = &made
        && !may_sign(m, signer.id, role)
    {
        return Err(EsignError::invalid(
            "signerId",
            match m.kind {
                SignedKind::Affidavit => "the affidavit is signed by its affiant",
                SignedKind::Warrant => "the warrant is signed by the judge who reviews it",
            },
        ));
    }
    if !writ_warrant_workflow::may_read_warrant(role, warrant_sealed(tx, warrant_id).await?) {
        return Err(EsignError::invalid(
            "signerId",
            "the signer may not read this sealed warrant",
        ));
    }
    let terms = made
        .as_ref()
        .filter(|m| m.kind == SignedKind::Warrant)
        .map(|_| new.terms.unwrap_or_default());
    Ok(Plan {
        made,
        signer,
        intent,
        terms,
    })
}

/// Whether the warrant is sealed now (a lapsed seal no longer hides it).
async fn warrant_sealed(tx: &mut TenantTx, warrant_id: Uuid) -> Result<bool, EsignError> {
    Ok(sqlx::query_scalar(
        "SELECT sealed AND (seal_expires_at IS NULL OR seal_expires_at > now()) \
         FROM warrants WHERE id = $1",
    )
    .bind(warrant_id)
    .fetch_optional(tx.conn())
    .await?
    .unwrap_or(false))
}

fn check_intent(intent: &str) -> Result<(), EsignError> {
    let n = intent.chars().count();
    if intent.trim().is_empty() || n > MAX_INTENT_CHARS {
        return Err(EsignError::invalid(
            "intent",
            format!("1 to {MAX_INTENT_CHARS} characters"),
        ));
    }
    if intent
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(EsignError::invalid(
            "intent",
            "no control characters other than line breaks and tabs",
        ));
    }
    Ok(())
}

/// An active user of the agency, as a signer.
#[derive(Debug, Clone, FromRow)]
pub struct SignerRow {
    pub id: Uuid,
    pub display_name: String,
    pub role: String,
    pub badge_or_judicial_id: Option<String>,
}

pub(crate) async fn load_signer(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> Result<Option<SignerRow>, EsignError> {
    Ok(sqlx::query_as(
        "SELECT id, display_name, role, badge_or_judicial_id FROM users \
         WHERE id = $1 AND status = 'active'",
    )
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Records the request `plan` checked, for `document` (already stored, visible to the caller,
/// of the warrant).
pub async fn create(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    plan: &Plan,
    document: &Document,
) -> Result<SignatureRequest, EsignError> {
    if document.warrant_id != warrant_id {
        return Err(EsignError::invalid(
            "documentId",
            "the document belongs to another warrant",
        ));
    }
    // A made document is requested by its kind, so that its signer and statement are checked.
    if plan.made.is_none() && document.kind != "attachment" {
        return Err(EsignError::invalid(
            "documentId",
            format!(
                "the {} is requested with document \"{}\", not by its id",
                document.kind, document.kind
            ),
        ));
    }
    let requester = caller
        .user_id()
        .ok_or_else(|| EsignError::Corrupt("a signature requested by the system".into()))?;
    let sha256 = document
        .document_hash
        .trim_start_matches("sha256:")
        .to_owned();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO signature_requests (id, warrant_id, document_id, document_sha256, signer_id, \
         intent, requested_by, requested_at, terms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(warrant_id)
    .bind(document.id)
    .bind(&sha256)
    .bind(plan.signer.id)
    .bind(&plan.intent)
    .bind(requester)
    .bind(now_ms())
    .bind(plan.terms.map(sqlx::types::Json))
    .execute(tx.conn())
    .await?;
    let event = caller
        .event("esign.requested")
        .resource("warrantId", warrant_id.to_string())
        .resource("documentId", document.id.to_string())
        .resource("documentHash", document.document_hash.clone())
        .resource("signatureRequestId", id.to_string())
        .detail(json!({
            "signerId": plan.signer.id,
            "documentKind": document.kind,
            "intentSha256": writ_audit_chain::signature_record::intent_sha256(&plan.intent).to_hex(),
        }));
    writ_audit_log::record(tx, &event).await?;
    load(tx, id).await
}

pub(crate) async fn load(tx: &mut TenantTx, id: Uuid) -> Result<SignatureRequest, EsignError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(EsignError::NotFound)
}

/// The requests waiting for the caller's signature, oldest first.
pub async fn pending_for(
    tx: &mut TenantTx,
    caller: &Caller,
) -> Result<Vec<SignatureRequest>, EsignError> {
    let Some(user) = caller.user_id() else {
        return Ok(Vec::new());
    };
    let sees_sealed = caller
        .actor
        .role
        .parse()
        .is_ok_and(writ_warrant_workflow::may_see_sealed);
    // A warrant sealed after the request was made disappears from the list of those who may
    // not read it, as it does everywhere else. A made document leaves the list once the warrant
    // has moved past the stage it is signed in (signing it would be refused): the affidavit
    // after the draft, the warrant once the judge has decided; the request itself stays pending,
    // and is listed again if the warrant comes back to that stage.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} JOIN warrants w ON w.id = r.warrant_id \
         WHERE r.signer_id = $1 AND r.status = 'pending' \
         AND d.deleted_at IS NULL AND d.erased_at IS NULL \
         AND ($2 OR NOT (w.sealed AND (w.seal_expires_at IS NULL OR w.seal_expires_at > now()))) \
         AND CASE d.kind WHEN 'affidavit' THEN w.state = ANY($3) \
               WHEN 'warrant' THEN w.state = ANY($4) ELSE true END \
         ORDER BY r.requested_at LIMIT 500"
    )))
    .bind(user)
    .bind(sees_sealed)
    .bind(signable_states(SignedKind::Affidavit))
    .bind(signable_states(SignedKind::Warrant))
    .fetch_all(tx.conn())
    .await?)
}

/// The warrant states in which a made document of `kind` is signed, as stored.
fn signable_states(kind: SignedKind) -> Vec<&'static str> {
    kind.signable_in().iter().map(|s| s.as_str()).collect()
}

/// A warrant's requests (the caller may read the warrant), oldest first.
pub async fn for_warrant(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<Vec<SignatureRequest>, EsignError> {
    crate::signing::check_visible(tx, caller, warrant_id).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} WHERE r.warrant_id = $1 ORDER BY r.requested_at LIMIT 500"
    )))
    .bind(warrant_id)
    .fetch_all(tx.conn())
    .await?)
}

/// Longest reason for cancelling a request (characters).
pub const MAX_REASON_CHARS: usize = 2_000;

/// Cancels a pending request (a wrong signer, a document replaced): by whoever made it or the
/// signer it names. Recorded as `esign.cancelled`; a cancelled request can no longer be signed.
pub async fn cancel(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    reason: Option<String>,
) -> Result<SignatureRequest, EsignError> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reason
        && (r.chars().count() > MAX_REASON_CHARS || r.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(EsignError::invalid(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters, no control characters"),
        ));
    }
    let request: SignatureRequest = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REQUEST_SELECT} WHERE r.id = $1 FOR UPDATE OF r"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(EsignError::NotFound)?;
    crate::signing::check_visible(tx, caller, request.warrant_id).await?;
    let user = caller.user_id();
    if user != Some(request.requested_by) && user != Some(request.signer_id) {
        return Err(EsignError::Forbidden(
            "a request is cancelled by whoever made it or the signer it names".into(),
        ));
    }
    if request.status != "pending" {
        return Err(EsignError::conflict(
            crate::error::slug::REQUEST_NOT_PENDING,
            format!("the request is {}", request.status),
        ));
    }
    sqlx::query("UPDATE signature_requests SET status = 'cancelled' WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    let event = caller
        .event("esign.cancelled")
        .resource("warrantId", request.warrant_id.to_string())
        .resource("documentId", request.document_id.to_string())
        .resource("signatureRequestId", id.to_string())
        .detail(json!({ "signerId": request.signer_id, "reason": reason }));
    writ_audit_log::record(tx, &event).await?;
    load(tx, id).await
}

/// Hides a document (`writ_documents::store::soft_delete`) unless it is part of a signing
/// record: signed, or awaiting a signature. A signature must stay verifiable against the exact
/// bytes signed, by whoever may read the warrant; a pending request is cancelled first. The
/// caller commits only on `Ok`.
pub async fn delete_document(
    tx: &mut TenantTx,
    caller: &Caller,
    document_id: Uuid,
) -> Result<(), EsignError> {
    // The deletion's own checks first (404 for whoever may not see the document, an officer's
    // own warrants only); a refusal below is an error, so the caller's transaction rolls back.
    writ_documents::store::soft_delete(tx, caller, document_id).await?;
    writ_documents::store::refuse_if_in_signing_record(tx, document_id).await?;
    Ok(())
}
