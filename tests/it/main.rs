//! The end-to-end tests: one binary, one PostgreSQL cluster, one module per area. Each test boots
//! what it needs (a fresh database, the real `writ` server on a random port, moto, the fake Key
//! Vault) and talks to it over the wire like a client.

mod audit_api;
mod audit_archive;
mod audit_chain;
mod audit_retention;
mod auth;
mod auth_limits;
mod auth_rbac;
mod auth_sessions;
mod cloud_agencies;
mod documents;
mod esign;
mod events;
mod gateway;
mod key_lifecycle;
mod key_provider_azure;
mod key_providers;
mod migrate;
mod notifications;
mod offboarding;
mod oncall;
mod operations;
mod policies;
mod request_context;
mod sealing;
mod tenancy;
mod user_update;
mod users;
mod video;
mod warrants;
