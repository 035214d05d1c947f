//! What must be signed before a warrant moves (DESIGN §4, §7): the affiant signs the affidavit
//! before submitting it, and the issuing judge signs the warrant before issuing it.
//!
//! Both documents are made by the server from the warrant as it stands — RFC 8785 JSON, with no
//! clock in it — so the same warrant always gives the same bytes. A signature counts only when
//! it is on exactly those bytes: an affidavit edited after it was signed, or an amendment sworn
//! after the judge signed, needs a new signature. The warrant the judge signs carries the terms
//! it will be issued on (night service, a tracking device's days of use): issuing on other terms
//! than the signed ones needs a new signature too. The signing itself (requests, step-up, the
//! signature record) is `writ-esign`'s; this module says what the documents are and asks the
//! agency's `signatures` table whether the one that counts exists.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use writ_auth_mfa::Role;
use writ_tenancy::TenantTx;

use crate::caller::{Caller, role_of};
use crate::error::WarrantError;
use crate::state::WarrantState;
use crate::store::{Row, load_visible, now_ms};

/// Format names inside the documents made for signing.
pub const AFFIDAVIT_FORMAT: &str = "writ-affidavit/1";
/// Version 2 added the terms of issue.
pub const WARRANT_FORMAT: &str = "writ-warrant-for-signature/2";

/// Problem slugs of the refusals of this module.
pub mod slug {
    pub const AFFIDAVIT_UNSIGNED: &str = "affidavit-unsigned";
    pub const JUDGE_SIGNATURE_REQUIRED: &str = "judge-signature-required";
    pub const NOT_SIGNABLE_NOW: &str = "not-signable-now";
}

/// Which of a warrant's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignedKind {
    /// The affidavit, signed by the affiant (the warrant's author) before submission.
    Affidavit,
    /// The warrant, signed by the judge who issues it.
    Warrant,
}

impl SignedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignedKind::Affidavit => "affidavit",
            SignedKind::Warrant => "warrant",
        }
    }

    /// The warrant states in which this kind's document is signed: the affidavit while the
    /// warrant is a draft, the warrant while it waits for or is under the judge's review.
    pub fn signable_in(self) -> &'static [WarrantState] {
        match self {
            SignedKind::Affidavit => &[WarrantState::Draft],
            SignedKind::Warrant => &[WarrantState::PendingJudge, WarrantState::JudgeReview],
        }
    }

    /// What the signer states, when the request names no intent of its own.
    pub fn default_intent(self) -> &'static str {
        match self {
            SignedKind::Affidavit => {
                "I swear or affirm, under penalty of perjury, that the facts stated in this \
                 affidavit are true and correct to the best of my knowledge, and I sign it \
                 electronically."
            }
            SignedKind::Warrant => {
                "Having found probable cause on the sworn affidavit, I issue this warrant and \
                 sign it electronically."
            }
        }
    }
}

/// The judge's choices at issue that the signed warrant states. Absent members are the
/// defaults of issuing: no night service; a tracking device's use for the type's maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueTerms {
    #[serde(default)]
    pub night_service: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_use_days: Option<u32>,
}

impl IssueTerms {
    /// The terms as issuing would apply them to this warrant's type: night service only where
    /// the type allows it, the tracking days defaulted to its maximum (and refused for a type
    /// without tracking, or over the maximum, as issuing refuses them).
    fn effective(self, row: &Row) -> Result<Value, WarrantError> {
        let (ty, _) = row.rules()?;
        let days = crate::store::tracking_use_days(
            &ty,
            self.tracking_use_days,
            crate::store::is_extension(row),
        )?;
        Ok(json!({
            "nightService": ty.night_authority_effective(self.night_service),
            "trackingUseDays": days,
        }))
    }
}

/// A document made for signing.
#[derive(Debug, Clone)]
pub struct ForSignature {
    pub kind: SignedKind,
    pub warrant_id: Uuid,
    pub filename: String,
    pub bytes: Vec<u8>,
    /// SHA-256 (hex) of `bytes`.
    pub sha256: String,
    /// Who must sign it: the affiant for the affidavit; for the warrant, the judge who claimed
    /// it (`None` while no judge has).
    pub signer: Option<Uuid>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn render(
    agency_id: Uuid,
    row: &Row,
    kind: SignedKind,
    terms: IssueTerms,
) -> Result<Vec<u8>, WarrantError> {
    let content: Value = row.content.clone();
    let affidavit = content
        .get("affidavit")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut value = json!({
        "format": match kind {
            SignedKind::Affidavit => AFFIDAVIT_FORMAT,
            SignedKind::Warrant => WARRANT_FORMAT,
        },
        "agencyId": agency_id,
        "warrantId": row.id,
        "number": row.number,
        "parentWarrantId": row.parent_id,
        "court": row.court,
        "type": row.type_key,
        "affiantId": row.author_id,
        "content": content,
        "affidavitSha256": crate::versions::sha256_hex(affidavit),
        "aiAssisted": row.ai_assisted,
        "aiTool": if row.ai_assisted { row.ai_tool.clone() } else { None },
    });
    if kind == SignedKind::Warrant {
        value["timeZone"] = json!(row.time_zone);
        value["terms"] = terms.effective(row)?;
    }
    serde_jcs::to_vec(&value).map_err(|e| WarrantError::Corrupt(e.to_string()))
}

fn for_signature(
    agency_id: Uuid,
    row: &Row,
    kind: SignedKind,
    terms: IssueTerms,
) -> Result<ForSignature, WarrantError> {
    let bytes = render(agency_id, row, kind, terms)?;
    Ok(ForSignature {
        kind,
        warrant_id: row.id,
        filename: format!("{}-{}.json", row.number, kind.as_str()),
        sha256: sha256_hex(&bytes),
        bytes,
        signer: match kind {
            SignedKind::Affidavit => Some(row.author_id),
            SignedKind::Warrant => row.claimed_by,
        },
    })
}

/// The document of `kind` for a warrant the caller may read, if it may be signed now: the
/// affidavit while the warrant is a draft, the warrant (on `terms`) while it waits for or is
/// under the judge's review. Terms belong to the warrant only.
pub async fn document_for_signature(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    kind: SignedKind,
    terms: Option<IssueTerms>,
) -> Result<ForSignature, WarrantError> {
    if kind == SignedKind::Affidavit && terms.is_some() {
        return Err(WarrantError::invalid(
            "terms",
            "terms of issue belong to the warrant, not the affidavit",
        ));
    }
    let row = load_visible(tx, caller, warrant_id, false, now_ms()).await?;
    let state = row.state()?;
    if !kind.signable_in().contains(&state) {
        return Err(WarrantError::Unsigned {
            slug: slug::NOT_SIGNABLE_NOW,
            detail: format!(
                "the {} is signed while the warrant is {}; it is {}",
                kind.as_str(),
                match kind {
                    SignedKind::Affidavit => "a draft",
                    SignedKind::Warrant => "before the judge",
                },
                state.as_str()
            ),
        });
    }
    for_signature(tx.agency_id(), &row, kind, terms.unwrap_or_default())
}

/// Whether `signer` may sign the warrant's document of `kind`: the affiant their affidavit, a
/// judge the warrant (the claiming one once claimed).
pub fn may_sign(doc: &ForSignature, signer: Uuid, role: Role) -> bool {
    match doc.kind {
        SignedKind::Affidavit => doc.signer == Some(signer),
        SignedKind::Warrant => role == Role::Judge && doc.signer.is_none_or(|s| s == signer),
    }
}

/// The signature id, if `signer` has signed exactly the bytes the warrant gives for `kind` now,
/// as that kind's document and under its standard statement.
async fn find_signature(
    tx: &mut TenantTx,
    row: &Row,
    kind: SignedKind,
    terms: IssueTerms,
    signer: Uuid,
) -> Result<Option<Uuid>, WarrantError> {
    let doc = for_signature(tx.agency_id(), row, kind, terms)?;
    // On the made document of that kind (not an attachment with the same bytes), under the
    // kind's standard statement: what counts is an oath or an approval, not any signature.
    Ok(sqlx::query_scalar(
        "SELECT s.id FROM signatures s \
         JOIN documents d ON d.id = s.document_id \
         JOIN signature_requests r ON r.id = s.request_id \
         WHERE s.warrant_id = $1 AND s.signer_id = $2 AND s.document_sha256 = $3 \
           AND d.kind = $4 AND r.intent = $5 \
         ORDER BY s.signed_at DESC LIMIT 1",
    )
    .bind(row.id)
    .bind(signer)
    .bind(&doc.sha256)
    .bind(kind.as_str())
    .bind(kind.default_intent())
    .fetch_optional(tx.conn())
    .await?)
}

/// Submission: the affiant has signed the affidavit as it is now.
pub(crate) async fn require_affidavit_signature(
    tx: &mut TenantTx,
    row: &Row,
) -> Result<Uuid, WarrantError> {
    find_signature(
        tx,
        row,
        SignedKind::Affidavit,
        IssueTerms::default(),
        row.author_id,
    )
    .await?
    .ok_or_else(|| WarrantError::Unsigned {
        slug: slug::AFFIDAVIT_UNSIGNED,
        detail: "the affiant has not signed the affidavit as it stands: request a signature \
                     on it (POST /v1/warrants/{id}/signature-requests with document \"affidavit\") \
                     and sign it before submitting"
            .into(),
    })
}

/// The judge's signature an issued warrant names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JudgeSignature {
    pub id: Uuid,
    pub signer_name: String,
    /// The judge's judicial id, when the account has one.
    pub signer_badge: Option<String>,
    pub signed_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 (hex) of the warrant document the judge signed.
    pub document_sha256: String,
}

/// Issue: the issuing judge has signed the warrant as it is now (after any sworn amendment), on
/// the terms it is issued on.
pub(crate) async fn require_judge_signature(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &Row,
    terms: IssueTerms,
) -> Result<JudgeSignature, WarrantError> {
    let judge = caller
        .user_id()
        .filter(|_| role_of(caller) == Some(Role::Judge));
    let found = match judge {
        Some(judge) => find_signature(tx, row, SignedKind::Warrant, terms, judge).await?,
        None => None,
    };
    let Some(id) = found else {
        return Err(WarrantError::Unsigned {
            slug: slug::JUDGE_SIGNATURE_REQUIRED,
            detail: "the judge has not signed the warrant as it stands on these terms (night \
                     service, tracking days): request a signature on it (POST \
                     /v1/warrants/{id}/signature-requests with document \"warrant\" and the \
                     same terms) and sign it before issuing"
                .into(),
        });
    };
    Ok(sqlx::query_as(
        "SELECT s.id, u.display_name AS signer_name, u.badge_or_judicial_id AS signer_badge, \
                s.signed_at, s.document_sha256 \
         FROM signatures s JOIN users u ON u.id = s.signer_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_one(tx.conn())
    .await?)
}
