//! Routing and escalation of queued warrants. When a warrant enters the judge queue it is offered
//! to the primary judge on call for its court (hop 0); if nobody opens it within the urgency's
//! acknowledgement time ([`super::policy`]) the backup is alerted, then the presiding judge. The
//! chain stops as soon as a judge opens or claims the warrant (`opened_at`: since it was last
//! queued, so a warrant returned for revision and queued again starts a new chain). Every hop is
//! stored (`warrant_routing_hops`) and recorded (`warrant.routed` for the offer,
//! `warrant.escalated` after), and its alerts are queued in the same transaction
//! ([`writ_notify::enqueue`]).
//!
//! Rules:
//! - exigent: text, voice call and e-mail; urgent: text and e-mail; routine: e-mail.
//! - a routine alert never goes out in the court's quiet hours (22:00–07:00 by default): it waits
//!   for their end. A routine request not opened is escalated at 08:00 (court time) of the first
//!   business day (Monday to Friday) after the day of the previous hop.
//! - a judge already alerted in the chain is not alerted again: a level whose judge is missing
//!   (nobody on call) or already alerted is skipped, and the hop names the level reached; only
//!   the presiding judge, the last resort, may be alerted a second time (when the backup was the
//!   presiding judge too), so every chain ends at the presiding level and leaves the job's batch.
//!
//! [`run_routing`] is the job, as of an injected `now` (tests drive time through it).

use chrono::{DateTime, Datelike, Duration, NaiveDate, SubsecRound, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use writ_notify::{Channel, Kind, NewNotification, NotifyError, WarrantRef};
use writ_tenancy::TenantTx;

use super::policy::{CourtAlerting, on_call_policy};
use super::roster::{OnCall, on_call_at, resolve_local};
use crate::caller::Caller;
use crate::error::WarrantError;
use crate::fields::Urgency;
use crate::state::WarrantState;
use crate::store::load_visible;

/// Warrants one run looks at; the rest wait for the next run.
const BATCH: i64 = 200;

/// A step of the escalation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Primary,
    Backup,
    Presiding,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Primary => "primary",
            Level::Backup => "backup",
            Level::Presiding => "presiding",
        }
    }

    fn parse(s: &str) -> Result<Self, WarrantError> {
        match s {
            "primary" => Ok(Level::Primary),
            "backup" => Ok(Level::Backup),
            "presiding" => Ok(Level::Presiding),
            other => Err(WarrantError::Corrupt(format!("routing level {other:?}"))),
        }
    }

    fn next(self) -> Option<Self> {
        match self {
            Level::Primary => Some(Level::Backup),
            Level::Backup => Some(Level::Presiding),
            Level::Presiding => None,
        }
    }
}

/// The channels an alert of this urgency goes out on.
pub fn channels(urgency: Urgency) -> &'static [Channel] {
    match urgency {
        Urgency::Exigent => &[Channel::Sms, Channel::Voice, Channel::Email],
        Urgency::Urgent => &[Channel::Sms, Channel::Email],
        Urgency::Routine => &[Channel::Email],
    }
}

fn local_date(tz: Tz, at: DateTime<Utc>) -> (NaiveDate, chrono::NaiveTime) {
    let l = at.with_timezone(&tz).naive_local();
    (l.date(), l.time())
}

/// Whether local time `t` is in the court's quiet hours (which may wrap midnight).
pub fn in_quiet_hours(rules: &CourtAlerting, t: chrono::NaiveTime) -> bool {
    let (from, until) = (rules.quiet_from.to_naive(), rules.quiet_until.to_naive());
    if from <= until {
        from <= t && t < until
    } else {
        t >= from || t < until
    }
}

/// `at`, or the end of the quiet hours it falls in.
pub fn after_quiet_hours(tz: Tz, rules: &CourtAlerting, at: DateTime<Utc>) -> DateTime<Utc> {
    let (date, time) = local_date(tz, at);
    if !in_quiet_hours(rules, time) {
        return at;
    }
    let until = rules.quiet_until.to_naive();
    let day = if time < until {
        date
    } else {
        date.succ_opt().unwrap_or(date)
    };
    resolve_local(tz, day.and_time(until)).max(at)
}

/// `routineEscalateAt` on the first business day after the local day of `from`.
pub fn next_business_morning(tz: Tz, rules: &CourtAlerting, from: DateTime<Utc>) -> DateTime<Utc> {
    let (mut day, _) = local_date(tz, from);
    loop {
        day = match day.succ_opt() {
            Some(d) => d,
            None => return from,
        };
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            return resolve_local(tz, day.and_time(rules.routine_escalate_at.to_naive()));
        }
    }
}

/// When the first offer of a warrant queued at `queued_at` goes out.
pub fn offer_due(
    tz: Tz,
    rules: &CourtAlerting,
    urgency: Urgency,
    queued_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match urgency {
        Urgency::Routine => after_quiet_hours(tz, rules, queued_at),
        _ => queued_at,
    }
}

/// When a warrant not opened since the hop at `previous` is escalated.
pub fn escalation_due(
    tz: Tz,
    rules: &CourtAlerting,
    urgency: Urgency,
    previous: DateTime<Utc>,
) -> DateTime<Utc> {
    match urgency {
        Urgency::Exigent => previous + Duration::minutes(i64::from(rules.exigent_ack_minutes)),
        Urgency::Urgent => previous + Duration::minutes(i64::from(rules.urgent_ack_minutes)),
        Urgency::Routine => {
            after_quiet_hours(tz, rules, next_business_morning(tz, rules, previous))
        }
    }
}

fn ack_text(rules: &CourtAlerting, urgency: Urgency) -> String {
    match urgency {
        Urgency::Exigent => format!("not opened within {} minutes", rules.exigent_ack_minutes),
        Urgency::Urgent => format!("not opened within {} minutes", rules.urgent_ack_minutes),
        Urgency::Routine => "not opened by the next business morning".into(),
    }
}

/// The first judge from `from` down the chain who is on call and not alerted yet, with the level
/// reached and the levels skipped. When every one of them was alerted already, the presiding
/// judge — the last resort — is alerted again, so every chain ends at the presiding level.
fn pick(on_call: &OnCall, from: Level, alerted: &[Uuid]) -> (Level, Uuid, Vec<Level>) {
    let mut skipped = Vec::new();
    let mut level = Some(from);
    while let Some(l) = level {
        let judge = match l {
            Level::Primary => on_call.primary,
            Level::Backup => on_call.backup,
            Level::Presiding => Some(on_call.presiding),
        };
        match judge {
            Some(j) if !alerted.contains(&j) => return (l, j, skipped),
            _ => skipped.push(l),
        }
        level = l.next();
    }
    skipped.retain(|l| *l != Level::Presiding);
    (Level::Presiding, on_call.presiding, skipped)
}

#[derive(sqlx::FromRow)]
struct Queued {
    id: Uuid,
    number: String,
    court: String,
    urgency: String,
    time_zone: String,
    queued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct HopRow {
    hop: i32,
    level: String,
    judge_id: Uuid,
    reason: String,
    at: DateTime<Utc>,
    queued_at: DateTime<Utc>,
    notification_ids: Vec<Uuid>,
}

fn parse_urgency(s: &str) -> Result<Urgency, WarrantError> {
    serde_json::from_value(json!(s)).map_err(|e| WarrantError::Corrupt(format!("urgency: {e}")))
}

fn parse_tz(s: &str) -> Result<Tz, WarrantError> {
    s.parse()
        .map_err(|e| WarrantError::Corrupt(format!("time_zone: {e}")))
}

pub(crate) fn notify_error(e: NotifyError) -> WarrantError {
    match e {
        NotifyError::Database(e) => WarrantError::Database(e),
        NotifyError::Tenancy(e) => WarrantError::Tenancy(e),
        NotifyError::Audit(e) => WarrantError::Audit(e),
        NotifyError::Invalid { field, reason } => WarrantError::Invalid { field, reason },
        NotifyError::Corrupt(e) => WarrantError::Corrupt(e),
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoutingReport {
    pub offered: usize,
    pub escalated: usize,
}

/// Offers and escalates the agency's queued, unopened warrants as of `now`, in `tx`, exigent
/// ones first, then urgent, then routine (routine warrants waiting for the morning never hold
/// a batch from the others). Warrants of courts without a roster are not routed (they wait in
/// the queue as before).
pub async fn run_routing(
    tx: &mut TenantTx,
    now: DateTime<Utc>,
) -> Result<RoutingReport, WarrantError> {
    let now = now.trunc_subsecs(3);
    let mut report = RoutingReport::default();
    let queued = sqlx::query_as::<_, Queued>(
        "SELECT w.id, w.number, w.court, w.urgency, w.time_zone, w.queued_at FROM warrants w \
         WHERE w.state = 'pending_judge' AND w.opened_at IS NULL AND w.queued_at IS NOT NULL \
           AND EXISTS (SELECT 1 FROM court_rosters r WHERE r.court = w.court) \
           AND NOT EXISTS (SELECT 1 FROM warrant_routing_hops h WHERE h.warrant_id = w.id \
                 AND h.queued_at = w.queued_at AND h.level = 'presiding') \
         ORDER BY CASE w.urgency WHEN 'exigent' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, \
                  w.queued_at \
         LIMIT $1 FOR UPDATE OF w SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(tx.conn())
    .await?;
    if queued.is_empty() {
        return Ok(report);
    }
    let policy = on_call_policy(tx).await?;
    for w in queued {
        let urgency = parse_urgency(&w.urgency)?;
        let tz = parse_tz(&w.time_zone)?;
        let rules = policy.court(&w.court);
        let hops = sqlx::query_as::<_, HopRow>(
            "SELECT hop, level, judge_id, reason, at, queued_at, notification_ids \
             FROM warrant_routing_hops WHERE warrant_id = $1 AND queued_at = $2 ORDER BY hop",
        )
        .bind(w.id)
        .bind(w.queued_at)
        .fetch_all(tx.conn())
        .await?;
        let (due, from, reason) = match hops.last() {
            None => (
                offer_due(tz, &rules, urgency, w.queued_at),
                Level::Primary,
                "queued for a judge".to_owned(),
            ),
            Some(last) => {
                let Some(next) = Level::parse(&last.level)?.next() else {
                    continue;
                };
                (
                    escalation_due(tz, &rules, urgency, last.at),
                    next,
                    format!("{} since hop {}", ack_text(&rules, urgency), last.hop),
                )
            }
        };
        if now < due {
            continue;
        }
        let Some(on_call) = on_call_at(tx, &w.court, now).await? else {
            continue;
        };
        let alerted: Vec<Uuid> = hops.iter().map(|h| h.judge_id).collect();
        let (level, judge, skipped) = pick(&on_call, from, &alerted);
        let hop = i32::try_from(hops.len()).unwrap_or(i32::MAX);
        let kind = if hop == 0 {
            Kind::WarrantOffered
        } else {
            Kind::WarrantEscalated
        };
        let warrant = WarrantRef {
            id: w.id,
            number: w.number.clone(),
            urgency: w.urgency.clone(),
        };
        let mut ids = Vec::new();
        for &channel in channels(urgency) {
            let id = writ_notify::enqueue(
                tx,
                &NewNotification {
                    kind,
                    channel,
                    recipient_id: judge,
                    warrant: warrant.clone(),
                    due: None,
                    reminder_id: None,
                },
            )
            .await
            .map_err(notify_error)?;
            ids.push(id);
        }
        let skipped_text: Vec<&str> = skipped.iter().map(|l| l.as_str()).collect();
        let reason = if skipped.is_empty() {
            reason
        } else {
            format!(
                "{reason}; skipped {} (nobody active on call, or already alerted)",
                skipped_text.join(", ")
            )
        };
        sqlx::query(
            "INSERT INTO warrant_routing_hops (warrant_id, hop, level, judge_id, reason, at, \
               queued_at, notification_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(w.id)
        .bind(hop)
        .bind(level.as_str())
        .bind(judge)
        .bind(&reason)
        .bind(now)
        .bind(w.queued_at)
        .bind(&ids)
        .execute(tx.conn())
        .await?;
        let action = if hop == 0 {
            "warrant.routed"
        } else {
            "warrant.escalated"
        };
        let event = Caller::system()
            .event(action)
            .resource("warrantId", w.id.to_string())
            .resource("number", w.number.clone())
            .detail(json!({
                "hop": hop,
                "level": level.as_str(),
                "judgeId": judge,
                "court": w.court,
                "urgency": w.urgency,
                "reason": reason,
                "skipped": skipped_text,
                "channels": channels(urgency).iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "notificationIds": ids,
            }));
        writ_audit_log::record(tx, &event).await?;
        if hop == 0 {
            report.offered += 1;
        } else {
            report.escalated += 1;
        }
    }
    Ok(report)
}

/// Runs [`run_routing`] for every active agency every `every`, until dropped.
pub async fn run_routing_job(pool: sqlx::PgPool, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for agency in writ_tenancy::active_agencies(&pool, "on-call routing").await {
            let run = async {
                let mut tx = TenantTx::begin_still_active(&pool, &agency).await?;
                let report = run_routing(&mut tx, Utc::now()).await?;
                tx.commit().await?;
                Ok::<_, WarrantError>(report)
            };
            match run.await {
                Ok(r) if r == RoutingReport::default() => {}
                Ok(r) => tracing::info!(
                    agency = %agency.slug,
                    offered = r.offered,
                    escalated = r.escalated,
                    "on-call routing"
                ),
                Err(e) => {
                    tracing::warn!(agency = %agency.slug, error = %e, "on-call routing failed; retrying")
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the author (and every reader of the warrant) sees

/// One alert of a hop and how its delivery went. Not why one failed: a relay's or provider's
/// reply can quote the judge's address or number, which the warrant's readers have no business
/// with; agency admins read it in the outbox (`GET /v1/notifications`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopAlert {
    pub notification_id: Uuid,
    pub channel: String,
    pub state: String,
    pub attempts: i32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopView {
    pub hop: i32,
    pub level: Level,
    pub judge_id: Uuid,
    pub judge_name: Option<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    pub alerts: Vec<HopAlert>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingView {
    pub warrant_id: Uuid,
    pub number: String,
    pub court: String,
    pub urgency: Urgency,
    pub state: WarrantState,
    pub queued_at: Option<DateTime<Utc>>,
    /// When a judge first opened or claimed the warrant, ever.
    pub first_opened_at: Option<DateTime<Utc>>,
    /// When a judge first opened or claimed it since it was last queued: the current chain
    /// stops here.
    pub opened_at: Option<DateTime<Utc>>,
    /// Who holds it now: the claiming judge (`as: claimed`), else the last judge alerted (`as`:
    /// the level), with `judgeId`, `judgeName` and `since`.
    pub holder: Option<serde_json::Value>,
    /// When the next judge is alerted unless someone opens the warrant first.
    pub next_escalation_at: Option<DateTime<Utc>>,
    pub hops: Vec<HopView>,
}

async fn judge_name(tx: &mut TenantTx, id: Uuid) -> Result<Option<String>, WarrantError> {
    Ok(
        sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?,
    )
}

/// The routing of warrant `id`: every hop with its alerts, who holds it, and when it escalates
/// next. 404 like the warrant itself for whoever may not read it.
pub async fn routing(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<RoutingView, WarrantError> {
    let now = crate::store::now_ms();
    let row = load_visible(tx, caller, id, false, now).await?;
    // Its number, court and judges are the warrant's: read like the warrant, audited.
    crate::store::record_view(tx, caller, &row, "routing").await?;
    let state = row.state()?;
    let urgency = parse_urgency(&row.urgency)?;
    let rows = sqlx::query_as::<_, HopRow>(
        "SELECT hop, level, judge_id, reason, at, queued_at, notification_ids \
         FROM warrant_routing_hops WHERE warrant_id = $1 ORDER BY at, hop",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let mut hops = Vec::with_capacity(rows.len());
    for h in &rows {
        let alerts = writ_notify::outbox::by_ids(tx, &h.notification_ids)
            .await
            .map_err(notify_error)?
            .into_iter()
            .map(|n| HopAlert {
                notification_id: n.id,
                channel: n.channel,
                state: n.state,
                attempts: n.attempts,
            })
            .collect();
        hops.push(HopView {
            hop: h.hop,
            level: Level::parse(&h.level)?,
            judge_id: h.judge_id,
            judge_name: judge_name(tx, h.judge_id).await?,
            reason: h.reason.clone(),
            at: h.at,
            queued_at: h.queued_at,
            alerts,
        });
    }
    let current: Vec<&HopView> = hops
        .iter()
        .filter(|h| Some(h.queued_at) == row.queued_at)
        .collect();
    let holder = match (row.claimed_by, current.last()) {
        (Some(judge), _) => Some(json!({
            "judgeId": judge,
            "judgeName": judge_name(tx, judge).await?,
            "as": "claimed",
            "since": row.opened_at,
        })),
        (None, Some(h)) if state == WarrantState::PendingJudge => Some(json!({
            "judgeId": h.judge_id,
            "judgeName": h.judge_name,
            "as": h.level.as_str(),
            "since": h.at,
        })),
        _ => None,
    };
    let next_escalation_at = match (state, row.opened_at, current.last()) {
        (WarrantState::PendingJudge, None, Some(h)) if h.level != Level::Presiding => {
            let tz = parse_tz(&row.time_zone)?;
            let rules = on_call_policy(tx).await?.court(&row.court);
            Some(escalation_due(tz, &rules, urgency, h.at))
        }
        _ => None,
    };
    Ok(RoutingView {
        warrant_id: row.id,
        number: row.number.clone(),
        court: row.court.clone(),
        urgency,
        state,
        queued_at: row.queued_at,
        first_opened_at: row.first_opened_at,
        opened_at: row.opened_at,
        holder,
        next_escalation_at,
        hops,
    })
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::Chicago;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn routine_waits_for_the_morning_and_escalates_next_business_day() {
        let r = CourtAlerting::default();
        // Friday 23:30 CST → Saturday 07:00 CST.
        let q = utc("2026-01-17T05:30:00Z");
        assert_eq!(
            offer_due(Chicago, &r, Urgency::Routine, q),
            utc("2026-01-17T13:00:00Z")
        );
        // Urgent goes out at once, night or not.
        assert_eq!(offer_due(Chicago, &r, Urgency::Urgent, q), q);
        // Offered Saturday 07:00 → escalated Monday 08:00 CST.
        assert_eq!(
            escalation_due(Chicago, &r, Urgency::Routine, utc("2026-01-17T13:00:00Z")),
            utc("2026-01-19T14:00:00Z")
        );
        // Before midnight inside the quiet hours, and at the edges.
        assert_eq!(
            after_quiet_hours(Chicago, &r, utc("2026-01-16T04:00:00Z")), // 22:00 CST
            utc("2026-01-16T13:00:00Z")
        );
        let seven = utc("2026-01-16T13:00:00Z");
        assert_eq!(after_quiet_hours(Chicago, &r, seven), seven);
        let before = utc("2026-01-16T03:59:00Z"); // 21:59
        assert_eq!(after_quiet_hours(Chicago, &r, before), before);
    }

    #[test]
    fn exigent_and_urgent_escalate_after_their_acknowledgement_time() {
        let r = CourtAlerting::default();
        let t = utc("2026-01-16T08:00:00Z");
        assert_eq!(
            escalation_due(Chicago, &r, Urgency::Exigent, t),
            t + Duration::minutes(5)
        );
        assert_eq!(
            escalation_due(Chicago, &r, Urgency::Urgent, t),
            t + Duration::minutes(10)
        );
    }

    #[test]
    fn the_chain_skips_missing_and_already_alerted_judges() {
        let (a, b, p) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let full = OnCall {
            at: Utc::now(),
            primary: Some(a),
            backup: Some(b),
            presiding: p,
        };
        assert_eq!(
            pick(&full, Level::Primary, &[]),
            (Level::Primary, a, vec![])
        );
        assert_eq!(pick(&full, Level::Backup, &[a]), (Level::Backup, b, vec![]));
        let no_backup = OnCall {
            backup: None,
            ..full
        };
        assert_eq!(
            pick(&no_backup, Level::Backup, &[a]),
            (Level::Presiding, p, vec![Level::Backup])
        );
        // The backup is also the presiding judge: alerted again, as the last resort.
        let same = OnCall {
            presiding: b,
            ..full
        };
        assert_eq!(
            pick(&same, Level::Presiding, &[a, b]),
            (Level::Presiding, b, vec![])
        );
        // Nobody on call but the presiding judge, who was the primary's alert: again.
        let alone = OnCall {
            primary: None,
            backup: None,
            ..same
        };
        assert_eq!(
            pick(&alone, Level::Backup, &[b]),
            (Level::Presiding, b, vec![Level::Backup])
        );
    }
}
