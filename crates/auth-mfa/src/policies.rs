//! Agency policies (`policies` table): one JSON value per name, changed by agency_admin and
//! audited as `admin.policy.changed`. Values of the names this crate reads are checked here.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use writ_audit_log::{Actor, Event};
use writ_tenancy::TenantTx;

use crate::{AuthError, Role};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    pub value: Value,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_policies(tx: &mut TenantTx) -> Result<Vec<Policy>, AuthError> {
    let rows = sqlx::query("SELECT name, value, updated_at FROM policies ORDER BY name")
        .fetch_all(tx.conn())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Policy {
                name: r.try_get("name")?,
                value: r.try_get("value")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

fn check(name: &str, value: &Value) -> Result<(), AuthError> {
    let b = name.as_bytes();
    let ok = (1..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.'));
    if !ok {
        return Err(AuthError::invalid(
            "name",
            "1 to 63 characters: lowercase letters, digits, '_' and '.', starting with a letter",
        ));
    }
    if name == writ_audit_log::RETENTION_POLICY {
        writ_audit_log::RetentionPolicy::from_value(value)
            .map_err(|reason| AuthError::invalid("value", reason))?;
    }
    if name == writ_agency_keys::ROTATION_POLICY {
        writ_agency_keys::rotation_policy_days(value)
            .map_err(|reason| AuthError::invalid("value", reason))?;
    }
    if name == writ_audit_log::ARCHIVE_POLICY {
        writ_audit_log::ArchivePolicy::from_value(value)
            .map_err(|reason| AuthError::invalid("value", reason))?;
    }
    if let Some(role) = name.strip_prefix("ratelimit.") {
        if role.parse::<Role>().is_err() {
            return Err(AuthError::invalid(
                "name",
                format!("ratelimit.<role>: {role:?} is not a role"),
            ));
        }
        let n = value
            .as_u64()
            .or_else(|| value.get("perMinute").and_then(Value::as_u64));
        if !n.is_some_and(|n| (1..=1_000_000).contains(&n)) {
            return Err(AuthError::invalid(
                "value",
                "a rate limit is a number of requests per minute (1 to 1000000) or {\"perMinute\": n}",
            ));
        }
    }
    Ok(())
}

/// Sets a policy, recording the old and new value.
pub async fn set_policy(
    tx: &mut TenantTx,
    actor: Actor,
    name: &str,
    value: Value,
    source_ip: Option<String>,
) -> Result<Policy, AuthError> {
    check(name, &value)?;
    let old: Option<Value> = sqlx::query("SELECT value FROM policies WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_optional(tx.conn())
        .await?
        .map(|r| r.try_get("value"))
        .transpose()?;
    let row = sqlx::query(
        "INSERT INTO policies (name, value) VALUES ($1, $2) \
         ON CONFLICT (agency_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now() \
         RETURNING name, value, updated_at",
    )
    .bind(name)
    .bind(&value)
    .fetch_one(tx.conn())
    .await?;
    writ_audit_log::record(
        tx,
        &Event::new("admin.policy.changed", actor)
            .source_ip(source_ip)
            .detail(json!({ "name": name, "previous": old, "value": value })),
    )
    .await?;
    Ok(Policy {
        name: row.try_get("name")?,
        value: row.try_get("value")?,
        updated_at: row.try_get("updated_at")?,
    })
}
