//! `key.access`: the data-key uses counted by writ-keys, written as one audit entry per agency
//! per flush (once a minute in a server) rather than one per unwrap.

use serde_json::json;
use sqlx::PgPool;
use writ_audit_log::{Actor, Event, record};
use writ_keys::{AccessCounts, KeyProvider};
use writ_tenancy::{TenantTx, agency_by_id};

use crate::KeyLifecycleError;

/// Writes the counted uses; counts that could not be written are kept for the next flush.
/// Returns how many agencies got an entry.
pub async fn flush_key_access(
    pool: &PgPool,
    keys: &KeyProvider,
) -> Result<usize, KeyLifecycleError> {
    let counts = keys.access().drain();
    let mut written = 0;
    let mut first_error = None;
    for (agency_id, kinds) in counts {
        let uses: Vec<_> = kinds
            .iter()
            .map(|(kind, n)| {
                json!({
                    "keyId": kind.key_id,
                    "keyVersion": kind.version,
                    "operation": kind.operation.as_str(),
                    "ok": kind.ok,
                    "count": n,
                })
            })
            .collect();
        let outcome = async {
            let Some(agency) = agency_by_id(pool, agency_id).await? else {
                // The agency is gone: nothing to attach the entry to.
                return Ok(());
            };
            let mut tx = TenantTx::begin(pool, &agency).await?;
            record(
                &mut tx,
                &Event::new("key.access", Actor::system()).detail(json!({ "uses": uses })),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), KeyLifecycleError>(())
        }
        .await;
        match outcome {
            Ok(()) => written += 1,
            Err(e) => {
                let mut back = AccessCounts::new();
                back.insert(agency_id, kinds);
                keys.access().restore(back);
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}
