use tracing_subscriber::EnvFilter;

/// JSON lines on stderr; `WRIT_LOG` (or `RUST_LOG`) sets the filter, `info` by default.
pub fn init() {
    let filter = std::env::var("WRIT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,actix_server=warn,actix_web_prom=error"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
