//! The completeness check before submission (422): every field the type requires is filled, and
//! no field — required or not — still holds template boilerplate. A blank boilerplate section has
//! cost cases (Herron v. State); Iowa R. 14.401 requires the fields.
//!
//! Placeholders recognised, case-insensitively:
//! - a bracketed instruction: `[INSERT …]`, `[ENTER …]`, `[FILL IN …]`, `[DESCRIBE …]`, `[TYPE …]`;
//! - template markers: `{{…}}` and `<<…>>` (an unclosed marker counts too);
//! - a blank line of three or more underscores: `___`;
//! - the word `TBD`.

use std::fmt;

use serde::Serialize;

use crate::fields::{FieldValue, WarrantContent, WarrantField};

/// Why a field stops submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemReason {
    /// Required by the warrant type and empty.
    Missing,
    /// Still holds template text.
    Placeholder,
}

/// One field that stops submission; `index` is the entry of a list field (`itemsSought[2]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldProblem {
    pub field: WarrantField,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub reason: ProblemReason,
    /// The placeholder text found (at most 60 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

impl FieldProblem {
    /// The field as a path: `affidavit`, `itemsSought[2]`.
    pub fn path(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.field),
            None => self.field.to_string(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.reason, &self.placeholder) {
            (ProblemReason::Missing, _) => write!(f, "{} is required", self.path()),
            (ProblemReason::Placeholder, Some(p)) => {
                write!(f, "{} still holds the placeholder {p:?}", self.path())
            }
            (ProblemReason::Placeholder, None) => {
                write!(f, "{} still holds a placeholder", self.path())
            }
        }
    }
}

/// The application is not ready to submit (422), with every problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("the application is incomplete: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Incomplete {
    pub problems: Vec<FieldProblem>,
}

impl Incomplete {
    pub fn status(&self) -> u16 {
        422
    }

    pub fn slug(&self) -> &'static str {
        "warrant-incomplete"
    }
}

/// Every problem of `content` against the type's `required` fields, in vocabulary order.
pub fn check_completeness(
    required: &[WarrantField],
    content: &WarrantContent,
) -> Result<(), Incomplete> {
    let mut problems = Vec::new();
    for field in WarrantField::ALL {
        let is_required = required.contains(&field);
        match content.value(field) {
            FieldValue::Text(text) => {
                let text = text.unwrap_or("");
                if text.trim().is_empty() {
                    if is_required {
                        problems.push(missing(field, None));
                    }
                } else {
                    problems.extend(placeholder(field, None, text));
                }
            }
            FieldValue::List(items) => {
                if items.iter().all(|i| i.trim().is_empty()) {
                    if is_required {
                        problems.push(missing(field, None));
                    }
                    continue;
                }
                for (i, item) in items.iter().enumerate() {
                    if item.trim().is_empty() {
                        // A blank entry in a list that has others is a form row left empty.
                        problems.push(missing(field, Some(i)));
                    } else {
                        problems.extend(placeholder(field, Some(i), item));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Incomplete { problems })
    }
}

fn missing(field: WarrantField, index: Option<usize>) -> FieldProblem {
    FieldProblem {
        field,
        index,
        reason: ProblemReason::Missing,
        placeholder: None,
    }
}

fn placeholder(field: WarrantField, index: Option<usize>, text: &str) -> Option<FieldProblem> {
    find_placeholders(text)
        .into_iter()
        .next()
        .map(|p| FieldProblem {
            field,
            index,
            reason: ProblemReason::Placeholder,
            placeholder: Some(p),
        })
}

const MAX_SHOWN: usize = 60;
const INSTRUCTIONS: [&str; 5] = ["insert", "enter", "fill in", "describe", "type"];

/// Every placeholder in `text`, in order of appearance (each at most 60 characters).
pub fn find_placeholders(text: &str) -> Vec<String> {
    // The patterns are ASCII; ASCII folding keeps every byte offset valid in `text`.
    let lower = text.to_ascii_lowercase();
    let hay = lower.as_str();
    let mut found: Vec<(usize, String)> = Vec::new();

    for (start, _) in hay.match_indices('[') {
        let rest = hay[start + 1..].trim_start();
        if INSTRUCTIONS.iter().any(|w| starts_with_word(rest, w)) {
            found.push((start, span(text, start, "]")));
        }
    }
    for (open, close) in [("{{", "}}"), ("<<", ">>")] {
        let mut from = 0;
        while let Some(pos) = hay[from..].find(open) {
            let start = from + pos;
            let shown = span(text, start, close);
            from = start + shown.len().max(open.len());
            found.push((start, shown));
        }
    }
    let bytes = hay.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let run = bytes[i..].iter().take_while(|b| **b == b'_').count();
            if run >= 3 {
                found.push((i, text[i..i + run].to_owned()));
            }
            i += run;
        } else {
            i += 1;
        }
    }
    for (start, _) in hay.match_indices("tbd") {
        let before = hay[..start].chars().next_back();
        let after = hay[start + 3..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            found.push((start, text[start..start + 3].to_owned()));
        }
    }
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, s)| truncate(&s)).collect()
}

fn starts_with_word(s: &str, word: &str) -> bool {
    s.starts_with(word)
        && !s[word.len()..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
}

/// `text` from `start` to the end of `close` (or of the line, when the marker is not closed).
fn span(text: &str, start: usize, close: &str) -> String {
    let rest = &text[start..];
    let end = match (rest.find(close), rest.find('\n')) {
        (Some(c), Some(n)) if n < c => n,
        (Some(c), _) => c + close.len(),
        (None, Some(n)) => n,
        (None, None) => rest.len(),
    };
    rest[..end].to_owned()
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_SHOWN - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::WarrantField::*;

    fn complete() -> WarrantContent {
        WarrantContent {
            place: Some("1234 Elm Street, Topeka, a single-family home with a red door".into()),
            items_sought: vec!["A black Glock 19 handgun".into(), "Cell phones".into()],
            offense: Some("Aggravated battery, K.S.A. 21-5413(b)".into()),
            affidavit: Some("On 3 March 2026 at 21:40 I, Officer Reyes, ...".into()),
            ..WarrantContent::default()
        }
    }

    const SEARCH: &[WarrantField] = &[Place, ItemsSought, Offense, Affidavit];

    #[test]
    fn a_complete_application_passes() {
        assert_eq!(check_completeness(SEARCH, &complete()), Ok(()));
    }

    #[test]
    fn every_missing_required_field_is_listed() {
        let content = WarrantContent {
            affidavit: Some("   ".into()),
            ..WarrantContent::default()
        };
        let err = check_completeness(SEARCH, &content).unwrap_err();
        let listed: Vec<(String, ProblemReason)> =
            err.problems.iter().map(|p| (p.path(), p.reason)).collect();
        assert_eq!(
            listed,
            [
                ("place".to_owned(), ProblemReason::Missing),
                ("itemsSought".to_owned(), ProblemReason::Missing),
                ("offense".to_owned(), ProblemReason::Missing),
                ("affidavit".to_owned(), ProblemReason::Missing),
            ]
        );
        assert_eq!(err.status(), 422);
        assert!(err.to_string().contains("place is required"), "{err}");
    }

    #[test]
    fn fields_the_type_does_not_require_may_be_empty() {
        // Subject, tracked object, records holder… are empty in `complete()`.
        assert_eq!(check_completeness(&[Place], &complete()), Ok(()));
    }

    #[test]
    fn placeholders_are_found_in_every_field_required_or_not() {
        let mut content = complete();
        content.affidavit = Some("I, [INSERT NAME OF AFFIANT], being duly sworn…".into());
        content.items_sought[1] = "{{item_2}}".into();
        content.subject = Some("TBD".into());
        content.time_range = Some("From ____ to ____".into());
        let err = check_completeness(SEARCH, &content).unwrap_err();
        let listed: Vec<(String, Option<String>)> = err
            .problems
            .iter()
            .map(|p| (p.path(), p.placeholder.clone()))
            .collect();
        assert_eq!(
            listed,
            [
                ("subject".to_owned(), Some("TBD".to_owned())),
                ("itemsSought[1]".to_owned(), Some("{{item_2}}".to_owned())),
                (
                    "affidavit".to_owned(),
                    Some("[INSERT NAME OF AFFIANT]".to_owned())
                ),
                ("timeRange".to_owned(), Some("____".to_owned())),
            ]
        );
        assert!(
            err.problems
                .iter()
                .all(|p| p.reason == ProblemReason::Placeholder)
        );
    }

    #[test]
    fn a_blank_entry_among_items_is_missing_at_its_index() {
        let mut content = complete();
        content.items_sought.push("  ".into());
        let err = check_completeness(SEARCH, &content).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].path(), "itemsSought[2]");
        assert_eq!(err.problems[0].reason, ProblemReason::Missing);
    }

    #[test]
    fn placeholder_patterns() {
        let cases: &[(&str, &[&str])] = &[
            ("[INSERT date]", &["[INSERT date]"]),
            ("[ insert the address ]", &["[ insert the address ]"]),
            ("[Enter badge number]", &["[Enter badge number]"]),
            ("[Fill in vehicle]", &["[Fill in vehicle]"]),
            (
                "[DESCRIBE PREMISES] and [TYPE HERE]",
                &["[DESCRIBE PREMISES]", "[TYPE HERE]"],
            ),
            ("{{ suspect.name }}", &["{{ suspect.name }}"]),
            ("<<ADDRESS>>", &["<<ADDRESS>>"]),
            ("signed ______ on ___", &["______", "___"]),
            ("date: tbd.", &["tbd"]),
            ("unclosed {{ marker\nnext line", &["{{ marker"]),
            // Not placeholders: quotes with editorial brackets, words containing "tbd", a
            // snake_case identifier, two underscores.
            ("he said \"[he] was home\" [sic]", &[]),
            ("the TBDX unit; outbdound", &[]),
            ("file name_of_thing and a__b", &[]),
            ("[Insertion] of the probe", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(&find_placeholders(text), expected, "{text:?}");
        }
    }

    #[test]
    fn long_placeholders_are_shortened() {
        let long = format!("[INSERT {}]", "x".repeat(100));
        let found = find_placeholders(&long);
        assert_eq!(found[0].chars().count(), 60);
        assert!(found[0].ends_with('…'));
    }

    #[test]
    fn problems_serialize_for_the_422_body() {
        let err = check_completeness(&[Affidavit], &WarrantContent::default()).unwrap_err();
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"problems": [{"field": "affidavit", "reason": "missing"}]})
        );
    }
}
