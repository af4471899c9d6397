//! Enablement Bridge: provisions identity-provider users into MindTickle over SCIM 2.0, pulls
//! course progress and quiz scores back, and aggregates team readiness reports, for many tenants
//! that never see each other's data.

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod directory;
pub mod events;
pub mod gateway;
pub mod jobs;
pub mod progress;
pub mod readiness;
pub mod scim_api;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod tenancy;
pub mod webhooks;

/// Installs ring as the process-wide rustls crypto provider, which reqwest needs before it builds
/// a client. Safe to call more than once.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is all this needs.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
