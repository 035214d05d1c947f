//! The agency policies of the document store: the upload size limit and retention per tier.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use writ_tenancy::TenantTx;

use crate::DocumentError;

/// `{"bytes": N}`: the largest document the agency accepts.
pub const MAX_BYTES_POLICY: &str = "documents.max_bytes";
/// `{"tier1Days": N|null, "tier2Days": …, "tier3Days": …}`: days after upload at which the daily
/// job erases a document of that tier; null (the default) keeps it. Tier 4 (CJI) is never erased
/// automatically and cannot be named.
pub const RETENTION_POLICY: &str = "documents.retention";

pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// The most any agency may allow per document: 64 GiB.
pub const MAX_MAX_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// The longest retention period that can be set: 100 years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxBytes {
    bytes: u64,
}

/// Validates a `documents.max_bytes` value; returns the limit.
pub fn max_bytes_from(value: &Value) -> Result<u64, String> {
    let v: MaxBytes = serde_json::from_value(value.clone())
        .map_err(|e| format!("expected {{\"bytes\": N}}: {e}"))?;
    if v.bytes == 0 || v.bytes > MAX_MAX_BYTES {
        return Err(format!("bytes must be from 1 to {MAX_MAX_BYTES}"));
    }
    Ok(v.bytes)
}

/// Retention per classification tier: days after upload, `None` to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    #[serde(default)]
    pub tier1_days: Option<u32>,
    #[serde(default)]
    pub tier2_days: Option<u32>,
    #[serde(default)]
    pub tier3_days: Option<u32>,
}

impl Retention {
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let r: Retention = serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "expected {{\"tier1Days\": N|null, \"tier2Days\": N|null, \"tier3Days\": N|null}} \
                 (tier 4, CJI, is never erased automatically): {e}"
            )
        })?;
        for (tier, days) in r.tiers() {
            if let Some(d) = days
                && (d == 0 || d > MAX_RETENTION_DAYS)
            {
                return Err(format!(
                    "tier{tier}Days must be from 1 to {MAX_RETENTION_DAYS}, or null to keep"
                ));
            }
        }
        Ok(r)
    }

    /// `(tier, days)` for tiers 1 to 3.
    pub fn tiers(&self) -> [(i16, Option<u32>); 3] {
        [
            (1, self.tier1_days),
            (2, self.tier2_days),
            (3, self.tier3_days),
        ]
    }
}

pub(crate) async fn max_bytes(tx: &mut TenantTx) -> Result<u64, DocumentError> {
    match writ_tenancy::policy_value(tx, MAX_BYTES_POLICY).await? {
        None => Ok(DEFAULT_MAX_BYTES),
        Some(v) => max_bytes_from(&v).map_err(|reason| DocumentError::Policy {
            name: MAX_BYTES_POLICY,
            reason,
        }),
    }
}

pub(crate) async fn retention(tx: &mut TenantTx) -> Result<Retention, DocumentError> {
    match writ_tenancy::policy_value(tx, RETENTION_POLICY).await? {
        None => Ok(Retention::default()),
        Some(v) => Retention::from_value(&v).map_err(|reason| DocumentError::Policy {
            name: RETENTION_POLICY,
            reason,
        }),
    }
}

/// The policies this crate reads, for the server's registry. Retention destroys evidence:
/// changing it needs step-up. The size limit does not weaken a control.
pub const POLICIES: &[writ_tenancy::PolicyDef] = &[
    writ_tenancy::PolicyDef {
        name: writ_tenancy::PolicyName::Exact(MAX_BYTES_POLICY),
        validate: |v| max_bytes_from(v).map(|_| ()),
        default: |_| json!({ "bytes": DEFAULT_MAX_BYTES }),
        needs_step_up: false,
        description: "Largest document accepted: {\"bytes\": N}, up to 64 GiB (default 100 MiB)",
    },
    writ_tenancy::PolicyDef {
        name: writ_tenancy::PolicyName::Exact(RETENTION_POLICY),
        validate: |v| Retention::from_value(v).map(|_| ()),
        default: |_| json!({ "tier1Days": null, "tier2Days": null, "tier3Days": null }),
        needs_step_up: true,
        description: "Days after upload at which documents of tiers 1-3 are erased: {\"tier1Days\": N|null, \"tier2Days\": N|null, \"tier3Days\": N|null}; tier 4 (CJI) never automatically",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_validate() {
        assert_eq!(max_bytes_from(&json!({"bytes": 10})), Ok(10));
        assert!(max_bytes_from(&json!({"bytes": 0})).is_err());
        assert!(max_bytes_from(&json!({"bytes": 10, "x": 1})).is_err());
        let r = Retention::from_value(&json!({"tier3Days": 30})).unwrap();
        assert_eq!(r.tiers()[2], (3, Some(30)));
        assert!(Retention::from_value(&json!({"tier4Days": 30})).is_err());
        assert!(Retention::from_value(&json!({"tier1Days": 0})).is_err());
        for def in POLICIES {
            assert_eq!((def.validate)(&(def.default)("")), Ok(()));
        }
    }
}
