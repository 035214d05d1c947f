//! Sealing, orthogonal to the warrant's state. A seal is requested with the application (the
//! type's `sealing.sealedByDefault` preselects the request) or later by motion; a judge orders it
//! with an order reference, a reason and an optional expiry date, may renew it before it lapses,
//! and unseals it by order. A seal ends at its expiry unless renewed (Utah: six months, renewable
//! in six-month steps). While sealed, a warrant is visible only to judges, prosecutors and
//! agency_admin (DESIGN §4).

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use writ_auth_mfa::Role;

use crate::deadline::end_of_local_day;
use crate::types::SealingDefault;

/// How the seal was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealOrigin {
    /// With the application.
    Application,
    /// By a later motion.
    Motion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealRenewal {
    pub renewed_at: DateTime<Utc>,
    pub order_reference: String,
    pub previous_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unsealing {
    pub unsealed_at: DateTime<Utc>,
    pub order_reference: String,
    pub reason: String,
}

/// A judge's sealing order and what happened to it since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seal {
    pub order_reference: String,
    pub reason: String,
    pub origin: SealOrigin,
    pub sealed_at: DateTime<Utc>,
    /// `None`: sealed until a judge unseals it.
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub renewals: Vec<SealRenewal>,
    #[serde(default)]
    pub unsealed: Option<Unsealing>,
    /// The warrant's earlier seal orders, oldest first: lifted or lapsed before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Seal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("only a judge may seal, renew or unseal ({0} may not)")]
    NotAJudge(Role),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("the seal must end after it begins")]
    ExpiryNotAfter,
    #[error("a seal ends before the year 10000; a seal without an end is ordered without one")]
    ExpiryTooFar,
    #[error("{0} is at most {MAX_SEAL_TEXT_CHARS} characters")]
    TooLong(&'static str),
    #[error("a renewal must end after the current expiry ({current})")]
    NotLater { current: DateTime<Utc> },
    #[error("the seal has no expiry to renew; it lasts until unsealed")]
    NoExpiry,
    #[error("the seal lapsed at {expired_at}; seal the warrant anew")]
    Lapsed { expired_at: DateTime<Utc> },
    #[error("the warrant was unsealed at {0}")]
    AlreadyUnsealed(DateTime<Utc>),
}

impl SealError {
    pub fn status(&self) -> u16 {
        match self {
            SealError::NotAJudge(_) => 403,
            SealError::Missing(_)
            | SealError::ExpiryNotAfter
            | SealError::ExpiryTooFar
            | SealError::TooLong(_)
            | SealError::NotLater { .. } => 422,
            SealError::NoExpiry | SealError::Lapsed { .. } | SealError::AlreadyUnsealed(_) => 409,
        }
    }
}

fn judge(role: Role) -> Result<(), SealError> {
    if may_seal(role) {
        Ok(())
    } else {
        Err(SealError::NotAJudge(role))
    }
}

/// The longest order reference or reason: they are copied into the seal's audit entries.
pub const MAX_SEAL_TEXT_CHARS: usize = 2_000;

/// The latest instant a seal may name as its end: dates past it overflow the court's calendar.
fn latest_expiry() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
}

fn check_expiry(expires_at: DateTime<Utc>) -> Result<(), SealError> {
    if expires_at > latest_expiry() {
        return Err(SealError::ExpiryTooFar);
    }
    Ok(())
}

fn filled(value: &str, name: &'static str) -> Result<String, SealError> {
    let v = value.trim();
    if v.chars().count() > MAX_SEAL_TEXT_CHARS {
        return Err(SealError::TooLong(name));
    }
    if v.is_empty() {
        Err(SealError::Missing(name))
    } else {
        Ok(v.to_owned())
    }
}

impl Seal {
    /// A judge's sealing order.
    pub fn order(
        role: Role,
        order_reference: &str,
        reason: &str,
        origin: SealOrigin,
        sealed_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Self, SealError> {
        judge(role)?;
        let order_reference = filled(order_reference, "orderReference")?;
        let reason = filled(reason, "reason")?;
        if expires_at.is_some_and(|e| e <= sealed_at) {
            return Err(SealError::ExpiryNotAfter);
        }
        if let Some(e) = expires_at {
            check_expiry(e)?;
        }
        Ok(Self {
            order_reference,
            reason,
            origin,
            sealed_at,
            expires_at,
            renewals: Vec::new(),
            unsealed: None,
            earlier: Vec::new(),
        })
    }

    /// Whether the warrant is sealed at `now`: ordered, not unsealed, not lapsed.
    pub fn is_sealed_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.sealed_at
            && self.unsealed.as_ref().is_none_or(|u| now < u.unsealed_at)
            && self.expires_at.is_none_or(|e| now < e)
    }

    /// When the seal ended or will end (by unsealing or expiry), if it does.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (
            self.unsealed.as_ref().map(|u| u.unsealed_at),
            self.expires_at,
        ) {
            (Some(u), Some(e)) => Some(u.min(e)),
            (u, e) => u.or(e),
        }
    }

    fn still_sealed(&self, at: DateTime<Utc>) -> Result<(), SealError> {
        if let Some(u) = &self.unsealed
            && at >= u.unsealed_at
        {
            return Err(SealError::AlreadyUnsealed(u.unsealed_at));
        }
        if let Some(e) = self.expires_at
            && at >= e
        {
            return Err(SealError::Lapsed { expired_at: e });
        }
        Ok(())
    }

    /// Renews the seal to `expires_at`, while it still holds.
    pub fn renew(
        &mut self,
        role: Role,
        at: DateTime<Utc>,
        order_reference: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), SealError> {
        judge(role)?;
        let order_reference = filled(order_reference, "orderReference")?;
        self.still_sealed(at)?;
        let current = self.expires_at.ok_or(SealError::NoExpiry)?;
        if expires_at <= current {
            return Err(SealError::NotLater { current });
        }
        check_expiry(expires_at)?;
        self.renewals.push(SealRenewal {
            renewed_at: at,
            order_reference,
            previous_expires_at: current,
            expires_at,
        });
        self.expires_at = Some(expires_at);
        Ok(())
    }

    /// Unseals by order.
    pub fn unseal(
        &mut self,
        role: Role,
        at: DateTime<Utc>,
        order_reference: &str,
        reason: &str,
    ) -> Result<(), SealError> {
        judge(role)?;
        let order_reference = filled(order_reference, "orderReference")?;
        let reason = filled(reason, "reason")?;
        self.still_sealed(at)?;
        self.unsealed = Some(Unsealing {
            unsealed_at: at,
            order_reference,
            reason,
        });
        Ok(())
    }
}

/// Who may see a sealed warrant (DESIGN §4).
pub fn may_see_sealed(role: Role) -> bool {
    matches!(role, Role::Judge | Role::Prosecutor | Role::AgencyAdmin)
}

/// Who may read a warrant at all: auditors and platform operators never see warrant content,
/// and a sealed warrant only [`may_see_sealed`].
pub fn may_read_warrant(role: Role, sealed: bool) -> bool {
    match role {
        Role::Auditor | Role::PlatformOperator => false,
        _ if sealed => may_see_sealed(role),
        _ => true,
    }
}

/// Who may seal, renew and unseal.
pub fn may_seal(role: Role) -> bool {
    role == Role::Judge
}

/// The end of the local date named in a sealing order: the seal holds through that day.
pub fn expiry_of_date(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    end_of_local_day(tz, date)
}

/// The date `months` calendar months after `from` in the court's zone (31 August + 6 months is
/// 28 or 29 February).
pub fn months_later(from: DateTime<Utc>, months: u32, tz: Tz) -> NaiveDate {
    let date = from.with_timezone(&tz).date_naive();
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// The expiry a seal gets from its type's default when the order names no date: through the
/// date `sealMonths` after sealing; `None` when the type's seals last until unsealed.
pub fn default_expiry(
    sealing: &SealingDefault,
    sealed_at: DateTime<Utc>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    sealing
        .seal_months
        .map(|m| expiry_of_date(months_later(sealed_at, m, tz), tz))
}

/// A renewal by `months` from the current expiry (Utah: six-month steps): through the date
/// `months` after the seal's last day.
pub fn renewal_expiry(current_expires_at: DateTime<Utc>, months: u32, tz: Tz) -> DateTime<Utc> {
    // The seal's last day is the one before the instant it ends.
    let last_instant = current_expires_at
        .checked_sub_signed(Duration::nanoseconds(1))
        .unwrap_or(current_expires_at);
    expiry_of_date(months_later(last_instant, months, tz), tz)
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::{Denver, Los_Angeles};

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sealed_until(expires_at: Option<DateTime<Utc>>) -> Seal {
        Seal::order(
            Role::Judge,
            "SO-2026-14",
            "ongoing investigation",
            SealOrigin::Application,
            utc("2026-01-10T17:00:00Z"),
            expires_at,
        )
        .unwrap()
    }

    #[test]
    fn a_seal_ends_before_the_year_10000_and_its_texts_are_bounded() {
        let at = utc("2026-01-10T17:00:00Z");
        let order = |reference: &str, reason: &str, expires_at| {
            Seal::order(
                Role::Judge,
                reference,
                reason,
                SealOrigin::Motion,
                at,
                expires_at,
            )
        };
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(matches!(
            order("SO-1", "r", Some(far)),
            Err(SealError::ExpiryTooFar)
        ));
        assert!(order("SO-1", "r", Some(utc("9999-12-31T23:59:59Z"))).is_ok());
        let long = "x".repeat(MAX_SEAL_TEXT_CHARS + 1);
        assert!(matches!(
            order(&long, "r", None),
            Err(SealError::TooLong("orderReference"))
        ));
        assert!(matches!(
            order("SO-1", &long, None),
            Err(SealError::TooLong("reason"))
        ));
        let mut seal = sealed_until(Some(utc("2026-07-10T06:00:00Z")));
        assert!(matches!(
            seal.renew(Role::Judge, at, "SO-2", far),
            Err(SealError::ExpiryTooFar)
        ));
        // A renewal by months from the latest expiry there is stays within the calendar (and
        // is then refused as too far, not a panic).
        let last = utc("9999-12-31T23:59:59Z");
        let renewed = renewal_expiry(last, 6, chrono_tz::Pacific::Guam);
        assert!(renewed > last);
        let mut seal = sealed_until(Some(utc("9999-06-30T06:00:00Z")));
        assert!(matches!(
            seal.renew(Role::Judge, at, "SO-3", renewed),
            Err(SealError::ExpiryTooFar)
        ));
    }

    #[test]
    fn only_judges_seal_and_only_some_roles_see_sealed_warrants() {
        for role in Role::AGENCY.into_iter().chain([Role::PlatformOperator]) {
            let result = Seal::order(
                role,
                "SO-1",
                "r",
                SealOrigin::Motion,
                utc("2026-01-10T17:00:00Z"),
                None,
            );
            assert_eq!(result.is_ok(), role == Role::Judge, "{role}");
            if let Err(e) = result {
                assert_eq!(e.status(), 403);
            }
        }
        let sees: Vec<Role> = Role::AGENCY
            .into_iter()
            .chain([Role::PlatformOperator])
            .filter(|r| may_see_sealed(*r))
            .collect();
        assert_eq!(sees, [Role::Prosecutor, Role::Judge, Role::AgencyAdmin]);
        assert!(may_read_warrant(Role::Officer, false));
        assert!(!may_read_warrant(Role::Officer, true));
        assert!(!may_read_warrant(Role::Supervisor, true));
        assert!(may_read_warrant(Role::Prosecutor, true));
        assert!(!may_read_warrant(Role::Auditor, false));
        assert!(!may_read_warrant(Role::PlatformOperator, false));
    }

    #[test]
    fn an_order_needs_a_reference_a_reason_and_a_later_expiry() {
        let at = utc("2026-01-10T17:00:00Z");
        let order =
            |r: &str, why: &str, e| Seal::order(Role::Judge, r, why, SealOrigin::Motion, at, e);
        assert_eq!(
            order(" ", "x", None),
            Err(SealError::Missing("orderReference"))
        );
        assert_eq!(order("SO-1", "", None), Err(SealError::Missing("reason")));
        assert_eq!(order("SO-1", "x", Some(at)), Err(SealError::ExpiryNotAfter));
        assert_eq!(order("SO-1", "x", Some(at)).unwrap_err().status(), 422);
    }

    #[test]
    fn a_seal_ends_at_its_expiry() {
        let expires = utc("2026-07-11T06:00:00Z");
        let seal = sealed_until(Some(expires));
        assert!(
            !seal.is_sealed_at(utc("2026-01-10T16:59:59Z")),
            "not before the order"
        );
        assert!(seal.is_sealed_at(utc("2026-01-10T17:00:00Z")));
        assert!(seal.is_sealed_at(expires - Duration::milliseconds(1)));
        assert!(!seal.is_sealed_at(expires));
        assert_eq!(seal.ends_at(), Some(expires));
        let open_ended = sealed_until(None);
        assert!(open_ended.is_sealed_at(utc("2036-01-01T00:00:00Z")));
        assert_eq!(open_ended.ends_at(), None);
    }

    #[test]
    fn a_renewal_before_the_lapse_extends_the_seal() {
        let first = utc("2026-07-11T06:00:00Z");
        let second = utc("2027-01-11T07:00:00Z");
        let mut seal = sealed_until(Some(first));
        let at = utc("2026-07-01T15:00:00Z");
        assert_eq!(
            seal.renew(Role::Judge, at, "SO-2026-88", first),
            Err(SealError::NotLater { current: first })
        );
        seal.renew(Role::Judge, at, "SO-2026-88", second).unwrap();
        assert!(seal.is_sealed_at(first));
        assert!(!seal.is_sealed_at(second));
        assert_eq!(seal.renewals.len(), 1);
        assert_eq!(seal.renewals[0].previous_expires_at, first);
        assert_eq!(seal.renewals[0].order_reference, "SO-2026-88");
    }

    #[test]
    fn a_lapsed_seal_is_not_renewed() {
        let first = utc("2026-07-11T06:00:00Z");
        let mut seal = sealed_until(Some(first));
        let err = seal
            .renew(Role::Judge, first, "SO-9", utc("2027-01-01T00:00:00Z"))
            .unwrap_err();
        assert_eq!(err, SealError::Lapsed { expired_at: first });
        assert_eq!(err.status(), 409);
        assert_eq!(
            sealed_until(None).renew(Role::Judge, first, "SO-9", utc("2027-01-01T00:00:00Z")),
            Err(SealError::NoExpiry)
        );
        assert_eq!(
            sealed_until(Some(first)).renew(Role::Prosecutor, first, "SO-9", first),
            Err(SealError::NotAJudge(Role::Prosecutor))
        );
    }

    #[test]
    fn unsealing_ends_the_seal_once() {
        let mut seal = sealed_until(None);
        let at = utc("2026-03-01T12:00:00Z");
        assert_eq!(
            seal.unseal(Role::AgencyAdmin, at, "UO-1", "charges filed"),
            Err(SealError::NotAJudge(Role::AgencyAdmin))
        );
        assert_eq!(
            seal.unseal(Role::Judge, at, "UO-1", ""),
            Err(SealError::Missing("reason"))
        );
        seal.unseal(Role::Judge, at, "UO-1", "charges filed")
            .unwrap();
        assert!(seal.is_sealed_at(at - Duration::seconds(1)));
        assert!(!seal.is_sealed_at(at));
        assert_eq!(seal.ends_at(), Some(at));
        assert_eq!(
            seal.unseal(Role::Judge, at, "UO-2", "again"),
            Err(SealError::AlreadyUnsealed(at))
        );
        assert_eq!(
            seal.renew(Role::Judge, at, "SO-3", utc("2030-01-01T00:00:00Z")),
            Err(SealError::AlreadyUnsealed(at))
        );
    }

    #[test]
    fn default_expiry_is_the_end_of_the_date_months_later_in_the_court_zone() {
        let six = SealingDefault {
            sealed_by_default: true,
            seal_months: Some(6),
        };
        // Sealed 10 January 2026 at 10:00 MST: the seal holds through 10 July (MDT).
        let sealed_at = utc("2026-01-10T17:00:00Z");
        assert_eq!(
            default_expiry(&six, sealed_at, Denver),
            Some(utc("2026-07-11T06:00:00Z"))
        );
        // 31 August + 6 months is 28 February (2027 is not a leap year).
        let aug31 = utc("2026-08-31T19:00:00Z");
        assert_eq!(
            months_later(aug31, 6, Los_Angeles),
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        );
        assert_eq!(
            default_expiry(&SealingDefault::default(), sealed_at, Denver),
            None
        );
    }

    #[test]
    fn renewal_steps_count_from_the_last_sealed_day() {
        // A seal through 10 July 2026 (Denver) renewed by six months holds through 10 January 2027.
        let current = utc("2026-07-11T06:00:00Z");
        assert_eq!(
            renewal_expiry(current, 6, Denver),
            utc("2027-01-11T07:00:00Z")
        );
    }
}
