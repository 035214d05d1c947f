//! HTTP routes, one module per area. Handlers extract, call the domain, and map the result.

pub mod health;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
}
