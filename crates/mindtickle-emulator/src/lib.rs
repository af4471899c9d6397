//! A local MindTickle API for tests and demos.
//!
//! One [`Emulator`] serves three listeners: the global API host, the US API host and the admin
//! host (OData reporting and the `/__emulator/` test-control endpoints). Routes, auth, paging, rate limits and error bodies follow what live
//! integrations have observed. Where the public record is silent, the emulator follows a
//! proposed contract, marked in the route modules.

mod error;
mod faults;
mod fixtures;
mod generator;
mod rate_limit;
mod routes;
mod state;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::state::{AppState, Host, Shared, Urls};
pub use crate::{
    faults::{CompanyStats, Fault, HTTP_DATE_RETRY_SECONDS, MAX_FAULT_DELAY_MS, RetryAfter},
    fixtures::{
        ActivityFixture, ActivityState, CompanyFixture, FixtureError, Fixtures, GroupFixture,
        KeyPair, ModuleFixture, Region, SeriesFixture, UserFixture, UserState, demo_fixtures,
    },
    generator::{GeneratorSpec, RegionMix, UNSUPPORTED_MODULE_TYPE, generate_fixtures},
    rate_limit::RateLimitProfile,
    state::{EmulatedUser, Options},
};

/// Addresses of the three listeners.
#[derive(Debug, Clone, Copy)]
pub struct ListenAddrs {
    pub api: SocketAddr,
    pub api_us: SocketAddr,
    pub admin: SocketAddr,
}

impl ListenAddrs {
    /// Ephemeral ports on 127.0.0.1.
    pub fn loopback() -> ListenAddrs {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        ListenAddrs {
            api: any_port,
            api_us: any_port,
            admin: any_port,
        }
    }
}

/// A running emulator. Clones share its state; [`Emulator::shutdown`] stops all listeners.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    servers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("urls", &self.shared.urls)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts the emulator on ephemeral loopback ports.
    pub async fn start(fixtures: Fixtures, options: Options) -> anyhow::Result<Emulator> {
        Emulator::start_on(fixtures, options, ListenAddrs::loopback()).await
    }

    /// Starts the emulator on the given addresses.
    pub async fn start_on(
        fixtures: Fixtures,
        options: Options,
        addrs: ListenAddrs,
    ) -> anyhow::Result<Emulator> {
        fixtures.validate()?;
        let bind = |addr: SocketAddr, name: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind the {name} listener on {addr}"))
        };
        let api = bind(addrs.api, "global API").await?;
        let api_us = bind(addrs.api_us, "US API").await?;
        let admin = bind(addrs.admin, "admin").await?;
        let url = |listener: &TcpListener| -> anyhow::Result<String> {
            let addr = listener.local_addr().context("read a listener address")?;
            Ok(format!("http://{addr}"))
        };
        let urls = Urls {
            api_global: url(&api)?,
            api_us: url(&api_us)?,
            admin: url(&admin)?,
        };

        let shared = Arc::new(Shared::new(fixtures, options, urls));
        let (stop, stopped) = watch::channel(false);
        let servers = [
            (api, Host::Api(Region::Global)),
            (api_us, Host::Api(Region::Us)),
            (admin, Host::Admin),
        ]
        .into_iter()
        .map(|(listener, host)| {
            let router = routes::router(AppState {
                shared: Arc::clone(&shared),
                host,
            });
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    // An error means the sender is gone, which also means stop.
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(?host, %error, "emulator listener failed");
                }
            })
        })
        .collect();

        Ok(Emulator {
            shared,
            stop,
            servers: Arc::new(Mutex::new(servers)),
        })
    }

    /// Base URL of the REST and xAPI host of a region, such as `http://127.0.0.1:41234`.
    pub fn api_url(&self, region: Region) -> String {
        match region {
            Region::Global => self.shared.urls.api_global.clone(),
            Region::Us => self.shared.urls.api_us.clone(),
        }
    }

    /// Base URL of the admin host, which serves the OData reporting feed.
    pub fn admin_url(&self) -> String {
        self.shared.urls.admin.clone()
    }

    /// Applies a fault: queues a status or delay for the next requests on any listener, or
    /// sets a per-company switch. A per-company fault naming an unknown company does nothing.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// Drops queued faults and resets every per-company switch to the [`Options`].
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Counters of every company, keyed by company id, as `GET /__emulator/stats` serves them.
    pub fn stats(&self) -> BTreeMap<String, CompanyStats> {
        self.shared.stats()
    }

    /// Returns how many times an upsert created a user with this email (case-insensitive) in
    /// a company. Updates of an existing user do not count, so a value above 1 is a duplicate.
    pub fn creation_count(&self, company_id: &str, email: &str) -> u64 {
        let email = email.trim().to_ascii_lowercase();
        let state = self.shared.lock();
        state
            .companies
            .get(company_id)
            .and_then(|c| c.user_creations.get(&email).copied())
            .unwrap_or(0)
    }

    /// Returns the groups of a company, fixtures first, then those created over the API.
    pub fn groups(&self, company_id: &str) -> Vec<GroupFixture> {
        let state = self.shared.lock();
        state
            .companies
            .get(company_id)
            .map(|c| c.groups.clone())
            .unwrap_or_default()
    }

    /// Requests attributed to a company (after authentication), including rejected ones.
    pub fn request_count(&self, company_id: &str) -> u64 {
        self.with_company(company_id, |c| c.request_count)
    }

    /// Requests of a company rejected with 429 by the rate limit (injected faults not counted).
    pub fn rejected_count(&self, company_id: &str) -> u64 {
        self.with_company(company_id, |c| c.rejected_count)
    }

    /// Token exchanges that named a company's learning site, successful or not.
    pub fn token_request_count(&self, company_id: &str) -> u64 {
        self.with_company(company_id, |c| c.token_request_count)
    }

    /// Makes every token of a company expire now, as if its lifetime had passed, including
    /// legacy JWTs whose `iat` is not later than now.
    pub fn expire_tokens(&self, company_id: &str) {
        routes::expire_tokens(&self.shared, company_id);
    }

    /// Revokes every token of a company, so the API rejects them with 401, including legacy
    /// JWTs whose `iat` is not later than now.
    pub fn revoke_tokens(&self, company_id: &str) {
        routes::revoke_tokens(&self.shared, company_id);
    }

    /// Returns a user of a company by email (case-insensitive), after applying finished
    /// processes.
    pub fn user(&self, company_id: &str, email: &str) -> Option<EmulatedUser> {
        let state = self.shared.lock();
        let company = state.companies.get(company_id)?;
        company
            .user_index(email)
            .map(|index| company.users[index].clone())
    }

    /// Returns all users of a company in creation order.
    pub fn users(&self, company_id: &str) -> Vec<EmulatedUser> {
        let state = self.shared.lock();
        state
            .companies
            .get(company_id)
            .map(|c| c.users.clone())
            .unwrap_or_default()
    }

    /// Stops all listeners, waiting up to five seconds for open connections to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let servers: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.servers.lock().unwrap_or_else(PoisonError::into_inner));
        for mut server in servers {
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }

    fn with_company(&self, company_id: &str, read: impl Fn(&state::Company) -> u64) -> u64 {
        let state = self.shared.lock();
        state.companies.get(company_id).map(read).unwrap_or(0)
    }
}
