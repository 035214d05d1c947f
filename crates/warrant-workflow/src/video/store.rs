//! Oath sessions in the agency's schema (migration `0012_video_oath.sql`): opening one for a
//! warrant under review, reading them, the participants' joins and leaves, the provider's
//! deliveries and the timeout job. Each function takes the caller's [`TenantTx`] and records
//! its audit entry there; the session rules are [`super::state`]'s.

use std::time::Duration as StdDuration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use writ_auth_mfa::Role;
use writ_tenancy::TenantTx;

use super::oath::{OathRecord, load_oath};
use super::state::{SessionEvent, SessionState, audit as codes, due_timeout, next};
use super::webhook::{Delivery, ProviderEvent, room_name};
use super::{VideoError, slug};
use crate::caller::{Caller, role_of};
use crate::error::WarrantError;
use crate::state::WarrantState;
use crate::store::{Row, audit, load, load_visible, now_ms, record_view, user_of};

/// A session as shown: its state, participants, oath record, recording and transcript.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSession {
    pub id: Uuid,
    pub warrant_id: Uuid,
    /// The provider's room for this session.
    pub room: String,
    pub state: SessionState,
    pub judge_id: Uuid,
    pub affiant_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `ended` (the provider closed it), `no_connection` or `idle` (timed out).
    pub end_reason: Option<String>,
    pub participants: Vec<Participant>,
    pub oath: Option<OathRecord>,
    pub recording: Option<Recording>,
    /// Ended after a connection, and the provider has delivered no recording.
    pub recording_missing: bool,
    pub transcript: Option<TranscriptCertification>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: Uuid,
    /// `judge` or `affiant`.
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    pub joins: i32,
}

/// The recording as the provider delivered it: the court's record, not the agency's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub reference: String,
    pub sha256: String,
    /// Always `court`.
    pub custody: String,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptCertification {
    pub sha256: String,
    pub reference: Option<String>,
    pub certified_by: Uuid,
    pub certified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: Uuid,
    pub warrant_id: Uuid,
    pub room: String,
    pub state: String,
    pub judge_id: Uuid,
    pub affiant_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub recording_reference: Option<String>,
    pub recording_sha256: Option<String>,
    pub recording_custody: Option<String>,
    pub recording_delivered_at: Option<DateTime<Utc>>,
    pub transcript_sha256: Option<String>,
    pub transcript_reference: Option<String>,
    pub transcript_certified_by: Option<Uuid>,
    pub transcript_certified_at: Option<DateTime<Utc>>,
}

macro_rules! session_columns {
    () => {
        "id, warrant_id, room, state, judge_id, affiant_id, created_at, connected_at, \
         last_activity_at, ended_at, end_reason, recording_reference, recording_sha256, \
         recording_custody, recording_delivered_at, transcript_sha256, transcript_reference, \
         transcript_certified_by, transcript_certified_at"
    };
}

impl SessionRow {
    pub(crate) fn state(&self) -> Result<SessionState, WarrantError> {
        SessionState::parse(&self.state)
            .ok_or_else(|| WarrantError::Corrupt(format!("session state {:?}", self.state)))
    }

    pub(crate) fn recording_missing(&self) -> Result<bool, WarrantError> {
        Ok(self.state()?.is_ended()
            && self.connected_at.is_some()
            && self.recording_sha256.is_none())
    }

    async fn view(&self, tx: &mut TenantTx) -> Result<VideoSession, WarrantError> {
        let participants = sqlx::query_as::<_, Participant>(
            "SELECT user_id, role, joined_at, left_at, joins FROM video_session_participants \
             WHERE session_id = $1 ORDER BY joined_at",
        )
        .bind(self.id)
        .fetch_all(tx.conn())
        .await?;
        let recording = match (&self.recording_reference, &self.recording_sha256) {
            (Some(reference), Some(sha256)) => Some(Recording {
                reference: reference.clone(),
                sha256: sha256.clone(),
                custody: self
                    .recording_custody
                    .clone()
                    .unwrap_or_else(|| "court".into()),
                delivered_at: self.recording_delivered_at,
            }),
            _ => None,
        };
        let transcript = match (
            &self.transcript_sha256,
            self.transcript_certified_by,
            self.transcript_certified_at,
        ) {
            (Some(sha256), Some(by), Some(at)) => Some(TranscriptCertification {
                sha256: sha256.clone(),
                reference: self.transcript_reference.clone(),
                certified_by: by,
                certified_at: at,
            }),
            _ => None,
        };
        Ok(VideoSession {
            id: self.id,
            warrant_id: self.warrant_id,
            room: self.room.clone(),
            state: self.state()?,
            judge_id: self.judge_id,
            affiant_id: self.affiant_id,
            created_at: self.created_at,
            connected_at: self.connected_at,
            last_activity_at: self.last_activity_at,
            ended_at: self.ended_at,
            end_reason: self.end_reason.clone(),
            participants,
            oath: load_oath(tx, self.id).await?,
            recording,
            recording_missing: self.recording_missing()?,
            transcript,
        })
    }
}

pub(crate) async fn view(
    tx: &mut TenantTx,
    session: &SessionRow,
) -> Result<VideoSession, WarrantError> {
    session.view(tx).await
}

pub(crate) async fn load_session(
    tx: &mut TenantTx,
    id: Uuid,
    for_update: bool,
) -> Result<Option<SessionRow>, WarrantError> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            session_columns!(),
            " FROM video_sessions WHERE id = $1 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            session_columns!(),
            " FROM video_sessions WHERE id = $1"
        )
    };
    Ok(sqlx::query_as::<_, SessionRow>(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// The session and its warrant, when the caller may see the warrant (404 otherwise, like a
/// missing session).
pub(crate) async fn load_visible_session(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
    now: DateTime<Utc>,
) -> Result<(SessionRow, Row), WarrantError> {
    let Some(session) = load_session(tx, id, false).await? else {
        return Err(WarrantError::NotFound);
    };
    // The warrant first, then the session: the order every writer here locks them in.
    let warrant =
        crate::store::load_for_oath(tx, caller, session.warrant_id, for_update, now).await?;
    let session = if for_update {
        load_session(tx, id, true)
            .await?
            .ok_or(WarrantError::NotFound)?
    } else {
        session
    };
    Ok((session, warrant))
}

/// The open (not ended) session of a warrant, locked.
pub(crate) async fn open_session_of(
    tx: &mut TenantTx,
    warrant_id: Uuid,
) -> Result<Option<SessionRow>, WarrantError> {
    Ok(sqlx::query_as::<_, SessionRow>(concat!(
        "SELECT ",
        session_columns!(),
        " FROM video_sessions WHERE warrant_id = $1 \
           AND state IN ('initiated', 'connected', 'disconnected') FOR UPDATE"
    ))
    .bind(warrant_id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Records `action` about a session: resource `{warrantId, number, sessionId}`.
pub(crate) async fn session_audit(
    tx: &mut TenantTx,
    caller: &Caller,
    action: &str,
    warrant: &Row,
    session_id: Uuid,
    detail: Value,
) -> Result<(), WarrantError> {
    audit(
        tx,
        caller,
        action,
        warrant,
        &[("sessionId", json!(session_id.to_string()))],
        detail,
    )
    .await
}

pub(crate) async fn touch(
    tx: &mut TenantTx,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    sqlx::query(
        "UPDATE video_sessions SET last_activity_at = greatest(last_activity_at, $2) WHERE id = $1",
    )
    .bind(session_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Sets the warrant's flag from its sessions: any ended after a connection without a recording.
async fn reflag(tx: &mut TenantTx, warrant_id: Uuid) -> Result<bool, WarrantError> {
    Ok(sqlx::query_scalar(
        "UPDATE warrants SET oath_recording_missing = EXISTS ( \
             SELECT 1 FROM video_sessions s WHERE s.warrant_id = warrants.id \
               AND s.state IN ('terminated', 'timed_out') AND s.connected_at IS NOT NULL \
               AND s.recording_sha256 IS NULL) \
         WHERE id = $1 RETURNING oath_recording_missing",
    )
    .bind(warrant_id)
    .fetch_one(tx.conn())
    .await?)
}

fn forbidden(reason: &str) -> WarrantError {
    VideoError::Forbidden(reason.to_owned()).into()
}

/// Opens the oath session of a warrant in judge review (its claiming judge only), with the
/// author as affiant. Recorded as `video.session.initiated`. `provider_configured`: whether this
/// server takes the provider's webhooks; without them no session could ever connect.
pub async fn create(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
    provider_configured: bool,
) -> Result<VideoSession, WarrantError> {
    let (user_id, role) = user_of(caller)?;
    let now = now_ms();
    let warrant = load_visible(tx, caller, warrant_id, true, now).await?;
    if role != Role::Judge || warrant.claimed_by != Some(user_id) {
        return Err(forbidden(
            "only the judge who claimed the warrant runs its oath session",
        ));
    }
    if warrant.state()? != WarrantState::JudgeReview {
        return Err(VideoError::conflict(
            slug::WARRANT_NOT_IN_REVIEW,
            format!(
                "an oath session is held while the judge reviews the warrant; it is {}",
                warrant.state
            ),
        )
        .into());
    }
    if !provider_configured {
        return Err(VideoError::conflict(
            slug::VIDEO_NOT_CONFIGURED,
            "this server has no video provider configured (WRIT_VIDEO_WEBHOOK_SECRET)",
        )
        .into());
    }
    let id = Uuid::now_v7();
    if let Some(open) = open_session_of(tx, warrant_id).await? {
        if is_current(&open, &warrant) {
            return Err(VideoError::conflict(
                slug::SESSION_OPEN,
                format!("the warrant's session {} is still open", open.id),
            )
            .into());
        }
        // An earlier review's session, still open at the provider: ended here, by this judge.
        let detail = json!({ "supersededBy": id, "previousJudgeId": open.judge_id });
        apply_event(
            tx,
            caller,
            &warrant,
            open.id,
            SessionEvent::Superseded,
            now,
            detail,
        )
        .await?;
    }
    let room = room_name(tx.agency_id(), id);
    let row = sqlx::query_as::<_, SessionRow>(concat!(
        "INSERT INTO video_sessions (id, warrant_id, room, judge_id, affiant_id, created_at, \
         last_activity_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ",
        session_columns!()
    ))
    .bind(id)
    .bind(warrant_id)
    .bind(&room)
    .bind(user_id)
    .bind(warrant.author_id)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    session_audit(
        tx,
        caller,
        codes::CREATED,
        &warrant,
        id,
        json!({ "room": room, "judgeId": user_id, "affiantId": warrant.author_id, "to": "initiated" }),
    )
    .await?;
    row.view(tx).await
}

/// One session (readers of its warrant); recorded as `warrant.viewed` (`read: video-session`),
/// since the oath record is part of the warrant's record.
pub async fn get(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<VideoSession, WarrantError> {
    let (session, warrant) = load_visible_session(tx, caller, id, false, now_ms()).await?;
    record_view(tx, caller, &warrant, "video-session").await?;
    session.view(tx).await
}

/// The warrant's sessions, oldest first.
pub async fn list(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant_id: Uuid,
) -> Result<Vec<VideoSession>, WarrantError> {
    let warrant = crate::store::load_for_oath(tx, caller, warrant_id, false, now_ms()).await?;
    record_view(tx, caller, &warrant, "video-sessions").await?;
    let rows = sqlx::query_as::<_, SessionRow>(concat!(
        "SELECT ",
        session_columns!(),
        " FROM video_sessions WHERE warrant_id = $1 ORDER BY created_at, id"
    ))
    .bind(warrant_id)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.view(tx).await?);
    }
    Ok(out)
}

/// A participant joins or leaves (presence; the provider reports the media connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Join,
    Leave,
}

/// Records a join or leave of the session's judge or affiant: `video.session.joined` / `.left`.
/// Counts as activity for the idle timeout.
pub async fn presence(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    what: Presence,
) -> Result<VideoSession, WarrantError> {
    let (user_id, _) = user_of(caller)?;
    let now = now_ms();
    let (session, warrant) = load_visible_session(tx, caller, id, true, now).await?;
    let part = if user_id == session.judge_id {
        "judge"
    } else if user_id == session.affiant_id {
        "affiant"
    } else {
        return Err(forbidden(
            "only the session's judge and affiant take part in it",
        ));
    };
    let state = session.state()?;
    if state.is_ended() {
        return Err(
            VideoError::conflict(slug::SESSION_ENDED, format!("the session is {state}")).into(),
        );
    }
    let action = match what {
        Presence::Join => {
            sqlx::query(
                "INSERT INTO video_session_participants (session_id, user_id, role, joined_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id, user_id) DO UPDATE \
                 SET joined_at = $4, left_at = NULL, \
                     joins = video_session_participants.joins + 1",
            )
            .bind(id)
            .bind(user_id)
            .bind(part)
            .bind(now)
            .execute(tx.conn())
            .await?;
            codes::JOINED
        }
        Presence::Leave => {
            let left = sqlx::query(
                "UPDATE video_session_participants SET left_at = $3 \
                 WHERE session_id = $1 AND user_id = $2 AND left_at IS NULL",
            )
            .bind(id)
            .bind(user_id)
            .bind(now)
            .execute(tx.conn())
            .await?;
            if left.rows_affected() == 0 {
                return Err(VideoError::conflict(
                    writ_error_kind::CONFLICT,
                    "not in the session: join first",
                )
                .into());
            }
            codes::LEFT
        }
    };
    touch(tx, id, now).await?;
    session_audit(
        tx,
        caller,
        action,
        &warrant,
        id,
        json!({ "participant": part, "state": state }),
    )
    .await?;
    let session = load_session(tx, id, false)
        .await?
        .ok_or(WarrantError::NotFound)?;
    session.view(tx).await
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub session_id: Uuid,
    /// `applied`, or `ignored` (a report the session's state has no transition for).
    pub outcome: &'static str,
    pub state: SessionState,
}

/// Takes a delivery whose signature was verified (`signed_at` is its signed time) into the
/// agency `tx` belongs to, the one its room names. A delivery id seen before is a replay
/// (401, nothing changes); an unknown session 404. Each transition records its entry with the
/// `system` actor (the provider) and `caller`'s source address.
pub async fn receive(
    tx: &mut TenantTx,
    caller: &Caller,
    delivery: &Delivery,
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Received, WarrantError> {
    let now = now.trunc_subsecs(3);
    let (agency_id, session_id) = delivery.room()?;
    if agency_id != tx.agency_id() {
        return Err(WarrantError::NotFound);
    }
    let event = delivery.event()?;
    let Some(session) = load_session(tx, session_id, false).await? else {
        return Err(WarrantError::NotFound);
    };
    // The warrant's lock first, as every change of a session takes it (then the session's): the
    // delivery's row below locks the session's key, which must not be held while waiting for the
    // warrant that an oath holds, waiting for the session.
    let Some(warrant) = load(tx, session.warrant_id, true).await? else {
        return Err(WarrantError::Corrupt(
            "a session without its warrant".into(),
        ));
    };
    let fresh: Option<String> = sqlx::query_scalar(
        "INSERT INTO video_webhook_deliveries (event_id, session_id, event_type, signed_at, \
         received_at, body_sha256) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(&delivery.event_id)
    .bind(session_id)
    .bind(&delivery.kind)
    .bind(signed_at)
    .bind(now)
    .bind(&delivery.body_sha256)
    .fetch_optional(tx.conn())
    .await?;
    if fresh.is_none() {
        // The provider resending what was taken (its answer lost) is told so; the same id on
        // another body is a replay or a forgery's probe, refused.
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT body_sha256 FROM video_webhook_deliveries WHERE event_id = $1",
        )
        .bind(&delivery.event_id)
        .fetch_optional(tx.conn())
        .await?
        .flatten();
        if taken.as_deref() == Some(delivery.body_sha256.as_str()) {
            return Ok(Received {
                session_id,
                outcome: "duplicate",
                state: session.state()?,
            });
        }
        return Err(super::WebhookRefusal::Replayed {
            event_id: delivery.event_id.clone(),
        }
        .into());
    }
    let extra = json!({ "eventId": delivery.event_id, "occurredAt": delivery.occurred_at });
    match event {
        ProviderEvent::Session(e) => {
            apply_event(tx, caller, &warrant, session_id, e, now, extra).await
        }
        ProviderEvent::RecordingReady { reference, sha256 } => {
            let session = load_session(tx, session_id, true)
                .await?
                .ok_or(WarrantError::NotFound)?;
            let state = session.state()?;
            if let Some(kept) = &session.recording_sha256 {
                // One recording per session. The same one again is a re-delivery; a different
                // one is not taken, and not silently either: it is recorded as a failure.
                if *kept != sha256 {
                    let mut detail = extra;
                    detail["reference"] = json!(reference);
                    detail["keptSha256"] = json!(kept);
                    detail["refused"] = json!("a recording was delivered for this session already");
                    let event = caller
                        .event(codes::RECORDING)
                        .failure()
                        .detail(detail)
                        .resource("warrantId", warrant.id.to_string())
                        .resource("number", warrant.number.clone())
                        .resource("sessionId", session_id.to_string())
                        .resource("documentHash", format!("sha256:{sha256}"));
                    writ_audit_log::record(tx, &event).await?;
                }
                return Ok(Received {
                    session_id,
                    outcome: "ignored",
                    state,
                });
            }
            let was_missing = session.recording_missing()?;
            sqlx::query(
                "UPDATE video_sessions SET recording_reference = $2, recording_sha256 = $3, \
                 recording_custody = 'court', recording_delivered_at = $4 WHERE id = $1",
            )
            .bind(session_id)
            .bind(&reference)
            .bind(&sha256)
            .bind(now)
            .execute(tx.conn())
            .await?;
            let flagged = reflag(tx, warrant.id).await?;
            let mut detail = extra;
            detail["reference"] = json!(reference);
            detail["custody"] = json!("court");
            detail["afterEnd"] = json!(was_missing);
            detail["oathRecordingMissing"] = json!(flagged);
            audit(
                tx,
                caller,
                codes::RECORDING,
                &warrant,
                &[
                    ("sessionId", json!(session_id.to_string())),
                    ("documentHash", json!(format!("sha256:{sha256}"))),
                ],
                detail,
            )
            .await?;
            Ok(Received {
                session_id,
                outcome: "applied",
                state,
            })
        }
    }
}

/// Moves a session by `event` if the table allows it; one audit entry per transition. A
/// session that ends after a connection without a recording flags its warrant.
async fn apply_event(
    tx: &mut TenantTx,
    caller: &Caller,
    warrant: &Row,
    session_id: Uuid,
    event: SessionEvent,
    now: DateTime<Utc>,
    mut detail: Value,
) -> Result<Received, WarrantError> {
    let session = load_session(tx, session_id, true)
        .await?
        .ok_or(WarrantError::NotFound)?;
    let state = session.state()?;
    let Some(t) = next(state, event) else {
        // No change, but the provider still reports the session: activity while it is open.
        let report = !matches!(event, SessionEvent::NoConnection | SessionEvent::Idle);
        if report && !state.is_ended() {
            touch(tx, session_id, now).await?;
        }
        return Ok(Received {
            session_id,
            outcome: "ignored",
            state,
        });
    };
    let ended = t.to.is_ended();
    let end_reason = match event {
        SessionEvent::Ended => Some("ended"),
        SessionEvent::NoConnection => Some("no_connection"),
        SessionEvent::Idle => Some("idle"),
        SessionEvent::Superseded => Some("superseded"),
        SessionEvent::Connected | SessionEvent::Disconnected => None,
    };
    // A timeout is not activity; a provider report is.
    let timeout = matches!(event, SessionEvent::NoConnection | SessionEvent::Idle);
    sqlx::query(
        "UPDATE video_sessions SET state = $2, \
             connected_at = CASE WHEN $2 = 'connected' THEN coalesce(connected_at, $3) \
                                 ELSE connected_at END, \
             last_activity_at = CASE WHEN $4 THEN last_activity_at \
                                     ELSE greatest(last_activity_at, $3) END, \
             ended_at = CASE WHEN $5::text IS NULL THEN ended_at ELSE $3 END, \
             end_reason = coalesce($5, end_reason) \
         WHERE id = $1",
    )
    .bind(session_id)
    .bind(t.to.as_str())
    .bind(now)
    .bind(timeout)
    .bind(end_reason)
    .execute(tx.conn())
    .await?;
    detail["event"] = json!(event.as_str());
    detail["from"] = json!(t.from);
    detail["to"] = json!(t.to);
    if ended {
        let missing = session.connected_at.is_some() && session.recording_sha256.is_none();
        let recording = match (session.connected_at, &session.recording_sha256) {
            (None, _) => "none_expected",
            (Some(_), Some(_)) => "delivered",
            (Some(_), None) => "missing",
        };
        detail["recording"] = json!(recording);
        if missing {
            detail["oathRecordingMissing"] = json!(reflag(tx, warrant.id).await?);
        }
    }
    session_audit(tx, caller, t.audit_action, warrant, session_id, detail).await?;
    Ok(Received {
        session_id,
        outcome: "applied",
        state: t.to,
    })
}

/// Sessions one run handles; the rest wait for the next run.
const BATCH: i64 = 200;

/// Times out the agency's sessions due at `now`: initiated ones nobody connected to within 10
/// minutes, open ones idle for an hour (`video.session.timed_out`, actor `system`). Returns how
/// many.
pub async fn run_due(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<usize, WarrantError> {
    let now = now.trunc_subsecs(3);
    let connect_cutoff = now - super::state::CONNECT_TIMEOUT;
    let idle_cutoff = now - super::state::IDLE_TIMEOUT;
    // Candidates unlocked, then each locked warrant first, session second (the order every
    // request takes) and checked again: a replica may have timed it out meanwhile.
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, warrant_id FROM video_sessions \
         WHERE (state = 'initiated' AND created_at <= $1) \
            OR (state IN ('connected', 'disconnected') AND last_activity_at <= $2) \
         ORDER BY created_at LIMIT $3",
    )
    .bind(connect_cutoff)
    .bind(idle_cutoff)
    .bind(BATCH)
    .fetch_all(tx.conn())
    .await?;
    let system = Caller::system();
    let mut timed_out = 0;
    for (session_id, warrant_id) in due {
        let Some(warrant) = load(tx, warrant_id, true).await? else {
            return Err(WarrantError::Corrupt(
                "a session without its warrant".into(),
            ));
        };
        let Some(s) = load_session(tx, session_id, true).await? else {
            continue;
        };
        let Some(event) = due_timeout(s.state()?, s.created_at, s.last_activity_at, now) else {
            continue;
        };
        let detail = json!({
            "createdAt": s.created_at,
            "lastActivityAt": s.last_activity_at,
        });
        let r = apply_event(tx, &system, &warrant, s.id, event, now, detail).await?;
        if r.outcome == "applied" {
            timed_out += 1;
        }
    }
    Ok(timed_out)
}

/// Runs [`run_due`] for every active agency every `every`, until dropped.
pub async fn run_video_jobs(pool: PgPool, every: StdDuration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for agency in writ_tenancy::active_agencies(&pool, "video session timeouts").await {
            let run = async {
                let mut tx = TenantTx::begin_still_active(&pool, &agency).await?;
                let n = run_due(&mut tx, Utc::now()).await?;
                tx.commit().await?;
                Ok::<_, WarrantError>(n)
            };
            match run.await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(agency = %agency.slug, timed_out = n, "video session timeouts")
                }
                Err(e) => tracing::warn!(
                    agency = %agency.slug,
                    error = %e,
                    "video session timeouts failed; retrying"
                ),
            }
        }
    }
}

/// Whether `session` belongs to the warrant's current review: its judge still holds the warrant,
/// and it was opened after the warrant was last queued. The oath and amendments are taken in
/// such a session only, so that the judge who issues is the judge who swore the affiant.
pub(crate) fn is_current(session: &SessionRow, warrant: &Row) -> bool {
    warrant.claimed_by == Some(session.judge_id)
        && warrant.queued_at.is_none_or(|q| session.created_at >= q)
}

pub(crate) fn require_current(session: &SessionRow, warrant: &Row) -> Result<(), WarrantError> {
    if is_current(session, warrant) {
        return Ok(());
    }
    Err(VideoError::conflict(
        slug::SESSION_SUPERSEDED,
        "this session belongs to an earlier review of the warrant (its judge no longer holds it, \
         or it was queued again since): the judge who holds it opens a new session",
    )
    .into())
}

/// Whether the caller is the session's judge (role and person).
pub(crate) fn is_session_judge(caller: &Caller, session: &SessionRow) -> bool {
    caller.user_id() == Some(session.judge_id) && role_of(caller) == Some(Role::Judge)
}
