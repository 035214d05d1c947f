use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use actix_web_prom::PrometheusMetricsBuilder;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::json_error;
use crate::middleware::{not_found, problem_responses, request_context};
use crate::openapi::ApiDoc;
use crate::{AppState, Config, routes};

/// Serves the API until SIGINT/SIGTERM, then drains in-flight requests.
pub async fn serve(config: &Config, state: AppState) -> anyhow::Result<()> {
    let metrics = PrometheusMetricsBuilder::new("writ")
        .endpoint("/metrics")
        .mask_unmatched_patterns("unmatched")
        .build()
        .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
    let audit = writ_audit_log::BackgroundConfig {
        idle_checkpoint: std::time::Duration::from_secs(config.audit_idle_checkpoint_secs),
        ..Default::default()
    };
    actix_web::rt::spawn(writ_audit_log::run_sequencer(state.pool.clone(), audit));
    actix_web::rt::spawn(writ_audit_log::run_checkpointer(
        state.pool.clone(),
        state.keys.clone(),
        audit,
    ));
    actix_web::rt::spawn(writ_audit_log::run_pruner(
        state.pool.clone(),
        state.keys.clone(),
        std::time::Duration::from_secs(24 * 3600),
    ));
    actix_web::rt::spawn(writ_audit_log::run_archiver(
        state.pool.clone(),
        state.keys.clone(),
        writ_audit_log::ArchiveConfig::default(),
    ));
    actix_web::rt::spawn(writ_audit_log::run_export_worker(
        state.pool.clone(),
        state.keys.clone(),
        writ_audit_log::ExportWorkerConfig::new(config.export_dir.clone()),
    ));
    actix_web::rt::spawn(crate::auth::inactivity_job(state.clone()));
    actix_web::rt::spawn(writ_agency_keys::run_key_maintenance(
        state.pool.clone(),
        state.keys.clone(),
        writ_agency_keys::KeyMaintenanceConfig {
            access_flush: std::time::Duration::from_secs(config.key_access_flush_secs),
            ..Default::default()
        },
    ));
    let limit = config.max_body_bytes;
    let openapi = ApiDoc::openapi();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |err, _req| json_error(err, limit).into()),
            )
            .app_data(web::PayloadConfig::default().limit(limit))
            .wrap(from_fn(crate::ratelimit::rate_limit))
            .wrap(ErrorHandlers::new().default_handler(problem_responses))
            .wrap(metrics.clone())
            .wrap(from_fn(request_context))
            .configure(routes::configure)
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(config.shutdown_timeout_secs)
    .bind(config.bind)?;
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    for addr in server.addrs() {
        // Machine-readable: tools and tests read the bound port (WRIT_BIND may use port 0).
        println!("writ listening on http://{addr}");
        tracing::info!(%addr, "listening");
    }
    server.run().await?;
    tracing::info!("stopped");
    Ok(())
}
