//! The `on-call` policy: per court, how long a judge has to open a queued warrant before the next
//! judge of the chain is alerted, and the night hours in which routine requests wake nobody.
//! A court not named in it uses the defaults: exigent 5 minutes, urgent 10 minutes, routine the
//! next business morning at 08:00, quiet from 22:00 to 07:00 (court time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use writ_tenancy::{PolicyDef, PolicyName, TenantTx};

use crate::error::WarrantError;
use crate::types::ClockTime;

/// The agency policy read by on-call routing (`GET/PUT /v1/policies/on-call`).
pub const ON_CALL_POLICY: &str = "on-call";
/// The longest acknowledgement time a court may set: beyond four hours it is no alert.
pub const MAX_ACK_MINUTES: u32 = 240;

/// The policies this module owns. Not a security control: a plain admin change.
pub const POLICIES: &[PolicyDef] = &[PolicyDef {
    name: PolicyName::Exact(ON_CALL_POLICY),
    validate: |v| OnCallPolicy::from_value(v).map(|_| ()),
    default: |_| json!({ "courts": {} }),
    needs_step_up: false,
    description: "Per court (key of warrant-types): exigentAckMinutes (default 5), \
                  urgentAckMinutes (10), routineEscalateAt (HH:MM, next business morning, 08:00), \
                  quietFrom / quietUntil (routine alerts wait, 22:00–07:00)",
}];

fn default_exigent() -> u32 {
    5
}
fn default_urgent() -> u32 {
    10
}
/// A time of day checked when compiling (a bad literal fails the build, never a request).
const fn clock(h: u8) -> ClockTime {
    match ClockTime::new(h, 0) {
        Some(t) => t,
        None => panic!("not a time of day"),
    }
}
const MORNING: ClockTime = clock(8);
const QUIET_FROM: ClockTime = clock(22);
const QUIET_UNTIL: ClockTime = clock(7);
fn default_morning() -> ClockTime {
    MORNING
}
fn default_quiet_from() -> ClockTime {
    QUIET_FROM
}
fn default_quiet_until() -> ClockTime {
    QUIET_UNTIL
}

/// One court's alerting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CourtAlerting {
    #[serde(default = "default_exigent")]
    pub exigent_ack_minutes: u32,
    #[serde(default = "default_urgent")]
    pub urgent_ack_minutes: u32,
    /// A routine request not opened is escalated at this time of the next business day.
    #[serde(default = "default_morning")]
    pub routine_escalate_at: ClockTime,
    /// From this local time …
    #[serde(default = "default_quiet_from")]
    pub quiet_from: ClockTime,
    /// … to this one (exclusive), routine alerts wait.
    #[serde(default = "default_quiet_until")]
    pub quiet_until: ClockTime,
}

impl Default for CourtAlerting {
    fn default() -> Self {
        Self {
            exigent_ack_minutes: default_exigent(),
            urgent_ack_minutes: default_urgent(),
            routine_escalate_at: default_morning(),
            quiet_from: default_quiet_from(),
            quiet_until: default_quiet_until(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallPolicy {
    #[serde(default)]
    pub courts: BTreeMap<String, CourtAlerting>,
}

impl OnCallPolicy {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let p: OnCallPolicy = serde_path_to_error::deserialize(v)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        for (court, c) in &p.courts {
            for (name, m) in [
                ("exigentAckMinutes", c.exigent_ack_minutes),
                ("urgentAckMinutes", c.urgent_ack_minutes),
            ] {
                if !(1..=MAX_ACK_MINUTES).contains(&m) {
                    return Err(format!(
                        "courts.{court}.{name}: from 1 to {MAX_ACK_MINUTES} minutes"
                    ));
                }
            }
        }
        Ok(p)
    }

    pub fn court(&self, court: &str) -> CourtAlerting {
        self.courts.get(court).copied().unwrap_or_default()
    }
}

/// The agency's `on-call` policy (the defaults until one is set).
pub async fn on_call_policy(tx: &mut TenantTx) -> Result<OnCallPolicy, WarrantError> {
    match writ_tenancy::policy_value(tx, ON_CALL_POLICY).await? {
        None => Ok(OnCallPolicy::default()),
        Some(v) => OnCallPolicy::from_value(&v)
            .map_err(|e| WarrantError::Corrupt(format!("on-call policy: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let p = OnCallPolicy::from_value(&json!({"courts": {"d-minn": {"exigentAckMinutes": 3}}}))
            .unwrap();
        let c = p.court("d-minn");
        assert_eq!((c.exigent_ack_minutes, c.urgent_ack_minutes), (3, 10));
        assert_eq!(p.court("other"), CourtAlerting::default());
        assert_eq!(CourtAlerting::default().quiet_from.to_string(), "22:00");
        assert!(
            OnCallPolicy::from_value(&json!({"courts": {"x": {"urgentAckMinutes": 0}}})).is_err()
        );
        assert!(OnCallPolicy::from_value(&json!({"courts": {"x": {"nope": 1}}})).is_err());
    }
}
