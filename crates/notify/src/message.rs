//! What an alert says. The policy is structural: a message is rendered from a warrant's number,
//! its urgency and a link — nothing else about the warrant ever reaches this module, so no
//! subject name, place or affidavit text can end up in an e-mail, a text or a call (CJIS: a
//! phone's lock screen and a mail relay are outside the agency's walls).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How an alert travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Channel::Email, Channel::Sms, Channel::Voice]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A warrant waits for the judge on call (the first offer).
    #[serde(rename = "warrant.offered")]
    WarrantOffered,
    /// Nobody opened the warrant in time: the next judge of the chain is alerted.
    #[serde(rename = "warrant.escalated")]
    WarrantEscalated,
    /// An issued warrant's execution deadline is near (for its author).
    #[serde(rename = "warrant.deadline_reminder")]
    DeadlineReminder,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WarrantOffered => "warrant.offered",
            Kind::WarrantEscalated => "warrant.escalated",
            Kind::DeadlineReminder => "warrant.deadline_reminder",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Kind::WarrantOffered,
            Kind::WarrantEscalated,
            Kind::DeadlineReminder,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Everything a message may say about a warrant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarrantRef {
    pub id: Uuid,
    /// `W-2026-000847`: the agency's number, not CJI.
    pub number: String,
    /// `routine`, `urgent` or `exigent`.
    pub urgency: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// E-mail subject (empty for texts and calls).
    pub subject: String,
    /// E-mail or text body; for a call, the TwiML the provider speaks.
    pub body: String,
}

/// The link a recipient opens (behind the login): `{public_url}/warrants/{id}`.
pub fn link(public_url: &str, warrant: &WarrantRef) -> String {
    format!(
        "{}/warrants/{}",
        public_url.trim_end_matches('/'),
        warrant.id
    )
}

/// Renders `kind` about `warrant` for `channel`. `due` is the deadline of a reminder.
pub fn render(
    kind: Kind,
    channel: Channel,
    warrant: &WarrantRef,
    due: Option<DateTime<Utc>>,
    public_url: &str,
) -> Rendered {
    let number = &warrant.number;
    // The urgency comes from the database's CHECK-ed column; anything else reads as routine.
    let urgency = match warrant.urgency.as_str() {
        "exigent" => "EXIGENT",
        "urgent" => "URGENT",
        _ => "routine",
    };
    let url = link(public_url, warrant);
    let (subject, line) = match kind {
        Kind::WarrantOffered => (
            format!("[Writ] {urgency} warrant {number} awaits review"),
            format!("{urgency} warrant application {number} awaits a judge's review."),
        ),
        Kind::WarrantEscalated => (
            format!("[Writ] {urgency} warrant {number} not yet opened: escalated to you"),
            format!(
                "{urgency} warrant application {number} was not opened in time and is escalated to you."
            ),
        ),
        Kind::DeadlineReminder => {
            let when = due.map_or_else(String::new, |d| {
                format!(" by {}", d.format("%Y-%m-%d %H:%M UTC"))
            });
            (
                format!("[Writ] warrant {number}: execution deadline approaching"),
                format!("Warrant {number} must be executed{when}."),
            )
        }
    };
    let body = match channel {
        Channel::Email => format!(
            "{line}\n\nOpen it in Writ:\n{url}\n\nThis message carries no case details; sign in to see them.\n"
        ),
        Channel::Sms => format!("Writ: {line} {url}"),
        // Spoken: the number digit by digit is not worth the complexity; the text has the link.
        Channel::Voice => format!(
            "<Response><Say>This is Writ. {}</Say><Pause length=\"1\"/><Say>{}</Say></Response>",
            xml_escape(&line),
            xml_escape(&line)
        ),
    };
    Rendered {
        subject: if channel == Channel::Email {
            subject
        } else {
            String::new()
        },
        body,
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> WarrantRef {
        WarrantRef {
            id: Uuid::nil(),
            number: "W-2026-000847".into(),
            urgency: "exigent".into(),
        }
    }

    #[test]
    fn every_channel_says_the_number_and_the_link_only() {
        for channel in [Channel::Email, Channel::Sms, Channel::Voice] {
            let r = render(
                Kind::WarrantOffered,
                channel,
                &w(),
                None,
                "https://writ.example/",
            );
            assert!(r.body.contains("W-2026-000847"), "{r:?}");
            if channel != Channel::Voice {
                assert!(
                    r.body.contains(
                        "https://writ.example/warrants/00000000-0000-0000-0000-000000000000"
                    ),
                    "{r:?}"
                );
            }
            assert!(r.body.contains("EXIGENT"));
        }
    }

    #[test]
    fn kinds_and_channels_round_trip() {
        for k in [
            Kind::WarrantOffered,
            Kind::WarrantEscalated,
            Kind::DeadlineReminder,
        ] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        for c in [Channel::Email, Channel::Sms, Channel::Voice] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn a_reminder_names_the_deadline_in_utc() {
        let due = DateTime::parse_from_rfc3339("2026-03-12T05:00:00Z")
            .unwrap()
            .to_utc();
        let r = render(
            Kind::DeadlineReminder,
            Channel::Email,
            &w(),
            Some(due),
            "http://x",
        );
        assert!(r.body.contains("2026-03-12 05:00 UTC"), "{r:?}");
    }
}
