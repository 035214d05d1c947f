//! Four corners (DOMAIN: Md. R. 4-601, probable cause only from the written affidavit): facts the
//! judge relies on that are not in the affidavit are entered during the oath session as an
//! amendment; the affiant swears to it in the session, under the oath, and the amended affidavit
//! is kept as a new immutable version with its SHA-256. Issuing waits for every amendment to be
//! sworn or withdrawn ([`super::oath::issue_check`]), and the issued warrant names the version.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use writ_auth_mfa::Role;
use writ_tenancy::TenantTx;

use super::oath::{load_oath, require_review};
use super::state::{SessionState, audit as codes};
use super::store::{
    SessionRow, is_session_judge, open_session_of, require_current, session_audit, touch,
};
use super::{VideoError, slug};
use crate::caller::Caller;
use crate::error::WarrantError;
use crate::fields::WarrantContent;
use crate::store::{
    MAX_AFFIDAVIT_CHARS, MAX_REASON_CHARS, check_text, load_visible, now_ms, parse, record_view,
    snapshot, to_json, user_of,
};
use crate::versions::{VersionReason, sha256_hex};

/// Longest amendment (characters).
pub const MAX_FACTS_CHARS: usize = 20_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Amendment {
    pub id: Uuid,
    pub warrant_id: Uuid,
    /// The session it was entered in.
    pub session_id: Uuid,
    pub facts: String,
    pub facts_sha256: String,
    /// `pending`, `sworn` or `withdrawn`.
    pub state: String,
    pub entered_by: Uuid,
    pub entered_at: DateTime<Utc>,
    pub sworn_by: Option<Uuid>,
    pub sworn_at: Option<DateTime<Utc>>,
    pub sworn_session_id: Option<Uuid>,
    /// The affidavit version the sworn amendment made, and its SHA-256.
    pub affidavit_version: Option<i32>,
    pub affidavit_sha256: Option<String>,
    pub withdrawn_by: Option<Uuid>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub withdrawn_reason: Option<String>,
}

const COLUMNS: &str = "id, warrant_id, session_id, facts, facts_sha256, state, entered_by, \
     entered_at, sworn_by, sworn_at, sworn_session_id, affidavit_version, affidavit_sha256, \
     withdrawn_by, withdrawn_at, withdrawn_reason";

async fn load_amendment(
    tx: &mut TenantTx,
    warrant_id: Uuid,
    id: Uuid,
) -> Result<Amendment, WarrantError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM warrant_amendments WHERE id = $1 AND warrant_id = $2 FOR UPDATE"
    );
    sqlx::query_as::<_, Amendment>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(warrant_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(WarrantError::NotFound)
}

/// The warrant's open session, which must be connected.
async fn connected_session(
    tx: &mut TenantTx,
    warrant_id: Uuid,
) -> Result<SessionRow, WarrantError> {
    let Some(session) = open_session_of(tx, warrant_id).await? else {
        return Err(VideoError::conflict(
            slug::SESSION_NOT_CONNECTED,
            "the warrant has no open oath session",
        )
        .into());
    };
    let state = session.state()?;
    if state != SessionState::Connected {
        return Err(VideoError::conflict(
            slug::SESSION_NOT_CONNECTED,
            format!("the oath session is {state}; this takes a connected session"),
        )
        .into());
    }
    Ok(session)
}

/// Enters facts beyond the affidavit (the session's judge, while connected): a pending
/// amendment, `warrant.amendment.entered`.
pub async fn enter(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    facts: &str,
) -> Result<Amendment, WarrantError> {
    let now = now_ms();
    let facts = facts.trim();
    if facts.is_empty() {
        return Err(WarrantError::invalid("facts", "required"));
    }
    check_text("facts", facts, MAX_FACTS_CHARS)?;
    let warrant = load_visible(tx, caller, warrant_id, true, now).await?;
    let session = connected_session(tx, warrant.id).await?;
    if !is_session_judge(caller, &session) {
        return Err(VideoError::Forbidden(
            "only the judge of the oath session enters an amendment".into(),
        )
        .into());
    }
    require_review(&warrant)?;
    require_current(&session, &warrant)?;
    let (user_id, _) = user_of(caller)?;
    let id = Uuid::now_v7();
    let facts_sha256 = sha256_hex(facts);
    let sql = format!(
        "INSERT INTO warrant_amendments (id, warrant_id, session_id, facts, facts_sha256, \
         entered_by, entered_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let amendment = sqlx::query_as::<_, Amendment>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(warrant_id)
        .bind(session.id)
        .bind(facts)
        .bind(&facts_sha256)
        .bind(user_id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
    touch(tx, session.id, now).await?;
    session_audit(
        tx,
        caller,
        codes::AMENDMENT_ENTERED,
        &warrant,
        session.id,
        json!({ "amendmentId": id, "factsSha256": facts_sha256 }),
    )
    .await?;
    Ok(amendment)
}

/// The affiant swears to a pending amendment, in a connected session where the oath was
/// administered: the affidavit with the amendment appended becomes the next version
/// (`amended`), the warrant's `version` moves on, `warrant.amendment.sworn`.
pub async fn swear(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    amendment_id: Uuid,
) -> Result<Amendment, WarrantError> {
    let (user_id, _) = user_of(caller)?;
    let now = now_ms();
    let mut warrant = crate::store::load_for_oath(tx, caller, warrant_id, true, now).await?;
    let amendment = load_amendment(tx, warrant_id, amendment_id).await?;
    if warrant.author_id != user_id {
        return Err(VideoError::Forbidden(
            "only the affiant swears to an amendment of the affidavit".into(),
        )
        .into());
    }
    if amendment.state != "pending" {
        return Err(VideoError::conflict(
            slug::AMENDMENT_NOT_PENDING,
            format!("the amendment is {}", amendment.state),
        )
        .into());
    }
    require_review(&warrant)?;
    let session = connected_session(tx, warrant.id).await?;
    require_current(&session, &warrant)?;
    if load_oath(tx, session.id).await?.is_none() {
        return Err(VideoError::conflict(
            slug::OATH_MISSING,
            "the judge has not administered the oath in this session",
        )
        .into());
    }
    let mut content: WarrantContent = parse("content", warrant.content.clone())?;
    let before = content.affidavit.clone().unwrap_or_default();
    let amended = format!(
        "{}\n\nAmendment sworn before the judge on {} (oath session {}):\n{}\n",
        before.trim_end(),
        now.to_rfc3339_opts(SecondsFormat::Millis, true),
        session.id,
        amendment.facts
    );
    check_text("content.affidavit", &amended, MAX_AFFIDAVIT_CHARS)?;
    content.affidavit = Some(amended);
    warrant.content = to_json(&content)?;
    let version = snapshot(tx, caller, &warrant, VersionReason::Amended, now).await?;
    let warrant_version: i32 = sqlx::query_scalar(
        "UPDATE warrants SET content = $2, version = version + 1, updated_at = $3 \
         WHERE id = $1 RETURNING version",
    )
    .bind(warrant_id)
    .bind(&warrant.content)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    let number = i32::try_from(version.number).map_err(|e| WarrantError::Corrupt(e.to_string()))?;
    let sql = format!(
        "UPDATE warrant_amendments SET state = 'sworn', sworn_by = $2, sworn_at = $3, \
         sworn_session_id = $4, affidavit_version = $5, affidavit_sha256 = $6 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let sworn = sqlx::query_as::<_, Amendment>(sqlx::AssertSqlSafe(sql))
        .bind(amendment_id)
        .bind(user_id)
        .bind(now)
        .bind(session.id)
        .bind(number)
        .bind(&version.sha256)
        .fetch_one(tx.conn())
        .await?;
    touch(tx, session.id, now).await?;
    session_audit(
        tx,
        caller,
        codes::AMENDMENT_SWORN,
        &warrant,
        session.id,
        json!({
            "amendmentId": amendment_id,
            "factsSha256": amendment.facts_sha256,
            "affidavitVersion": version.number,
            "affidavitSha256": version.sha256,
            "version": warrant_version,
        }),
    )
    .await?;
    Ok(sworn)
}

/// The judge who claimed the warrant withdraws a pending amendment (`reason` required):
/// `warrant.amendment.withdrawn`. The facts stay on record; they just do not count.
pub async fn withdraw(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    amendment_id: Uuid,
    reason: &str,
) -> Result<Amendment, WarrantError> {
    let (user_id, role) = user_of(caller)?;
    let now = now_ms();
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(WarrantError::invalid("reason", "required"));
    }
    check_text("reason", reason, MAX_REASON_CHARS)?;
    let warrant = load_visible(tx, caller, warrant_id, true, now).await?;
    let amendment = load_amendment(tx, warrant_id, amendment_id).await?;
    if role != Role::Judge || warrant.claimed_by != Some(user_id) {
        return Err(VideoError::Forbidden(
            "only the judge who claimed the warrant withdraws an amendment".into(),
        )
        .into());
    }
    if amendment.state != "pending" {
        return Err(VideoError::conflict(
            slug::AMENDMENT_NOT_PENDING,
            format!("the amendment is {}", amendment.state),
        )
        .into());
    }
    let sql = format!(
        "UPDATE warrant_amendments SET state = 'withdrawn', withdrawn_by = $2, withdrawn_at = $3, \
         withdrawn_reason = $4 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let withdrawn = sqlx::query_as::<_, Amendment>(sqlx::AssertSqlSafe(sql))
        .bind(amendment_id)
        .bind(user_id)
        .bind(now)
        .bind(reason)
        .fetch_one(tx.conn())
        .await?;
    session_audit(
        tx,
        caller,
        codes::AMENDMENT_WITHDRAWN,
        &warrant,
        amendment.session_id,
        json!({ "amendmentId": amendment.id, "reason": reason }),
    )
    .await?;
    Ok(withdrawn)
}

/// The warrant's amendments, oldest first (readers of the warrant).
pub async fn list(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<Vec<Amendment>, WarrantError> {
    let warrant = crate::store::load_for_oath(tx, caller, warrant_id, false, now_ms()).await?;
    record_view(tx, caller, &warrant, "amendments").await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM warrant_amendments WHERE warrant_id = $1 ORDER BY entered_at, id"
    );
    Ok(sqlx::query_as::<_, Amendment>(sqlx::AssertSqlSafe(sql))
        .bind(warrant_id)
        .fetch_all(tx.conn())
        .await?)
}
