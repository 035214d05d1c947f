//! The agency policies this crate reads — `ratelimit.<role>` and `auth.lockout` — registered
//! with tenancy's policy registry, and the audited change of any agency policy by an
//! administrator (`admin.policy.changed`, with the previous and the new value).

use serde_json::{Value, json};
use writ_audit_log::{Actor, Caller};
use writ_tenancy::{PolicyDef, PolicyName, PolicyRegistry, PolicyValue, TenantTx};

use crate::{AuthError, Role};

/// `ratelimit.<role>`: requests per minute for users of that role.
pub const RATE_LIMIT_PREFIX: &str = "ratelimit.";
/// `auth.lockout`: `{"unlockAfterMinutes": null | N}`.
pub const LOCKOUT_POLICY: &str = "auth.lockout";
/// AC-7 leaves the delay to the organisation; under 15 minutes a lockout barely slows guessing.
pub const MIN_UNLOCK_MINUTES: u32 = 15;
/// A day: longer is the same as waiting for an administrator.
pub const MAX_UNLOCK_MINUTES: u32 = 1440;
const MAX_RATE_LIMIT: u64 = 1_000_000;

/// The policies this crate owns. Both are security controls: changing them needs step-up.
pub const POLICIES: &[PolicyDef] = &[
    PolicyDef {
        name: PolicyName::Family {
            prefix: RATE_LIMIT_PREFIX,
            member: |role| match role.parse::<Role>() {
                Ok(r) if r != Role::PlatformOperator => Ok(()),
                _ => Err(format!(
                    "ratelimit.<role>: {role:?} is not an agency role (officer, supervisor, \
                     prosecutor, judge, agency_admin, auditor)"
                )),
            },
        },
        validate: |v| {
            rate_limit_value(v).map(|_| ()).ok_or_else(|| {
                format!(
                    "a rate limit is a number of requests per minute (1 to {MAX_RATE_LIMIT}) or \
                 {{\"perMinute\": n}}"
                )
            })
        },
        // The deployment's WRIT_RATE_LIMIT_* settings, registered by the server.
        default: |_| Value::Null,
        needs_step_up: true,
        description: "Requests per minute for each user of the role (number or {\"perMinute\": n})",
    },
    PolicyDef {
        name: PolicyName::Exact(LOCKOUT_POLICY),
        validate: |v| LockoutPolicy::from_value(v).map(|_| ()),
        default: |_| json!({ "unlockAfterMinutes": null }),
        needs_step_up: true,
        description: "After five failed logins an account stays locked until an administrator \
                      unlocks it (unlockAfterMinutes: null, the CJIS default) or for N minutes \
                      (15 to 1440)",
    },
];

/// A rate-limit policy value: a number or `{"perMinute": n}`, n from 1 to 1 000 000.
pub fn rate_limit_value(value: &Value) -> Option<u32> {
    let n = match value {
        Value::Object(o) if o.len() == 1 => o.get("perMinute")?.as_u64()?,
        v => v.as_u64()?,
    };
    (1..=MAX_RATE_LIMIT)
        .contains(&n)
        .then(|| u32::try_from(n).ok())
        .flatten()
}

/// How a lockout ends (CJIS AC-7): by an administrator only, or also after a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutPolicy {
    pub unlock_after_minutes: Option<u32>,
}

impl LockoutPolicy {
    /// Reads `{"unlockAfterMinutes": null | N}`, N a whole number of minutes from 15 to 1440.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let shape = || {
            format!(
                "{LOCKOUT_POLICY} is {{\"unlockAfterMinutes\": null}} (only an administrator \
                 unlocks) or {{\"unlockAfterMinutes\": N}}, N whole minutes from \
                 {MIN_UNLOCK_MINUTES} to {MAX_UNLOCK_MINUTES}"
            )
        };
        let object = value
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(shape)?;
        match object.get("unlockAfterMinutes").ok_or_else(shape)? {
            Value::Null => Ok(Self::default()),
            n => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (MIN_UNLOCK_MINUTES..=MAX_UNLOCK_MINUTES).contains(n))
                .map(|n| Self {
                    unlock_after_minutes: Some(n),
                })
                .ok_or_else(shape),
        }
    }

    /// The agency's policy; the default (administrator only) when none is set or the stored
    /// value is not one this version accepts.
    pub async fn load(tx: &mut TenantTx) -> Result<Self, AuthError> {
        let value = writ_tenancy::policy_value(tx, LOCKOUT_POLICY).await?;
        Ok(match value.map(|v| Self::from_value(&v)) {
            Some(Ok(p)) => p,
            Some(Err(reason)) => {
                tracing::warn!(%reason, "stored {LOCKOUT_POLICY} policy ignored");
                Self::default()
            }
            None => Self::default(),
        })
    }
}

/// A caller may lower the rate limit of its own role, never raise it: an administrator who could
/// would lift the one brake on a stolen administrator session. The system (command line, jobs) has
/// no agency role and no such limit.
fn refuse_raising_own_limit(
    caller: &Actor,
    name: &str,
    before: &Value,
    after: &Value,
) -> Result<(), AuthError> {
    let Ok(caller) = caller.role.parse::<Role>() else {
        return Ok(());
    };
    if name.strip_prefix(RATE_LIMIT_PREFIX) != Some(caller.as_str()) {
        return Ok(());
    }
    match (rate_limit_value(before), rate_limit_value(after)) {
        (Some(b), Some(a)) if a <= b => Ok(()),
        (b, a) => Err(AuthError::Forbidden(format!(
            "a {caller} may not raise the rate limit of its own role ({name}: from {} to {} \
             requests per minute); lowering it is allowed",
            b.map_or("unknown".into(), |n| n.to_string()),
            a.map_or("the default".into(), |n| n.to_string()),
        ))),
    }
}

/// Sets a known policy (validated by the crate that owns it), recording `admin.policy.changed`
/// with the previous and the new value in the same transaction.
pub async fn set_policy(
    tx: &mut TenantTx,
    caller: &Caller,
    registry: &PolicyRegistry,
    name: &str,
    value: Value,
) -> Result<PolicyValue, AuthError> {
    registry.check(name, &value)?;
    let before = writ_tenancy::get_policy(tx, registry, name).await?;
    refuse_raising_own_limit(&caller.actor, name, &before.value, &value)?;
    let change = writ_tenancy::set_policy(tx, registry, name, value).await?;
    record_change(tx, caller, name, &change).await?;
    Ok(change.current)
}

/// Removes a policy so its default applies again, recorded like a change (`reset: true`).
pub async fn delete_policy(
    tx: &mut TenantTx,
    caller: &Caller,
    registry: &PolicyRegistry,
    name: &str,
) -> Result<PolicyValue, AuthError> {
    let before = writ_tenancy::get_policy(tx, registry, name).await?;
    refuse_raising_own_limit(
        &caller.actor,
        name,
        &before.value,
        &registry.default_of(name),
    )?;
    let change = writ_tenancy::delete_policy(tx, registry, name).await?;
    if change.previous.is_some() {
        record_change(tx, caller, name, &change).await?;
    }
    Ok(change.current)
}

async fn record_change(
    tx: &mut TenantTx,
    caller: &Caller,
    name: &str,
    change: &writ_tenancy::PolicyChange,
) -> Result<(), AuthError> {
    writ_audit_log::record(
        tx,
        &caller.event("admin.policy.changed").detail(json!({
            "name": name,
            "previous": change.previous,
            "value": change.current.value,
            "reset": change.current.default,
        })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_a_number_or_per_minute() {
        assert_eq!(rate_limit_value(&json!(7)), Some(7));
        assert_eq!(rate_limit_value(&json!({ "perMinute": 7 })), Some(7));
        for bad in [
            json!(0),
            json!(1_000_001),
            json!(-1),
            json!(2.5),
            json!("7"),
            json!({ "perMinute": 7, "burst": 1 }),
            Value::Null,
        ] {
            assert_eq!(rate_limit_value(&bad), None, "{bad}");
        }
    }

    #[test]
    fn lockout_unlocks_by_an_admin_or_after_15_minutes_to_a_day() {
        let p = |v: Value| LockoutPolicy::from_value(&v).map(|p| p.unlock_after_minutes);
        assert_eq!(p(json!({ "unlockAfterMinutes": null })), Ok(None));
        assert_eq!(p(json!({ "unlockAfterMinutes": 15 })), Ok(Some(15)));
        assert_eq!(p(json!({ "unlockAfterMinutes": 1440 })), Ok(Some(1440)));
        for bad in [
            json!({ "unlockAfterMinutes": 14 }),
            json!({ "unlockAfterMinutes": 1441 }),
            json!({ "unlockAfterMinutes": 20.5 }),
            json!({ "unlockAfterMinutes": "20" }),
            json!({ "unlockAfterMinutes": 20, "x": 1 }),
            json!({}),
            json!(20),
        ] {
            assert!(p(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_admin_may_lower_but_not_raise_its_own_roles_limit() {
        let admin = &Actor::user(uuid::Uuid::nil(), "agency_admin");
        let own = "ratelimit.agency_admin";
        assert!(refuse_raising_own_limit(admin, own, &json!(1000), &json!(10)).is_ok());
        assert!(refuse_raising_own_limit(admin, own, &json!(10), &json!(10)).is_ok());
        assert!(matches!(
            refuse_raising_own_limit(admin, own, &json!(10), &json!({ "perMinute": 11 })),
            Err(AuthError::Forbidden(_))
        ));
        // An unknown current limit cannot be shown not to be raised.
        assert!(refuse_raising_own_limit(admin, own, &Value::Null, &json!(1)).is_err());
        assert!(
            refuse_raising_own_limit(admin, "ratelimit.officer", &json!(10), &json!(99)).is_ok()
        );
        assert!(refuse_raising_own_limit(&Actor::system(), own, &json!(10), &json!(99)).is_ok());
    }
}
