//! Shipped jurisdiction presets: federal (FRCrP 41), Kansas, California, Maryland and
//! Minnesota, each with search, arrest, blood-draw, tracking-device and electronic-records types.
//! An agency picks one per court, sets the court's time zone, and may edit any value: the policy
//! stores plain data, never a reference to a preset. docs/WARRANT-TYPES.md lists every value with
//! its source ([`markdown_table`] generates that table; a test keeps the file in step).
//!
//! Values not taken from a cited rule are marked "preset choice" in the `source` text; they err
//! on the strict side (a shorter or narrower window, prosecutor review on), since an executed
//! expired warrant is a warrantless search.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::fields::WarrantField::{self, *};
use crate::types::{
    DaytimeWindow, ExecutionWindow, OathRules, ProsecutorReview, SealingDefault,
    TrackingDeviceRules, WarrantKind, WarrantType, WarrantTypes,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Federal,
    Kansas,
    California,
    Maryland,
    Minnesota,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Federal,
        Preset::Kansas,
        Preset::California,
        Preset::Maryland,
        Preset::Minnesota,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Preset::Federal => "federal",
            Preset::Kansas => "kansas",
            Preset::California => "california",
            Preset::Maryland => "maryland",
            Preset::Minnesota => "minnesota",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Preset::Federal => "Federal (FRCrP 41)",
            Preset::Kansas => "Kansas",
            Preset::California => "California",
            Preset::Maryland => "Maryland",
            Preset::Minnesota => "Minnesota",
        }
    }

    /// The state's time zone where it has one that covers most courts. Federal districts, and
    /// Kansas's four Mountain-time counties, need the court's own zone.
    pub fn suggested_time_zone(self) -> Option<Tz> {
        match self {
            Preset::Federal => None,
            Preset::Kansas | Preset::Minnesota => Some(chrono_tz::America::Chicago),
            Preset::California => Some(chrono_tz::America::Los_Angeles),
            Preset::Maryland => Some(chrono_tz::America::New_York),
        }
    }

    /// The preset's types for one court.
    pub fn court(self, court: &str, name: &str, time_zone: Tz) -> WarrantTypes {
        WarrantTypes {
            court: court.to_owned(),
            name: name.to_owned(),
            time_zone,
            reminder_lead_hours: crate::types::DEFAULT_REMINDER_LEAD_HOURS,
            types: self.types(),
        }
    }

    pub fn types(self) -> Vec<WarrantType> {
        match self {
            // FRCrP 4.1(b)(2)(A): on an application by reliable electronic means the judge
            // must place the applicant under oath. The states' presets accept an affidavit
            // sworn by electronic signature (verify with the court; docs/WARRANT-TYPES.md).
            Preset::Federal => federal()
                .into_iter()
                .map(|t| WarrantType {
                    oath: OathRules {
                        required: true,
                        judge_in_jurisdiction: false,
                    },
                    ..t
                })
                .collect(),
            Preset::Kansas => kansas(),
            Preset::California => california(),
            Preset::Maryland => maryland(),
            Preset::Minnesota => minnesota(),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.key() == s)
            .ok_or_else(|| {
                format!(
                    "unknown preset {s:?}; one of federal, kansas, california, maryland, minnesota"
                )
            })
    }
}

const SEARCH_FIELDS: &[WarrantField] = &[Place, ItemsSought, Offense, Affidavit];
const ARREST_FIELDS: &[WarrantField] = &[Subject, Offense, Affidavit];
const BLOOD_FIELDS: &[WarrantField] = &[Subject, Offense, Affidavit];
const TRACKING_FIELDS: &[WarrantField] = &[TrackedObject, Offense, Affidavit];
const RECORDS_FIELDS: &[WarrantField] = &[
    RecordsHolder,
    Accounts,
    ItemsSought,
    TimeRange,
    Offense,
    Affidavit,
];

const ARREST_SOURCE: &str = "No execution deadline: an arrest warrant stays valid until executed \
                             or recalled (FRCrP 4; the states likewise). No daytime limit.";

struct Rules {
    window: Option<ExecutionWindow>,
    daytime: Option<DaytimeWindow>,
    night: bool,
    review: ProsecutorReview,
    sealed: bool,
    tracking: Option<TrackingDeviceRules>,
}

fn ty(
    key: &str,
    name: &str,
    kind: WarrantKind,
    fields: &[WarrantField],
    rules: Rules,
    source: &str,
) -> WarrantType {
    WarrantType {
        key: key.to_owned(),
        name: name.to_owned(),
        kind,
        execution_window: rules.window,
        daytime: rules.daytime,
        night_service_authorizable: rules.night,
        required_fields: fields.to_vec(),
        prosecutor_review: rules.review,
        sealing: SealingDefault {
            sealed_by_default: rules.sealed,
            seal_months: None,
        },
        tracking: rules.tracking,
        oath: OathRules::default(),
        source: Some(source.to_owned()),
    }
}

fn daytime(start: u8, end: u8) -> Option<DaytimeWindow> {
    DaytimeWindow::new((start, 0), (end, 0))
}

fn arrest(review: ProsecutorReview) -> WarrantType {
    ty(
        "arrest",
        "Arrest warrant",
        WarrantKind::Arrest,
        ARREST_FIELDS,
        Rules {
            window: None,
            daytime: None,
            night: false,
            review,
            sealed: false,
            tracking: None,
        },
        ARREST_SOURCE,
    )
}

/// The five types of a state whose search, blood-draw and electronic-records warrants share
/// one window; only the tracking device differs.
struct State {
    window: ExecutionWindow,
    daytime: Option<DaytimeWindow>,
    search_source: &'static str,
    blood_source: &'static str,
    records_daytime: Option<DaytimeWindow>,
    records_source: &'static str,
    tracking_window: ExecutionWindow,
    tracking_daytime: Option<DaytimeWindow>,
    tracking: TrackingDeviceRules,
    tracking_sealed: bool,
    tracking_source: &'static str,
    review: ProsecutorReview,
}

fn state_types(s: State) -> Vec<WarrantType> {
    let general = |daytime: Option<DaytimeWindow>| Rules {
        window: Some(s.window),
        daytime,
        night: daytime.is_some(),
        review: s.review,
        sealed: false,
        tracking: None,
    };
    vec![
        ty(
            "search",
            "Search warrant",
            WarrantKind::Search,
            SEARCH_FIELDS,
            general(s.daytime),
            s.search_source,
        ),
        arrest(s.review),
        ty(
            "blood-draw",
            "Blood draw",
            WarrantKind::BloodDraw,
            BLOOD_FIELDS,
            general(s.daytime),
            s.blood_source,
        ),
        ty(
            "tracking-device",
            "Tracking device",
            WarrantKind::TrackingDevice,
            TRACKING_FIELDS,
            Rules {
                window: Some(s.tracking_window),
                daytime: s.tracking_daytime,
                night: s.tracking_daytime.is_some(),
                review: s.review,
                sealed: s.tracking_sealed,
                tracking: Some(s.tracking),
            },
            s.tracking_source,
        ),
        ty(
            "electronic-records",
            "Electronic records (ESI)",
            WarrantKind::ElectronicRecords,
            RECORDS_FIELDS,
            general(s.records_daytime),
            s.records_source,
        ),
    ]
}

fn federal() -> Vec<WarrantType> {
    state_types(State {
        window: ExecutionWindow::days_end_of_last_day(14),
        daytime: daytime(6, 22),
        search_source: "FRCrP 41(e)(2)(A)(i): executed within 14 days; 41(e)(2)(A)(ii) and \
                        41(a)(2)(B): in the daytime, 6:00 a.m. to 10:00 p.m. local time, unless \
                        the judge for good cause expressly authorizes another time; FRCrP \
                        45(a)(1): the day of issue is excluded, the last day included. \
                        Prosecutor review required: preset choice (federal applications go \
                        through an AUSA).",
        blood_source: "A search warrant for a blood sample: FRCrP 41(e)(2)(A) as for search \
                       (14 days; daytime 06:00–22:00 unless authorized). Judges usually \
                       authorize night service for blood draws; the issue records it.",
        records_daytime: None,
        records_source: "FRCrP 41(e)(2)(A)-(B): 14 days, which refer to the seizure or on-site \
                         copying, not to later review. Served on a provider (18 U.S.C. § \
                         2703(g)), so no daytime window: preset choice.",
        tracking_window: ExecutionWindow::days_end_of_last_day(10),
        tracking_daytime: daytime(6, 22),
        tracking: TrackingDeviceRules {
            max_use_days: Some(45),
            max_extension_days: Some(45),
        },
        tracking_sealed: false,
        tracking_source: "FRCrP 41(e)(2)(C): installed within 10 days, in the daytime unless \
                          the judge authorizes another time; used for at most 45 days from \
                          issue; extensions of at most 45 days each.",
        review: ProsecutorReview::Required,
    })
}

fn kansas() -> Vec<WarrantType> {
    state_types(State {
        window: ExecutionWindow::hours(240),
        daytime: None,
        search_source: "K.S.A. 22-2506(a): executed within 240 hours from the time of issuance, \
                        void after (counted from the instant of issue). No daytime window in \
                        the preset (verify K.S.A. 22-2510 with the court).",
        blood_source: "K.S.A. 22-2506(a) as for search: 240 hours from the time of issuance.",
        records_daytime: None,
        records_source: "K.S.A. 22-2506(a) as for search: 240 hours from the time of issuance.",
        tracking_window: ExecutionWindow::days_end_of_last_day(15),
        tracking_daytime: None,
        tracking: TrackingDeviceRules {
            max_use_days: None,
            max_extension_days: None,
        },
        tracking_sealed: true,
        tracking_source: "K.S.A. 22-2506(b): sealed by the court; installed within 15 days from \
                          the date of issuance (issue day = day 0: preset choice). Use period as \
                          the warrant specifies (verify K.S.A. 22-2502).",
        review: ProsecutorReview::Optional,
    })
}

fn california() -> Vec<WarrantType> {
    state_types(State {
        window: ExecutionWindow::days_end_of_last_day(10),
        daytime: daytime(7, 22),
        search_source: "Cal. Penal Code § 1534(a): executed within 10 days after issuance, void \
                        after; Code Civ. Proc. § 12: the first day excluded, the last included; \
                        § 1533: served 7 a.m.–10 p.m. unless the magistrate, for good cause, \
                        directs service at any time.",
        blood_source: "Cal. Penal Code §§ 1533, 1534(a) as for search (10 days; 07:00–22:00 \
                       unless night service is directed).",
        records_daytime: None,
        records_source: "Cal. Penal Code § 1534(a): 10 days. Served on a provider, so no \
                         daytime window: preset choice.",
        tracking_window: ExecutionWindow::days_end_of_last_day(10),
        tracking_daytime: daytime(6, 22),
        tracking: TrackingDeviceRules {
            max_use_days: Some(30),
            max_extension_days: Some(30),
        },
        tracking_sealed: false,
        tracking_source: "Cal. Penal Code § 1534(b): installed within 10 days of issuance, in \
                          the daytime (6 a.m.–10 p.m. for installations) unless the magistrate \
                          authorizes another time; used at most 30 days from issue; extensions \
                          of at most 30 days each.",
        review: ProsecutorReview::Optional,
    })
}

fn maryland() -> Vec<WarrantType> {
    state_types(State {
        window: ExecutionWindow::days_end_of_last_day(10),
        daytime: None,
        search_source: "Md. Code, Crim. Proc. § 1-203(a): executed within 10 days; Md. Rule \
                        4-601: unexecuted warrants returned after 10 days; the day of issue is \
                        day zero (86 Op. Att'y Gen. 148 (2001)). No daytime window in the preset \
                        (verify with the court).",
        blood_source: "Md. Code, Crim. Proc. § 1-203(a) as for search: 10 days.",
        records_daytime: None,
        records_source: "Md. Code, Crim. Proc. § 1-203(a) as for search: 10 days.",
        tracking_window: ExecutionWindow::days_end_of_last_day(10),
        tracking_daytime: None,
        tracking: TrackingDeviceRules {
            max_use_days: None,
            max_extension_days: None,
        },
        tracking_sealed: false,
        tracking_source: "Installed within the 10-day window of § 1-203(a). Use period as the \
                          warrant specifies (verify Md. Code, Crim. Proc. § 1-203.1, location \
                          information orders).",
        review: ProsecutorReview::Optional,
    })
}

fn minnesota() -> Vec<WarrantType> {
    state_types(State {
        window: ExecutionWindow::days_end_of_last_day(10),
        daytime: daytime(7, 20),
        search_source: "Minn. Stat. § 626.15(a): executed within ten days after its date, void \
                        after; § 645.15: the first day excluded, the last included; § 626.14: \
                        served 7:00 a.m.–8:00 p.m. unless the court authorizes a nighttime \
                        search; Minn. R. Crim. P. 36.08: the exact execution time is recorded.",
        blood_source: "Minn. Stat. §§ 626.14, 626.15 as for search (10 days; 07:00–20:00 unless \
                       a nighttime search is authorized).",
        records_daytime: None,
        records_source: "Minn. Stat. § 626.15(a): 10 days (financial-institution records: 30 \
                         days under § 626.15(b) — make a custom type). Served on a provider, so \
                         no daytime window: preset choice.",
        tracking_window: ExecutionWindow::days_end_of_last_day(10),
        tracking_daytime: daytime(7, 20),
        tracking: TrackingDeviceRules {
            max_use_days: None,
            max_extension_days: None,
        },
        tracking_sealed: false,
        tracking_source: "Installed within the 10-day window of § 626.15 and the 07:00–20:00 \
                          window of § 626.14. Use period as the warrant specifies (verify Minn. \
                          Stat. ch. 626A).",
        review: ProsecutorReview::Optional,
    })
}

fn window_text(w: Option<ExecutionWindow>) -> String {
    use crate::types::{DayCounting, TimeUnit};
    match w {
        None => "none".to_owned(),
        Some(w) => match (w.unit, w.counting) {
            (TimeUnit::Hours, _) => format!("{} h from issue", w.amount),
            (TimeUnit::Days, DayCounting::EndOfLastDay) => {
                format!("{} days, end of day {} (issue day = 0)", w.amount, w.amount)
            }
            (TimeUnit::Days, DayCounting::FromIssueInstant) => {
                format!("{} days from issue instant", w.amount)
            }
        },
    }
}

/// The presets as a Markdown table (one row per preset and type), as in docs/WARRANT-TYPES.md.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| preset | type | execution window | daytime | night service | tracking use / extension | sealed by default | prosecutor review |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for p in Preset::ALL {
        for t in p.types() {
            let daytime = t
                .daytime
                .map_or_else(|| "any hour".to_owned(), |d| d.to_string());
            let night = match (t.daytime, t.night_service_authorizable) {
                (None, _) => "n/a",
                (Some(_), true) => "may be authorized",
                (Some(_), false) => "never",
            };
            let tracking = t.tracking.map_or_else(
                || "—".to_owned(),
                |r| {
                    let d =
                        |v: Option<u32>| v.map_or("as ordered".to_owned(), |v| format!("{v} days"));
                    format!("{} / {}", d(r.max_use_days), d(r.max_extension_days))
                },
            );
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} | {} | {} |\n",
                p.key(),
                t.key,
                window_text(t.execution_window),
                daytime,
                night,
                tracking,
                if t.sealing.sealed_by_default {
                    "yes"
                } else {
                    "no"
                },
                t.prosecutor_review.as_str(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WarrantTypesPolicy;

    #[test]
    fn every_preset_validates_and_has_the_five_kinds() {
        for p in Preset::ALL {
            let court = p.court("court-a", "A court", chrono_tz::America::Chicago);
            let policy = WarrantTypesPolicy {
                courts: vec![court],
            };
            let value = policy.to_value();
            let back =
                WarrantTypesPolicy::from_value(&value).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(back, policy, "{p} round-trips");
            let kinds: Vec<WarrantKind> = p.types().iter().map(|t| t.kind).collect();
            assert_eq!(
                kinds,
                [
                    WarrantKind::Search,
                    WarrantKind::Arrest,
                    WarrantKind::BloodDraw,
                    WarrantKind::TrackingDevice,
                    WarrantKind::ElectronicRecords
                ],
                "{p}"
            );
            for t in p.types() {
                assert!(
                    t.source.as_deref().is_some_and(|s| !s.is_empty()),
                    "{p} {}",
                    t.key
                );
            }
        }
    }

    #[test]
    fn preset_names_parse() {
        for p in Preset::ALL {
            assert_eq!(p.key().parse::<Preset>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.key()));
        }
        assert!("utah".parse::<Preset>().is_err());
    }

    #[test]
    fn facts_from_the_domain_notes() {
        let get = |p: Preset, key: &str| {
            p.types()
                .into_iter()
                .find(|t| t.key == key)
                .unwrap_or_else(|| panic!("{p} has {key}"))
        };
        let fed = get(Preset::Federal, "search");
        assert_eq!(
            fed.execution_window,
            Some(ExecutionWindow::days_end_of_last_day(14))
        );
        assert_eq!(fed.daytime, DaytimeWindow::new((6, 0), (22, 0)));
        assert!(fed.night_service_authorizable);
        let fed_track = get(Preset::Federal, "tracking-device");
        assert_eq!(
            fed_track.execution_window,
            Some(ExecutionWindow::days_end_of_last_day(10))
        );
        assert_eq!(fed_track.tracking.and_then(|t| t.max_use_days), Some(45));
        assert_eq!(
            fed_track.tracking.and_then(|t| t.max_extension_days),
            Some(45)
        );
        assert_eq!(
            get(Preset::Kansas, "search").execution_window,
            Some(ExecutionWindow::hours(240))
        );
        assert!(
            get(Preset::Kansas, "tracking-device")
                .sealing
                .sealed_by_default
        );
        for p in [Preset::California, Preset::Maryland, Preset::Minnesota] {
            assert_eq!(
                get(p, "search").execution_window,
                Some(ExecutionWindow::days_end_of_last_day(10)),
                "{p}"
            );
        }
        assert_eq!(
            get(Preset::Minnesota, "search").daytime,
            DaytimeWindow::new((7, 0), (20, 0))
        );
        for p in Preset::ALL {
            assert_eq!(get(p, "arrest").execution_window, None, "{p}");
        }
    }

    /// docs/WARRANT-TYPES.md carries the generated table verbatim, so the document cannot drift
    /// from the data.
    #[test]
    fn the_document_carries_the_generated_table() {
        let doc = include_str!("../../../docs/WARRANT-TYPES.md");
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/WARRANT-TYPES.md is out of date; its table should read:\n{table}"
        );
    }
}
