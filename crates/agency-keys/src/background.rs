//! The key work of a server process: key-access entries every minute, re-wrapping data keys after
//! rotations and rotating keys that reached the agency's rotation period. Safe in every replica
//! (row and advisory locks). Offboarded agencies' keys are destroyed when their offboarding
//! finishes.

use std::time::Duration;

use sqlx::PgPool;
use writ_keys::KeyProvider;
use writ_tenancy::active_agencies;

use crate::{flush_key_access, rewrap_step, rotate_due};

#[derive(Debug, Clone, Copy)]
pub struct KeyMaintenanceConfig {
    pub access_flush: Duration,
    pub rewrap_interval: Duration,
    pub rewrap_batch: i64,
    pub rotation_check: Duration,
}

impl Default for KeyMaintenanceConfig {
    fn default() -> Self {
        Self {
            access_flush: Duration::from_secs(60),
            rewrap_interval: Duration::from_secs(2),
            rewrap_batch: 500,
            rotation_check: Duration::from_secs(3600),
        }
    }
}

/// Runs forever; spawn it next to the HTTP server.
pub async fn run_key_maintenance(pool: PgPool, keys: KeyProvider, config: KeyMaintenanceConfig) {
    let mut flush = tokio::time::interval(config.access_flush);
    let mut rewrap = tokio::time::interval(config.rewrap_interval);
    let mut rotation = tokio::time::interval(config.rotation_check);
    for timer in [&mut flush, &mut rewrap, &mut rotation] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(e) = flush_key_access(&pool, &keys).await {
                    tracing::warn!(error = %e, "keys: writing key.access entries failed; kept for the next try");
                }
            }
            _ = rewrap.tick() => {
                for agency in active_agencies(&pool, "key maintenance").await {
                    match rewrap_step(&pool, &keys, &agency, config.rewrap_batch).await {
                        Ok(Some(job)) => tracing::info!(
                            agency_id = %agency.id, rewrap_id = %job.id, done = job.done,
                            total = job.total, status = %job.status, "keys: re-wrap progress"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(agency_id = %agency.id, error = %e, "keys: re-wrap step failed; retrying"),
                    }
                }
            }
            _ = rotation.tick() => {
                for agency in active_agencies(&pool, "key maintenance").await {
                    if let Err(e) = rotate_due(&pool, &keys, &agency).await {
                        tracing::warn!(agency_id = %agency.id, error = %e, "keys: scheduled rotation failed");
                    }
                }
            }
        }
    }
}
