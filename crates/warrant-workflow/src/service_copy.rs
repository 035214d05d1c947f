//! The issued document and its service copy (a copy must be left at the premises). At issue the
//! warrant is fixed as one canonical document — RFC 8785 JSON of what the judge issued — and its
//! SHA-256; the service copy is a PDF made once, at the same moment, from that document: the
//! warrant number, the issue time, the execution deadline (in the court's time and UTC), the
//! document's SHA-256 on every page, the content, and the canonical bytes themselves as an
//! embedded file, so whoever holds the copy can check it against the hash. Both are stored, so
//! every download is the same bytes. Pure: no database, no clock.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::fields::WarrantContent;
use crate::pdf::{self, Attachment, Line, WIDTH, wrap};
use crate::signing::JudgeSignature;
use crate::types::WarrantType;

/// The format name inside the canonical document.
pub const ISSUED_FORMAT: &str = "writ-issued-warrant/1";

/// What the judge issued, as fixed at the instant of issue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedWarrant<'a> {
    pub agency_id: Uuid,
    pub warrant_id: Uuid,
    pub number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_warrant_id: Option<Uuid>,
    pub court: &'a str,
    #[serde(skip)]
    pub warrant_type: &'a WarrantType,
    #[serde(skip)]
    pub time_zone: Tz,
    pub content: &'a WarrantContent,
    pub ai_tool: Option<&'a str>,
    pub issued_at: DateTime<Utc>,
    pub issued_by: Uuid,
    pub execution_deadline: Option<DateTime<Utc>>,
    pub night_service: bool,
    /// Tracking devices: when the authorised use ends.
    pub tracking_use_ends_at: Option<DateTime<Utc>>,
    /// The judge's signature on the warrant (docs/ESIGN.md): the proof of signature the officer
    /// holds before executing.
    #[serde(skip)]
    pub judge_signature: Option<&'a JudgeSignature>,
    /// For the people at the premises (the copy only, not the canonical document): the court's
    /// name and the affiant.
    #[serde(skip)]
    pub court_name: Option<&'a str>,
    #[serde(skip)]
    pub affiant: Option<&'a Person>,
}

/// Someone the copy names: display name and badge number or judicial id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Person {
    pub name: String,
    pub badge: Option<String>,
}

impl Person {
    fn shown(name: &str, badge: Option<&str>, what: &str) -> String {
        match badge {
            Some(b) => format!("{name} ({what} {b})"),
            None => name.to_owned(),
        }
    }
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl IssuedWarrant<'_> {
    /// The canonical bytes (RFC 8785): what is hashed, stored and, later, signed.
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        let ty = self.warrant_type;
        let mut value = json!({
            "format": ISSUED_FORMAT,
            "agencyId": self.agency_id,
            "warrantId": self.warrant_id,
            "number": self.number,
            "parentWarrantId": self.parent_warrant_id,
            "court": self.court,
            "timeZone": self.time_zone.name(),
            "type": { "key": ty.key, "name": ty.name, "kind": ty.kind },
            "content": self.content,
            "aiAssisted": self.ai_tool.is_some(),
            "aiTool": self.ai_tool,
            "issuedAt": millis(self.issued_at),
            "issuedBy": self.issued_by,
            "executionDeadline": self.execution_deadline.map(millis),
            "daytime": ty.daytime.map(|d| d.to_string()),
            "nightService": self.night_service && ty.night_service_authorizable,
        });
        if let Some(end) = self.tracking_use_ends_at {
            value["trackingUseEndsAt"] = json!(millis(end));
        }
        if let Some(s) = self.judge_signature {
            value["judgeSignature"] = json!({
                "signatureId": s.id,
                "signerName": s.signer_name,
                "signedAt": millis(s.signed_at),
                "documentSha256": s.document_sha256,
            });
        }
        serde_jcs::to_vec(&value)
    }
}

/// `hex(SHA-256(bytes))`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} ({} UTC)",
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z"),
        t.format("%Y-%m-%d %H:%M:%S")
    )
}

/// The service copy: a PDF of the issued warrant with `canonical` embedded.
pub fn render_pdf(w: &IssuedWarrant<'_>, canonical: &[u8]) -> Vec<u8> {
    let hash = sha256_hex(canonical);
    let ty = w.warrant_type;
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::title(&ty.name.to_uppercase()));
    lines.push(Line::blank());
    let fact = |lines: &mut Vec<Line>, label: &str, value: &str| {
        lines.extend(
            wrap(&format!("{label}: {value}"), WIDTH)
                .into_iter()
                .map(Line::text),
        );
    };
    fact(&mut lines, "Warrant number", w.number);
    let court = match w.court_name {
        Some(name) => format!("{name} ({})", w.court),
        None => w.court.to_owned(),
    };
    fact(&mut lines, "Court", &court);
    if let Some(a) = w.affiant {
        fact(
            &mut lines,
            "Affiant",
            &Person::shown(&a.name, a.badge.as_deref(), "badge"),
        );
    }
    fact(&mut lines, "Issued", &local(w.issued_at, w.time_zone));
    let deadline = match w.execution_deadline {
        Some(d) => local(d, w.time_zone),
        None => "no execution deadline (valid until executed or recalled)".into(),
    };
    fact(&mut lines, "Execute before", &deadline);
    let hours = match ty.daytime {
        Some(d) if w.night_service && ty.night_service_authorizable => {
            format!("any hour (night service authorized; daytime is {d})")
        }
        Some(d) => format!("{d} local time only"),
        None => "any hour".into(),
    };
    fact(&mut lines, "Execution hours", &hours);
    if let Some(end) = w.tracking_use_ends_at {
        fact(
            &mut lines,
            "Tracking device use ends",
            &local(end, w.time_zone),
        );
    }
    if let Some(s) = w.judge_signature {
        fact(
            &mut lines,
            "Signed",
            &format!(
                "electronically by {} at {}; signature record {} on the warrant document SHA-256 {}",
                Person::shown(&s.signer_name, s.signer_badge.as_deref(), "judicial id"),
                local(s.signed_at, w.time_zone),
                s.id,
                s.document_sha256
            ),
        );
    }
    fact(&mut lines, "Document SHA-256", &hash);
    if let Some(tool) = w.ai_tool {
        fact(&mut lines, "AI-assisted affidavit", tool);
    }
    let c = w.content;
    let sections: [(&str, Vec<String>); 9] = [
        ("Subject", c.subject.iter().cloned().collect()),
        ("Place", c.place.iter().cloned().collect()),
        ("Items sought", c.items_sought.clone()),
        ("Offense", c.offense.iter().cloned().collect()),
        ("Tracked object", c.tracked_object.iter().cloned().collect()),
        ("Records holder", c.records_holder.iter().cloned().collect()),
        ("Accounts", c.accounts.clone()),
        ("Time range", c.time_range.iter().cloned().collect()),
        ("Affidavit", c.affidavit.iter().cloned().collect()),
    ];
    for (title, values) in sections {
        if values.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        lines.push(Line::blank());
        lines.push(Line::heading(title));
        let list = values.len() > 1 || matches!(title, "Items sought" | "Accounts");
        for v in &values {
            for paragraph in v.lines() {
                let text = if list {
                    format!("- {paragraph}")
                } else {
                    paragraph.to_owned()
                };
                lines.extend(wrap(&text, WIDTH).into_iter().map(Line::text));
            }
        }
    }
    lines.push(Line::blank());
    lines.extend(
        wrap(
            "The canonical issued document is embedded in this file (issued-warrant.json); its \
             SHA-256 is the one printed above.",
            WIDTH,
        )
        .into_iter()
        .map(Line::text),
    );
    let footer = |page: usize, pages: usize| {
        format!(
            "{} - page {page} of {pages} - document SHA-256 {hash}",
            w.number
        )
    };
    pdf::render(
        &lines,
        footer,
        Some(Attachment {
            name: "issued-warrant.json",
            mime_type: "application/json",
            bytes: canonical,
        }),
    )
}

/// Reads the canonical document back out of a stored copy's JSON, for callers that show it.
pub fn parse_canonical(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::Preset;

    fn sample(content: &WarrantContent, ty: &WarrantType) -> Vec<u8> {
        let w = IssuedWarrant {
            agency_id: Uuid::nil(),
            warrant_id: Uuid::nil(),
            number: "W-2026-000847",
            parent_warrant_id: None,
            court: "d-minn",
            warrant_type: ty,
            time_zone: chrono_tz::America::Chicago,
            content,
            ai_tool: None,
            issued_at: DateTime::parse_from_rfc3339("2026-03-02T21:47:03Z")
                .unwrap()
                .to_utc(),
            issued_by: Uuid::nil(),
            execution_deadline: DateTime::parse_from_rfc3339("2026-03-17T05:00:00Z")
                .ok()
                .map(|t| t.to_utc()),
            night_service: false,
            tracking_use_ends_at: None,
            judge_signature: None,
            court_name: Some("U.S. District Court, District of Minnesota"),
            affiant: None,
        };
        let canonical = w.canonical().unwrap();
        render_pdf(&w, &canonical)
    }

    #[test]
    fn the_copy_is_deterministic_and_carries_the_number_times_and_hash() {
        let ty = Preset::Federal.types().remove(0);
        let content = WarrantContent {
            place: Some("1200 Elm St (rear), Minneapolis".into()),
            items_sought: vec!["handgun".into(), "phones".into()],
            affidavit: Some("Line one.\nLine two with § and … marks.".into()),
            ..Default::default()
        };
        let a = sample(&content, &ty);
        assert_eq!(a, sample(&content, &ty));
        let text = String::from_utf8_lossy(&a);
        assert!(text.starts_with("%PDF-1.7"));
        assert!(text.contains("W-2026-000847"));
        assert!(
            text.contains("2026-03-02 15:47:03 CST"),
            "issue time on the court's clock"
        );
        assert!(
            text.contains("2026-03-17 00:00:00 CDT"),
            "deadline on the court's clock"
        );
        assert!(
            text.contains("1200 Elm St \\(rear\\)"),
            "parentheses escaped"
        );
        assert!(
            text.contains("U.S. District Court, District of Minnesota \\(d-minn\\)"),
            "the court by its name"
        );
        assert!(text.trim_end().ends_with("%%EOF"));
        let embedded = find(&a, b"/Type /EmbeddedFile").unwrap();
        let start = embedded + find(&a[embedded..], b"stream\n").unwrap() + 7;
        let end = start + find(&a[start..], b"\nendstream").unwrap();
        let doc = parse_canonical(&a[start..end]).unwrap();
        assert_eq!(doc["number"], "W-2026-000847");
        assert_eq!(doc["format"], ISSUED_FORMAT);
        assert!(text.contains(&sha256_hex(&a[start..end])));
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn the_xref_offsets_point_at_their_objects() {
        let ty = Preset::Federal.types().remove(0);
        let content = WarrantContent {
            affidavit: Some("word ".repeat(8000)),
            ..Default::default()
        };
        let pdf = sample(&content, &ty);
        let tail = find(&pdf, b"startxref\n").unwrap() + 10;
        let xref_at: usize = std::str::from_utf8(&pdf[tail..])
            .unwrap()
            .lines()
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref\n"));
        let table = std::str::from_utf8(&pdf[xref_at..]).unwrap();
        let entries: Vec<usize> = table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect();
        assert!(entries.len() > 8, "several pages");
        for (i, offset) in entries.iter().enumerate() {
            assert!(
                pdf[*offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }

    #[test]
    fn a_long_copy_keeps_every_line_above_the_page_footer() {
        let ty = Preset::Federal.types().remove(0);
        let content = WarrantContent {
            affidavit: Some("A sentence of the affidavit.\n".repeat(400)),
            ..Default::default()
        };
        let pdf = sample(&content, &ty);
        let text = String::from_utf8_lossy(&pdf);
        // Every line is placed with `72 <baseline> Td`; the footer's baseline is 40.
        let baselines: Vec<f32> = text
            .split(" Td ")
            .filter_map(|before| before.rsplit_once("72 ")?.1.parse().ok())
            .collect();
        let footers = baselines.iter().filter(|y| **y == 40.0).count();
        assert!(footers > 5, "several pages: {footers}");
        for y in baselines.iter().filter(|y| **y != 40.0) {
            assert!(*y >= 56.0, "a line at {y} runs into the footer");
        }
    }

    #[test]
    fn long_words_and_lines_wrap() {
        assert_eq!(wrap("a b c", 3), ["a b", "c"]);
        assert_eq!(wrap("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(wrap("", 3), [""]);
    }
}
