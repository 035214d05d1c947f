//! Rosters per court: shifts of primary and backup judges as local wall-clock windows in the
//! court's time zone, and the presiding judge as the last resort. [`resolve_local`] turns a local
//! time into an instant exactly, daylight-saving changes included; [`on_call`] says who is on call
//! at an instant. The store functions keep one roster per court in the agency's schema.
//!
//! # Local times across DST changes
//!
//! - A local time that does not exist (the spring-forward gap, e.g. 02:30 on the second Sunday of
//!   March in Chicago) is the first instant after the gap (03:00 CDT).
//! - A local time that occurs twice (the fall-back overlap, e.g. 01:30 on the first Sunday of
//!   November) is its first occurrence (01:30 CDT).
//!
//! Starts and ends follow the same rule on purpose: one shift's end and the next one's start
//! written as the same local time are one instant, so back-to-back shifts never leave an hour
//! uncovered nor put two judges on call at once. An overnight shift simply lasts an hour less
//! (spring) or more (fall) than its wall-clock length.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use writ_tenancy::TenantTx;

use crate::caller::Caller;
use crate::error::WarrantError;
use crate::store::warrant_types;

/// Most shifts in one roster (a year of daily primary and backup shifts fits).
pub const MAX_SHIFTS: usize = 1000;
/// The longest single shift: a week-long rotation plus slack.
pub const MAX_SHIFT_HOURS: i64 = 24 * 31;

/// A shift's place in the escalation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftRole {
    Primary,
    Backup,
}

impl ShiftRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ShiftRole::Primary => "primary",
            ShiftRole::Backup => "backup",
        }
    }
}

/// A shift as given: local times in the court's zone (`2026-03-07T22:00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftInput {
    pub judge_id: Uuid,
    pub role: ShiftRole,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// A roster as given to [`put_roster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterInput {
    pub presiding_judge_id: Uuid,
    pub shifts: Vec<ShiftInput>,
}

/// A stored shift: as given, and the instants it covers, `[startsAt, endsAt)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shift {
    pub judge_id: Uuid,
    pub role: ShiftRole,
    #[serde(serialize_with = "local")]
    pub start: NaiveDateTime,
    #[serde(serialize_with = "local")]
    pub end: NaiveDateTime,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

fn local<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.format("%Y-%m-%dT%H:%M").to_string())
}

/// Parses a local wall-clock time, `YYYY-MM-DDTHH:MM` (seconds allowed, no offset), of a year
/// from 1970 to 9999: chrono reads years of any sign and width, PostgreSQL stores fewer.
pub fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .filter(|t| (1970..=9999).contains(&t.year()))
}

/// A court's roster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Roster {
    pub court: String,
    pub time_zone: String,
    pub presiding_judge_id: Uuid,
    pub shifts: Vec<Shift>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<Uuid>,
}

/// Who is on call at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnCall {
    pub at: DateTime<Utc>,
    pub primary: Option<Uuid>,
    pub backup: Option<Uuid>,
    pub presiding: Uuid,
}

/// The instant of local time `t` in `tz` (module docs: gaps move forward to the first instant
/// after them, repeated times take their first occurrence).
pub fn resolve_local(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&t) {
        LocalResult::Single(x) => x.to_utc(),
        LocalResult::Ambiguous(first, _) => first.to_utc(),
        LocalResult::None => first_instant_after_gap(tz, t),
    }
}

/// The first instant whose local time is later than `t` (which lies in a gap): the transition.
fn first_instant_after_gap(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    // Local time rises with the instant around a gap; no zone offset exceeds ±26 h.
    let mut lo = t.and_utc().timestamp() - 26 * 3600;
    let mut hi = t.and_utc().timestamp() + 26 * 3600;
    let local_at =
        |secs: i64| DateTime::from_timestamp(secs, 0).map(|u| u.with_timezone(&tz).naive_local());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match local_at(mid) {
            Some(l) if l > t => hi = mid,
            _ => lo = mid,
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Who holds each role at `at`: the shift covering it (`startsAt ≤ at < endsAt`).
pub fn on_call(shifts: &[Shift], presiding: Uuid, at: DateTime<Utc>) -> OnCall {
    let holder = |role| {
        shifts
            .iter()
            .find(|s| s.role == role && s.starts_at <= at && at < s.ends_at)
            .map(|s| s.judge_id)
    };
    OnCall {
        at,
        primary: holder(ShiftRole::Primary),
        backup: holder(ShiftRole::Backup),
        presiding,
    }
}

/// Resolves and checks the shifts: each ends after it starts and lasts at most
/// [`MAX_SHIFT_HOURS`]; shifts of one role do not overlap. Errors name `shifts[i]`.
pub fn resolve_shifts(tz: Tz, input: &[ShiftInput]) -> Result<Vec<Shift>, WarrantError> {
    if input.len() > MAX_SHIFTS {
        return Err(WarrantError::invalid(
            "shifts",
            format!("at most {MAX_SHIFTS} shifts"),
        ));
    }
    let mut shifts = Vec::with_capacity(input.len());
    for (i, s) in input.iter().enumerate() {
        let starts_at = resolve_local(tz, s.start);
        let ends_at = resolve_local(tz, s.end);
        if ends_at <= starts_at {
            return Err(WarrantError::invalid(
                format!("shifts[{i}].end"),
                format!("must be after the start (in {})", tz.name()),
            ));
        }
        if ends_at - starts_at > chrono::Duration::hours(MAX_SHIFT_HOURS) {
            return Err(WarrantError::invalid(
                format!("shifts[{i}].end"),
                format!("a shift lasts at most {MAX_SHIFT_HOURS} hours"),
            ));
        }
        shifts.push(Shift {
            judge_id: s.judge_id,
            role: s.role,
            start: s.start,
            end: s.end,
            starts_at,
            ends_at,
        });
    }
    let mut order: Vec<usize> = (0..shifts.len()).collect();
    order.sort_by_key(|&i| (shifts[i].role, shifts[i].starts_at));
    for pair in order.windows(2) {
        let (a, b) = (&shifts[pair[0]], &shifts[pair[1]]);
        if a.role == b.role && b.starts_at < a.ends_at {
            return Err(WarrantError::invalid(
                format!("shifts[{}]", pair[1]),
                format!(
                    "overlaps shifts[{}]: two {} judges would be on call at once",
                    pair[0],
                    a.role.as_str()
                ),
            ));
        }
    }
    Ok(shifts)
}

// ---------------------------------------------------------------------------------------------
// Store

#[derive(sqlx::FromRow)]
struct RosterRow {
    court: String,
    presiding_judge_id: Uuid,
    time_zone: String,
    version: i32,
    updated_by: Option<Uuid>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ShiftRow {
    judge_id: Uuid,
    role: String,
    starts_local: NaiveDateTime,
    ends_local: NaiveDateTime,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl ShiftRow {
    fn shift(self) -> Result<Shift, WarrantError> {
        let role = match self.role.as_str() {
            "primary" => ShiftRole::Primary,
            "backup" => ShiftRole::Backup,
            other => return Err(WarrantError::Corrupt(format!("shift role {other:?}"))),
        };
        Ok(Shift {
            judge_id: self.judge_id,
            role,
            start: self.starts_local,
            end: self.ends_local,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        })
    }
}

/// The court's time zone from the `warrant-types` policy, or 404 when the agency has no such
/// court (a court exists only there).
async fn court_zone(tx: &mut TenantTx, court: &str) -> Result<Tz, WarrantError> {
    let policy = warrant_types(tx).await?;
    policy
        .court(court)
        .map(|c| c.time_zone)
        .ok_or(WarrantError::NotFound)
}

/// Checks that every named user is an active judge of the agency; errors name the field.
async fn check_judges(
    tx: &mut TenantTx,
    named: &BTreeMap<Uuid, String>,
) -> Result<(), WarrantError> {
    let ids: Vec<Uuid> = named.keys().copied().collect();
    let found: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, role, status FROM users WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?;
    let found: BTreeMap<Uuid, (String, String)> = found
        .into_iter()
        .map(|(id, role, status)| (id, (role, status)))
        .collect();
    for (id, field) in named {
        match found.get(id) {
            None => return Err(WarrantError::invalid(field, "no such user in the agency")),
            Some((role, _)) if role != "judge" => {
                return Err(WarrantError::invalid(
                    field,
                    format!("the user is a {role}, not a judge"),
                ));
            }
            Some((_, status)) if status != "active" => {
                return Err(WarrantError::invalid(
                    field,
                    format!("the judge's account is {status}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Replaces the court's roster (the route checks the permission); `court.roster.updated`.
pub async fn put_roster(
    tx: &mut TenantTx,
    caller: &Caller,
    court: &str,
    input: &RosterInput,
) -> Result<Roster, WarrantError> {
    let tz = court_zone(tx, court).await?;
    let shifts = resolve_shifts(tz, &input.shifts)?;
    // The first field naming each user, so the error points where the caller wrote it.
    let mut named = BTreeMap::new();
    named.insert(input.presiding_judge_id, "presidingJudgeId".to_owned());
    for (i, s) in input.shifts.iter().enumerate() {
        named
            .entry(s.judge_id)
            .or_insert_with(|| format!("shifts[{i}].judgeId"));
    }
    check_judges(tx, &named).await?;
    let version: i32 = sqlx::query_scalar(
        "INSERT INTO court_rosters (court, presiding_judge_id, time_zone, updated_by) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (agency_id, court) DO UPDATE SET presiding_judge_id = EXCLUDED.presiding_judge_id, \
           time_zone = EXCLUDED.time_zone, updated_by = EXCLUDED.updated_by, updated_at = now(), \
           version = court_rosters.version + 1 \
         RETURNING version",
    )
    .bind(court)
    .bind(input.presiding_judge_id)
    .bind(tz.name())
    .bind(caller.user_id())
    .fetch_one(tx.conn())
    .await?;
    sqlx::query("DELETE FROM roster_shifts WHERE court = $1")
        .bind(court)
        .execute(tx.conn())
        .await?;
    for (i, s) in shifts.iter().enumerate() {
        sqlx::query(
            "INSERT INTO roster_shifts (id, court, position, judge_id, role, starts_local, \
               ends_local, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(court)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(s.judge_id)
        .bind(s.role.as_str())
        .bind(s.start)
        .bind(s.end)
        .bind(s.starts_at)
        .bind(s.ends_at)
        .execute(tx.conn())
        .await?;
    }
    let judges: BTreeSet<Uuid> = shifts.iter().map(|s| s.judge_id).collect();
    let event = caller
        .event("court.roster.updated")
        .resource("court", court.to_owned())
        .detail(json!({
            "version": version,
            "timeZone": tz.name(),
            "presidingJudgeId": input.presiding_judge_id,
            "shifts": shifts.len(),
            "judges": judges,
        }));
    writ_audit_log::record(tx, &event).await?;
    get_roster(tx, court).await?.ok_or(WarrantError::NotFound)
}

/// The court's roster, `None` when none is set. 404 for a court the agency does not have.
pub async fn roster(tx: &mut TenantTx, court: &str) -> Result<Option<Roster>, WarrantError> {
    court_zone(tx, court).await?;
    get_roster(tx, court).await
}

/// The stored roster of `court`, whatever the policy says now.
pub async fn get_roster(tx: &mut TenantTx, court: &str) -> Result<Option<Roster>, WarrantError> {
    let Some(r) = sqlx::query_as::<_, RosterRow>(
        "SELECT court, presiding_judge_id, time_zone, version, updated_by, updated_at \
         FROM court_rosters WHERE court = $1",
    )
    .bind(court)
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let shifts = sqlx::query_as::<_, ShiftRow>(
        "SELECT judge_id, role, starts_local, ends_local, starts_at, ends_at FROM roster_shifts \
         WHERE court = $1 ORDER BY position",
    )
    .bind(court)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(ShiftRow::shift)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Roster {
        court: r.court,
        time_zone: r.time_zone,
        presiding_judge_id: r.presiding_judge_id,
        shifts,
        version: r.version,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    }))
}

/// Who is on call for `court` at `at`; `None` when the court has no roster. A judge whose account
/// is not active (not yet enrolled, disabled, deactivated) holds no shift: an alert to them could
/// not be acted on, so the chain goes on to the next level at once.
pub async fn on_call_at(
    tx: &mut TenantTx,
    court: &str,
    at: DateTime<Utc>,
) -> Result<Option<OnCall>, WarrantError> {
    let Some(presiding) = sqlx::query_scalar::<_, Uuid>(
        "SELECT presiding_judge_id FROM court_rosters WHERE court = $1",
    )
    .bind(court)
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let shifts = sqlx::query_as::<_, ShiftRow>(
        "SELECT s.judge_id, s.role, s.starts_local, s.ends_local, s.starts_at, s.ends_at \
         FROM roster_shifts s JOIN users u ON u.id = s.judge_id \
         WHERE s.court = $1 AND s.starts_at <= $2 AND $2 < s.ends_at AND u.status = 'active'",
    )
    .bind(court)
    .bind(at)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(ShiftRow::shift)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(on_call(&shifts, presiding, at)))
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::{Chicago, New_York};

    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_local(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn shift(judge: u128, role: ShiftRole, start: &str, end: &str) -> ShiftInput {
        ShiftInput {
            judge_id: Uuid::from_u128(judge),
            role,
            start: t(start),
            end: t(end),
        }
    }

    #[test]
    fn an_ordinary_local_time_is_its_one_instant() {
        assert_eq!(
            resolve_local(Chicago, t("2026-01-15T22:00")),
            utc("2026-01-16T04:00:00Z")
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_to_the_first_instant_after_it() {
        // 8 March 2026, Chicago: 02:00 CST jumps to 03:00 CDT (08:00 UTC).
        assert_eq!(
            resolve_local(Chicago, t("2026-03-08T02:30")),
            utc("2026-03-08T08:00:00Z")
        );
        assert_eq!(
            resolve_local(Chicago, t("2026-03-08T02:00")),
            utc("2026-03-08T08:00:00Z")
        );
        assert_eq!(
            resolve_local(Chicago, t("2026-03-08T03:00")),
            utc("2026-03-08T08:00:00Z")
        );
        assert_eq!(
            resolve_local(Chicago, t("2026-03-08T01:59")),
            utc("2026-03-08T07:59:00Z")
        );
    }

    #[test]
    fn a_repeated_fall_time_is_its_first_occurrence() {
        // 1 November 2026, New York: 01:00–02:00 happens twice (EDT, then EST).
        assert_eq!(
            resolve_local(New_York, t("2026-11-01T01:30")),
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn an_overnight_shift_across_midnight_covers_the_small_hours() {
        let shifts = resolve_shifts(
            Chicago,
            &[
                shift(
                    1,
                    ShiftRole::Primary,
                    "2026-01-15T17:00",
                    "2026-01-16T08:00",
                ),
                shift(
                    2,
                    ShiftRole::Primary,
                    "2026-01-16T08:00",
                    "2026-01-16T17:00",
                ),
            ],
        )
        .unwrap();
        let p = Uuid::from_u128(9);
        let at = |s| on_call(&shifts, p, utc(s)).primary;
        // 23:59 and 00:01 local, both judge 1; 08:00 local hands over to judge 2.
        assert_eq!(at("2026-01-16T05:59:00Z"), Some(Uuid::from_u128(1)));
        assert_eq!(at("2026-01-16T06:01:00Z"), Some(Uuid::from_u128(1)));
        assert_eq!(at("2026-01-16T13:59:59Z"), Some(Uuid::from_u128(1)));
        assert_eq!(at("2026-01-16T14:00:00Z"), Some(Uuid::from_u128(2)));
        assert_eq!(at("2026-01-16T23:00:00Z"), None);
    }

    #[test]
    fn the_spring_night_shift_is_an_hour_shorter_and_hands_over_on_time() {
        let shifts = resolve_shifts(
            Chicago,
            &[
                shift(
                    1,
                    ShiftRole::Primary,
                    "2026-03-07T20:00",
                    "2026-03-08T08:00",
                ),
                shift(
                    2,
                    ShiftRole::Primary,
                    "2026-03-08T08:00",
                    "2026-03-08T20:00",
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            shifts[0].ends_at - shifts[0].starts_at,
            chrono::Duration::hours(11)
        );
        // 08:00 CDT = 13:00 UTC.
        assert_eq!(shifts[0].ends_at, utc("2026-03-08T13:00:00Z"));
        let p = Uuid::from_u128(9);
        assert_eq!(
            on_call(&shifts, p, utc("2026-03-08T08:30:00Z")).primary,
            Some(Uuid::from_u128(1)),
            "03:30 CDT, just after the gap"
        );
    }

    #[test]
    fn shifts_meeting_inside_the_gap_or_the_overlap_leave_no_hole_and_no_double() {
        // Handover written at 02:30 on the spring-forward night: one instant, 03:00 CDT.
        let spring = resolve_shifts(
            Chicago,
            &[
                shift(
                    1,
                    ShiftRole::Primary,
                    "2026-03-07T20:00",
                    "2026-03-08T02:30",
                ),
                shift(
                    2,
                    ShiftRole::Primary,
                    "2026-03-08T02:30",
                    "2026-03-08T08:00",
                ),
            ],
        )
        .unwrap();
        assert_eq!(spring[0].ends_at, spring[1].starts_at);
        // Handover at 01:30 on the fall-back night: one instant, the first 01:30 (CDT).
        let fall = resolve_shifts(
            Chicago,
            &[
                shift(
                    1,
                    ShiftRole::Primary,
                    "2026-10-31T20:00",
                    "2026-11-01T01:30",
                ),
                shift(
                    2,
                    ShiftRole::Primary,
                    "2026-11-01T01:30",
                    "2026-11-01T08:00",
                ),
            ],
        )
        .unwrap();
        assert_eq!(fall[0].ends_at, utc("2026-11-01T06:30:00Z"));
        assert_eq!(fall[0].ends_at, fall[1].starts_at);
        // The second shift runs through the repeated hour: 01:30 CDT to 08:00 CST is 7.5 h.
        assert_eq!(
            fall[1].ends_at - fall[1].starts_at,
            chrono::Duration::minutes(450)
        );
        let p = Uuid::from_u128(9);
        for (at, judge) in [
            ("2026-11-01T06:29:59Z", 1),
            ("2026-11-01T06:30:00Z", 2),
            ("2026-11-01T07:15:00Z", 2), // 01:15 CST, the repeated hour
        ] {
            assert_eq!(
                on_call(&fall, p, utc(at)).primary,
                Some(Uuid::from_u128(judge)),
                "{at}"
            );
        }
    }

    #[test]
    fn overlapping_shifts_of_one_role_are_refused_but_primary_and_backup_may_overlap() {
        let err = resolve_shifts(
            Chicago,
            &[
                shift(
                    1,
                    ShiftRole::Primary,
                    "2026-01-15T08:00",
                    "2026-01-15T18:00",
                ),
                shift(2, ShiftRole::Backup, "2026-01-15T08:00", "2026-01-15T18:00"),
                shift(
                    3,
                    ShiftRole::Primary,
                    "2026-01-15T17:00",
                    "2026-01-16T08:00",
                ),
            ],
        )
        .unwrap_err();
        match err {
            WarrantError::Invalid { field, .. } => assert_eq!(field, "shifts[2]"),
            other => panic!("{other:?}"),
        }
        let err = resolve_shifts(
            Chicago,
            &[shift(
                1,
                ShiftRole::Primary,
                "2026-01-15T08:00",
                "2026-01-15T08:00",
            )],
        )
        .unwrap_err();
        assert!(matches!(err, WarrantError::Invalid { field, .. } if field == "shifts[0].end"));
    }
}
