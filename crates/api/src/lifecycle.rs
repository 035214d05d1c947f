//! The server's own life in every active agency's chain (DESIGN §6): `system.start` once it
//! serves, with the settings that decide how it treats the agency's data (never a secret, only
//! whether one is set) and their SHA-256; `system.config.changed` when that digest differs from
//! the last recorded start of the same host (naming the settings that changed: replicas on other
//! hosts may differ on purpose); `system.stop` when it has drained. Each names its instance (host
//! and process id), so starts and stops of replicas pair up. A chain that cannot take the entry
//! (the database is down) is logged, never a reason not to serve or not to stop.

use std::time::Instant;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use writ_audit_log::{Actor, Event};
use writ_tenancy::{Agency, TenantTx};

use crate::AppState;
use crate::config::Config;

pub const START: &str = "system.start";
pub const STOP: &str = "system.stop";
pub const CONFIG_CHANGED: &str = "system.config.changed";

/// What this server runs with, as recorded: names and non-secret values.
pub fn settings(config: &Config) -> Map<String, Value> {
    let json = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "bind": config.bind.to_string(),
        "maxBodyBytes": config.max_body_bytes,
        "keyProviders": config.key_providers,
        "sessionIdleSecs": config.auth.idle_timeout.as_secs(),
        "sessionLifetimeSecs": config.auth.absolute_timeout.as_secs(),
        "trustForwardedFor": config.trust_forwarded_for,
        "exportRetentionSecs": config.export_retention.as_secs(),
        "documentStore": config.document_store.kind(),
        "archiveDestinationsSet": !config.archive_destinations.is_empty(),
        "videoProvider": config.video_webhook_secret.is_some(),
        "timestampAuthority": config.timestamp_authority.is_some(),
        "smtp": config.notify.smtp.is_some(),
        "sms": config.notify.sms.is_some(),
    });
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// This process: the host it runs on and its process id.
fn instance() -> Value {
    json!({ "host": crate::audit_cli::host_name(), "pid": std::process::id() })
}

/// Starts recorded before this one that are looked at for the same host's last.
const STARTS_LOOKED_AT: i64 = 100;

fn digest(settings: &Map<String, Value>) -> String {
    // serde_json's map is ordered by key: the same settings give the same bytes.
    let bytes = serde_json::to_vec(settings).unwrap_or_default();
    format!("{:x}", Sha256::digest(bytes))
}

/// Records `system.start` (and `system.config.changed` where the settings moved) in every active
/// agency's chain.
pub async fn record_start(state: &AppState, config: &Config) {
    let settings = settings(config);
    let sha256 = digest(&settings);
    for agency in writ_tenancy::active_agencies(&state.pool, START).await {
        if let Err(e) = start_in(state, &agency, &settings, &sha256).await {
            tracing::warn!(agency = %agency.slug, error = %e, "system.start not recorded");
        }
    }
}

async fn start_in(
    state: &AppState,
    agency: &Agency,
    settings: &Map<String, Value>,
    sha256: &str,
) -> anyhow::Result<()> {
    // The last start may still wait in the pending events: sequence first, then compare.
    writ_audit_log::sequence_agency(&state.pool, agency.id, &agency.ident).await?;
    let mut tx = TenantTx::begin_still_active(&state.pool, agency).await?;
    let instance = instance();
    let starts: Vec<String> = sqlx::query_scalar(
        "SELECT entry FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(START)
    .bind(STARTS_LOOKED_AT)
    .fetch_all(tx.conn())
    .await?;
    let last: Option<Value> = starts
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|e| e["detail"]["instance"]["host"] == instance["host"]);
    let previous = last.as_ref().map(|e| &e["detail"]);
    if let Some(previous) = previous
        && previous["configSha256"].as_str() != Some(sha256)
    {
        let before = previous["config"].as_object().cloned().unwrap_or_default();
        let mut changed: Vec<&str> = settings
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .chain(
                before
                    .keys()
                    .filter(|k| !settings.contains_key(*k))
                    .map(String::as_str),
            )
            .collect();
        changed.sort_unstable();
        let event = Event::new(CONFIG_CHANGED, Actor::system()).detail(json!({
            "changed": changed,
            "previousConfigSha256": previous["configSha256"],
            "configSha256": sha256,
        }));
        writ_audit_log::record(&mut tx, &event).await?;
    }
    let event = Event::new(START, Actor::system()).detail(json!({
        "instance": instance,
        "config": settings,
        "configSha256": sha256,
    }));
    writ_audit_log::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Records `system.stop` in every active agency's chain, once the server has drained.
pub async fn record_stop(state: &AppState, started: Instant) {
    let uptime = started.elapsed().as_secs();
    for agency in writ_tenancy::active_agencies(&state.pool, STOP).await {
        let stopped = async {
            let mut tx = TenantTx::begin_still_active(&state.pool, &agency).await?;
            let event = Event::new(STOP, Actor::system()).detail(json!({
                "instance": instance(),
                "reason": "signal",
                "uptimeSecs": uptime,
            }));
            writ_audit_log::record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(())
        };
        if let Err(e) = stopped.await {
            tracing::warn!(agency = %agency.slug, error = %e, "system.stop not recorded");
        }
    }
}
