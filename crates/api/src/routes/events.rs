//! Live status for web and mobile clients: `GET /v1/events`, a server-sent event stream of the
//! changes of the warrants the caller may read (docs/EVENTS.md). The event id is the agency's
//! audit `seq`, so a client reconnecting with `Last-Event-ID` gets exactly what it missed. What an
//! event holds and who sees it is `writ_warrant_workflow::events`; this module only streams.
//!
//! A stream holds no database connection between polls: the request's transaction ends before
//! the first byte, then every second a short transaction re-checks the session (the same check
//! as every request, `authenticate_in`) and reads what the sequencer published since. It ends
//! when the access token expires, when the session ends, on a database failure and when the
//! server shuts down — each time with an `end` event naming why — and the client reconnects
//! with its last id.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, get};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_audit_log::{Caller, Origin};
use writ_auth_mfa::{Claims, Permission, Role};
use writ_tenancy::TenantTx;
use writ_warrant_workflow::events::{self, ResyncReason, Start, WarrantEvent};

use crate::auth::{AgencyUser, VerifiedClaims};
use crate::error::Problem;
use crate::json::query_pairs;
use crate::{ApiError, AppState};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(event_stream);
}

/// How often a stream looks for new events.
const POLL: Duration = Duration::from_secs(1);
/// A comment at least this often keeps proxies from closing an idle stream and lets the server
/// notice a client that went away.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// What the client waits before reconnecting (the `retry:` field).
const RETRY_MS: u32 = 3000;
/// Live streams per user in one server process; a client stuck in a reconnect loop cannot
/// exhaust the server.
pub const MAX_STREAMS_PER_USER: usize = 5;
/// Audit entries examined per poll; a long replay continues at the next poll.
const BATCH: u32 = 200;
/// How long a request for a stream waits for the user's dead streams to be found out.
const PROBE_GRACE: Duration = Duration::from_millis(1000);

/// What woke a waiting stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    Poll,
    Probe,
    Stop,
}

/// Why a stream ended, as the `end` event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndReason {
    /// Reconnect with a fresh access token (refresh) and the last id.
    TokenExpired,
    /// Logged out, revoked, timed out, deactivated: log in again.
    SessionEnded,
    /// The server is stopping: reconnect (another replica, or this one when it is back).
    Shutdown,
    /// The database did not answer: reconnect after `retry`.
    Unavailable,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::TokenExpired => "token-expired",
            EndReason::SessionEnded => "session-ended",
            EndReason::Shutdown => "shutdown",
            EndReason::Unavailable => "unavailable",
        }
    }
}

/// A user's open streams in this process, and the bell that asks them to write now.
struct Open {
    count: usize,
    probe: Arc<Notify>,
}

fn open_streams() -> &'static Mutex<HashMap<Uuid, Open>> {
    static OPEN: OnceLock<Mutex<HashMap<Uuid, Open>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// One of a user's stream slots; given back when the stream is dropped (it ended, or the server
/// found the client gone).
struct StreamSlot {
    user: Uuid,
    probe: Arc<Notify>,
}

impl StreamSlot {
    /// A slot, or — all taken — the bell of the user's streams.
    fn try_take(user: Uuid) -> Result<Self, Arc<Notify>> {
        // A poisoned lock only means a panic elsewhere while counting: the counts are still whole.
        let mut open = open_streams().lock().unwrap_or_else(|p| p.into_inner());
        let o = open.entry(user).or_insert_with(|| Open {
            count: 0,
            probe: Arc::new(Notify::new()),
        });
        if o.count >= MAX_STREAMS_PER_USER {
            return Err(o.probe.clone());
        }
        o.count += 1;
        Ok(Self {
            user,
            probe: o.probe.clone(),
        })
    }

    /// A slot for `user`. A client that lost its connection reconnects at once, while the
    /// server learns that a connection is gone only when it writes to it: when all slots are
    /// taken, the user's streams write now, and the dead among them give their slots back.
    async fn take(user: Uuid) -> Result<Self, ApiError> {
        let probe = match Self::try_take(user) {
            Ok(slot) => return Ok(slot),
            Err(probe) => probe,
        };
        // A stream busy polling misses one ring; four rings over the grace period reach it.
        for _ in 0..4 {
            probe.notify_waiters();
            tokio::time::sleep(PROBE_GRACE / 4).await;
            if let Ok(slot) = Self::try_take(user) {
                return Ok(slot);
            }
        }
        Err(ApiError::TooManyAtOnce {
            what: "event streams",
            limit: MAX_STREAMS_PER_USER,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = open_streams().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = open.get_mut(&self.user) {
            o.count -= 1;
            if o.count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// `Last-Event-ID` (what an `EventSource` sends when it reconnects), else `?lastEventId=` (for
/// clients that cannot set headers); the header wins, being the newer of the two on reconnect.
fn last_event_id(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let mut query = None;
    for (name, value) in query_pairs(req)? {
        match name.as_str() {
            "lastEventId" if query.is_none() => query = Some(value),
            "lastEventId" => {
                return Err(ApiError::bad_request(
                    "query parameter \"lastEventId\" given twice",
                ));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; known: lastEventId"
                )));
            }
        }
    }
    let header = match req.headers().get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| invalid_id("Last-Event-ID"))?
                .to_owned(),
        ),
        None => None,
    };
    let (field, value) = match (header, query) {
        (Some(h), _) => ("Last-Event-ID", h),
        (None, Some(q)) => ("lastEventId", q),
        (None, None) => return Ok(None),
    };
    let value = value.trim();
    // An empty id is what a client holds before its first event: start at the head.
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<u64>()
        .map(Some)
        .map_err(|_| invalid_id(field))
}

fn invalid_id(field: &str) -> ApiError {
    ApiError::Validation {
        field: field.into(),
        reason: "must be an event id this stream sent (a non-negative integer)".into(),
    }
}

/// The access token's claims, as the rate-limit middleware verified them (else verified here).
async fn claims_of(req: &HttpRequest, state: &AppState) -> Result<Claims, ApiError> {
    if let Some(c) = req.extensions().get::<VerifiedClaims>() {
        return Ok(c.0.clone());
    }
    let token = crate::auth::bearer(req).ok_or_else(|| ApiError::Unauthorized {
        slug: "unauthorized",
        detail: "send the access token as `Authorization: Bearer <token>`".into(),
    })?;
    Ok(state.auth().await?.tokens.verify(token)?)
}

fn frame_of(event: &WarrantEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.seq, event.kind
    ))
}

/// One client's stream: where it is in the agency's log and what it still has to send.
struct Follower {
    pool: PgPool,
    state: AppState,
    claims: Claims,
    origin: Origin,
    caller: Caller,
    role: Role,
    agency_id: Uuid,
    /// Every entry up to here was examined (sent or not for this caller).
    cursor: u64,
    /// The id the client holds now (the last `id:` sent).
    client_id: u64,
    /// The last poll stopped short of the log's head.
    behind: bool,
    out: VecDeque<Bytes>,
    expires: Instant,
    last_write: Instant,
    stop: watch::Receiver<bool>,
    ended: bool,
    slot: StreamSlot,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(frame) = self.out.pop_front() {
                self.last_write = Instant::now();
                return Some((Ok(frame), self));
            }
            if self.ended {
                return None;
            }
            let probe = self.slot.probe.clone();
            // Behind the head (a long replay): read on without waiting.
            let pause = if self.behind { Duration::ZERO } else { POLL };
            let woke = tokio::select! {
                () = tokio::time::sleep(pause) => Wake::Poll,
                () = probe.notified() => Wake::Probe,
                _ = self.stop.wait_for(|stopped| *stopped) => Wake::Stop,
            };
            if woke == Wake::Probe {
                // Writing is how a connection the client dropped is found out.
                self.out.push_back(Bytes::from_static(b": keep-alive\n\n"));
                continue;
            }
            if woke == Wake::Stop {
                self.end(EndReason::Shutdown);
            } else if Instant::now() >= self.expires {
                self.end(EndReason::TokenExpired);
            } else {
                self.poll().await;
            }
            if self.out.is_empty() && !self.ended && self.last_write.elapsed() >= HEARTBEAT {
                // Moves the client's id past entries it may not see, so a reconnect does not
                // examine them again (a frame with an id and no data dispatches no event).
                let frame = if self.cursor > self.client_id {
                    self.client_id = self.cursor;
                    format!(": keep-alive\nid: {}\n\n", self.cursor)
                } else {
                    ": keep-alive\n\n".to_owned()
                };
                self.out.push_back(Bytes::from(frame));
            }
        }
    }

    fn end(&mut self, reason: EndReason) {
        let data = json!({ "reason": reason.as_str() });
        self.out
            .push_back(Bytes::from(format!("event: end\ndata: {data}\n\n")));
        self.ended = true;
    }

    /// One short transaction: the session is still good, then what was published since.
    async fn poll(&mut self) {
        match self.read().await {
            Ok(Some(batch)) => {
                self.cursor = batch.cursor;
                self.behind = !batch.caught_up;
                for event in &batch.events {
                    self.client_id = event.seq;
                    self.out.push_back(frame_of(event));
                }
            }
            Ok(None) => self.end(EndReason::SessionEnded),
            Err(e) => {
                let reason = match e.status_and_slug().0.as_u16() {
                    401 | 403 => EndReason::SessionEnded,
                    _ => {
                        tracing::warn!(error = %e, "event stream poll failed; ending the stream");
                        EndReason::Unavailable
                    }
                };
                self.end(reason);
            }
        }
    }

    /// `None` when the session or the agency is no longer what the stream was opened for.
    async fn read(&self) -> Result<Option<events::Batch>, ApiError> {
        let auth = self.state.auth().await?;
        let Some((_, tx)) = TenantTx::begin_active(&self.pool, self.agency_id).await? else {
            return Ok(None);
        };
        let (principal, mut tx) =
            writ_auth_mfa::authenticate_in(tx, auth, &self.claims, self.origin.clone()).await?;
        if principal.role != self.role {
            tx.rollback().await?;
            return Ok(None);
        }
        let batch = events::poll(&mut tx, &self.caller, self.cursor, BATCH).await;
        // Reads only. The session touch goes too, on purpose: watching a stream is not activity,
        // so an unattended screen still reaches the idle limit (CJIS session lock).
        tx.rollback().await?;
        Ok(Some(batch?))
    }
}

/// Live warrant events
///
/// A server-sent event stream (`text/event-stream`) of the changes of the warrants the caller may
/// read (officer: their own; supervisor: unsealed ones; prosecutor, judge, agency_admin: all),
/// the judge queue's entries and exits among them. Frames: `retry:` and the starting `id:` first;
/// then per change `id: <audit seq>`, `event: <action code>` (e.g. `warrant.queued`),
/// `data: {"seq", "type", "warrantId", "number", "state", "version", "at", "queue"}` — no
/// content, reasons or names; `: keep-alive` comments (at least every 15 s, possibly with an
/// `id:` moving past events not for the caller); `event: resync` (`data: {"reason": "pruned" |
/// "unknown-id", "head"}`) when the events after the given id cannot be replayed: reload, then
/// follow; `event: end` (`data: {"reason": "token-expired" | "session-ended" | "shutdown" |
/// "unavailable"}`) before the server closes the stream. Reconnect with `Last-Event-ID` (or
/// `?lastEventId=`) to get exactly the events missed; without one the stream starts now. At most
/// 5 streams per user (429). docs/EVENTS.md has the details.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(
        ("Last-Event-ID" = Option<u64>, Header, description = "The id of the last event received: replay everything after it"),
        ("lastEventId" = Option<u64>, Query, description = "The same, for clients that cannot set headers; the header wins"),
    ),
    responses(
        (status = 200, description = "The event stream; it ends with an `end` event", body = String,
            content_type = "text/event-stream",
            example = "retry: 3000\nid: 1041\n\nid: 1042\nevent: warrant.queued\ndata: {\"at\":\"2026-03-02T21:58:41.000Z\",\"number\":\"W-2026-000847\",\"queue\":\"entered\",\"seq\":1042,\"state\":\"pending_judge\",\"type\":\"warrant.queued\",\"version\":4,\"warrantId\":\"0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e\"}\n\n: keep-alive\n\nevent: end\ndata: {\"reason\":\"token-expired\"}\n\n"),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The last event id is not a non-negative integer (`validation`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Over the rate limit, or 5 streams already open for this user (`rate-limited`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/events")]
pub async fn event_stream(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::EventsRead).await?;
    let last_seen = last_event_id(&req)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?
        .get_ref()
        .clone();
    let claims = claims_of(&req, &state).await?;
    let mut tx = user.begin().await?;
    let start = events::start(&mut tx, last_seen).await?;
    // Read only; rolled back so that opening (or reopening) a stream is not the user's activity
    // either: the session check's touch is dropped with it.
    tx.rollback().await?;
    // After the commit: waiting for a slot holds no connection.
    let slot = StreamSlot::take(user.user_id).await?;

    let mut first = format!("retry: {RETRY_MS}\n");
    let cursor = match start {
        Start::After(seq) => {
            first.push_str(&format!("id: {seq}\n\n"));
            seq
        }
        Start::Resync { head, reason } => {
            let data = json!({ "reason": reason_str(reason), "head": head });
            first.push_str(&format!("id: {head}\nevent: resync\ndata: {data}\n\n"));
            head
        }
    };
    let left = (claims.exp - chrono::Utc::now().timestamp()).max(0);
    let stop = state.stopping();
    let follower = Follower {
        pool: state.pool.clone(),
        state,
        claims,
        origin: crate::auth::origin(&req),
        caller: user.caller().clone(),
        role: user.role,
        agency_id: user.agency.id,
        cursor,
        client_id: cursor,
        behind: false,
        out: VecDeque::from([Bytes::from(first)]),
        expires: Instant::now() + Duration::from_secs(left.unsigned_abs()),
        last_write: Instant::now(),
        stop,
        ended: false,
        slot,
    };
    let stream = futures_util::stream::unfold(follower, Follower::next);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx and its kin buffer responses unless told not to.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream))
}

fn reason_str(reason: ResyncReason) -> &'static str {
    match reason {
        ResyncReason::Pruned => "pruned",
        ResyncReason::UnknownId => "unknown-id",
    }
}
