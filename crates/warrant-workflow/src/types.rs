//! Warrant types and their jurisdiction rules, as data: the `warrant-types` agency policy holds,
//! for each court the agency applies to, the court's IANA time zone and its warrant types, each
//! with its execution window, daytime window, night-service rule, required fields, prosecutor
//! review mode, sealing default and tracking-device limits. Shipped presets: [`crate::presets`].
//!
//! Every value is validated before it is stored: unknown members are refused, and each error
//! names the JSON path of what is wrong (`courts[0].types[2].executionWindow.amount`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use writ_tenancy::{PolicyDef, PolicyName};

use crate::fields::WarrantField;

/// The agency policy that holds the courts' warrant types (`GET/PUT /v1/policies/warrant-types`).
pub const WARRANT_TYPES_POLICY: &str = "warrant-types";

/// The policies this crate owns. Changing `warrant-types` moves execution deadlines, and an
/// executed expired warrant is a warrantless search: it needs a recent second factor.
pub const POLICIES: &[PolicyDef] = &[PolicyDef {
    name: PolicyName::Exact(WARRANT_TYPES_POLICY),
    validate: |v| {
        WarrantTypesPolicy::from_value(v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    },
    // No court is assumed: a jurisdiction's rules are the agency's to choose (from a preset).
    default: |_| json!({ "courts": [] }),
    needs_step_up: true,
    description: "The courts the agency applies to, each with its IANA time zone and warrant types \
                  (execution window, daytime window, night service, required fields, prosecutor \
                  review, sealing default); presets in docs/WARRANT-TYPES.md",
}];

pub const MAX_COURTS: usize = 50;
pub const MAX_TYPES_PER_COURT: usize = 50;
pub const MAX_KEY_LEN: usize = 40;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_SOURCE_LEN: usize = 1000;
/// A year: no jurisdiction gives a search warrant longer, and a typo of 1400 days is caught.
pub const MAX_WINDOW_DAYS: u32 = 366;
pub const MAX_WINDOW_HOURS: u32 = MAX_WINDOW_DAYS * 24;
pub const MAX_SEAL_MONTHS: u32 = 120;
/// A month: a reminder earlier than that is noise.
pub const MAX_REMINDER_LEAD_HOURS: u32 = 720;
pub const DEFAULT_REMINDER_LEAD_HOURS: u32 = 24;

/// What a warrant authorises. `custom` is any other kind a court defines (e.g. a DNA swab).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarrantKind {
    Search,
    Arrest,
    BloodDraw,
    TrackingDevice,
    /// Electronically stored information, usually served on a provider.
    ElectronicRecords,
    Custom,
}

impl WarrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarrantKind::Search => "search",
            WarrantKind::Arrest => "arrest",
            WarrantKind::BloodDraw => "blood_draw",
            WarrantKind::TrackingDevice => "tracking_device",
            WarrantKind::ElectronicRecords => "electronic_records",
            WarrantKind::Custom => "custom",
        }
    }

    /// Kinds that are searches under the Fourth Amendment and so always carry a statutory
    /// execution window; an arrest warrant stays valid until executed or recalled, and a custom
    /// kind says for itself.
    pub fn needs_window(self) -> bool {
        matches!(
            self,
            WarrantKind::Search
                | WarrantKind::BloodDraw
                | WarrantKind::TrackingDevice
                | WarrantKind::ElectronicRecords
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Hours,
    Days,
}

/// How an execution window is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCounting {
    /// The day of issue is day 0 (it is excluded, the last day included — FRCrP 45(a)(1) and the
    /// states' computation statutes); the window closes at the end of day N in the court's time
    /// zone. Days only.
    EndOfLastDay,
    /// Counted from the instant of issue: N hours of elapsed time, or N calendar days later at
    /// the same local clock time.
    FromIssueInstant,
}

/// How long after issue a warrant may be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionWindow {
    pub amount: u32,
    pub unit: TimeUnit,
    pub counting: DayCounting,
}

impl ExecutionWindow {
    pub const fn days_end_of_last_day(amount: u32) -> Self {
        Self {
            amount,
            unit: TimeUnit::Days,
            counting: DayCounting::EndOfLastDay,
        }
    }

    pub const fn hours(amount: u32) -> Self {
        Self {
            amount,
            unit: TimeUnit::Hours,
            counting: DayCounting::FromIssueInstant,
        }
    }
}

impl fmt::Display for ExecutionWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.unit, self.counting) {
            (TimeUnit::Hours, _) => write!(f, "{} hours from the issue instant", self.amount),
            (TimeUnit::Days, DayCounting::EndOfLastDay) => {
                write!(
                    f,
                    "{} days, issue day = day 0, to the end of day {}",
                    self.amount, self.amount
                )
            }
            (TimeUnit::Days, DayCounting::FromIssueInstant) => {
                write!(f, "{} days from the issue instant", self.amount)
            }
        }
    }
}

/// A local wall-clock time of day, `HH:MM` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime {
    hour: u8,
    minute: u8,
}

impl ClockTime {
    /// `None` unless 00:00 ≤ time ≤ 23:59.
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if hour < 24 && minute < 60 {
            Some(Self { hour, minute })
        } else {
            None
        }
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }

    pub fn to_naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(u32::from(self.hour), u32::from(self.minute), 0)
            .unwrap_or(NaiveTime::MIN)
    }
}

impl FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day as HH:MM (00:00 to 23:59)");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        ClockTime::new(hour, minute).ok_or_else(bad)
    }
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ClockTime> for String {
    fn from(t: ClockTime) -> String {
        t.to_string()
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// The local hours in which a warrant may be executed without night authority: from `start`
/// (included) to `end` (excluded), in the court's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaytimeWindow {
    pub start: ClockTime,
    pub end: ClockTime,
}

impl DaytimeWindow {
    /// `None` unless `start` is before `end` (a window never spans midnight).
    pub const fn new(start: (u8, u8), end: (u8, u8)) -> Option<Self> {
        match (
            ClockTime::new(start.0, start.1),
            ClockTime::new(end.0, end.1),
        ) {
            (Some(s), Some(e)) if s.hour < e.hour || (s.hour == e.hour && s.minute < e.minute) => {
                Some(Self { start: s, end: e })
            }
            _ => None,
        }
    }

    pub fn contains(&self, t: NaiveTime) -> bool {
        self.start.to_naive() <= t && t < self.end.to_naive()
    }
}

impl fmt::Display for DaytimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.start, self.end)
    }
}

/// Whether a prosecutor reviews before the judge (DOMAIN: required in some counties, "not legally
/// necessary" in others). AI-assisted affidavits need the prosecutor whatever the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProsecutorReview {
    Required,
    /// The supervisor chooses, when approving, whether the prosecutor sees it.
    Optional,
    Skipped,
}

impl ProsecutorReview {
    pub fn as_str(self) -> &'static str {
        match self {
            ProsecutorReview::Required => "required",
            ProsecutorReview::Optional => "optional",
            ProsecutorReview::Skipped => "skipped",
        }
    }
}

/// Whether an application of this type asks to be sealed, and how long a seal lasts when the
/// order names no date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealingDefault {
    pub sealed_by_default: bool,
    /// `null`: a seal lasts until a judge unseals it.
    #[serde(default)]
    pub seal_months: Option<u32>,
}

/// Tracking-device limits beyond the execution window, which for a tracking device is the
/// installation window (FRCrP 41(e)(2)(C): installed within 10 days, used ≤ 45 days from issue,
/// extensions ≤ 45 days each). Days count as the type's execution window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackingDeviceRules {
    /// The longest use a judge may authorise, in days from issue; `null`: as the warrant says.
    #[serde(default)]
    pub max_use_days: Option<u32>,
    /// The longest single extension, in days; `null`: as the extension says.
    #[serde(default)]
    pub max_extension_days: Option<u32>,
}

impl TrackingDeviceRules {
    /// The most days of use a warrant may authorise: a first one from issue, or an extension.
    pub fn max_days(&self, extension: bool) -> Option<u32> {
        if extension {
            self.max_extension_days
        } else {
            self.max_use_days
        }
    }
}

/// The court's rules on the remote oath (docs/VIDEO-OATH.md). Both default to `false`, so a
/// policy written before these rules existed reads as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OathRules {
    /// Issuing needs an oath record from a Writ video session (administered after the last
    /// submission), e.g. FRCrP 4.1(b)(2)(A) for applications by reliable electronic means.
    #[serde(default)]
    pub required: bool,
    /// The judge must attest being within the court's jurisdiction when administering the oath
    /// (e.g. Ga. Code 17-5-21.1).
    #[serde(default)]
    pub judge_in_jurisdiction: bool,
}

impl OathRules {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads a member that must be present but may be `null` (serde would take a missing `Option`
/// as `None`: a forgotten `executionWindow` must not silently mean "no deadline").
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// One kind of warrant a court issues, with its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarrantType {
    /// Unique in the court: lowercase letters, digits and `-` (e.g. `blood-draw`).
    pub key: String,
    pub name: String,
    pub kind: WarrantKind,
    /// `null`: no deadline (arrest warrants stay valid until executed or recalled).
    #[serde(deserialize_with = "present")]
    pub execution_window: Option<ExecutionWindow>,
    /// `null`: any hour.
    #[serde(deserialize_with = "present")]
    pub daytime: Option<DaytimeWindow>,
    /// Whether the judge may authorise execution outside the daytime window.
    pub night_service_authorizable: bool,
    pub required_fields: Vec<WarrantField>,
    pub prosecutor_review: ProsecutorReview,
    #[serde(default)]
    pub sealing: SealingDefault,
    /// Present exactly for `tracking_device` types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<TrackingDeviceRules>,
    /// What the court requires of the oath before issue (absent: nothing beyond the affidavit).
    #[serde(default, skip_serializing_if = "OathRules::is_default")]
    pub oath: OathRules,
    /// Where the rules come from (statute, court rule), shown to users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl WarrantType {
    /// Whether a night-service authority on a warrant of this type counts: a judge cannot grant
    /// what the type does not allow.
    pub fn night_authority_effective(&self, night_authorized: bool) -> bool {
        night_authorized && self.night_service_authorizable
    }
}

/// One court's warrant types and the time zone its deadlines are counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarrantTypes {
    /// Unique in the agency: lowercase letters, digits and `-` (e.g. `d-minn`).
    pub court: String,
    pub name: String,
    /// IANA name, e.g. `America/Chicago`.
    pub time_zone: Tz,
    /// How long before an execution deadline the author is reminded.
    #[serde(default = "default_reminder_lead_hours")]
    pub reminder_lead_hours: u32,
    pub types: Vec<WarrantType>,
}

fn default_reminder_lead_hours() -> u32 {
    DEFAULT_REMINDER_LEAD_HOURS
}

impl WarrantTypes {
    pub fn get(&self, key: &str) -> Option<&WarrantType> {
        self.types.iter().find(|t| t.key == key)
    }

    pub fn reminder_lead(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.reminder_lead_hours))
    }

    /// Every problem of this court's set, paths under `base` (e.g. `courts[0]`).
    pub fn problems(&self, base: &str) -> Vec<PolicyError> {
        let mut out = Vec::new();
        let at = |suffix: &str| join(base, suffix);
        check_key(&self.court, &at("court"), &mut out);
        check_name(&self.name, &at("name"), &mut out);
        if !(1..=MAX_REMINDER_LEAD_HOURS).contains(&self.reminder_lead_hours) {
            out.push(PolicyError::new(
                at("reminderLeadHours"),
                format!("must be from 1 to {MAX_REMINDER_LEAD_HOURS} hours"),
            ));
        }
        if self.types.is_empty() {
            out.push(PolicyError::new(
                at("types"),
                "a court needs at least one warrant type",
            ));
        }
        if self.types.len() > MAX_TYPES_PER_COURT {
            out.push(PolicyError::new(
                at("types"),
                format!("at most {MAX_TYPES_PER_COURT} types per court"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, t) in self.types.iter().enumerate() {
            let base = at(&format!("types[{i}]"));
            if !seen.insert(t.key.as_str()) {
                out.push(PolicyError::new(
                    join(&base, "key"),
                    format!("duplicate type key {:?}", t.key),
                ));
            }
            type_problems(t, &base, &mut out);
        }
        out
    }
}

/// The `warrant-types` policy value: every court the agency applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarrantTypesPolicy {
    pub courts: Vec<WarrantTypes>,
}

impl WarrantTypesPolicy {
    /// Reads and validates a policy value: the first shape error, or every rule broken.
    pub fn from_value(value: &Value) -> Result<Self, PolicyErrors> {
        let policy: WarrantTypesPolicy = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = match e.path().to_string() {
                p if p == "." => "value".to_owned(),
                p => p,
            };
            PolicyErrors(vec![PolicyError::new(path, e.into_inner().to_string())])
        })?;
        let problems = policy.problems();
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(PolicyErrors(problems))
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn court(&self, court: &str) -> Option<&WarrantTypes> {
        self.courts.iter().find(|c| c.court == court)
    }

    pub fn problems(&self) -> Vec<PolicyError> {
        let mut out = Vec::new();
        if self.courts.len() > MAX_COURTS {
            out.push(PolicyError::new(
                "courts",
                format!("at most {MAX_COURTS} courts"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.courts.iter().enumerate() {
            let base = format!("courts[{i}]");
            if !seen.insert(c.court.as_str()) {
                out.push(PolicyError::new(
                    join(&base, "court"),
                    format!("duplicate court {:?}", c.court),
                ));
            }
            out.extend(c.problems(&base));
        }
        out
    }
}

fn join(base: &str, suffix: &str) -> String {
    if base.is_empty() {
        suffix.to_owned()
    } else {
        format!("{base}.{suffix}")
    }
}

fn check_key(key: &str, path: &str, out: &mut Vec<PolicyError>) {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        out.push(PolicyError::new(
            path,
            format!(
                "{key:?}: a key is 1 to {MAX_KEY_LEN} lowercase letters, digits or '-', \
                 starting with a letter"
            ),
        ));
    }
}

fn check_name(name: &str, path: &str, out: &mut Vec<PolicyError>) {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN {
        out.push(PolicyError::new(
            path,
            format!("a name is 1 to {MAX_NAME_LEN} characters"),
        ));
    }
}

fn type_problems(t: &WarrantType, base: &str, out: &mut Vec<PolicyError>) {
    let at = |suffix: &str| join(base, suffix);
    check_key(&t.key, &at("key"), out);
    check_name(&t.name, &at("name"), out);
    match t.execution_window {
        None if t.kind.needs_window() => out.push(PolicyError::new(
            at("executionWindow"),
            format!("a {} warrant needs an execution window", t.kind.as_str()),
        )),
        None => {}
        Some(w) => {
            let max = match w.unit {
                TimeUnit::Hours => MAX_WINDOW_HOURS,
                TimeUnit::Days => MAX_WINDOW_DAYS,
            };
            if !(1..=max).contains(&w.amount) {
                out.push(PolicyError::new(
                    at("executionWindow.amount"),
                    format!("must be from 1 to {max}"),
                ));
            }
            if w.unit == TimeUnit::Hours && w.counting == DayCounting::EndOfLastDay {
                out.push(PolicyError::new(
                    at("executionWindow.counting"),
                    "a window in hours counts from the issue instant (from_issue_instant)",
                ));
            }
        }
    }
    if let Some(d) = t.daytime
        && d.start >= d.end
    {
        out.push(PolicyError::new(
            at("daytime"),
            format!("start {} must be before end {}", d.start, d.end),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in t.required_fields.iter().enumerate() {
        if !seen.insert(*f) {
            out.push(PolicyError::new(
                at(&format!("requiredFields[{i}]")),
                format!("{f} is listed twice"),
            ));
        }
    }
    if let Some(m) = t.sealing.seal_months
        && !(1..=MAX_SEAL_MONTHS).contains(&m)
    {
        out.push(PolicyError::new(
            at("sealing.sealMonths"),
            format!("must be from 1 to {MAX_SEAL_MONTHS} months, or null"),
        ));
    }
    match (&t.tracking, t.kind) {
        (None, WarrantKind::TrackingDevice) => out.push(PolicyError::new(
            at("tracking"),
            "a tracking_device type needs tracking rules ({\"maxUseDays\": …, \"maxExtensionDays\": …})",
        )),
        (Some(_), k) if k != WarrantKind::TrackingDevice => out.push(PolicyError::new(
            at("tracking"),
            "tracking rules belong to tracking_device types only",
        )),
        (Some(r), _) => {
            for (name, v) in [
                ("tracking.maxUseDays", r.max_use_days),
                ("tracking.maxExtensionDays", r.max_extension_days),
            ] {
                if let Some(v) = v
                    && !(1..=MAX_WINDOW_DAYS).contains(&v)
                {
                    out.push(PolicyError::new(
                        at(name),
                        format!("must be from 1 to {MAX_WINDOW_DAYS} days, or null"),
                    ));
                }
            }
        }
        (None, _) => {}
    }
    if let Some(s) = &t.source
        && s.chars().count() > MAX_SOURCE_LEN
    {
        out.push(PolicyError::new(
            at("source"),
            format!("at most {MAX_SOURCE_LEN} characters"),
        ));
    }
}

/// One thing wrong with a policy value, at a JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

impl PolicyError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything wrong with a policy value (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyErrors(pub Vec<PolicyError>);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::presets::Preset;

    fn federal_court() -> Value {
        let court = Preset::Federal.court(
            "d-minn",
            "U.S. District Court, D. Minn.",
            chrono_tz::America::Chicago,
        );
        json!({ "courts": [court] })
    }

    fn first_error(value: &Value) -> PolicyError {
        let errors = WarrantTypesPolicy::from_value(value).unwrap_err();
        errors.0.into_iter().next().unwrap()
    }

    #[test]
    fn the_default_value_is_valid_and_empty() {
        let def = &POLICIES[0];
        let value = (def.default)(WARRANT_TYPES_POLICY);
        assert_eq!((def.validate)(&value), Ok(()));
        assert_eq!(
            WarrantTypesPolicy::from_value(&value).unwrap().courts,
            vec![]
        );
        assert!(def.needs_step_up);
    }

    #[test]
    fn a_preset_reads_back_with_its_rules() {
        let policy = WarrantTypesPolicy::from_value(&federal_court()).unwrap();
        let court = policy.court("d-minn").unwrap();
        assert_eq!(court.time_zone, chrono_tz::America::Chicago);
        assert_eq!(court.reminder_lead(), chrono::Duration::hours(24));
        let search = court.get("search").unwrap();
        assert_eq!(
            search.execution_window,
            Some(ExecutionWindow::days_end_of_last_day(14))
        );
        assert_eq!(search.daytime.unwrap().to_string(), "06:00–22:00");
        assert!(court.get("nope").is_none());
        assert!(policy.court("nope").is_none());
    }

    #[test]
    fn the_wire_shape() {
        let value = federal_court();
        let search = &value["courts"][0]["types"][0];
        assert_eq!(value["courts"][0]["timeZone"], json!("America/Chicago"));
        assert_eq!(
            search["executionWindow"],
            json!({"amount": 14, "unit": "days", "counting": "end_of_last_day"})
        );
        assert_eq!(search["daytime"], json!({"start": "06:00", "end": "22:00"}));
        assert_eq!(
            search["requiredFields"],
            json!(["place", "itemsSought", "offense", "affidavit"])
        );
        assert_eq!(search["prosecutorReview"], json!("required"));
        assert_eq!(
            search["sealing"],
            json!({"sealedByDefault": false, "sealMonths": null})
        );
        assert_eq!(
            value["courts"][0]["types"][1]["executionWindow"],
            Value::Null
        );
    }

    #[test]
    fn unknown_members_are_refused_with_their_path() {
        let mut value = federal_court();
        value["courts"][0]["types"][1]["nightService"] = json!(true);
        let e = first_error(&value);
        assert_eq!(e.path, "courts[0].types[1].nightService");
        assert!(e.message.contains("unknown field `nightService`"), "{e}");

        let mut value = federal_court();
        value["courts"][0]["types"][0]["executionWindow"]["days"] = json!(3);
        assert_eq!(
            first_error(&value).path,
            "courts[0].types[0].executionWindow.days"
        );
    }

    #[test]
    fn shape_errors_name_their_path() {
        type Case = (fn(&mut Value), &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                |v| v["courts"][0]["timeZone"] = json!("Mars/Olympus_Mons"),
                "courts[0].timeZone",
                "",
            ),
            (
                |v| v["courts"][0]["types"][0]["daytime"]["start"] = json!("25:00"),
                "courts[0].types[0].daytime.start",
                "HH:MM",
            ),
            (
                |v| v["courts"][0]["types"][0]["daytime"]["end"] = json!("6pm"),
                "courts[0].types[0].daytime.end",
                "HH:MM",
            ),
            (
                |v| v["courts"][0]["types"][2]["executionWindow"]["unit"] = json!("weeks"),
                "courts[0].types[2].executionWindow.unit",
                "unknown variant `weeks`",
            ),
            (
                |v| v["courts"][0]["types"][3]["requiredFields"][1] = json!("suspectName"),
                "courts[0].types[3].requiredFields[1]",
                "unknown variant `suspectName`",
            ),
            (
                |v| v["courts"][0]["types"][0]["prosecutorReview"] = json!("sometimes"),
                "courts[0].types[0].prosecutorReview",
                "unknown variant",
            ),
            (
                |v| v["courts"][0]["types"][0]["executionWindow"]["amount"] = json!(-1),
                "courts[0].types[0].executionWindow.amount",
                "",
            ),
        ];
        for (edit, path, needle) in cases {
            let mut value = federal_court();
            edit(&mut value);
            let e = first_error(&value);
            assert_eq!(e.path, path, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
    }

    #[test]
    fn a_forgotten_window_is_not_taken_as_no_deadline() {
        let mut value = federal_court();
        value["courts"][0]["types"][1]
            .as_object_mut()
            .unwrap()
            .remove("executionWindow");
        let e = first_error(&value);
        assert_eq!(e.path, "courts[0].types[1]");
        assert!(e.message.contains("missing field `executionWindow`"), "{e}");
        // An explicit null is allowed for an arrest warrant (index 1) …
        value["courts"][0]["types"][1]["executionWindow"] = Value::Null;
        assert!(WarrantTypesPolicy::from_value(&value).is_ok());
        // … not for a search warrant.
        value["courts"][0]["types"][0]["executionWindow"] = Value::Null;
        let e = first_error(&value);
        assert_eq!(e.path, "courts[0].types[0].executionWindow");
        assert!(
            e.message
                .contains("a search warrant needs an execution window"),
            "{e}"
        );
    }

    #[test]
    fn the_root_must_be_an_object() {
        assert_eq!(first_error(&json!([])).path, "value");
        assert_eq!(first_error(&json!({})).path, "value");
    }

    #[test]
    fn every_rule_broken_is_listed_with_its_path() {
        let mut value = federal_court();
        {
            let court = &mut value["courts"][0];
            court["court"] = json!("D Minn");
            court["reminderLeadHours"] = json!(0);
            let types = &mut court["types"];
            types[1]["key"] = json!("search");
            types[0]["executionWindow"] =
                json!({"amount": 0, "unit": "days", "counting": "end_of_last_day"});
            types[2]["executionWindow"] =
                json!({"amount": 240, "unit": "hours", "counting": "end_of_last_day"});
            types[2]["daytime"] = json!({"start": "22:00", "end": "06:00"});
            types[2]["requiredFields"] = json!(["subject", "offense", "subject"]);
            types[2]["sealing"] = json!({"sealedByDefault": true, "sealMonths": 0});
            types[2]["tracking"] = json!({"maxUseDays": 45});
            types[3].as_object_mut().unwrap().remove("tracking");
            types[4]["executionWindow"] =
                json!({"amount": 400, "unit": "days", "counting": "end_of_last_day"});
            types[4]["name"] = json!(" ");
        }
        let errors = WarrantTypesPolicy::from_value(&value).unwrap_err();
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "courts[0].court",
                "courts[0].reminderLeadHours",
                "courts[0].types[0].executionWindow.amount",
                "courts[0].types[1].key",
                "courts[0].types[2].executionWindow.counting",
                "courts[0].types[2].daytime",
                "courts[0].types[2].requiredFields[2]",
                "courts[0].types[2].sealing.sealMonths",
                "courts[0].types[2].tracking",
                "courts[0].types[3].tracking",
                "courts[0].types[4].name",
                "courts[0].types[4].executionWindow.amount",
            ],
            "{errors}"
        );
        // The policy registry's validator reports the same, as one message.
        let message = (POLICIES[0].validate)(&value).unwrap_err();
        assert!(
            message.contains("courts[0].types[1].key: duplicate type key \"search\""),
            "{message}"
        );
    }

    #[test]
    fn duplicate_courts_and_empty_courts_are_refused() {
        let court = Preset::Kansas.court(
            "ks-3rd",
            "Third Judicial District",
            chrono_tz::America::Chicago,
        );
        let mut empty = court.clone();
        empty.court = "ks-empty".into();
        empty.types.clear();
        let policy = WarrantTypesPolicy {
            courts: vec![court.clone(), court, empty],
        };
        let paths: Vec<String> = policy.problems().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["courts[1].court", "courts[2].types"]);
    }

    #[test]
    fn clock_times() {
        assert_eq!("06:00".parse::<ClockTime>().unwrap().to_string(), "06:00");
        assert_eq!(
            "23:59".parse::<ClockTime>(),
            Ok(ClockTime::new(23, 59).unwrap())
        );
        for bad in ["24:00", "6:00", "06:60", "0600", "06:00:00", "", "ab:cd"] {
            assert!(bad.parse::<ClockTime>().is_err(), "{bad}");
        }
        let w = DaytimeWindow::new((6, 0), (22, 0)).unwrap();
        assert!(w.contains(NaiveTime::from_hms_opt(6, 0, 0).unwrap()));
        assert!(!w.contains(NaiveTime::from_hms_opt(22, 0, 0).unwrap()));
        assert!(DaytimeWindow::new((22, 0), (6, 0)).is_none());
    }
}
