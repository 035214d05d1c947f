//! writ-api is the gateway: it turns HTTP into calls on the domain crates and their results back
//! into HTTP. It owns routing, middleware (request ids, metrics, body limits), the one mapping of
//! errors to RFC 9457 problem+json, the OpenAPI document and the `writ` command line. It writes no
//! SQL of its own beyond health checks and never decides a business rule.

pub mod app;
pub mod audit_cli;
pub mod auth;
pub mod auth_cli;
pub mod body;
pub mod cli;
pub mod config;
pub mod dev;
pub mod error;
pub mod json;
pub mod keys_cli;
pub mod lifecycle;
pub mod logging;
pub mod middleware;
pub mod offboarding;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod upload_pace;
pub mod user_cli;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;
