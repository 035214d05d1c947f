use std::time::Duration;

use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use actix_web_prom::PrometheusMetricsBuilder;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::json_error;
use crate::middleware::{not_found, problem_responses, request_context};
use crate::{AppState, Config, routes};

/// Every background loop of a server process, started together and stopped together: on
/// shutdown each is signalled and awaited here, inside the runtime, so what it holds (database
/// listeners, connections) is dropped while Tokio still runs.
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
    /// The audit listeners' connections (`writ_audit_log::listener_pool`), closed once the loops
    /// have stopped.
    listen_pool: sqlx::PgPool,
    /// For the last `key.access` flush at shutdown (the loop flushes once a minute).
    pool: sqlx::PgPool,
    keys: writ_keys::KeyProvider,
}

impl Background {
    /// Starts the sequencer, checkpointer, pruner, archiver, export worker, inactivity job and key
    /// maintenance. Pruning deletes audit entries, which only the owner may: it gets the owner's
    /// pool; everything else runs as the serving role.
    pub fn start(config: &Config, state: &AppState) -> Self {
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut bg = Self {
            stop,
            tasks: Vec::new(),
            listen_pool: writ_audit_log::listener_pool(&state.pool),
            pool: state.pool.clone(),
            keys: state.keys.clone(),
        };
        let audit = writ_audit_log::BackgroundConfig {
            idle_checkpoint: Duration::from_secs(config.audit_idle_checkpoint_secs),
            ..Default::default()
        };
        bg.spawn(
            "audit sequencer",
            writ_audit_log::run_sequencer(
                state.pool.clone(),
                bg.listen_pool.clone(),
                audit,
                Some(state.commit_wake.listen()),
            ),
        );
        bg.spawn(
            "audit checkpointer",
            writ_audit_log::run_checkpointer(state.pool.clone(), state.keys.clone(), audit),
        );
        bg.spawn(
            "audit pruner",
            writ_audit_log::run_pruner(
                state.owner_pool.clone(),
                state.keys.clone(),
                Duration::from_secs(24 * 3600),
            ),
        );
        bg.spawn(
            "audit archiver",
            writ_audit_log::run_archiver(
                state.pool.clone(),
                state.keys.clone(),
                writ_audit_log::ArchiveConfig::new(state.archive_destinations.clone()),
            ),
        );
        bg.spawn(
            "audit export worker",
            writ_audit_log::run_export_worker(
                state.pool.clone(),
                bg.listen_pool.clone(),
                state.keys.clone(),
                writ_audit_log::ExportWorkerConfig {
                    retention: config.export_retention,
                    ..writ_audit_log::ExportWorkerConfig::new(config.export_dir.clone())
                },
            ),
        );
        bg.spawn("inactivity job", crate::auth::inactivity_job(state.clone()));
        bg.spawn(
            "warrant jobs",
            writ_warrant_workflow::jobs::run_warrant_jobs(
                state.pool.clone(),
                Duration::from_secs(60),
            ),
        );
        bg.spawn(
            "video session timeouts",
            writ_warrant_workflow::video::store::run_video_jobs(
                state.pool.clone(),
                Duration::from_secs(60),
            ),
        );
        bg.spawn(
            "document retention",
            writ_documents::retention::run_retention_job(
                state.pool.clone(),
                state.documents.clone(),
                Duration::from_secs(24 * 3600),
            ),
        );
        bg.spawn(
            "on-call routing",
            writ_warrant_workflow::oncall::run_routing_job(
                state.pool.clone(),
                Duration::from_secs(config.routing_interval_secs),
            ),
        );
        // The transports were checked when the configuration was read; a channel without one
        // fails its alerts visibly ("no transport configured").
        match config.notify.transports() {
            Ok(transports) => bg.spawn(
                "notification delivery",
                writ_notify::run_delivery(
                    state.pool.clone(),
                    transports,
                    config.notify.delivery.clone(),
                ),
            ),
            Err((var, reason)) => {
                tracing::error!(
                    var,
                    reason,
                    "notification transports unusable; alerts stay pending"
                )
            }
        }
        bg.spawn(
            "offboarding",
            crate::offboarding::run_offboarding_job(
                state.owner_pool.clone(),
                state.keys.clone(),
                state.documents.clone(),
                state.export_dir.clone(),
                Duration::from_secs(3600),
            ),
        );
        bg.spawn(
            "key maintenance",
            writ_agency_keys::run_key_maintenance(
                state.pool.clone(),
                state.keys.clone(),
                writ_agency_keys::KeyMaintenanceConfig {
                    access_flush: Duration::from_secs(config.key_access_flush_secs),
                    ..Default::default()
                },
            ),
        );
        bg
    }

    fn spawn(&mut self, name: &'static str, work: impl Future<Output = ()> + 'static) {
        let mut stop = self.stop.subscribe();
        let handle = actix_web::rt::spawn(async move {
            // A loop stopped here is dropped at its current await point: what it was doing is
            // one transaction at most, which then rolls back (an export job's lease runs out and
            // another replica takes it).
            tokio::select! {
                () = work => tracing::error!(task = name, "background task ended"),
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
        self.tasks.push((name, handle));
    }

    /// Signals every loop, waits until each has stopped, closes the listeners' connections and
    /// writes the key uses counted since the last flush.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "background task failed");
            }
        }
        self.listen_pool.close().await;
        // Up to a minute of counted key uses would otherwise be lost with the process.
        if let Err(e) = writ_agency_keys::flush_key_access(&self.pool, &self.keys).await {
            tracing::warn!(error = %e, "could not write the last key.access entries");
        }
    }
}

/// Refuses to serve as a superuser or a role that bypasses row-level security: the serving
/// login is the least-privileged role (README, "Database roles"). A database that does not answer
/// yet is not a reason to refuse: readiness reports it.
async fn check_serving_role(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_secs(5), writ_tenancy::login_role(pool)).await {
        Ok(Ok(role)) if role.superuser || role.bypass_rls => anyhow::bail!(
            "DATABASE_URL logs in as {}, which is a superuser or bypasses row-level security; \
             serve through the serving role {} and give WRIT_OWNER_DATABASE_URL the owner {} \
             (README, Database roles)",
            role.name,
            writ_tenancy::SERVING_ROLE,
            writ_tenancy::OWNER_ROLE
        ),
        Ok(Ok(role)) => {
            tracing::info!(
                role = role.name,
                "serving as a role without superuser or BYPASSRLS"
            );
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot check the serving role yet");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("cannot check the serving role yet: the database did not answer");
            Ok(())
        }
    }
}

/// Serves the API until SIGINT/SIGTERM, then drains in-flight requests, stops the background
/// loops and closes the pools.
pub async fn serve(config: &Config, state: AppState) -> anyhow::Result<()> {
    check_serving_role(&state.pool).await?;
    let metrics = PrometheusMetricsBuilder::new("writ")
        .endpoint("/metrics")
        .mask_unmatched_patterns("unmatched")
        .build()
        .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
    let pools = (state.pool.clone(), state.owner_pool.clone());
    let stopping = state.clone();
    let lifecycle = state.clone();
    let background = Background::start(config, &state);
    let limit = config.max_body_bytes;
    let body_deadline = config.body_deadline;
    let mut server = HttpServer::new(move || {
        // The API's routes and their OpenAPI document come from one registration. Outside it, and
        // so undocumented: /metrics (answered by the metrics middleware), /openapi.json and
        // /docs (Swagger UI), and the default service (404 problem).
        let (app, openapi) = routes::mount(App::new());
        app.app_data(web::Data::new(state.clone()))
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |err, _req| json_error(err, limit).into()),
            )
            .app_data(web::PayloadConfig::default().limit(limit))
            .wrap(from_fn(move |req, next| {
                crate::body::read_first(req, next, limit, body_deadline)
            }))
            .wrap(from_fn(crate::ratelimit::rate_limit))
            .wrap(ErrorHandlers::new().default_handler(problem_responses))
            .wrap(metrics.clone())
            .wrap(from_fn(request_context))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(config.shutdown_timeout_secs)
    // The signals are handled below, so that long responses learn of the shutdown first.
    .disable_signals()
    .bind(config.bind)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    // From here on SIGTERM/SIGINT drain the server instead of killing the process: the handlers
    // are in place before anyone is told the server listens.
    let signals = ShutdownSignals::install();
    // Bound: the server will serve. Recorded before it says so, so the chains name the start
    // before the first request.
    let started = std::time::Instant::now();
    crate::lifecycle::record_start(&lifecycle, config).await;
    for addr in server.addrs() {
        // Machine-readable: tools and tests read the bound port (WRIT_BIND may use port 0).
        println!("writ listening on http://{addr}");
        println!("  API docs: http://{addr}/docs/  (OpenAPI: http://{addr}/openapi.json)");
        tracing::info!(%addr, "listening");
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        signals.received().await;
        stopping.begin_shutdown();
        handle.stop(true).await;
    });
    let served = server.await;
    tracing::info!("HTTP server drained; stopping background work");
    background.shutdown().await;
    crate::lifecycle::record_stop(&lifecycle, started).await;
    pools.0.close().await;
    pools.1.close().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment [`ShutdownSignals::install`] returns.
struct ShutdownSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            // Without signal handlers nothing would ever stop the server but a kill: say so.
            _ => {
                tracing::error!("cannot listen for SIGTERM/SIGINT; falling back to Ctrl-C only");
                Self(None)
            }
        }
    }

    /// Resolves on the first of them.
    async fn received(self) {
        match self.0 {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
