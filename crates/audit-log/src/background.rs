//! The audit background work of a server process: sequencing committed events promptly (woken
//! by this process's own commits, by NOTIFY from other processes, with a periodic sweep for
//! anything missed) and signing checkpoints. Safe to run in
//! every replica: advisory locks keep one sequencer and one signer per agency at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;
use writ_keys::KeyProvider;
use writ_tenancy::{Agency, WakeListener};

use crate::{checkpoint_agency, sequence_agency};

#[derive(Debug, Clone, Copy)]
pub struct BackgroundConfig {
    /// Sweep for pending events this often even without a notification.
    pub sweep_interval: Duration,
    /// Look for checkpoints to sign this often (a grown tree is signed on the next look).
    pub checkpoint_interval: Duration,
    /// Sign an unchanged tree again after this long, so the signing time stays fresh.
    pub idle_checkpoint: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_millis(500),
            checkpoint_interval: Duration::from_secs(1),
            idle_checkpoint: Duration::from_secs(3600),
        }
    }
}

async fn active_agencies(pool: &PgPool) -> HashMap<Uuid, Agency> {
    writ_tenancy::active_agencies(pool, "audit sequencer")
        .await
        .into_iter()
        .map(|a| (a.id, a))
        .collect()
}

/// The pool the background listeners (`run_sequencer`, `run_export_worker`) take their connections
/// from: a listener keeps its connection for good, so it neither holds one of the requests'
/// connections nor waits for one while they are all busy. Same database, role and acquire
/// timeout as `pool`; connects only when a listener does. Whoever starts the loops closes it once
/// they have stopped, so that their connections end cleanly.
pub fn listener_pool(pool: &PgPool) -> PgPool {
    // Two per listener: one that lost its connection may open the next before the old one is
    // closed.
    PgPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(pool.connect_options().as_ref().clone())
}

/// Notifications taken at once at most, so that a flood cannot hold a loop from its work.
const DRAIN_LIMIT: usize = 10_000;

/// Wakes a background loop when a notification names an agency (`Some(id)`), or at the latest
/// every sweep interval (`None`: look at every agency), reconnecting the listener as needed.
pub(crate) struct Wakeups {
    /// See [`listener_pool`].
    listen_pool: PgPool,
    channel: &'static str,
    listener: Option<PgListener>,
    sweep: tokio::time::Interval,
    /// This process's commits (see `writ_tenancy::CommitWake`).
    local: Option<Arc<WakeListener>>,
    last_connect: Option<std::time::Instant>,
}

impl Wakeups {
    pub(crate) fn new(listen_pool: PgPool, channel: &'static str, sweep: Duration) -> Self {
        Self {
            listen_pool,
            channel,
            listener: None,
            sweep: tokio::time::interval(sweep),
            local: None,
            last_connect: None,
        }
    }

    /// Also wakes for the agencies this process's own commits name.
    fn with_local(mut self, local: Option<WakeListener>) -> Self {
        self.local = local.map(Arc::new);
        self
    }

    /// Like [`Wakeups::next`], with every notification that has already arrived as well: the
    /// agencies named (each once), or `None` for a sweep. Under load a sequencer pass then takes
    /// the events of many commits instead of running once per notifying commit.
    pub(crate) async fn next_all(&mut self) -> Option<Vec<Uuid>> {
        // Connected before the race below, so that frequent local wake-ups never cancel it
        // half-way (and open connection after connection).
        self.connect().await;
        let mut ids = match self.local.clone() {
            Some(local) => tokio::select! {
                woken = local.woken() => woken,
                first = self.wait() => vec![first?],
            },
            None => vec![self.wait().await?],
        };
        let Some(l) = self.listener.as_mut() else {
            return Some(ids);
        };
        // A zero timeout polls once: only what is already read or readable.
        for _ in 0..DRAIN_LIMIT {
            match tokio::time::timeout(Duration::ZERO, l.recv()).await {
                Ok(Ok(n)) => {
                    if let Ok(id) = Uuid::parse_str(n.payload())
                        && !ids.contains(&id)
                    {
                        ids.push(id);
                    }
                }
                Ok(Err(_)) => {
                    self.listener = None;
                    break;
                }
                Err(_) => break,
            }
        }
        Some(ids)
    }

    pub(crate) async fn next(&mut self) -> Option<Uuid> {
        self.connect().await;
        self.wait().await
    }

    /// Listens again if the listener was lost (or never connected), at most once per sweep
    /// interval; stays without one when the database cannot be reached, and the sweep carries on.
    async fn connect(&mut self) {
        let due = self
            .last_connect
            .is_none_or(|at| at.elapsed() >= self.sweep.period());
        if self.listener.is_none() && due {
            self.last_connect = Some(std::time::Instant::now());
            self.listener = match PgListener::connect_with(&self.listen_pool).await {
                Ok(mut l) => l.listen(self.channel).await.ok().map(|()| l),
                Err(_) => None,
            };
        }
    }

    /// The next notification's agency, or `None` at the sweep.
    async fn wait(&mut self) -> Option<Uuid> {
        match self.listener.as_mut() {
            Some(l) => tokio::select! {
                n = l.recv() => match n {
                    Ok(n) => Uuid::parse_str(n.payload()).ok(),
                    Err(_) => { self.listener = None; None }
                },
                _ = self.sweep.tick() => None,
            },
            None => {
                self.sweep.tick().await;
                None
            }
        }
    }
}

/// Runs forever; spawn it next to the HTTP server. `local` takes the wake-ups of this process's
/// own commits (`writ_tenancy::CommitWake::listen`); `listen_pool` is [`listener_pool`]'s.
pub async fn run_sequencer(
    pool: PgPool,
    listen_pool: PgPool,
    config: BackgroundConfig,
    local: Option<WakeListener>,
) {
    let mut agencies = HashMap::new();
    let mut wakeups =
        Wakeups::new(listen_pool, "writ_audit_pending", config.sweep_interval).with_local(local);
    loop {
        let woken = wakeups.next_all().await;
        let targets: Vec<Uuid> = match woken {
            Some(ids) => ids,
            None => {
                agencies = active_agencies(&pool).await;
                agencies.keys().copied().collect()
            }
        };
        for id in targets {
            if !agencies.contains_key(&id) {
                agencies = active_agencies(&pool).await;
            }
            let Some(agency) = agencies.get(&id) else {
                continue;
            };
            if let Err(e) = sequence_agency(&pool, agency.id, &agency.ident).await {
                tracing::error!(agency_id = %id, error = %e, "audit sequencer");
            }
        }
    }
}

/// Runs forever; spawn it next to the HTTP server.
pub async fn run_checkpointer(pool: PgPool, keys: KeyProvider, config: BackgroundConfig) {
    let mut tick = tokio::time::interval(config.checkpoint_interval);
    loop {
        tick.tick().await;
        for agency in active_agencies(&pool).await.values() {
            if let Err(e) =
                checkpoint_agency(&pool, &keys, agency, config.idle_checkpoint, false).await
            {
                tracing::error!(agency_id = %agency.id, error = %e, "audit checkpointer");
            }
        }
    }
}
