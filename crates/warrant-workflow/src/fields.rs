//! The fixed vocabulary of a warrant's content fields. A warrant type's `requiredFields` names
//! fields from this list only, so a court cannot require a field no client can fill in, and the
//! completeness check ([`crate::completeness`]) knows how to read every one of them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A content field of a warrant application. The type, the court, the urgency class and the
/// AI-assistance flag are not here: a warrant always has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WarrantField {
    /// The person the warrant concerns: the person to be arrested, to give a blood sample, or
    /// the owner of what is searched; name and identifying description.
    Subject,
    /// The place, vehicle or thing to be searched, particularly described.
    Place,
    /// The items sought (one entry each), particularly described.
    ItemsSought,
    /// The offense under investigation, with the statute.
    Offense,
    /// The sworn statement of probable cause.
    Affidavit,
    /// The person or property a tracking device is to follow (FRCrP 41(e)(2)(C)).
    TrackedObject,
    /// Who holds electronic records: the provider or custodian the warrant is served on.
    RecordsHolder,
    /// Identifiers of the records sought: accounts, phone numbers, device identifiers (one each).
    Accounts,
    /// The period the records sought cover.
    TimeRange,
}

impl WarrantField {
    pub const ALL: [WarrantField; 9] = [
        WarrantField::Subject,
        WarrantField::Place,
        WarrantField::ItemsSought,
        WarrantField::Offense,
        WarrantField::Affidavit,
        WarrantField::TrackedObject,
        WarrantField::RecordsHolder,
        WarrantField::Accounts,
        WarrantField::TimeRange,
    ];

    /// The name on the wire (camelCase), as in `requiredFields` and in a 422 listing.
    pub fn as_str(self) -> &'static str {
        match self {
            WarrantField::Subject => "subject",
            WarrantField::Place => "place",
            WarrantField::ItemsSought => "itemsSought",
            WarrantField::Offense => "offense",
            WarrantField::Affidavit => "affidavit",
            WarrantField::TrackedObject => "trackedObject",
            WarrantField::RecordsHolder => "recordsHolder",
            WarrantField::Accounts => "accounts",
            WarrantField::TimeRange => "timeRange",
        }
    }
}

impl fmt::Display for WarrantField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an application is; it orders the judge queue and (later) drives escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    #[default]
    Routine,
    Urgent,
    /// Evidence is being lost now (e.g. alcohol dissipating before a blood draw).
    Exigent,
}

/// The content of a warrant application: one member per [`WarrantField`]. Single values are
/// text; `itemsSought` and `accounts` are lists with one entry per item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarrantContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items_sought: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offense: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affidavit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_holder: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<String>,
}

/// What a field holds, borrowed from a [`WarrantContent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Text(Option<&'a str>),
    List(&'a [String]),
}

impl WarrantContent {
    pub fn value(&self, field: WarrantField) -> FieldValue<'_> {
        match field {
            WarrantField::Subject => FieldValue::Text(self.subject.as_deref()),
            WarrantField::Place => FieldValue::Text(self.place.as_deref()),
            WarrantField::ItemsSought => FieldValue::List(&self.items_sought),
            WarrantField::Offense => FieldValue::Text(self.offense.as_deref()),
            WarrantField::Affidavit => FieldValue::Text(self.affidavit.as_deref()),
            WarrantField::TrackedObject => FieldValue::Text(self.tracked_object.as_deref()),
            WarrantField::RecordsHolder => FieldValue::Text(self.records_holder.as_deref()),
            WarrantField::Accounts => FieldValue::List(&self.accounts),
            WarrantField::TimeRange => FieldValue::Text(self.time_range.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for f in WarrantField::ALL {
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::json!(f.as_str())
            );
            let back: WarrantField = serde_json::from_value(serde_json::json!(f.as_str())).unwrap();
            assert_eq!(back, f);
        }
    }

    #[test]
    fn content_refuses_unknown_members() {
        let err = serde_json::from_value::<WarrantContent>(serde_json::json!({"suspect": "x"}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `suspect`"), "{err}");
    }

    #[test]
    fn every_field_is_readable() {
        let content = WarrantContent {
            subject: Some("s".into()),
            place: Some("p".into()),
            items_sought: vec!["i".into()],
            offense: Some("o".into()),
            affidavit: Some("a".into()),
            tracked_object: Some("t".into()),
            records_holder: Some("r".into()),
            accounts: vec!["acc".into()],
            time_range: Some("tr".into()),
        };
        for f in WarrantField::ALL {
            match content.value(f) {
                FieldValue::Text(t) => assert!(t.is_some(), "{f}"),
                FieldValue::List(l) => assert_eq!(l.len(), 1, "{f}"),
            }
        }
    }
}
