//! A deterministic audit workload for the benchmarks: the events of a busy agency (logins,
//! warrant work, documents, denials, admin changes), the same on every run.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_audit_chain::{Actor, Outcome, PendingEvent};

/// A small deterministic generator (SplitMix64), so every run exports the same mix of events.
pub struct Mix(pub u64);

impl Mix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(bytes.to_be_bytes()).into_uuid()
    }
}

/// The mix of a busy agency: logins, warrant work, documents, denials, admin changes.
pub struct Workload {
    mix: Mix,
    agency_id: String,
    users: Vec<(Uuid, &'static str)>,
    warrants: Vec<Uuid>,
    /// When the first event happened; event `n` is later by a fixed step.
    pub start: DateTime<Utc>,
}

impl Workload {
    pub fn new(agency_id: Uuid) -> Workload {
        let mut mix = Mix(0x5eed);
        let roles = [
            "officer",
            "officer",
            "officer",
            "supervisor",
            "judge",
            "clerk",
        ];
        let users = (0..300)
            .map(|i| (mix.uuid(), roles[i % roles.len()]))
            .collect();
        let warrants = (0..5_000).map(|_| mix.uuid()).collect();
        Workload {
            mix,
            agency_id: agency_id.to_string(),
            users,
            warrants,
            start: DateTime::parse_from_rfc3339("2026-01-05T08:00:00Z")
                .map(|t| t.to_utc())
                .unwrap_or_default(),
        }
    }

    pub fn event(&mut self, n: u64) -> PendingEvent {
        let (user, role) = self.users[self.mix.below(self.users.len() as u64) as usize];
        let warrant =
            self.warrants[self.mix.below(self.warrants.len() as u64) as usize].to_string();
        let ip = format!(
            "10.{}.{}.{}",
            self.mix.below(8),
            self.mix.below(256),
            1 + self.mix.below(254)
        );
        let mut resource = Map::new();
        let mut outcome = Outcome::Success;
        let mut actor = Some(user);
        let (action, detail) = match self.mix.below(100) {
            0..=19 => ("auth.login", json!({"mfa": "totp"})),
            20..=24 => ("auth.logout", json!({})),
            25..=44 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                ("warrant.viewed", json!({"version": 1 + self.mix.below(5)}))
            }
            45..=54 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                (
                    "warrant.created",
                    json!({
                        "type": "search",
                        "court": format!("District {}", 1 + self.mix.below(9)),
                    }),
                )
            }
            55..=64 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                (
                    "warrant.submitted",
                    json!({"version": 1 + self.mix.below(5)}),
                )
            }
            65..=79 => {
                let doc = self.mix.uuid();
                let digest: String = (0..4)
                    .map(|_| format!("{:016x}", self.mix.next_u64()))
                    .collect();
                resource.insert("warrantId".into(), Value::String(warrant));
                resource.insert("documentId".into(), Value::String(doc.to_string()));
                resource.insert(
                    "documentHash".into(),
                    Value::String(format!("sha256:{digest}")),
                );
                (
                    "document.upload",
                    json!({
                        "bytes": 10_000 + self.mix.below(5_000_000),
                        "classification": "cji",
                        "mediaType": "application/pdf",
                    }),
                )
            }
            80..=87 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                outcome = Outcome::Failure;
                (
                    "authz.denied",
                    json!({"reason": format!("role {role} may not approve warrants")}),
                )
            }
            88..=94 => {
                outcome = Outcome::Failure;
                actor = None;
                (
                    "auth.mfa.failure",
                    json!({"failedAttempts": 1 + self.mix.below(4)}),
                )
            }
            _ => {
                let target = self.users[self.mix.below(self.users.len() as u64) as usize].0;
                resource.insert("userId".into(), Value::String(target.to_string()));
                (
                    "admin.user.modified",
                    json!({"fields": ["role", "displayName"], "role": "supervisor"}),
                )
            }
        };
        let at = self.start + chrono::Duration::milliseconds(n as i64 * 211);
        PendingEvent {
            id: self.mix.uuid().to_string(),
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            actor: Actor {
                user_id: actor.map(|u| u.to_string()),
                role: if actor.is_some() { role } else { "anonymous" }.to_owned(),
                agency_id: self.agency_id.clone(),
            },
            action: action.to_owned(),
            resource,
            outcome,
            source_ip: Some(ip),
            detail,
        }
    }
}
