//! Starts an emulator with the demo fixtures and builds clients for its tenants.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use mindtickle::{
    Client, Clock, GateRejected, ProcessId, ProcessStatusReport, RequestGate, RetryPolicy,
    TenantConfig, UserUpsert,
};
use mindtickle_emulator::{Emulator, Fixtures, Options, RateLimitProfile, demo_fixtures};

pub const ACME: &str = "acme";
pub const GLOBEX: &str = "globex";
pub const ALICE: &str = "alice.nguyen@acme.example";

/// Options for most tests: no rate limit, so request bursts are not rejected, and a short
/// process delay.
pub fn options() -> Options {
    Options {
        rate_limit: RateLimitProfile::Off,
        process_delay: Duration::from_millis(40),
        ..Options::default()
    }
}

pub async fn spawn(options: Options) -> Emulator {
    Emulator::start(demo_fixtures(), options).await.unwrap()
}

pub fn tenant(emulator: &Emulator, company_id: &str) -> TenantConfig {
    tenant_of(emulator, &demo_fixtures(), company_id)
}

/// Builds the settings of a company of `fixtures`, which the emulator must serve.
pub fn tenant_of(emulator: &Emulator, fixtures: &Fixtures, company_id: &str) -> TenantConfig {
    let company = fixtures.company(company_id).unwrap();
    let pair = &company.key_pairs[0];
    TenantConfig {
        api_base: emulator.api_url(company.region),
        admin_base: emulator.admin_url(),
        ls_url: company.ls_url.clone(),
        api_key: pair.api_key.clone(),
        secret_key: pair.secret_key.clone().into(),
        reporting_user: company.reporting_user.clone(),
        reporting_password: company.reporting_password.clone().into(),
    }
}

/// An HTTP client. reqwest built with `rustls-no-provider` panics on construction unless a
/// process-wide crypto provider is installed, even for plain-HTTP use.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn client(emulator: &Emulator, company_id: &str) -> Client {
    Client::new(http(), tenant(emulator, company_id))
}

/// A clock that moves only when a test advances it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Instant>,
}

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: Mutex::new(Instant::now()),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap()
    }
}

pub fn client_with_clock(emulator: &Emulator, company_id: &str, clock: Arc<ManualClock>) -> Client {
    Client::with_clock(http(), tenant(emulator, company_id), clock)
}

pub fn upsert(email: &str, name: &str) -> UserUpsert {
    UserUpsert {
        email: email.to_owned(),
        name: name.to_owned(),
        active: true,
        profile: [("dg".to_owned(), "Account Executive".to_owned())].into(),
    }
}

/// Polls process status every 20 ms until all processes finish, failing after 5 s.
pub async fn wait_for(client: &Client, ids: &[ProcessId]) -> ProcessStatusReport {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = client.process_status(ids).await.unwrap();
        if report.all_finished() {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "processes still running: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Upserts users and waits for the upsert to apply.
pub async fn provision(client: &Client, users: &[UserUpsert]) {
    let ids = client.upsert_users(users).await.unwrap();
    wait_for(client, &ids).await;
}

/// Retries without meaningful waits, so retry tests stay fast.
pub fn quick_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

/// A request gate that counts what the client asks of it and admits or rejects every request.
#[derive(Debug, Default)]
pub struct RecordingGate {
    acquired: AtomicUsize,
    rate_limits: Mutex<Vec<Option<Duration>>>,
    rejection: Option<GateRejected>,
}

impl RecordingGate {
    pub fn admitting() -> Arc<RecordingGate> {
        Arc::new(RecordingGate::default())
    }

    pub fn rejecting(rejection: GateRejected) -> Arc<RecordingGate> {
        Arc::new(RecordingGate {
            rejection: Some(rejection),
            ..RecordingGate::default()
        })
    }

    /// Calls of `acquire`, one per HTTP request the client meant to send.
    pub fn acquired(&self) -> usize {
        self.acquired.load(Ordering::SeqCst)
    }

    pub fn rate_limits(&self) -> Vec<Option<Duration>> {
        self.rate_limits.lock().unwrap().clone()
    }
}

impl RequestGate for RecordingGate {
    fn acquire(&self) -> Pin<Box<dyn Future<Output = Result<(), GateRejected>> + Send + '_>> {
        self.acquired.fetch_add(1, Ordering::SeqCst);
        let outcome = match self.rejection {
            Some(rejection) => Err(rejection),
            None => Ok(()),
        };
        Box::pin(std::future::ready(outcome))
    }

    fn on_rate_limited(&self, retry_after: Option<Duration>) {
        self.rate_limits.lock().unwrap().push(retry_after);
    }
}

/// A client of the emulator with quick retries and a recording gate.
pub fn gated_client(
    emulator: &Emulator,
    company_id: &str,
    max_retries: u32,
) -> (Client, Arc<RecordingGate>) {
    let gate = RecordingGate::admitting();
    let client = client(emulator, company_id)
        .with_retry_policy(quick_retries(max_retries))
        .with_request_gate(gate.clone());
    (client, gate)
}
