//! MindTickle user sync and progress pulls through the job runner, against a real PostgreSQL
//! server and the MindTickle emulator with its `Strict` rate limit (4 requests/s and 60/min per
//! company).
//!
//! Run with `cargo bench -p enablement-bridge --bench mindtickle_sync --no-default-features`.
//! It creates a scratch database `bridge_bench_<uuid>`, starts the emulator on generated
//! fixtures with one company per tenant, and links each tenant to its company with the
//! configured request budget (default 3/s and 55/min). It never asserts on timings: it prints
//! tables and leaves the judgment to the reader. The HTTP server and the outbox relay do not
//! run, because neither scenario needs them.
//!
//! Scenario 1, user sync: every tenant's users are created at once through
//! `scim_api::service::create_user`, each an email the emulator has activity for but no user
//! yet, so each upsert creates one. Then job-runner loops run `sync::handle_job` until every
//! user is `synced` or the time limit passes. This is a few upserts and process checks per
//! tenant, far below the budget, so the scenario shows sync latency, 429s and duplicate
//! creations, not how well the budget is used.
//!
//! Scenario 2, progress pulls: a `progress.sync_user` job is queued for every user of the first
//! `BENCH_PULL_TENANTS` tenants. Each pull costs about two requests, so that is far more work
//! than the budget allows within the time limit, and each tenant's request rate against its
//! budget shows how well the runner keeps the budget busy.
//!
//! Per-tenant request times come from sampling the emulator's request counters every 100 ms,
//! so a tenant's first and last request are known to within 100 ms. Its rates are over the
//! time between them ("had work"). Requests per minute divide by at least a minute, and "max in
//! 60 s" is the most requests in any 60 s window, to compare with MindTickle's 60/min.
//!
//! Settings (environment variables):
//! - `ENABLEMENT_BRIDGE_TEST_DATABASE_URL`: a role that may create databases, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`.
//! - `BENCH_TENANTS` (20) and `BENCH_USERS_PER_TENANT` (500).
//! - `BENCH_RUNNERS` (4): concurrent job-runner loops. `serve` runs one.
//! - `BENCH_CLAIM` (10): jobs a loop claims per round, the number `serve` claims.
//! - `BENCH_SYNC_SECS` (600): time limit of scenario 1.
//! - `BENCH_PULL_TENANTS` (5) and `BENCH_PULL_SECS` (180): scenario 2. Zero tenants skips it.
//! - `BENCH_PROCESS_DELAY_MS` (200, the emulator's default): time until a bulk upsert finishes.
//! - The service configuration loads as `serve` loads it, from the defaults and the `BRIDGE_`
//!   variables, so `BRIDGE_MINDTICKLE_PROCESS_POLL_SECS`, `BRIDGE_JOBS_POLL_INTERVAL_MS` and
//!   `BRIDGE_MINDTICKLE_BUDGET_MAX_WAIT_MS` apply, and `BRIDGE_REDIS_URL` moves the budgets into
//!   Redis. `database.url` is always the scratch database, and `mindtickle.credentials_key` is a
//!   random key unless one is set.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bridge::app::AppState;
use bridge::config::Config;
use bridge::db::Database;
use bridge::gateway::JwtKeys;
use bridge::jobs::{ClaimedJob, JobFailure, JobOutcome, JobRunner};
use bridge::sync::MindTickleAccount;
use bridge::tenancy::{TenantId, TenantRegistry};
use mindtickle_emulator::{Emulator, GeneratorSpec, Options, RateLimitProfile};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Seed of the generated fixtures, fixed so every run generates the same companies.
const FIXTURE_SEED: u64 = 20_240_601;
/// Interval between samples of the emulator's request counters.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Interval between checks of the users' sync state and of the pulls done.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Concurrent callers that create users and queue pulls.
const SETUP_CONCURRENCY: usize = 16;
/// Time limit of user creation and of queueing the pulls.
const SETUP_LIMIT: Duration = Duration::from_secs(300);
/// Maximum wait for a runner loop to finish its round after the stop.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// Failed jobs whose message is printed. The rest are only counted.
const SHOWN_FAILURES: usize = 3;
/// Target of scenario 2: requests per minute against the per-minute budget.
const TARGET_MINUTE_UTILISATION: f64 = 0.8;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`. Without it the binary was started by a test runner
    // (`cargo test --all-targets`, or a runner listing tests), which must not start a
    // long benchmark against the database.
    if !args.iter().any(|arg| arg == "--bench") {
        if !args.iter().any(|arg| arg == "--list") {
            eprintln!("mindtickle_sync bench: not started by `cargo bench`; nothing to do");
        }
        return Ok(());
    }

    let settings = Settings::from_env()?;
    bridge::install_crypto_provider();
    let database = BenchDatabase::create(&settings.admin_url).await?;
    let outcome = run(&settings, &database).await;
    let dropped = database.drop_database().await;
    outcome?;
    dropped
}

struct Settings {
    admin_url: String,
    tenants: usize,
    users_per_tenant: usize,
    runners: usize,
    claim: i64,
    sync_limit: Duration,
    pull_tenants: usize,
    pull_limit: Duration,
    process_delay: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let settings = Settings {
            admin_url: std::env::var("ENABLEMENT_BRIDGE_TEST_DATABASE_URL")
                .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned()),
            tenants: env_number("BENCH_TENANTS", 20)?,
            users_per_tenant: env_number("BENCH_USERS_PER_TENANT", 500)?,
            runners: env_number("BENCH_RUNNERS", 4)?,
            claim: i64::try_from(env_number("BENCH_CLAIM", 10)?)?,
            sync_limit: Duration::from_secs(env_number("BENCH_SYNC_SECS", 600)? as u64),
            pull_tenants: env_number("BENCH_PULL_TENANTS", 5)?,
            pull_limit: Duration::from_secs(env_number("BENCH_PULL_SECS", 180)? as u64),
            process_delay: Duration::from_millis(env_number("BENCH_PROCESS_DELAY_MS", 200)? as u64),
        };
        if settings.tenants == 0 || settings.tenants > 100 {
            bail!(
                "BENCH_TENANTS={} is invalid: expected 1 to 100",
                settings.tenants
            );
        }
        if settings.users_per_tenant == 0 {
            bail!("BENCH_USERS_PER_TENANT must be at least 1");
        }
        if settings.runners == 0 || settings.claim == 0 {
            bail!("BENCH_RUNNERS and BENCH_CLAIM must be at least 1");
        }
        if settings.pull_tenants > settings.tenants {
            bail!(
                "BENCH_PULL_TENANTS={} is invalid: expected 0 to BENCH_TENANTS ({})",
                settings.pull_tenants,
                settings.tenants
            );
        }
        Ok(settings)
    }
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .with_context(|| format!("{name}={raw:?} is not a non-negative integer")),
        Err(_) => Ok(default),
    }
}

/// The scratch database, its owner pool, and the service pool opened like `serve` opens it.
struct BenchDatabase {
    admin_url: String,
    name: String,
    /// A superuser here, so it reads past row-level security for the progress checks.
    owner: PgPool,
    service: Database,
    /// The configuration the service pool was opened with.
    config: Config,
}

impl BenchDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<BenchDatabase> {
        let admin = connect_one(admin_url).await?;
        let name = format!("bridge_bench_{}", Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .with_context(|| format!("failed to create database {name}"))?;
        admin.close().await;
        eprintln!("mindtickle_sync bench: created database {name}");

        let owner_url = replace_database(admin_url, &name)?;
        let setup = async {
            let owner = PgPoolOptions::new()
                .max_connections(2)
                .connect(&owner_url)
                .await
                .context("failed to connect as the owner")?;
            bridge::db::MIGRATOR
                .run(&owner)
                .await
                .context("failed to run migrations")?;

            let mut config = Config::load(None).context("failed to load the config")?;
            // The account rows live only as long as the scratch database, so any key will do.
            if config.mindtickle.credentials_key.is_none() {
                config.mindtickle.credentials_key = Some(bridge::sync::CredentialsKey::generate());
            }
            let mut service_url = url::Url::parse(&owner_url)?;
            service_url
                .set_username("bridge_service")
                .map_err(|()| anyhow::anyhow!("cannot set a user name on {owner_url}"))?;
            service_url.set_password(None).ok();
            config.database.url = Some(SecretString::from(service_url.to_string()));
            let service = Database::open(&config.database).await?;
            bridge::db::isolation_self_check(&service.pool, bridge::tenancy::TENANT_ROLE, true)
                .await?;
            anyhow::Ok((owner, service, config))
        };
        let (owner, service, config) = match setup.await {
            Ok(opened) => opened,
            Err(error) => {
                drop_database(admin_url, &name).await.ok();
                return Err(error);
            }
        };
        Ok(BenchDatabase {
            admin_url: admin_url.to_owned(),
            name,
            owner,
            service,
            config,
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        self.owner.close().await;
        self.service.close().await;
        drop_database(&self.admin_url, &self.name).await?;
        eprintln!("mindtickle_sync bench: dropped database {}", self.name);
        Ok(())
    }
}

async fn connect_one(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "PostgreSQL is unreachable at {url}; start it or set ENABLEMENT_BRIDGE_TEST_DATABASE_URL"
            )
        })
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect_one(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .with_context(|| format!("failed to drop database {name}"))?;
    admin.close().await;
    Ok(())
}

fn replace_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).with_context(|| format!("invalid database URL {url}"))?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// A tenant and the emulated company its MindTickle account points at.
struct BenchTenant {
    id: TenantId,
    company_id: String,
    /// Number of the generated company, as in its emails `user{n}@company{number}.example`.
    company_number: usize,
}

impl BenchTenant {
    fn email(&self, user: usize) -> String {
        format!("user{user}@company{}.example", self.company_number)
    }
}

async fn run(settings: &Settings, database: &BenchDatabase) -> anyhow::Result<()> {
    let config = database.config.clone();
    let budget = (
        config.mindtickle.requests_per_second,
        config.mindtickle.requests_per_minute,
    );
    eprintln!(
        "mindtickle_sync bench: {} tenants × {} users, {} runner loops claiming {} jobs, \
         jobs.poll_interval_ms {}, mindtickle.process_poll_secs {}, \
         mindtickle.budget_max_wait_ms {}, budget {}/s and {}/min, emulator process delay {} ms",
        settings.tenants,
        settings.users_per_tenant,
        settings.runners,
        settings.claim,
        config.jobs.poll_interval_ms,
        config.mindtickle.process_poll_secs,
        config.mindtickle.budget_max_wait_ms,
        budget.0,
        budget.1,
        settings.process_delay.as_millis(),
    );

    // Every generated learner has activity, but none exists in MindTickle before its upsert.
    let spec = GeneratorSpec {
        existing_users_per_company: 0,
        ..GeneratorSpec::new(FIXTURE_SEED, settings.tenants, settings.users_per_tenant)
    };
    let fixtures = mindtickle_emulator::generate_fixtures(&spec);
    let companies = fixtures.companies.clone();
    let emulator = Emulator::start(
        fixtures,
        Options {
            rate_limit: RateLimitProfile::Strict,
            process_delay: settings.process_delay,
            ..Default::default()
        },
    )
    .await?;

    let jwt_secret = SecretString::from(format!("{}{}", Uuid::new_v4(), Uuid::new_v4()));
    let keys = JwtKeys::new(&jwt_secret, &config.auth.jwt_issuer, 0)?;
    let pool = database.service.pool.clone();
    let state = AppState::new(pool.clone(), config, keys, bridge::server::in_process_bus())?;

    let mut tenants = Vec::with_capacity(companies.len());
    let registry = TenantRegistry::new(pool.clone());
    for (index, company) in companies.iter().enumerate() {
        let tenant = TenantId::parse(&format!("mt-bench-{index:02}"))?;
        registry
            .create(&tenant, &format!("MindTickle bench tenant {index}"))
            .await?;
        let keys = company
            .key_pairs
            .first()
            .context("a generated company has no key pair")?;
        let account = MindTickleAccount {
            api_base: emulator.api_url(company.region),
            admin_base: emulator.admin_url(),
            ls_url: company.ls_url.clone(),
            api_key: keys.api_key.clone(),
            secret_key: keys.secret_key.clone().into(),
            reporting_user: company.reporting_user.clone(),
            reporting_password: company.reporting_password.clone().into(),
            requests_per_second: None,
            requests_per_minute: None,
        };
        state
            .mindtickle()
            .set_account(&pool, &tenant, &account)
            .await?;
        tenants.push(BenchTenant {
            id: tenant,
            company_id: company.company_id.clone(),
            company_number: index + 1,
        });
    }
    let tenants = Arc::new(tenants);

    let outcome = async {
        create_users(&state, &tenants, settings.users_per_tenant).await?;
        let sync = run_user_sync(settings, &state, &database.owner, &emulator, &tenants).await?;
        print_user_sync(settings, budget, &tenants, &sync);
        if settings.pull_tenants > 0 {
            let pulls =
                run_progress_pulls(settings, &state, &database.owner, &emulator, &tenants).await?;
            print_progress_pulls(budget, &tenants[..settings.pull_tenants], &pulls);
        }
        anyhow::Ok(())
    }
    .await;
    emulator.shutdown().await;
    outcome
}

fn user_body(email: &str, index: usize) -> Value {
    let local = email.split('@').next().unwrap_or(email);
    json!({
        "schemas": [scim::USER_SCHEMA],
        "userName": email,
        "externalId": format!("00u{index:08}"),
        "name": {"givenName": local, "familyName": "Bench"},
        "displayName": format!("{local} Bench"),
        "emails": [{"value": email, "type": "work", "primary": true}],
        "locale": "en-US",
        "active": true
    })
}

/// Creates every tenant's users at once, interleaved over the tenants, through the directory
/// service that the SCIM POST handler calls. Each create queues its tenant's push job.
async fn create_users(
    state: &AppState,
    tenants: &Arc<Vec<BenchTenant>>,
    users_per_tenant: usize,
) -> anyhow::Result<()> {
    let total = tenants.len() * users_per_tenant;
    eprintln!("mindtickle_sync bench: creating {total} users");

    let started = Instant::now();
    let deadline = started + SETUP_LIMIT;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..SETUP_CONCURRENCY {
        let state = state.clone();
        let tenants = tenants.clone();
        let next = next.clone();
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total || Instant::now() >= deadline {
                    return anyhow::Ok(());
                }
                let tenant = &tenants[index % tenants.len()];
                let email = tenant.email(index / tenants.len() + 1);
                bridge::scim_api::service::create_user(
                    &state,
                    &tenant.id,
                    &user_body(&email, index),
                )
                .await
                .with_context(|| format!("failed to create user {email} in {}", tenant.id))?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }

    let elapsed = started.elapsed();
    if next.load(Ordering::Relaxed) < total {
        bail!(
            "creating {total} users did not finish within {} s",
            SETUP_LIMIT.as_secs()
        );
    }
    eprintln!(
        "mindtickle_sync bench: created {total} users in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
    );
    Ok(())
}

/// Outcomes of one tenant's jobs of one kind, as the handler returned them.
#[derive(Default, Clone, Copy)]
struct JobCounts {
    done: u64,
    /// `RunAgainAt`: the tenant's budget or a 429 sent the job back without spending an attempt.
    deferred: u64,
    failed: u64,
    /// Total time in the handler.
    handler_time: Duration,
}

/// Job outcomes keyed by tenant and kind, shared by the runner loops of one scenario.
#[derive(Clone, Default)]
struct JobStats {
    counts: Arc<Mutex<BTreeMap<(String, String), JobCounts>>>,
    failures_shown: Arc<AtomicUsize>,
}

impl JobStats {
    fn record(&self, job: &ClaimedJob, outcome: &Result<JobOutcome, JobFailure>, took: Duration) {
        if let Err(failure) = outcome
            && self.failures_shown.fetch_add(1, Ordering::Relaxed) < SHOWN_FAILURES
        {
            eprintln!(
                "mindtickle_sync bench: job {} ({}) of {} failed: {failure}",
                job.job_id, job.kind, job.tenant_id
            );
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = counts
            .entry((job.tenant_id.to_string(), job.kind.clone()))
            .or_default();
        match outcome {
            Ok(JobOutcome::Done) => entry.done += 1,
            Ok(JobOutcome::RunAgainAt(_)) => entry.deferred += 1,
            Err(_) => entry.failed += 1,
        }
        entry.handler_time += took;
    }

    fn snapshot(&self) -> BTreeMap<(String, String), JobCounts> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sums the counts of one tenant, or of every tenant with `None`, per job kind.
    fn by_kind(&self, tenant: Option<&TenantId>) -> BTreeMap<String, JobCounts> {
        let mut sums: BTreeMap<String, JobCounts> = BTreeMap::new();
        for ((job_tenant, kind), counts) in self.snapshot() {
            if tenant.is_some_and(|tenant| tenant.as_str() != job_tenant) {
                continue;
            }
            let sum = sums.entry(kind).or_default();
            sum.done += counts.done;
            sum.deferred += counts.deferred;
            sum.failed += counts.failed;
            sum.handler_time += counts.handler_time;
        }
        sums
    }
}

/// Counters of one runner loop.
#[derive(Default, Clone, Copy)]
struct LoopStats {
    /// Rounds that claimed at least one job.
    rounds: u64,
    jobs: u64,
    /// Wall time of the rounds that claimed jobs, from the claim to the last recorded outcome.
    round_time: Duration,
    idle_polls: u64,
    errors: u64,
}

/// Job-runner loops as `serve` runs one: claim up to `claim` due jobs, run them concurrently,
/// record their outcomes, and sleep `jobs.poll_interval_ms` when none was due.
struct Runners {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<LoopStats>>,
}

impl Runners {
    fn start(state: &AppState, stats: &JobStats, loops: usize, claim: i64) -> Runners {
        let (stop, stopped) = watch::channel(false);
        let handles = (0..loops)
            .map(|_| {
                let runner = JobRunner::new(state.pool().clone(), state.config().jobs.clone());
                let idle = Duration::from_millis(state.config().jobs.poll_interval_ms);
                tokio::spawn(run_loop(
                    runner,
                    state.clone(),
                    stats.clone(),
                    claim,
                    idle,
                    stopped.clone(),
                ))
            })
            .collect();
        Runners { stop, handles }
    }

    /// Stops the loops after their current round and returns what each did. A loop that does
    /// not finish within `STOP_LIMIT` is aborted and missing from the result.
    async fn stop(self) -> Vec<LoopStats> {
        let _ = self.stop.send(true);
        let mut stats = Vec::new();
        for mut handle in self.handles {
            match tokio::time::timeout(STOP_LIMIT, &mut handle).await {
                Ok(Ok(loop_stats)) => stats.push(loop_stats),
                Ok(Err(error)) => eprintln!("mindtickle_sync bench: a runner loop failed: {error}"),
                Err(_) => {
                    eprintln!(
                        "mindtickle_sync bench: a runner loop did not stop within {} s; aborted",
                        STOP_LIMIT.as_secs()
                    );
                    handle.abort();
                }
            }
        }
        stats
    }
}

async fn run_loop(
    runner: JobRunner,
    state: AppState,
    stats: JobStats,
    claim: i64,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) -> LoopStats {
    // Far more rounds than fit in any scenario's time limit, so the stop signal ends the loop.
    const MAX_ROUNDS: u64 = 10_000_000;
    let mut totals = LoopStats::default();
    for _ in 0..MAX_ROUNDS {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let ran = runner
            .run_once(claim, |job| run_job(state.clone(), stats.clone(), job))
            .await;
        let wait = match ran {
            Ok(0) => {
                totals.idle_polls += 1;
                true
            }
            Ok(jobs) => {
                totals.rounds += 1;
                totals.jobs += jobs as u64;
                totals.round_time += started.elapsed();
                false
            }
            Err(error) => {
                eprintln!(
                    "mindtickle_sync bench: the runner failed to claim or record jobs: {error}"
                );
                totals.errors += 1;
                true
            }
        };
        if wait {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
    totals
}

async fn run_job(
    state: AppState,
    stats: JobStats,
    job: ClaimedJob,
) -> Result<JobOutcome, JobFailure> {
    let started = Instant::now();
    let outcome = bridge::sync::handle_job(state, job.clone()).await;
    stats.record(&job, &outcome, started.elapsed());
    outcome
}

/// The emulator's request counters of the sampled companies at one time.
struct Sample {
    at: Duration,
    requests: Vec<u64>,
}

/// Samples every company's request counter every `SAMPLE_INTERVAL` until stopped, at most
/// for `limit` plus a minute.
struct Sampler {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(emulator: &Emulator, tenants: &Arc<Vec<BenchTenant>>, limit: Duration) -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let emulator = emulator.clone();
        let tenants = tenants.clone();
        let max_samples = (limit + Duration::from_secs(60)).as_millis() as usize
            / SAMPLE_INTERVAL.as_millis() as usize;
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
            for _ in 0..max_samples {
                samples.push(Sample {
                    at: started.elapsed(),
                    requests: tenants
                        .iter()
                        .map(|tenant| emulator.request_count(&tenant.company_id))
                        .collect(),
                });
                if *stopped.borrow() {
                    break;
                }
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => {}
                }
            }
            samples
        });
        Sampler { stop, handle }
    }

    /// Takes a last sample and returns all of them.
    async fn stop(self) -> anyhow::Result<Vec<Sample>> {
        let _ = self.stop.send(true);
        Ok(self.handle.await?)
    }
}

/// One tenant's requests within a sampled period.
#[derive(Default, Clone, Copy)]
struct RequestActivity {
    requests: u64,
    /// Sample time of the first request, from the start of the sampling.
    first: Option<Duration>,
    /// Sample time of the last request.
    last: Option<Duration>,
    /// Maximum requests in any 60 s window, to compare with MindTickle's 60/min.
    max_per_minute: u64,
}

impl RequestActivity {
    fn of(samples: &[Sample], tenant: usize) -> RequestActivity {
        let (Some(first_sample), Some(last_sample)) = (samples.first(), samples.last()) else {
            return RequestActivity::default();
        };
        let before = first_sample.requests[tenant];
        let after = last_sample.requests[tenant];
        let first = samples
            .iter()
            .find(|sample| sample.requests[tenant] > before)
            .map(|sample| sample.at);
        let last = samples
            .iter()
            .find(|sample| sample.requests[tenant] == after && after > before)
            .map(|sample| sample.at);
        // The sample 60 s before each sample, found with a second index that only moves forward.
        let mut max_per_minute = 0;
        let mut start = 0;
        for sample in samples {
            while samples[start].at + Duration::from_secs(60) < sample.at {
                start += 1;
            }
            max_per_minute =
                max_per_minute.max(sample.requests[tenant] - samples[start].requests[tenant]);
        }
        RequestActivity {
            requests: after - before,
            first,
            last,
            max_per_minute,
        }
    }

    /// Time from the first to the last request.
    fn busy(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => Duration::ZERO,
        }
    }

    /// Requests per second while the tenant had work.
    fn per_second(&self) -> f64 {
        let busy = self.busy().as_secs_f64();
        if busy > 0.0 {
            self.requests as f64 / busy
        } else {
            0.0
        }
    }

    /// Requests per minute while the tenant had work. Work shorter than a minute counts as one
    /// minute, because a per-minute budget allows all of it within that minute.
    fn per_minute(&self) -> f64 {
        self.requests as f64 * 60.0 / self.busy().as_secs_f64().max(60.0)
    }
}

struct UserSync {
    /// Time from the start of the runners until every user was synced, or the time limit.
    wall: Duration,
    all_synced: bool,
    samples: Vec<Sample>,
    /// Per tenant: users synced, and the time from the start when the last one was.
    synced: Vec<(i64, Option<Duration>)>,
    /// Per tenant: users in state `failed` at the end.
    failed: Vec<i64>,
    rejected: Vec<u64>,
    /// Per tenant: emails created exactly once, never, and more than once.
    creations: Vec<(usize, usize, usize)>,
    job_stats: JobStats,
    loops: Vec<LoopStats>,
}

async fn run_user_sync(
    settings: &Settings,
    state: &AppState,
    owner: &PgPool,
    emulator: &Emulator,
    tenants: &Arc<Vec<BenchTenant>>,
) -> anyhow::Result<UserSync> {
    let expected = i64::try_from(settings.users_per_tenant)?;
    let job_stats = JobStats::default();
    eprintln!(
        "mindtickle_sync bench: scenario 1, syncing users (limit {} s)",
        settings.sync_limit.as_secs()
    );
    let sampler = Sampler::start(emulator, tenants, settings.sync_limit);
    let runners = Runners::start(state, &job_stats, settings.runners, settings.claim);
    let started = Instant::now();
    let deadline = started + settings.sync_limit;

    let mut synced: Vec<(i64, Option<Duration>)> = vec![(0, None); tenants.len()];
    let mut failed = vec![0; tenants.len()];
    let max_checks = settings.sync_limit.as_millis() / CHECK_INTERVAL.as_millis() + 1;
    let mut all_synced = false;
    for _ in 0..max_checks {
        let states = user_states(owner).await?;
        for (index, tenant) in tenants.iter().enumerate() {
            let counts = states.get(tenant.id.as_str()).copied().unwrap_or_default();
            failed[index] = counts.failed;
            if synced[index].1.is_none() {
                synced[index].0 = counts.synced;
                if counts.synced >= expected {
                    synced[index].1 = Some(started.elapsed());
                }
            }
        }
        all_synced = synced.iter().all(|(_, done)| done.is_some());
        if all_synced || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(CHECK_INTERVAL).await;
    }
    let wall = started.elapsed();
    if !all_synced {
        eprintln!(
            "mindtickle_sync bench: scenario 1 stopped at the {} s limit before every user was synced",
            settings.sync_limit.as_secs()
        );
    }
    let loops = runners.stop().await;
    let samples = sampler.stop().await?;

    let stats = emulator.stats();
    let mut rejected = Vec::with_capacity(tenants.len());
    let mut creations = Vec::with_capacity(tenants.len());
    for tenant in tenants.iter() {
        let company = stats.get(&tenant.company_id);
        rejected.push(company.map_or(0, |company| company.rejected_count));
        let mut counted = (0, 0, 0);
        for user in 1..=settings.users_per_tenant {
            let created = company
                .and_then(|company| company.user_creations.get(&tenant.email(user)))
                .copied()
                .unwrap_or(0);
            match created {
                0 => counted.1 += 1,
                1 => counted.0 += 1,
                _ => counted.2 += 1,
            }
        }
        creations.push(counted);
    }
    Ok(UserSync {
        wall,
        all_synced,
        samples,
        synced,
        failed,
        rejected,
        creations,
        job_stats,
        loops,
    })
}

#[derive(Default, Clone, Copy)]
struct StateCounts {
    synced: i64,
    failed: i64,
}

/// Counts users per tenant and MindTickle state, read as the owner past row-level security.
async fn user_states(owner: &PgPool) -> anyhow::Result<HashMap<String, StateCounts>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, mindtickle_state, count(*) FROM users GROUP BY tenant_id, mindtickle_state",
    )
    .fetch_all(owner)
    .await
    .context("failed to count users by MindTickle state")?;
    let mut states: HashMap<String, StateCounts> = HashMap::new();
    for (tenant, state, count) in rows {
        let counts = states.entry(tenant).or_default();
        match state.as_str() {
            "synced" => counts.synced = count,
            "failed" => counts.failed = count,
            _ => {}
        }
    }
    Ok(states)
}

struct ProgressPulls {
    window: Duration,
    samples: Vec<Sample>,
    /// Per pulling tenant: pulls pending when the runners started.
    queued: Vec<i64>,
    /// Per pulling tenant: users whose progress was stored.
    pulled: Vec<i64>,
    /// Per pulling tenant: 429s during the scenario.
    rejected: Vec<u64>,
    job_stats: JobStats,
    loops: Vec<LoopStats>,
}

async fn run_progress_pulls(
    settings: &Settings,
    state: &AppState,
    owner: &PgPool,
    emulator: &Emulator,
    tenants: &Arc<Vec<BenchTenant>>,
) -> anyhow::Result<ProgressPulls> {
    let pulling = &tenants[..settings.pull_tenants];
    let ids: Vec<String> = pulling
        .iter()
        .map(|tenant| tenant.id.as_str().to_owned())
        .collect();
    let users: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, user_id FROM users WHERE tenant_id = ANY($1) ORDER BY user_id",
    )
    .bind(&ids)
    .fetch_all(owner)
    .await
    .context("failed to list the users to pull")?;
    eprintln!(
        "mindtickle_sync bench: scenario 2, queueing {} progress pulls for {} tenants",
        users.len(),
        pulling.len()
    );
    queue_pulls(state, users).await?;

    let mut queued = Vec::with_capacity(pulling.len());
    for tenant in pulling {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = $2 AND status = 'pending'",
        )
        .bind(tenant.id.as_str())
        .bind(bridge::progress::SYNC_PROGRESS_JOB)
        .fetch_one(owner)
        .await?;
        queued.push(count);
    }
    let rejected_before: Vec<u64> = pulling
        .iter()
        .map(|tenant| emulator.rejected_count(&tenant.company_id))
        .collect();

    eprintln!(
        "mindtickle_sync bench: pulling progress for {} s",
        settings.pull_limit.as_secs()
    );
    let job_stats = JobStats::default();
    let sampler = Sampler::start(emulator, tenants, settings.pull_limit);
    let runners = Runners::start(state, &job_stats, settings.runners, settings.claim);
    let started = Instant::now();
    let deadline = started + settings.pull_limit;
    let total_queued: i64 = queued.iter().sum();
    let max_checks = settings.pull_limit.as_millis() / CHECK_INTERVAL.as_millis() + 1;
    for _ in 0..max_checks {
        if Instant::now() >= deadline
            || pulls_stored(owner, pulling).await?.iter().sum::<i64>() >= total_queued
        {
            break;
        }
        tokio::time::sleep(CHECK_INTERVAL).await;
    }
    let window = started.elapsed();
    let loops = runners.stop().await;
    let samples = sampler.stop().await?;
    let pulled = pulls_stored(owner, pulling).await?;
    let rejected = pulling
        .iter()
        .zip(rejected_before)
        .map(|(tenant, before)| emulator.rejected_count(&tenant.company_id) - before)
        .collect();
    Ok(ProgressPulls {
        window,
        samples,
        queued,
        pulled,
        rejected,
        job_stats,
        loops,
    })
}

/// Queues a `progress.sync_user` job per user, due now, as the sync-progress endpoint queues
/// one when the budget has no room.
async fn queue_pulls(state: &AppState, users: Vec<(String, Uuid)>) -> anyhow::Result<()> {
    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + SETUP_LIMIT;
    let mut workers = JoinSet::new();
    for _ in 0..SETUP_CONCURRENCY {
        let state = state.clone();
        let users = users.clone();
        let next = next.clone();
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((tenant, user_id)) = users.get(index) else {
                    return anyhow::Ok(());
                };
                if Instant::now() >= deadline {
                    bail!(
                        "queueing the pulls did not finish within {} s",
                        SETUP_LIMIT.as_secs()
                    );
                }
                let tenant = TenantId::parse(tenant)?;
                bridge::progress::queue_progress_sync(
                    &state,
                    &tenant,
                    *user_id,
                    chrono::Utc::now(),
                )
                .await
                .with_context(|| format!("failed to queue the pull of user {user_id}"))?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    Ok(())
}

/// Counts the users whose progress was stored, per tenant in the order given.
async fn pulls_stored(owner: &PgPool, tenants: &[BenchTenant]) -> anyhow::Result<Vec<i64>> {
    let mut counts = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM progress_syncs WHERE tenant_id = $1")
                .bind(tenant.id.as_str())
                .fetch_one(owner)
                .await
                .context("failed to count the stored pulls")?;
        counts.push(count);
    }
    Ok(counts)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64())
}

fn optional_seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), seconds)
}

/// Formats the request-rate columns shared by both tables: requests, first and last request,
/// the time between them, and the rate in it against the budget per second and per minute.
fn rate_columns(activity: &RequestActivity, budget: (u32, u32)) -> String {
    let per_second = activity.per_second();
    let per_minute = activity.per_minute();
    format!(
        "{} | {} | {} | {} | {per_second:.2} | {:.0}% | {per_minute:.1} | {:.0}% | {}",
        activity.requests,
        optional_seconds(activity.first),
        optional_seconds(activity.last),
        seconds(activity.busy()),
        100.0 * per_second / f64::from(budget.0.max(1)),
        100.0 * per_minute / f64::from(budget.1.max(1)),
        activity.max_per_minute,
    )
}

const RATE_HEADER: &str = "requests | first request s | last request s | had work s | requests/s | of budget/s | requests/min | of budget/min | max in 60 s";
const RATE_ALIGN: &str = "---:|---:|---:|---:|---:|---:|---:|---:|---:";

fn print_user_sync(
    settings: &Settings,
    budget: (u32, u32),
    tenants: &[BenchTenant],
    sync: &UserSync,
) {
    println!();
    println!(
        "Scenario 1: {} users per tenant pushed to MindTickle (budget {}/s, {}/min; emulator Strict 4/s, 60/min)",
        settings.users_per_tenant, budget.0, budget.1
    );
    println!();
    println!(
        "| tenant | {RATE_HEADER} | users synced | all synced at s | users failed | 429s | created once | not created | created twice |"
    );
    println!("|---|{RATE_ALIGN}|---:|---:|---:|---:|---:|---:|---:|");
    let mut totals = (0u64, 0i64, 0i64, 0u64, 0usize, 0usize, 0usize);
    for (index, tenant) in tenants.iter().enumerate() {
        let activity = RequestActivity::of(&sync.samples, index);
        let (synced, synced_at) = sync.synced[index];
        let (once, never, twice) = sync.creations[index];
        println!(
            "| {} | {} | {synced} | {} | {} | {} | {once} | {never} | {twice} |",
            tenant.id,
            rate_columns(&activity, budget),
            optional_seconds(synced_at),
            sync.failed[index],
            sync.rejected[index],
        );
        totals.0 += activity.requests;
        totals.1 += synced;
        totals.2 += sync.failed[index];
        totals.3 += sync.rejected[index];
        totals.4 += once;
        totals.5 += never;
        totals.6 += twice;
    }

    // The total row leaves the eight per-tenant rate columns after `requests` empty.
    println!(
        "| total | {} |{} {} | {} | {} | {} | {} | {} | {} |",
        totals.0,
        " |".repeat(8),
        totals.1,
        seconds(sync.wall),
        totals.2,
        totals.3,
        totals.4,
        totals.5,
        totals.6,
    );
    println!();
    let expected = tenants.len() * settings.users_per_tenant;
    println!(
        "wall time until every user was synced: {} s{}; users synced {} of {expected}; \
         emails created exactly once {} of {expected}; 429s {}",
        seconds(sync.wall),
        if sync.all_synced {
            ""
        } else {
            " (stopped at the time limit)"
        },
        totals.1,
        totals.4,
        totals.3,
    );
    print_runner_stats(&sync.loops, &sync.job_stats);
}

fn print_progress_pulls(budget: (u32, u32), tenants: &[BenchTenant], pulls: &ProgressPulls) {
    println!();
    println!(
        "Scenario 2: progress pulls for {} tenants over {} s (budget {}/s, {}/min; emulator Strict 4/s, 60/min)",
        tenants.len(),
        seconds(pulls.window),
        budget.0,
        budget.1
    );
    println!();
    println!(
        "| tenant | {RATE_HEADER} | pulls queued | pulls stored | pulls/min | requests per pull | pull runs deferred | 429s |"
    );
    println!("|---|{RATE_ALIGN}|---:|---:|---:|---:|---:|---:|");
    let mut lowest_utilisation = f64::INFINITY;
    for (index, tenant) in tenants.iter().enumerate() {
        let activity = RequestActivity::of(&pulls.samples, index);
        let utilisation = activity.per_minute() / f64::from(budget.1.max(1));
        lowest_utilisation = lowest_utilisation.min(utilisation);
        let deferred = pulls
            .job_stats
            .by_kind(Some(&tenant.id))
            .get(bridge::progress::SYNC_PROGRESS_JOB)
            .map_or(0, |counts| counts.deferred);
        let pulled = pulls.pulled[index];
        let per_pull = if pulled > 0 {
            format!("{:.2}", activity.requests as f64 / pulled as f64)
        } else {
            "-".to_owned()
        };
        let pulls_per_minute =
            pulled as f64 * 60.0 / activity.busy().as_secs_f64().max(f64::EPSILON);
        println!(
            "| {} | {} | {} | {pulled} | {pulls_per_minute:.1} | {per_pull} | {deferred} | {} |",
            tenant.id,
            rate_columns(&activity, budget),
            pulls.queued[index],
            pulls.rejected[index],
        );
    }
    println!();
    println!(
        "target (for reference, not asserted): each tenant >= {:.0}% of {}/min while it had work; lowest {:.0}%; 429s {}",
        TARGET_MINUTE_UTILISATION * 100.0,
        budget.1,
        lowest_utilisation * 100.0,
        pulls.rejected.iter().sum::<u64>(),
    );
    print_runner_stats(&pulls.loops, &pulls.job_stats);
}

fn print_runner_stats(loops: &[LoopStats], job_stats: &JobStats) {
    let rounds: u64 = loops.iter().map(|stats| stats.rounds).sum();
    let jobs: u64 = loops.iter().map(|stats| stats.jobs).sum();
    let round_time: Duration = loops.iter().map(|stats| stats.round_time).sum();
    let idle: u64 = loops.iter().map(|stats| stats.idle_polls).sum();
    let errors: u64 = loops.iter().map(|stats| stats.errors).sum();
    println!(
        "runner loops: {}, rounds with jobs {rounds}, jobs per round {:.1}, seconds per round {:.2}, idle polls {idle}, claim or record errors {errors}",
        loops.len(),
        jobs as f64 / rounds.max(1) as f64,
        round_time.as_secs_f64() / rounds.max(1) as f64,
    );
    println!();
    println!("| job kind | done | deferred | failed | handler ms per run |");
    println!("|---|---:|---:|---:|---:|");
    for (kind, counts) in job_stats.by_kind(None) {
        let runs = counts.done + counts.deferred + counts.failed;
        println!(
            "| {kind} | {} | {} | {} | {:.0} |",
            counts.done,
            counts.deferred,
            counts.failed,
            counts.handler_time.as_secs_f64() * 1_000.0 / runs.max(1) as f64,
        );
    }
}
