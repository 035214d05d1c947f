//! HTTP routes, one module per area. Handlers extract, call the domain, and map the result.

pub mod audit;
pub mod auth;
pub mod health;
pub mod keys;
pub mod legal_holds;
pub mod platform;
pub mod policies;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    audit::configure(cfg);
    legal_holds::configure(cfg);
    auth::configure(cfg);
    users::configure(cfg);
    platform::configure(cfg);
    policies::configure(cfg);
    keys::configure(cfg);
}
