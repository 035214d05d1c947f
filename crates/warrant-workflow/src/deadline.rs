//! Execution deadlines, counted in the court's local time (chrono-tz), exact across daylight
//! saving changes.
//!
//! Conventions:
//! - A deadline is the instant the window closes: execution at `t` is timely iff `t < deadline`.
//! - "End of day N" (issue day = day 0) is the first instant of day N + 1 in the court's zone.
//! - Hours are elapsed time: 240 h after 12:00 CST before the spring change ends at 13:00 CDT.
//! - Days counted from the issue instant keep the local clock time: N calendar days later.
//! - A local time that does not exist (the spring gap) means the instant the clocks jump; one
//!   that occurs twice (the autumn repeat) means its first occurrence. Both are the earliest
//!   instant whose local time is at or past the one named, so a window never runs long.

use chrono::{
    DateTime, Days, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::Serialize;

use crate::types::{DayCounting, DaytimeWindow, ExecutionWindow, TimeUnit, WarrantType};

/// The instant at which the court's local clock first shows `local` or later.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(tz, local),
    }
}

/// The instant a spring-forward gap containing `local` ends (the clocks jump past `local`).
fn gap_end(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let offset_at = |t: NaiveDateTime| -> i64 {
        i64::from(tz.offset_from_utc_datetime(&t).fix().local_minus_utc())
    };
    let day = Duration::days(1);
    let before = offset_at(local.checked_sub_signed(day).unwrap_or(local));
    let after = offset_at(local.checked_add_signed(day).unwrap_or(local));
    let utc_of = |offset: i64| {
        local
            .checked_sub_signed(Duration::seconds(offset))
            .unwrap_or(local)
            .and_utc()
            .timestamp()
    };
    // Before the jump the local time is `utc + before` (< local), after it `utc + after`
    // (> local): the jump lies between these two readings of `local`.
    let (mut lo, mut hi) = (utc_of(after), utc_of(before));
    let shows_local_or_later = |ts: i64| {
        DateTime::from_timestamp(ts, 0)
            .map(|t| t.with_timezone(&tz).naive_local() >= local)
            .unwrap_or(true)
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if shows_local_or_later(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The first instant of `date` in the court's zone (midnight, or when the day's clock starts
/// where midnight is skipped).
pub fn start_of_local_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    local_instant(tz, date.and_time(NaiveTime::MIN))
}

/// The end of `date` in the court's zone: the first instant of the next day.
pub fn end_of_local_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    match date.checked_add_days(Days::new(1)) {
        Some(next) => start_of_local_day(tz, next),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// When a window that opened at `from` closes.
pub fn window_end(window: ExecutionWindow, tz: Tz, from: DateTime<Utc>) -> DateTime<Utc> {
    let far = DateTime::<Utc>::MAX_UTC;
    match (window.unit, window.counting) {
        (TimeUnit::Hours, _) => from
            .checked_add_signed(Duration::hours(i64::from(window.amount)))
            .unwrap_or(far),
        (TimeUnit::Days, DayCounting::EndOfLastDay) => {
            let day0 = from.with_timezone(&tz).date_naive();
            match day0.checked_add_days(Days::new(u64::from(window.amount))) {
                Some(last) => end_of_local_day(tz, last),
                None => far,
            }
        }
        (TimeUnit::Days, DayCounting::FromIssueInstant) => {
            let local = from.with_timezone(&tz).naive_local();
            match local.checked_add_days(Days::new(u64::from(window.amount))) {
                Some(target) => local_instant(tz, target),
                None => far,
            }
        }
    }
}

/// The execution deadline of a warrant of type `ty` issued at `issued_at` by a court in `tz`;
/// `None` for a type without a window (arrest warrants).
pub fn execution_deadline(
    ty: &WarrantType,
    tz: Tz,
    issued_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    ty.execution_window.map(|w| window_end(w, tz, issued_at))
}

/// Why an execution is refused (409): executing outside the window is a warrantless search.
/// As the problem's `refusal`: `reason` in snake_case like other enumerated values, the times
/// camelCase like every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ExecutionRefusal {
    #[error("the execution time {executed_at} is before the warrant was issued ({issued_at})")]
    #[serde(rename_all = "camelCase")]
    BeforeIssue {
        issued_at: DateTime<Utc>,
        executed_at: DateTime<Utc>,
    },
    #[error(
        "the warrant expired at {deadline}: executing it at {executed_at} would be a warrantless search"
    )]
    #[serde(rename_all = "camelCase")]
    Expired {
        deadline: DateTime<Utc>,
        executed_at: DateTime<Utc>,
    },
    #[error(
        "{local} is outside the daytime window {window} and the warrant carries no night-service authority"
    )]
    OutsideDaytime {
        /// The execution time on the court's clock.
        local: DateTime<FixedOffset>,
        window: DaytimeWindow,
    },
}

impl ExecutionRefusal {
    pub fn status(&self) -> u16 {
        409
    }

    /// The problem slug (`urn:writ:problem:<slug>`).
    pub fn slug(&self) -> &'static str {
        match self {
            ExecutionRefusal::BeforeIssue { .. } => "execution-before-issue",
            ExecutionRefusal::Expired { .. } => "warrant-expired",
            ExecutionRefusal::OutsideDaytime { .. } => "outside-daytime-window",
        }
    }
}

/// Whether executing at `executed_at` is within the warrant's authority: after issue, before the
/// deadline, and inside the daytime window unless night service was authorized (and the type
/// allows night service at all). The caller also checks that `executed_at` is not in the future.
pub fn check_execution(
    ty: &WarrantType,
    tz: Tz,
    issued_at: DateTime<Utc>,
    executed_at: DateTime<Utc>,
    night_authorized: bool,
) -> Result<(), ExecutionRefusal> {
    if executed_at < issued_at {
        return Err(ExecutionRefusal::BeforeIssue {
            issued_at,
            executed_at,
        });
    }
    if let Some(deadline) = execution_deadline(ty, tz, issued_at)
        && executed_at >= deadline
    {
        return Err(ExecutionRefusal::Expired {
            deadline,
            executed_at,
        });
    }
    if let Some(window) = ty.daytime {
        let local = executed_at.with_timezone(&tz);
        if !window.contains(local.time()) && !ty.night_authority_effective(night_authorized) {
            return Err(ExecutionRefusal::OutsideDaytime {
                local: local.fixed_offset(),
                window,
            });
        }
    }
    Ok(())
}

/// Whether an issued warrant's window has closed at `now` (the expiry job's test).
pub fn is_past_deadline(deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    deadline.is_some_and(|d| now >= d)
}

/// When to remind the author of a deadline: `lead` before it. A reminder time already past
/// when the warrant is issued means "remind at once".
pub fn reminder_at(deadline: DateTime<Utc>, lead: Duration) -> DateTime<Utc> {
    deadline
        .checked_sub_signed(lead)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A tracking device's use period asked for at issue is longer than the type allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackingUseError {
    #[error("{key} is not a tracking-device type")]
    NotTracking { key: String },
    #[error("a tracking device may be used for at most {max} days from issue; {asked} asked")]
    TooLong { asked: u32, max: u32 },
    #[error("an extension may add at most {max} days of use; {asked} asked")]
    ExtensionTooLong { asked: u32, max: u32 },
    #[error("the use period must be at least one day")]
    Empty,
}

impl TrackingUseError {
    pub fn status(&self) -> u16 {
        422
    }
}

/// Whether `ty` allows a tracking device's use for `use_days`: a tracking type, at least one
/// day, at most its maximum (of an extension, for an extension), and never more than a year.
pub fn check_tracking_use_days(
    ty: &WarrantType,
    use_days: u32,
    extension: bool,
) -> Result<(), TrackingUseError> {
    let rules = ty.tracking.ok_or_else(|| TrackingUseError::NotTracking {
        key: ty.key.clone(),
    })?;
    if use_days == 0 {
        return Err(TrackingUseError::Empty);
    }
    match rules.max_days(extension) {
        Some(max) if use_days > max && extension => Err(TrackingUseError::ExtensionTooLong {
            asked: use_days,
            max,
        }),
        Some(max) if use_days > max => Err(TrackingUseError::TooLong {
            asked: use_days,
            max,
        }),
        // A type without a maximum still authorises no more than a window may last.
        _ if use_days > crate::types::MAX_WINDOW_DAYS => Err(TrackingUseError::TooLong {
            asked: use_days,
            max: crate::types::MAX_WINDOW_DAYS,
        }),
        _ => Ok(()),
    }
}

/// Which use period of a tracking device a warrant authorises: the first, counted from issue,
/// or an extension of an earlier warrant (FRCrP 41(e)(2)(C): "one or more extensions for a
/// reasonable period not to exceed 45 days each"), which continues from where that one's use
/// ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingPeriod {
    Initial,
    /// `previous_end`: when the extended warrant's use ends, or ended (`None`: it had none).
    Extension {
        previous_end: Option<DateTime<Utc>>,
    },
}

/// When the use of a tracking device authorised for `use_days` ends: a first period counted from
/// issue like the type's execution window (FRCrP 41(e)(2)(C): "not exceed 45 days from the date
/// the warrant was issued"); an extension from where the extended use ends, if it has not ended
/// by the extension's issue (else from issue, like a first).
pub fn tracking_use_end(
    ty: &WarrantType,
    tz: Tz,
    issued_at: DateTime<Utc>,
    use_days: u32,
    period: TrackingPeriod,
) -> Result<DateTime<Utc>, TrackingUseError> {
    let extension = matches!(period, TrackingPeriod::Extension { .. });
    check_tracking_use_days(ty, use_days, extension)?;
    if let TrackingPeriod::Extension {
        previous_end: Some(previous_end),
    } = period
        && previous_end > issued_at
    {
        // Granted before the earlier period ends: it goes on from that end without a gap, to the
        // same time of day `use_days` days later on the court's clock.
        let window = ExecutionWindow {
            amount: use_days,
            unit: TimeUnit::Days,
            counting: DayCounting::FromIssueInstant,
        };
        return Ok(window_end(window, tz, previous_end));
    }
    let counting = ty
        .execution_window
        .map_or(DayCounting::EndOfLastDay, |w| w.counting);
    let window = ExecutionWindow {
        amount: use_days,
        unit: TimeUnit::Days,
        counting,
    };
    Ok(window_end(window, tz, issued_at))
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::{Chicago, Havana, Los_Angeles, New_York};

    use super::*;
    use crate::presets::Preset;
    use crate::types::{ProsecutorReview, SealingDefault, WarrantKind};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(tz: Tz, s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            other => panic!("{s} is not a single local time: {other:?}"),
        }
    }

    fn preset_type(p: Preset, key: &str) -> WarrantType {
        p.types().into_iter().find(|t| t.key == key).unwrap()
    }

    fn custom(window: Option<ExecutionWindow>, daytime: Option<DaytimeWindow>) -> WarrantType {
        WarrantType {
            key: "custom".into(),
            name: "Custom".into(),
            kind: WarrantKind::Custom,
            execution_window: window,
            daytime,
            night_service_authorizable: false,
            required_fields: vec![],
            prosecutor_review: ProsecutorReview::Optional,
            sealing: SealingDefault::default(),
            tracking: None,
            oath: Default::default(),
            source: None,
        }
    }

    // 2026 changes: America/* spring forward on Sunday 8 March at 02:00, fall back on Sunday
    // 1 November at 02:00.

    #[test]
    fn federal_14_days_issue_day_is_day_zero_across_the_spring_change() {
        let search = preset_type(Preset::Federal, "search");
        let issued = local(Chicago, "2026-03-02 15:00:00"); // CST
        let deadline = execution_deadline(&search, Chicago, issued).unwrap();
        // Day 14 is 16 March; its end is midnight CDT (UTC-5).
        assert_eq!(deadline, utc("2026-03-17T05:00:00Z"));
        assert_eq!(
            deadline.with_timezone(&Chicago).naive_local().to_string(),
            "2026-03-17 00:00:00"
        );
    }

    #[test]
    fn day_zero_is_the_local_date_not_the_utc_date() {
        let search = preset_type(Preset::Federal, "search");
        // 23:59 CDT on 1 June is already 2 June in UTC; day 0 is still 1 June.
        let issued = local(Chicago, "2026-06-01 23:59:00");
        assert_eq!(issued, utc("2026-06-02T04:59:00Z"));
        assert_eq!(
            execution_deadline(&search, Chicago, issued).unwrap(),
            utc("2026-06-16T05:00:00Z")
        );
        // Issued at the first instant of the day: the same deadline.
        let midnight = local(Chicago, "2026-06-01 00:00:00");
        assert_eq!(
            execution_deadline(&search, Chicago, midnight).unwrap(),
            utc("2026-06-16T05:00:00Z")
        );
    }

    #[test]
    fn kansas_240_hours_are_elapsed_time_across_the_spring_change() {
        let search = preset_type(Preset::Kansas, "search");
        let issued = local(Chicago, "2026-03-05 12:00:00"); // CST, 18:00Z
        let deadline = execution_deadline(&search, Chicago, issued).unwrap();
        assert_eq!(deadline, utc("2026-03-15T18:00:00Z"));
        assert_eq!(deadline - issued, Duration::hours(240));
        // The local clock shows one hour later than the issue time.
        assert_eq!(
            deadline.with_timezone(&Chicago).naive_local().to_string(),
            "2026-03-15 13:00:00"
        );
    }

    #[test]
    fn kansas_240_hours_across_the_autumn_change() {
        let search = preset_type(Preset::Kansas, "search");
        let issued = local(Chicago, "2026-10-30 12:00:00"); // CDT, 17:00Z
        let deadline = execution_deadline(&search, Chicago, issued).unwrap();
        assert_eq!(deadline, utc("2026-11-09T17:00:00Z"));
        assert_eq!(
            deadline.with_timezone(&Chicago).naive_local().to_string(),
            "2026-11-09 11:00:00"
        );
    }

    #[test]
    fn kansas_hours_from_the_issue_instant_not_the_day() {
        let search = preset_type(Preset::Kansas, "search");
        let issued = utc("2026-07-01T03:17:42Z");
        assert_eq!(
            execution_deadline(&search, Chicago, issued).unwrap(),
            utc("2026-07-11T03:17:42Z")
        );
    }

    #[test]
    fn california_10_days_across_the_autumn_change() {
        let search = preset_type(Preset::California, "search");
        let issued = local(Los_Angeles, "2026-10-25 10:00:00"); // PDT
        // Day 10 is 4 November (PST); its end is midnight PST (UTC-8).
        assert_eq!(
            execution_deadline(&search, Los_Angeles, issued).unwrap(),
            utc("2026-11-05T08:00:00Z")
        );
    }

    #[test]
    fn california_10_days_across_the_spring_change() {
        let search = preset_type(Preset::California, "search");
        let issued = local(Los_Angeles, "2026-03-01 21:30:00"); // PST
        // Day 10 is 11 March (PDT); its end is midnight PDT (UTC-7).
        assert_eq!(
            execution_deadline(&search, Los_Angeles, issued).unwrap(),
            utc("2026-03-12T07:00:00Z")
        );
    }

    #[test]
    fn each_preset_counts_its_search_window() {
        // Issued at 10:00 local on Monday 6 July 2026 (no clock change within the windows).
        let cases = [
            (Preset::Federal, New_York, "2026-07-21 00:00:00"),
            (Preset::Kansas, Chicago, "2026-07-16 10:00:00"),
            (Preset::California, Los_Angeles, "2026-07-17 00:00:00"),
            (Preset::Maryland, New_York, "2026-07-17 00:00:00"),
            (Preset::Minnesota, Chicago, "2026-07-17 00:00:00"),
        ];
        for (preset, tz, expected) in cases {
            let issued = local(tz, "2026-07-06 10:00:00");
            for key in ["search", "blood-draw", "electronic-records"] {
                let ty = preset_type(preset, key);
                let deadline = execution_deadline(&ty, tz, issued).unwrap();
                assert_eq!(
                    deadline.with_timezone(&tz).naive_local().to_string(),
                    expected,
                    "{preset} {key}"
                );
            }
        }
    }

    #[test]
    fn each_preset_counts_its_tracking_installation_window() {
        let cases = [
            (Preset::Federal, "2026-07-17 00:00:00"),
            (Preset::Kansas, "2026-07-22 00:00:00"),
            (Preset::California, "2026-07-17 00:00:00"),
            (Preset::Maryland, "2026-07-17 00:00:00"),
            (Preset::Minnesota, "2026-07-17 00:00:00"),
        ];
        for (preset, expected) in cases {
            let ty = preset_type(preset, "tracking-device");
            let issued = local(Chicago, "2026-07-06 10:00:00");
            let deadline = execution_deadline(&ty, Chicago, issued).unwrap();
            assert_eq!(
                deadline.with_timezone(&Chicago).naive_local().to_string(),
                expected,
                "{preset}"
            );
        }
    }

    #[test]
    fn every_preset_window_across_both_clock_changes() {
        // Issued the week before each 2026 change, at times around the clock, in Chicago and
        // Los Angeles: day windows end at local midnight after day N, hour windows are exact.
        let starts = [
            "2026-03-01 00:00:00",
            "2026-03-02 09:15:00",
            "2026-03-05 23:59:59",
            "2026-10-25 00:00:01",
            "2026-10-28 12:00:00",
            "2026-10-31 23:30:00",
        ];
        for preset in Preset::ALL {
            for ty in preset.types() {
                let Some(window) = ty.execution_window else {
                    continue;
                };
                for tz in [Chicago, Los_Angeles] {
                    for start in starts {
                        let issued = local(tz, start);
                        let deadline = execution_deadline(&ty, tz, issued).unwrap();
                        let case = format!("{preset} {} {tz} {start}", ty.key);
                        match (window.unit, window.counting) {
                            (TimeUnit::Hours, _) => assert_eq!(
                                deadline - issued,
                                Duration::hours(i64::from(window.amount)),
                                "{case}"
                            ),
                            (TimeUnit::Days, DayCounting::EndOfLastDay) => {
                                let day0 = issued.with_timezone(&tz).date_naive();
                                let on_clock = deadline.with_timezone(&tz).naive_local();
                                assert_eq!(on_clock.time(), NaiveTime::MIN, "{case}");
                                assert_eq!(
                                    on_clock.date(),
                                    day0 + Duration::days(i64::from(window.amount) + 1),
                                    "{case}"
                                );
                            }
                            (TimeUnit::Days, DayCounting::FromIssueInstant) => {
                                unreachable!("no preset counts days from the issue instant")
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn arrest_warrants_have_no_deadline() {
        for p in Preset::ALL {
            let arrest = preset_type(p, "arrest");
            let issued = utc("2026-01-01T00:00:00Z");
            assert_eq!(execution_deadline(&arrest, Chicago, issued), None, "{p}");
            let years_later = utc("2031-01-01T03:00:00Z");
            assert_eq!(
                check_execution(&arrest, Chicago, issued, years_later, false),
                Ok(()),
                "{p}: any hour, any time later"
            );
        }
    }

    #[test]
    fn days_from_the_issue_instant_keep_the_local_clock_time() {
        let ty = custom(
            Some(ExecutionWindow {
                amount: 10,
                unit: TimeUnit::Days,
                counting: DayCounting::FromIssueInstant,
            }),
            None,
        );
        let issued = local(Chicago, "2026-03-05 09:00:00"); // CST, 15:00Z
        let deadline = execution_deadline(&ty, Chicago, issued).unwrap();
        assert_eq!(deadline, utc("2026-03-15T14:00:00Z")); // 09:00 CDT
        assert_eq!(deadline - issued, Duration::hours(239));
    }

    #[test]
    fn a_target_in_the_spring_gap_is_the_jump() {
        let ty = custom(
            Some(ExecutionWindow {
                amount: 10,
                unit: TimeUnit::Days,
                counting: DayCounting::FromIssueInstant,
            }),
            None,
        );
        // 02:30 on 8 March 2026 does not exist in Chicago: the clocks go 01:59:59 → 03:00.
        let issued = local(Chicago, "2026-02-26 02:30:00");
        let deadline = execution_deadline(&ty, Chicago, issued).unwrap();
        assert_eq!(deadline, utc("2026-03-08T08:00:00Z"));
        assert_eq!(
            deadline.with_timezone(&Chicago).naive_local().to_string(),
            "2026-03-08 03:00:00"
        );
        assert_eq!(
            (deadline - Duration::seconds(1))
                .with_timezone(&Chicago)
                .naive_local()
                .to_string(),
            "2026-03-08 01:59:59"
        );
    }

    #[test]
    fn a_target_in_the_autumn_repeat_is_its_first_occurrence() {
        let ty = custom(
            Some(ExecutionWindow {
                amount: 10,
                unit: TimeUnit::Days,
                counting: DayCounting::FromIssueInstant,
            }),
            None,
        );
        // 01:30 on 1 November 2026 happens twice in Chicago (CDT, then CST).
        let issued = local(Chicago, "2026-10-22 01:30:00");
        assert_eq!(
            execution_deadline(&ty, Chicago, issued).unwrap(),
            utc("2026-11-01T06:30:00Z")
        );
    }

    #[test]
    fn end_of_day_where_midnight_is_skipped() {
        // Cuba moves its clocks at midnight: 8 March 2026 begins at 01:00.
        let start = start_of_local_day(Havana, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        let on_clock = start.with_timezone(&Havana).naive_local();
        assert_eq!(on_clock.date().to_string(), "2026-03-08");
        let before = (start - Duration::seconds(1))
            .with_timezone(&Havana)
            .naive_local();
        assert_eq!(before.to_string(), "2026-03-07 23:59:59");
        assert_eq!(
            end_of_local_day(Havana, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()),
            start
        );
    }

    #[test]
    fn execution_at_the_deadline_is_refused_and_just_before_it_is_not() {
        let search = preset_type(Preset::Federal, "search");
        let issued = local(Chicago, "2026-03-02 15:00:00");
        let deadline = execution_deadline(&search, Chicago, issued).unwrap();
        let night = true;
        assert_eq!(
            check_execution(&search, Chicago, issued, deadline, night),
            Err(ExecutionRefusal::Expired {
                deadline,
                executed_at: deadline
            })
        );
        let just_before = deadline - Duration::milliseconds(1);
        assert_eq!(
            check_execution(&search, Chicago, issued, just_before, night),
            Ok(())
        );
        let refusal = check_execution(&search, Chicago, issued, deadline, night).unwrap_err();
        assert_eq!((refusal.status(), refusal.slug()), (409, "warrant-expired"));
    }

    #[test]
    fn execution_before_issue_is_refused() {
        let search = preset_type(Preset::Kansas, "search");
        let issued = utc("2026-05-01T12:00:00Z");
        let early = issued - Duration::seconds(1);
        assert!(matches!(
            check_execution(&search, Chicago, issued, early, true),
            Err(ExecutionRefusal::BeforeIssue { .. })
        ));
        assert_eq!(
            check_execution(&search, Chicago, issued, issued, false),
            Ok(())
        );
    }

    #[test]
    fn federal_daytime_is_06_to_22_local() {
        let search = preset_type(Preset::Federal, "search");
        let issued = local(New_York, "2026-07-06 01:00:00");
        let at = |s: &str| local(New_York, s);
        for (when, ok) in [
            ("2026-07-07 05:59:59", false),
            ("2026-07-07 06:00:00", true),
            ("2026-07-07 21:59:59", true),
            ("2026-07-07 22:00:00", false),
            ("2026-07-07 23:30:00", false),
        ] {
            let result = check_execution(&search, New_York, issued, at(when), false);
            assert_eq!(result.is_ok(), ok, "{when}: {result:?}");
            if !ok {
                assert_eq!(result.unwrap_err().slug(), "outside-daytime-window");
            }
            assert_eq!(
                check_execution(&search, New_York, issued, at(when), true),
                Ok(()),
                "{when} with night authority"
            );
        }
    }

    #[test]
    fn minnesota_daytime_is_07_to_20_local() {
        let search = preset_type(Preset::Minnesota, "search");
        let issued = local(Chicago, "2026-07-06 01:00:00");
        for (when, ok) in [
            ("2026-07-07 06:59:00", false),
            ("2026-07-07 07:00:00", true),
            ("2026-07-07 19:59:00", true),
            ("2026-07-07 20:00:00", false),
        ] {
            let result = check_execution(&search, Chicago, issued, local(Chicago, when), false);
            assert_eq!(result.is_ok(), ok, "{when}: {result:?}");
        }
    }

    #[test]
    fn daytime_uses_the_local_clock_on_the_days_the_clocks_change() {
        let search = preset_type(Preset::Federal, "search");
        let issued = utc("2026-03-01T12:00:00Z");
        // Spring: 11:00Z on 8 March is 06:00 CDT (it would be 05:00 at the winter offset).
        assert_eq!(
            check_execution(&search, Chicago, issued, utc("2026-03-08T11:00:00Z"), false),
            Ok(())
        );
        assert!(
            check_execution(&search, Chicago, issued, utc("2026-03-08T10:59:00Z"), false).is_err()
        );
        // Autumn: 11:30Z on 1 November is 05:30 CST (06:30 at the summer offset): refused.
        let issued = utc("2026-10-25T12:00:00Z");
        let refusal = check_execution(&search, Chicago, issued, utc("2026-11-01T11:30:00Z"), false)
            .unwrap_err();
        match refusal {
            ExecutionRefusal::OutsideDaytime { local, .. } => {
                assert_eq!(local.to_rfc3339(), "2026-11-01T05:30:00-06:00")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_execution(&search, Chicago, issued, utc("2026-11-01T12:00:00Z"), false),
            Ok(())
        );
    }

    #[test]
    fn night_authority_counts_only_where_the_type_allows_it() {
        let mut ty = custom(
            Some(ExecutionWindow::days_end_of_last_day(10)),
            DaytimeWindow::new((6, 0), (22, 0)),
        );
        ty.night_service_authorizable = false;
        let issued = local(Chicago, "2026-07-06 10:00:00");
        let night = local(Chicago, "2026-07-06 23:00:00");
        assert!(check_execution(&ty, Chicago, issued, night, true).is_err());
        ty.night_service_authorizable = true;
        assert_eq!(check_execution(&ty, Chicago, issued, night, true), Ok(()));
    }

    #[test]
    fn types_without_a_daytime_window_execute_at_any_hour() {
        let search = preset_type(Preset::Kansas, "search");
        let issued = local(Chicago, "2026-07-06 10:00:00");
        let night = local(Chicago, "2026-07-07 03:00:00");
        assert_eq!(
            check_execution(&search, Chicago, issued, night, false),
            Ok(())
        );
    }

    #[test]
    fn reminders_come_the_lead_time_before_the_deadline() {
        let deadline = utc("2026-03-17T05:00:00Z");
        assert_eq!(
            reminder_at(deadline, Duration::hours(24)),
            utc("2026-03-16T05:00:00Z")
        );
        assert_eq!(reminder_at(deadline, Duration::zero()), deadline);
    }

    #[test]
    fn the_expiry_test() {
        let deadline = utc("2026-03-17T05:00:00Z");
        assert!(!is_past_deadline(
            Some(deadline),
            deadline - Duration::milliseconds(1)
        ));
        assert!(is_past_deadline(Some(deadline), deadline));
        assert!(!is_past_deadline(None, deadline));
    }

    #[test]
    fn federal_tracking_use_ends_45_days_after_issue() {
        let ty = preset_type(Preset::Federal, "tracking-device");
        let issued = local(Chicago, "2026-02-10 14:00:00");
        // Day 45 is 27 March (CDT); its end is midnight CDT.
        assert_eq!(
            tracking_use_end(&ty, Chicago, issued, 45, TrackingPeriod::Initial),
            Ok(utc("2026-03-28T05:00:00Z"))
        );
        assert_eq!(
            tracking_use_end(&ty, Chicago, issued, 46, TrackingPeriod::Initial),
            Err(TrackingUseError::TooLong { asked: 46, max: 45 })
        );
        assert_eq!(
            tracking_use_end(&ty, Chicago, issued, 0, TrackingPeriod::Initial),
            Err(TrackingUseError::Empty)
        );
        let search = preset_type(Preset::Federal, "search");
        assert!(matches!(
            tracking_use_end(&search, Chicago, issued, 10, TrackingPeriod::Initial),
            Err(TrackingUseError::NotTracking { .. })
        ));
        // No statutory cap in the Kansas preset: the warrant's own period is used.
        let kansas = preset_type(Preset::Kansas, "tracking-device");
        assert!(tracking_use_end(&kansas, Chicago, issued, 90, TrackingPeriod::Initial).is_ok());
        // Nor is there an unlimited one: a year at most.
        assert_eq!(
            tracking_use_end(
                &kansas,
                Chicago,
                issued,
                4_000_000_000,
                TrackingPeriod::Initial
            ),
            Err(TrackingUseError::TooLong {
                asked: 4_000_000_000,
                max: crate::types::MAX_WINDOW_DAYS
            })
        );
    }

    #[test]
    fn a_tracking_extension_continues_from_the_previous_end_for_at_most_45_days() {
        let ty = preset_type(Preset::Federal, "tracking-device");
        let issued = local(Chicago, "2026-02-10 14:00:00");
        let first = tracking_use_end(&ty, Chicago, issued, 45, TrackingPeriod::Initial).unwrap();
        // Granted on day 40: 45 more days from the first period's end (midnight CDT), across
        // no change of clock; 46 is over the extension's cap.
        let granted = local(Chicago, "2026-03-22 10:00:00");
        let period = TrackingPeriod::Extension {
            previous_end: Some(first),
        };
        assert_eq!(
            tracking_use_end(&ty, Chicago, granted, 45, period),
            Ok(utc("2026-05-12T05:00:00Z"))
        );
        assert_eq!(
            tracking_use_end(&ty, Chicago, granted, 46, period),
            Err(TrackingUseError::ExtensionTooLong { asked: 46, max: 45 })
        );
        // Granted after the first period ended: counted from its own issue, like a first one.
        let late = local(Chicago, "2026-04-01 10:00:00");
        assert_eq!(
            tracking_use_end(&ty, Chicago, late, 10, period),
            tracking_use_end(&ty, Chicago, late, 10, TrackingPeriod::Initial)
        );
    }
}
