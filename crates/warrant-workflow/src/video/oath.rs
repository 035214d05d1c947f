//! The oath record (FRCrP 4.1(b)(2); Minn. R. Crim. P. 36.04; Cal. PC 1526; State v. Myers):
//! administered by the session's judge while the session is connected, once per session, bound
//! to the affidavit version sworn to. The recording's reference and SHA-256 arrive later from
//! the provider ([`super::store::receive`]) and are held as the court's. Transcript
//! certification is a tracked step after the recording. [`issue_check`] is what issuing asks of
//! all this.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use writ_tenancy::TenantTx;

use super::state::audit as codes;
use super::store::{
    SessionRow, VideoSession, is_session_judge, load_session, load_visible_session, session_audit,
    touch,
};
use super::webhook::check_sha256;
use super::{VideoError, slug};
use crate::caller::Caller;
use crate::error::WarrantError;
use crate::state::WarrantState;
use crate::store::{Row, check_text, now_ms};
use crate::types::WarrantType;
use crate::versions::sha256_hex;

pub const MAX_OATH_TEXT_CHARS: usize = 5_000;
pub const MAX_LOCATION_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 2_000;

/// How the judge confirmed the affiant is who the application names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMethod {
    /// The judge knows the affiant.
    KnownPersonally,
    /// A government photo ID shown on video.
    GovernmentIdOnVideo,
    /// The agency's credential (badge, ID card) shown on video.
    AgencyCredentialOnVideo,
    /// The affiant's two-factor login to Writ, matched to the face on video.
    AgencyVerifiedLogin,
    /// Anything else: the note says what.
    Other,
}

impl IdentityMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMethod::KnownPersonally => "known_personally",
            IdentityMethod::GovernmentIdOnVideo => "government_id_on_video",
            IdentityMethod::AgencyCredentialOnVideo => "agency_credential_on_video",
            IdentityMethod::AgencyVerifiedLogin => "agency_verified_login",
            IdentityMethod::Other => "other",
        }
    }
}

/// What the judge records when administering the oath.
#[derive(Debug, Clone)]
pub struct OathInput {
    pub identity_method: IdentityMethod,
    pub identity_note: Option<String>,
    /// Where the judge is (state or jurisdiction, as the judge states it).
    pub judge_location: String,
    /// The judge attests being within the court's jurisdiction.
    pub judge_in_jurisdiction: bool,
    /// The words of the oath as administered.
    pub oath_text: String,
}

/// The oath as administered.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OathRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub warrant_id: Uuid,
    pub judge_id: Uuid,
    pub affiant_id: Uuid,
    pub identity_method: String,
    pub identity_note: Option<String>,
    pub judge_location: String,
    pub judge_in_jurisdiction: bool,
    pub oath_text: String,
    pub oath_text_sha256: String,
    pub administered_at: DateTime<Utc>,
    /// The affidavit version sworn to, and its SHA-256.
    pub affidavit_version: i32,
    pub affidavit_sha256: String,
}

const OATH_COLUMNS: &str = "id, session_id, warrant_id, judge_id, affiant_id, identity_method, \
     identity_note, judge_location, judge_in_jurisdiction, oath_text, oath_text_sha256, \
     administered_at, affidavit_version, affidavit_sha256";

pub(crate) async fn load_oath(
    tx: &mut TenantTx,
    session_id: Uuid,
) -> Result<Option<OathRecord>, WarrantError> {
    let sql = format!("SELECT {OATH_COLUMNS} FROM oath_records WHERE session_id = $1");
    Ok(sqlx::query_as::<_, OathRecord>(sqlx::AssertSqlSafe(sql))
        .bind(session_id)
        .fetch_optional(tx.conn())
        .await?)
}

/// The warrant's latest affidavit version: number and SHA-256.
pub(crate) async fn latest_version(
    tx: &mut TenantTx,
    warrant_id: Uuid,
) -> Result<Option<(i32, String)>, WarrantError> {
    Ok(sqlx::query_as(
        "SELECT number, sha256 FROM affidavit_versions WHERE warrant_id = $1 \
         ORDER BY number DESC LIMIT 1",
    )
    .bind(warrant_id)
    .fetch_optional(tx.conn())
    .await?)
}

fn not_connected(state: super::SessionState) -> WarrantError {
    VideoError::conflict(
        slug::SESSION_NOT_CONNECTED,
        format!("the session is {state}; this takes a connected session"),
    )
    .into()
}

/// The judge must see and hear the affiant (FRCrP 4.1; Ga. 17-5-21.1): both have joined the
/// session and neither has left. A connected session only says media flows, maybe one way.
async fn require_present(tx: &mut TenantTx, session: &SessionRow) -> Result<(), WarrantError> {
    let present: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM video_session_participants \
         WHERE session_id = $1 AND left_at IS NULL AND user_id = ANY($2)",
    )
    .bind(session.id)
    .bind([session.judge_id, session.affiant_id])
    .fetch_all(tx.conn())
    .await?;
    let absent: Vec<&str> = [(session.judge_id, "judge"), (session.affiant_id, "affiant")]
        .into_iter()
        .filter(|(id, _)| !present.contains(id))
        .map(|(_, who)| who)
        .collect();
    if absent.is_empty() {
        return Ok(());
    }
    Err(VideoError::conflict(
        slug::PARTICIPANT_ABSENT,
        format!(
            "the {} must have joined the session (and not left) before the oath",
            absent.join(" and the ")
        ),
    )
    .into())
}

pub(crate) fn require_review(warrant: &Row) -> Result<(), WarrantError> {
    if warrant.state()? != WarrantState::JudgeReview {
        return Err(VideoError::conflict(
            slug::WARRANT_NOT_IN_REVIEW,
            format!(
                "the warrant is {}, not under the judge's review",
                warrant.state
            ),
        )
        .into());
    }
    Ok(())
}

fn check_required_text(field: &str, text: &str, max: usize) -> Result<String, WarrantError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(WarrantError::invalid(field, "required"));
    }
    check_text(field, t, max)?;
    Ok(t.to_owned())
}

/// Administers the oath (the session's judge, while connected, once per session): recorded as
/// `oath.administered`, bound to the affidavit's latest version.
pub async fn administer(
    tx: &mut TenantTx,
    caller: &Caller,
    session_id: Uuid,
    input: &OathInput,
) -> Result<VideoSession, WarrantError> {
    let now = now_ms();
    let (session, warrant) = load_visible_session(tx, caller, session_id, true, now).await?;
    if !is_session_judge(caller, &session) {
        return Err(
            VideoError::Forbidden("only the session's judge administers the oath".into()).into(),
        );
    }
    let location = check_required_text("judgeLocation", &input.judge_location, MAX_LOCATION_CHARS)?;
    let oath_text = check_required_text("oathText", &input.oath_text, MAX_OATH_TEXT_CHARS)?;
    let note = input
        .identity_note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if let Some(n) = &note {
        check_text("affiantIdentity.note", n, MAX_NOTE_CHARS)?;
    }
    if input.identity_method == IdentityMethod::Other && note.is_none() {
        return Err(WarrantError::invalid(
            "affiantIdentity.note",
            "say how the affiant's identity was confirmed",
        ));
    }
    let state = session.state()?;
    if state != super::SessionState::Connected {
        return Err(not_connected(state));
    }
    require_review(&warrant)?;
    super::store::require_current(&session, &warrant)?;
    require_present(tx, &session).await?;
    if load_oath(tx, session_id).await?.is_some() {
        return Err(VideoError::conflict(
            slug::OATH_ALREADY_ADMINISTERED,
            "the oath was administered in this session already",
        )
        .into());
    }
    let (ty, _) = warrant.rules()?;
    if ty.oath.judge_in_jurisdiction && !input.judge_in_jurisdiction {
        return Err(VideoError::conflict(
            slug::JUDGE_OUTSIDE_JURISDICTION,
            "the court requires the judge to be within its jurisdiction when administering the oath",
        )
        .into());
    }
    let Some((version, affidavit_sha256)) = latest_version(tx, warrant.id).await? else {
        return Err(WarrantError::Corrupt(
            "a warrant under review without an affidavit version".into(),
        ));
    };
    let oath_sha256 = sha256_hex(&oath_text);
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO oath_records (id, session_id, warrant_id, judge_id, affiant_id, \
         identity_method, identity_note, judge_location, judge_in_jurisdiction, oath_text, \
         oath_text_sha256, administered_at, affidavit_version, affidavit_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(id)
    .bind(session_id)
    .bind(warrant.id)
    .bind(session.judge_id)
    .bind(session.affiant_id)
    .bind(input.identity_method.as_str())
    .bind(&note)
    .bind(&location)
    .bind(input.judge_in_jurisdiction)
    .bind(&oath_text)
    .bind(&oath_sha256)
    .bind(now)
    .bind(version)
    .bind(&affidavit_sha256)
    .execute(tx.conn())
    .await?;
    touch(tx, session_id, now).await?;
    session_audit(
        tx,
        caller,
        codes::OATH_ADMINISTERED,
        &warrant,
        session_id,
        json!({
            "oathId": id,
            "affiantId": session.affiant_id,
            "identityMethod": input.identity_method.as_str(),
            "judgeLocation": location,
            "judgeInJurisdiction": input.judge_in_jurisdiction,
            "oathTextSha256": oath_sha256,
            "administeredAt": now,
            "affidavitVersion": version,
            "affidavitSha256": affidavit_sha256,
        }),
    )
    .await?;
    reload(tx, session_id).await
}

async fn reload(tx: &mut TenantTx, session_id: Uuid) -> Result<VideoSession, WarrantError> {
    let s = load_session(tx, session_id, false)
        .await?
        .ok_or(WarrantError::NotFound)?;
    super::store::view(tx, &s).await
}

/// Certifies the transcript of a session's recording (the session's judge, who took the
/// testimony, as FRCrP 4.1 and its state mirrors have it; once, after the recording was
/// delivered): who, when, and the transcript's SHA-256. `video.session.transcript_certified`.
pub async fn certify_transcript(
    tx: &mut TenantTx,
    caller: &Caller,
    session_id: Uuid,
    sha256: &str,
    reference: Option<&str>,
) -> Result<VideoSession, WarrantError> {
    let now = now_ms();
    let Some(user_id) = caller.user_id() else {
        return Err(WarrantError::Corrupt("the system certifies nothing".into()));
    };
    check_sha256("transcriptSha256", sha256)?;
    let reference = reference.map(str::trim).filter(|r| !r.is_empty());
    if let Some(r) = reference {
        check_text(
            "transcriptReference",
            r,
            super::webhook::MAX_REFERENCE_CHARS,
        )?;
    }
    let (session, warrant) = load_visible_session(tx, caller, session_id, true, now).await?;
    if !is_session_judge(caller, &session) {
        return Err(VideoError::Forbidden(
            "only the session's judge, who took the testimony, certifies its transcript".into(),
        )
        .into());
    }
    if session.recording_sha256.is_none() {
        return Err(VideoError::conflict(
            slug::RECORDING_MISSING,
            "the provider has not delivered the session's recording",
        )
        .into());
    }
    if session.transcript_certified_at.is_some() {
        return Err(VideoError::conflict(
            slug::TRANSCRIPT_CERTIFIED,
            "the transcript was certified already",
        )
        .into());
    }
    sqlx::query(
        "UPDATE video_sessions SET transcript_sha256 = $2, transcript_reference = $3, \
         transcript_certified_by = $4, transcript_certified_at = $5 WHERE id = $1",
    )
    .bind(session_id)
    .bind(sha256)
    .bind(reference)
    .bind(user_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    crate::store::audit(
        tx,
        caller,
        codes::TRANSCRIPT_CERTIFIED,
        &warrant,
        &[
            ("sessionId", json!(session_id.to_string())),
            ("documentHash", json!(format!("sha256:{sha256}"))),
        ],
        json!({ "recordingSha256": session.recording_sha256, "reference": reference }),
    )
    .await?;
    reload(tx, session_id).await
}

/// The affidavit version a warrant is issued on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwornVersion {
    pub version: i32,
    pub sha256: String,
}

/// What issuing asks of the oath: no amendment left unsworn (409 `amendment-unsworn`) and,
/// where the type's rules require it, an oath record administered after the last submission
/// (409 `oath-required`). Returns the version the warrant is issued on (the latest kept one,
/// which is the sworn amendment when there was one) and, where an oath is required, when the
/// qualifying oath was administered: the judge signs the warrant after it.
pub(crate) async fn issue_check(
    tx: &mut TenantTx,
    warrant: &Row,
    ty: &WarrantType,
) -> Result<(Option<SwornVersion>, Option<DateTime<Utc>>), WarrantError> {
    let unsworn: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM warrant_amendments WHERE warrant_id = $1 AND state = 'pending'",
    )
    .bind(warrant.id)
    .fetch_one(tx.conn())
    .await?;
    if unsworn > 0 {
        return Err(VideoError::conflict(
            slug::AMENDMENT_UNSWORN,
            format!(
                "{unsworn} amendment(s) entered during the oath session are not sworn; the \
                 affiant swears to them (or the judge withdraws them) before issue"
            ),
        )
        .into());
    }
    let mut oath_at = None;
    if ty.oath.required {
        // By the judge who issues (FRCrP 4.1: the judge places the applicant under oath), after
        // the last submission.
        oath_at = sqlx::query_scalar(
            "SELECT min(o.administered_at) FROM oath_records o WHERE o.warrant_id = $1 \
               AND o.judge_id = $2 \
               AND o.administered_at >= coalesce((SELECT max(created_at) FROM affidavit_versions \
                   WHERE warrant_id = $1 AND reason IN ('submitted', 'returned_for_revision')), \
                   '-infinity')",
        )
        .bind(warrant.id)
        .bind(warrant.claimed_by)
        .fetch_one(tx.conn())
        .await?;
        if oath_at.is_none() {
            return Err(VideoError::conflict(
                slug::OATH_REQUIRED,
                "the court requires an oath record: hold the oath session and administer the \
                 oath, as the judge who issues, after the last submission",
            )
            .into());
        }
    }
    let sworn = latest_version(tx, warrant.id)
        .await?
        .map(|(version, sha256)| SwornVersion { version, sha256 });
    Ok((sworn, oath_at))
}
