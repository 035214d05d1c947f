//! Agency policies: one JSON value per name in the agency's `policies` table. Tenancy owns the
//! table; what a name means belongs to the crate that reads it. Each such crate exports a
//! `&'static [PolicyDef]` (its names, validators, defaults, whether a change needs step-up) and
//! the server assembles them into one [`PolicyRegistry`], so a name no crate claims is refused
//! instead of stored and silently ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, Row};

use crate::{TenancyError, TenantTx};

/// The largest policy value (compact JSON). A change is recorded with the value before and
/// after, and both must fit in one audit entry.
pub const MAX_POLICY_VALUE_BYTES: usize = 256 * 1024;

/// Which names a definition covers.
#[derive(Debug, Clone, Copy)]
pub enum PolicyName {
    /// One name, e.g. `audit.retention`.
    Exact(&'static str),
    /// A family `<prefix><member>`, e.g. `ratelimit.<role>`; `member` checks the part after the
    /// prefix (an error names the field `name`).
    Family {
        prefix: &'static str,
        member: fn(&str) -> Result<(), String>,
    },
}

impl PolicyName {
    fn matches(&self, name: &str) -> bool {
        match self {
            PolicyName::Exact(n) => *n == name,
            PolicyName::Family { prefix, .. } => name.starts_with(prefix),
        }
    }

    /// How the name reads in messages: `audit.retention`, `ratelimit.<member>`.
    pub fn pattern(&self) -> String {
        match self {
            PolicyName::Exact(n) => (*n).to_owned(),
            PolicyName::Family { prefix, .. } => format!("{prefix}<…>"),
        }
    }
}

/// A policy a crate reads, registered by that crate.
#[derive(Debug, Clone, Copy)]
pub struct PolicyDef {
    pub name: PolicyName,
    /// Checks a value before it is stored; the error says what is expected (field `value`).
    pub validate: fn(&Value) -> Result<(), String>,
    /// The value in force while none is set (given the full name); `Value::Null` when the
    /// default depends on the deployment and the server registers it
    /// ([`PolicyRegistry::with_default`]).
    pub default: fn(&str) -> Value,
    /// A change weakens or strengthens a security control: it needs a recent second factor.
    pub needs_step_up: bool,
    pub description: &'static str,
}

/// Every known policy, assembled once from the definitions of the crates that own them, with the
/// deployment's defaults where a crate leaves them to the server. No global state: whoever needs
/// it builds or holds one.
#[derive(Debug, Clone, Default)]
pub struct PolicyRegistry {
    defs: Vec<&'static PolicyDef>,
    defaults: BTreeMap<String, Value>,
    checks: Vec<DeploymentCheck>,
}

/// Checks a value; the error says what is expected.
type ValueCheck = dyn Fn(&Value) -> Result<(), String> + Send + Sync;

/// A rule of the deployment on top of a policy's own validator (e.g. which archive destinations
/// the operator allows).
#[derive(Clone)]
struct DeploymentCheck {
    name: String,
    check: Arc<ValueCheck>,
}

impl std::fmt::Debug for DeploymentCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PolicyRegistry {
    pub fn new(sets: &[&'static [PolicyDef]]) -> Self {
        Self {
            defs: sets.iter().flat_map(|s| s.iter()).collect(),
            defaults: BTreeMap::new(),
            checks: Vec::new(),
        }
    }

    /// A value of `name` must also pass `check` (the deployment's own rule), after the policy's
    /// validator; its error names what is expected (field `value`).
    pub fn with_check(
        mut self,
        name: impl Into<String>,
        check: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push(DeploymentCheck {
            name: name.into(),
            check: Arc::new(check),
        });
        self
    }

    /// The deployment's default for one name (e.g. `ratelimit.officer` from the environment).
    pub fn with_default(mut self, name: impl Into<String>, value: Value) -> Self {
        self.defaults.insert(name.into(), value);
        self
    }

    pub fn defs(&self) -> &[&'static PolicyDef] {
        &self.defs
    }

    /// The definition of `name`; an unknown name is invalid (field `name`), with the known ones.
    pub fn def(&self, name: &str) -> Result<&'static PolicyDef, TenancyError> {
        let Some(def) = self.defs.iter().find(|d| d.name.matches(name)) else {
            let known: Vec<String> = self.defs.iter().map(|d| d.name.pattern()).collect();
            return Err(TenancyError::invalid(
                "name",
                format!("unknown policy {name:?}; known: {}", known.join(", ")),
            ));
        };
        if let PolicyName::Family { prefix, member } = def.name {
            member(&name[prefix.len()..]).map_err(|r| TenancyError::invalid("name", r))?;
        }
        Ok(def)
    }

    /// Checks `value` for `name`: the definition, or why not (field `name` or `value`).
    pub fn check(&self, name: &str, value: &Value) -> Result<&'static PolicyDef, TenancyError> {
        let def = self.def(name)?;
        let bytes = value.to_string().len();
        if bytes > MAX_POLICY_VALUE_BYTES {
            return Err(TenancyError::invalid(
                "value",
                format!("{bytes} bytes as JSON; a policy holds at most {MAX_POLICY_VALUE_BYTES}"),
            ));
        }
        (def.validate)(value).map_err(|r| TenancyError::invalid("value", r))?;
        for c in self.checks.iter().filter(|c| c.name == name) {
            (c.check)(value).map_err(|r| TenancyError::invalid("value", r))?;
        }
        Ok(def)
    }

    /// The value in force for a known `name` while none is set.
    pub fn default_of(&self, name: &str) -> Value {
        if let Some(v) = self.defaults.get(name) {
            return v.clone();
        }
        self.defs
            .iter()
            .find(|d| d.name.matches(name))
            .map(|d| (d.default)(name))
            .unwrap_or(Value::Null)
    }
}

/// A policy as it stands: set by the agency, or its default (`default: true`, no `updated_at`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyValue {
    pub name: String,
    pub value: Value,
    pub default: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a change did: the value before (`None` when the default was in force) and after.
#[derive(Debug, Clone)]
pub struct PolicyChange {
    pub previous: Option<Value>,
    pub current: PolicyValue,
}

async fn stored(conn: &mut PgConnection, name: &str) -> Result<Option<PolicyValue>, TenancyError> {
    let row =
        sqlx::query("SELECT name, value, updated_at FROM policies WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    row.map(|r| {
        Ok(PolicyValue {
            name: r.try_get("name")?,
            value: r.try_get("value")?,
            default: false,
            updated_at: Some(r.try_get("updated_at")?),
        })
    })
    .transpose()
}

/// The stored value of `name`, if any, for the crate that owns the name (no registry needed).
pub async fn policy_value(tx: &mut TenantTx, name: &str) -> Result<Option<Value>, TenancyError> {
    Ok(
        sqlx::query_scalar::<_, Value>("SELECT value FROM policies WHERE name = $1")
            .bind(name)
            .fetch_optional(tx.conn())
            .await?,
    )
}

/// Every policy of the agency: those set, and the default of each known name that is not. A
/// stored name no crate knows (set before names were checked) is listed too, so it can be seen
/// and deleted.
pub async fn list_policies(
    tx: &mut TenantTx,
    registry: &PolicyRegistry,
) -> Result<Vec<PolicyValue>, TenancyError> {
    let rows = sqlx::query("SELECT name, value, updated_at FROM policies")
        .fetch_all(tx.conn())
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let name: String = r.try_get("name")?;
        let value = PolicyValue {
            name: name.clone(),
            value: r.try_get("value")?,
            default: false,
            updated_at: Some(r.try_get("updated_at")?),
        };
        out.insert(name, value);
    }
    let exact = registry.defs.iter().filter_map(|d| match d.name {
        PolicyName::Exact(n) => Some(n.to_owned()),
        PolicyName::Family { .. } => None,
    });
    for name in exact.chain(registry.defaults.keys().cloned()) {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(name) {
            let value = PolicyValue::default_of(registry, slot.key());
            slot.insert(value);
        }
    }
    Ok(out.into_values().collect())
}

/// One policy: the value set, else the default of a known name. An unknown name that is not
/// stored is invalid (field `name`). A stored row stays locked until the transaction ends, so a
/// change decided on what was read is not raced by another.
pub async fn get_policy(
    tx: &mut TenantTx,
    registry: &PolicyRegistry,
    name: &str,
) -> Result<PolicyValue, TenancyError> {
    if let Some(p) = stored(tx.conn(), name).await? {
        return Ok(p);
    }
    registry.def(name)?;
    Ok(PolicyValue::default_of(registry, name))
}

impl PolicyValue {
    fn default_of(registry: &PolicyRegistry, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: registry.default_of(name),
            default: true,
            updated_at: None,
        }
    }
}

/// Sets a known policy to a valid value. The caller records the change (the audit chain lives
/// above tenancy) in the same transaction.
pub async fn set_policy(
    tx: &mut TenantTx,
    registry: &PolicyRegistry,
    name: &str,
    value: Value,
) -> Result<PolicyChange, TenancyError> {
    registry.check(name, &value)?;
    let previous = stored(tx.conn(), name).await?.map(|p| p.value);
    let row = sqlx::query(
        "INSERT INTO policies (name, value) VALUES ($1, $2) \
         ON CONFLICT (agency_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
         RETURNING name, value, updated_at",
    )
    .bind(name)
    .bind(&value)
    .fetch_one(tx.conn())
    .await?;
    Ok(PolicyChange {
        previous,
        current: PolicyValue {
            name: row.try_get("name")?,
            value: row.try_get("value")?,
            default: false,
            updated_at: Some(row.try_get("updated_at")?),
        },
    })
}

/// Removes a policy, so its default is in force again. Removing one that is not set changes
/// nothing (`previous` is `None`); an unknown name is invalid unless a value is stored under it.
pub async fn delete_policy(
    tx: &mut TenantTx,
    registry: &PolicyRegistry,
    name: &str,
) -> Result<PolicyChange, TenancyError> {
    let previous =
        sqlx::query_scalar::<_, Value>("DELETE FROM policies WHERE name = $1 RETURNING value")
            .bind(name)
            .fetch_optional(tx.conn())
            .await?;
    if previous.is_none() {
        registry.def(name)?;
    }
    Ok(PolicyChange {
        previous,
        current: PolicyValue::default_of(registry, name),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(m: &str) -> Result<(), String> {
        ["officer", "judge"]
            .contains(&m)
            .then_some(())
            .ok_or_else(|| format!("{m:?} is not a role"))
    }

    const DEFS: &[PolicyDef] = &[
        PolicyDef {
            name: PolicyName::Exact("audit.retention"),
            validate: |v| {
                v.get("days")
                    .and_then(Value::as_u64)
                    .map(|_| ())
                    .ok_or_else(|| "{\"days\": N}".to_owned())
            },
            default: |_| json!({ "days": 365 }),
            needs_step_up: true,
            description: "",
        },
        PolicyDef {
            name: PolicyName::Family {
                prefix: "ratelimit.",
                member: role,
            },
            validate: |v| v.as_u64().map(|_| ()).ok_or_else(|| "a number".to_owned()),
            default: |_| Value::Null,
            needs_step_up: true,
            description: "",
        },
    ];

    fn field(e: TenancyError) -> &'static str {
        match e {
            TenancyError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unknown_names_and_bad_values_name_their_field() {
        let r = PolicyRegistry::new(&[DEFS]).with_default("ratelimit.officer", json!(500));
        assert_eq!(field(r.def("audit.retension").unwrap_err()), "name");
        assert_eq!(field(r.def("ratelimit.nobody").unwrap_err()), "name");
        assert_eq!(
            field(r.check("audit.retention", &json!(3)).unwrap_err()),
            "value"
        );
        assert!(r.check("ratelimit.judge", &json!(10)).is_ok());
        assert_eq!(r.default_of("audit.retention"), json!({ "days": 365 }));
        assert_eq!(r.default_of("ratelimit.officer"), json!(500));
        assert_eq!(r.default_of("ratelimit.judge"), Value::Null);
    }
}
