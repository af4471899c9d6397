//! SCIM throughput and latency against a real PostgreSQL server.
//!
//! Run with `cargo bench -p enablement-bridge --bench scim`. It creates a scratch database
//! `bridge_bench_<uuid>`, serves the real router on 127.0.0.1 in this process and drives it with
//! a bounded number of concurrent HTTP clients. It never asserts on timings: it prints one table
//! and leaves the judgment to the reader. The job runner does not run, so MindTickle pushes stay
//! queued and the numbers cover the request path only.
//!
//! Settings (environment variables):
//! - `ENABLEMENT_BRIDGE_TEST_DATABASE_URL`: a role that may create databases, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`.
//! - `BENCH_USERS`: users created in total, default 100000.
//! - `BENCH_USERS_FIRST`: users when the first read measurement runs, default a tenth of
//!   `BENCH_USERS`, so the second read runs on ten times as many rows.
//! - `BENCH_TENANTS` (100), `BENCH_CONCURRENCY` (32 requests in flight), `BENCH_READS` (20000),
//!   `BENCH_PATCHES` (10000), `BENCH_BASELINE_TX` (20000), `BENCH_SQL_ONLY` (5000 creates and
//!   as many lookups through the directory functions without HTTP, to split where time goes).
//! - `BENCH_PHASE_SECS`: time limit of each measured phase, default 600. A phase that reaches it
//!   stops early and reports the count it completed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bridge::app::{AppState, router};
use bridge::config::Config;
use bridge::db::Database;
use bridge::directory;
use bridge::gateway::JwtKeys;
use bridge::tenancy::{TenantId, TenantRegistry, TenantTx};
use rand::{Rng, SeedableRng};
use scim::UserResource;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
use uuid::Uuid;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Failed requests of a phase whose status and body are printed; the rest are only counted.
const SHOWN_FAILURES: usize = 3;

const TARGET_CREATES_PER_SEC: f64 = 1_500.0;
const TARGET_READS_PER_SEC: f64 = 5_000.0;
const TARGET_READ_P99: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`. Without it the binary was started by a test runner
    // (`cargo test --all-targets`, or a runner listing tests), which must not start a
    // long benchmark against the database.
    if !args.iter().any(|arg| arg == "--bench") {
        if !args.iter().any(|arg| arg == "--list") {
            eprintln!("scim bench: not started by `cargo bench`; nothing to do");
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
    users: usize,
    users_first: usize,
    tenants: usize,
    concurrency: usize,
    reads: usize,
    patches: usize,
    baseline_transactions: usize,
    sql_only: usize,
    phase_limit: Duration,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let users = env_number("BENCH_USERS", 100_000)?;
        let settings = Settings {
            admin_url: std::env::var("ENABLEMENT_BRIDGE_TEST_DATABASE_URL")
                .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned()),
            users,
            users_first: env_number("BENCH_USERS_FIRST", users / 10)?,
            tenants: env_number("BENCH_TENANTS", 100)?,
            concurrency: env_number("BENCH_CONCURRENCY", 32)?,
            reads: env_number("BENCH_READS", 20_000)?,
            patches: env_number("BENCH_PATCHES", 10_000)?,
            baseline_transactions: env_number("BENCH_BASELINE_TX", 20_000)?,
            sql_only: env_number("BENCH_SQL_ONLY", 5_000)?,
            phase_limit: Duration::from_secs(env_number("BENCH_PHASE_SECS", 600)? as u64),
        };
        if settings.users_first == 0 || settings.users_first > settings.users {
            bail!(
                "BENCH_USERS_FIRST={} is invalid: expected 1 to BENCH_USERS ({})",
                settings.users_first,
                settings.users
            );
        }
        if settings.tenants == 0 || settings.tenants > 1_000 {
            bail!(
                "BENCH_TENANTS={} is invalid: expected 1 to 1000",
                settings.tenants
            );
        }
        if settings.concurrency == 0 {
            bail!("BENCH_CONCURRENCY must be at least 1");
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
    owner: PgPool,
    service: Database,
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
        eprintln!("scim bench: created database {name}");

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

            let mut config = Config::load(None).context("failed to load the default config")?;
            let mut service_url = url::Url::parse(&owner_url)?;
            service_url
                .set_username("bridge_service")
                .map_err(|()| anyhow::anyhow!("cannot set a user name on {owner_url}"))?;
            service_url.set_password(None).ok();
            config.database.url = Some(SecretString::from(service_url.to_string()));
            let service = Database::open(&config.database).await?;
            bridge::db::isolation_self_check(&service.pool, bridge::tenancy::TENANT_ROLE, true)
                .await?;
            anyhow::Ok((owner, service))
        };
        let (owner, service) = match setup.await {
            Ok(pools) => pools,
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
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        self.owner.close().await;
        self.service.close().await;
        drop_database(&self.admin_url, &self.name).await?;
        eprintln!("scim bench: dropped database {}", self.name);
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

/// The running service and what the clients need to address it.
struct Bench {
    base_url: String,
    http: reqwest::Client,
    /// The service's own pool, also used by the phases that bypass HTTP.
    pool: PgPool,
    /// Reads `pg_stat_activity` to find the backends whose CPU time a phase reports.
    owner: PgPool,
    /// `jobs.max_attempts` of the push jobs that the phases without HTTP enqueue.
    max_attempts: i32,
    /// One SCIM bearer token per tenant, in tenant order.
    tenants: Vec<(TenantId, String)>,
    concurrency: usize,
    phase_limit: Duration,
}

async fn run(settings: &Settings, database: &BenchDatabase) -> anyhow::Result<()> {
    let pool = database.service.pool.clone();
    let config = Config::load(None)?;
    let pool_size = config.database.max_connections;
    let max_attempts = config.jobs.max_attempts;
    let jwt_secret = SecretString::from(format!("{}{}", Uuid::new_v4(), Uuid::new_v4()));
    let keys = JwtKeys::new(&jwt_secret, &config.auth.jwt_issuer, 0)?;
    let state = AppState::new(pool.clone(), config, keys, bridge::server::in_process_bus())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let tenants = create_tenants(&pool, settings.tenants).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let bench = Arc::new(Bench {
        base_url,
        http,
        pool: pool.clone(),
        owner: database.owner.clone(),
        max_attempts,
        tenants,
        concurrency: settings.concurrency,
        phase_limit: settings.phase_limit,
    });
    eprintln!(
        "scim bench: {} tenants, {} users ({} before the first read), {} clients, pool of {pool_size}",
        settings.tenants, settings.users, settings.users_first, settings.concurrency
    );
    warm_up(&bench).await?;

    let mut results = Vec::new();
    let mut ids = Vec::with_capacity(settings.users);

    let (phase, created) = create_users(&bench, 0, settings.users_first).await?;
    let mut total_users = created.len();
    ids.extend(created);
    results.push(phase.named(format!("create users 0 → {total_users}")));
    let first_read = read_users(&bench, total_users, settings.reads).await?;
    let first_read = first_read.named(format!("filter userName eq, {total_users} users"));
    results.push(first_read.clone());

    let mut second_read = None;
    if settings.users > total_users {
        let start = total_users;
        let (phase, created) = create_users(&bench, start, settings.users).await?;
        total_users += created.len();
        ids.extend(created);
        results.push(phase.named(format!("create users {start} → {total_users}")));
        let read = read_users(&bench, total_users, settings.reads).await?;
        let read = read.named(format!("filter userName eq, {total_users} users"));
        results.push(read.clone());
        second_read = Some(read);
    }

    ids.sort_unstable_by_key(|(index, _)| *index);
    ids.truncate(settings.patches);
    results.push(
        deactivate_users(&bench, &ids)
            .await?
            .named("PATCH active=false"),
    );

    if settings.sql_only > 0 {
        let start = total_users.max(settings.users);
        let phase = create_users_sql(&bench, start, settings.sql_only).await?;
        results.push(phase.named("SQL only: create_user tx"));
        let phase = read_users_sql(&bench, total_users, settings.sql_only).await?;
        results.push(phase.named("SQL only: find_by_user_name tx"));
    }

    let baseline = insert_baseline(&bench, settings.baseline_transactions)
        .await?
        .named(format!("baseline: INSERT tx (pool {pool_size})"));

    server.abort();
    print_table(&results, &baseline);
    print_targets(&results, &first_read, second_read.as_ref());
    Ok(())
}

async fn create_tenants(pool: &PgPool, count: usize) -> anyhow::Result<Vec<(TenantId, String)>> {
    let registry = TenantRegistry::new(pool.clone());
    let mut tenants = Vec::with_capacity(count);
    for index in 0..count {
        let tenant = TenantId::parse(&format!("bench-{index:03}"))?;
        registry
            .create(&tenant, &format!("Bench tenant {index}"))
            .await?;
        let token = bridge::scim_api::create_scim_token(pool, &tenant).await?;
        tenants.push((tenant, token.expose_secret().to_owned()));
    }
    Ok(tenants)
}

/// Sends one request per tenant so the argon2 check of each token (cached for a minute by the
/// service) falls outside the first measured phase.
async fn warm_up(bench: &Bench) -> anyhow::Result<()> {
    for (tenant, token) in &bench.tenants {
        let response = bench
            .http
            .get(format!("{}/scim/v2/{tenant}/Users", bench.base_url))
            .query(&[("count", "1")])
            .bearer_auth(token)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "warm-up request for tenant {tenant} failed with {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Returns the tenant index and userName of user number `index`. Users are dealt round-robin
/// over the tenants.
fn user_of(bench: &Bench, index: usize) -> (usize, String) {
    let tenant = index % bench.tenants.len();
    (tenant, format!("user{index}@bench-{tenant:03}.example.com"))
}

fn user_body(index: usize, user_name: &str) -> Value {
    json!({
        "schemas": [scim::USER_SCHEMA],
        "userName": user_name,
        "externalId": format!("00u{index:08}"),
        "name": {"givenName": format!("Given{index}"), "familyName": "Bench"},
        "displayName": format!("Given{index} Bench"),
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "locale": "en-US",
        "active": true
    })
}

async fn create_users(
    bench: &Arc<Bench>,
    start: usize,
    end: usize,
) -> anyhow::Result<(Phase, Vec<(usize, Uuid)>)> {
    eprintln!("scim bench: creating users {start} → {end}");
    let outcome = run_phase(bench, end - start, move |bench, n| async move {
        let index = start + n;
        let (tenant, user_name) = user_of(&bench, index);
        let (tenant_id, token) = &bench.tenants[tenant];
        let response = bench
            .http
            .post(format!("{}/scim/v2/{tenant_id}/Users", bench.base_url))
            .bearer_auth(token)
            .header("content-type", bridge::scim_api::SCIM_CONTENT_TYPE)
            .body(user_body(index, &user_name).to_string())
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            return Ok(Err(format!("POST {user_name}: {status} {body}")));
        }
        let created: Value = serde_json::from_str(&body)?;
        let id = created["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .with_context(|| format!("POST {user_name} returned no id: {body}"))?;
        Ok(Ok(Some((index, id))))
    })
    .await?;
    Ok((outcome.phase, outcome.values))
}

async fn read_users(bench: &Arc<Bench>, users: usize, reads: usize) -> anyhow::Result<Phase> {
    eprintln!("scim bench: {reads} filtered reads over {users} users");
    let outcome = run_phase(bench, reads, move |bench, n| async move {
        // Seeded per request, so every run reads the same users.
        let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
        let index = rng.random_range(0..users);
        let (tenant, user_name) = user_of(&bench, index);
        let (tenant_id, token) = &bench.tenants[tenant];
        let response = bench
            .http
            .get(format!("{}/scim/v2/{tenant_id}/Users", bench.base_url))
            .query(&[("filter", format!("userName eq \"{user_name}\""))])
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if status != reqwest::StatusCode::OK {
            return Ok(Err(format!("GET {user_name}: {status} {body}")));
        }
        let list: Value = serde_json::from_str(&body)?;
        if list["totalResults"] != 1 {
            return Ok(Err(format!(
                "GET {user_name}: expected one result, got {body}"
            )));
        }
        Ok(Ok(None::<()>))
    })
    .await?;
    Ok(outcome.phase)
}

async fn deactivate_users(bench: &Arc<Bench>, ids: &[(usize, Uuid)]) -> anyhow::Result<Phase> {
    eprintln!("scim bench: deactivating {} users", ids.len());
    let ids: Arc<Vec<(usize, Uuid)>> = Arc::new(ids.to_vec());
    let body = json!({
        "schemas": [scim::PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    })
    .to_string();
    let outcome = run_phase(bench, ids.len(), move |bench, n| {
        let ids = ids.clone();
        let body = body.clone();
        async move {
            let (index, id) = ids[n];
            let (tenant_id, token) = &bench.tenants[user_of(&bench, index).0];
            let response = bench
                .http
                .patch(format!("{}/scim/v2/{tenant_id}/Users/{id}", bench.base_url))
                .bearer_auth(token)
                .header("content-type", bridge::scim_api::SCIM_CONTENT_TYPE)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            if status != reqwest::StatusCode::OK {
                let body = response.text().await.unwrap_or_default();
                return Ok(Err(format!("PATCH {id}: {status} {body}")));
            }
            response.bytes().await?;
            Ok(Ok(None::<()>))
        }
    })
    .await?;
    Ok(outcome.phase)
}

/// Creates users by calling the directory in a tenant transaction, as the POST handler does,
/// without HTTP, JSON and authentication. The gap to the POST row is the cost of those layers.
async fn create_users_sql(bench: &Arc<Bench>, start: usize, count: usize) -> anyhow::Result<Phase> {
    eprintln!("scim bench: {count} creates through the directory without HTTP");
    let outcome = run_phase(bench, count, move |bench, n| async move {
        let index = start + n;
        let (tenant, user_name) = user_of(&bench, index);
        let resource = UserResource::from_json(&user_body(index, &user_name))?;
        let mut tx = TenantTx::begin(&bench.pool, &bench.tenants[tenant].0).await?;
        directory::create_user(&mut tx, &resource, bench.max_attempts).await?;
        tx.commit().await?;
        Ok(Ok(None::<()>))
    })
    .await?;
    Ok(outcome.phase)
}

/// Looks users up by userName in a tenant transaction, as the filtered GET does, without HTTP.
async fn read_users_sql(bench: &Arc<Bench>, users: usize, reads: usize) -> anyhow::Result<Phase> {
    eprintln!("scim bench: {reads} lookups through the directory without HTTP");
    let outcome = run_phase(bench, reads, move |bench, n| async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
        let (tenant, user_name) = user_of(&bench, rng.random_range(0..users));
        let mut tx = TenantTx::begin(&bench.pool, &bench.tenants[tenant].0).await?;
        let found = directory::find_by_user_name(&mut tx, &user_name).await?;
        tx.commit().await?;
        if found.is_none() {
            return Ok(Err(format!("lookup of {user_name} found no user")));
        }
        Ok(Ok(None::<()>))
    })
    .await?;
    Ok(outcome.phase)
}

/// Measures plain single-row INSERT transactions through the service pool, with as many
/// concurrent callers as the HTTP phases. This is the database's floor for a committed write.
async fn insert_baseline(bench: &Arc<Bench>, transactions: usize) -> anyhow::Result<Phase> {
    eprintln!("scim bench: {transactions} baseline INSERT transactions");
    sqlx::raw_sql(
        "CREATE TABLE bench_baseline (id uuid PRIMARY KEY, payload jsonb NOT NULL);
         GRANT INSERT ON bench_baseline TO bridge_service;",
    )
    .execute(&bench.owner)
    .await
    .context("failed to create the baseline table")?;

    let outcome = run_phase(bench, transactions, |bench, _| async move {
        let mut tx = bench.pool.begin().await?;
        sqlx::query("INSERT INTO bench_baseline (id, payload) VALUES ($1, $2)")
            .bind(Uuid::now_v7())
            .bind(json!({"userName": "baseline@bench.example.com", "active": true}))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(None::<()>))
    })
    .await?;
    Ok(outcome.phase)
}

/// Latencies of one measured phase.
#[derive(Clone)]
struct Phase {
    name: String,
    /// Successful requests only.
    latencies: Vec<Duration>,
    failures: usize,
    elapsed: Duration,
    planned: usize,
    cpu: CpuUsed,
}

impl Phase {
    fn new(
        mut latencies: Vec<Duration>,
        failures: usize,
        elapsed: Duration,
        planned: usize,
        cpu: CpuUsed,
    ) -> Phase {
        latencies.sort_unstable();
        Phase {
            name: String::new(),
            latencies,
            failures,
            elapsed,
            planned,
            cpu,
        }
    }

    fn named(mut self, name: impl Into<String>) -> Phase {
        self.name = name.into();
        self
    }

    fn count(&self) -> usize {
        self.latencies.len()
    }

    fn per_second(&self) -> f64 {
        self.count() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Returns the nearest-rank percentile, or zero for an empty phase.
    fn percentile(&self, percent: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (percent / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

struct PhaseOutcome<T> {
    phase: Phase,
    values: Vec<T>,
}

/// Runs `requests` calls of `request` with `bench.concurrency` in flight, stopping early at the
/// phase time limit. A request returns `Ok(Err(message))` for an unexpected response, which is
/// counted as a failure, and `Err` for a transport error, which aborts the benchmark.
async fn run_phase<T, F, Fut>(
    bench: &Arc<Bench>,
    requests: usize,
    request: F,
) -> anyhow::Result<PhaseOutcome<T>>
where
    T: Send + 'static,
    F: Fn(Arc<Bench>, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<Result<Option<T>, String>>> + Send,
{
    let cpu_before = CpuTimes::sample(&bench.owner).await;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + bench.phase_limit;
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..bench.concurrency {
        let bench = bench.clone();
        let next = next.clone();
        let request = request.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut values = Vec::new();
            let mut failures = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || Instant::now() >= deadline {
                    break;
                }
                let begun = Instant::now();
                match request(bench.clone(), n).await? {
                    Ok(value) => {
                        latencies.push(begun.elapsed());
                        values.extend(value);
                    }
                    Err(message) => failures.push(message),
                }
            }
            anyhow::Ok((latencies, values, failures))
        });
    }

    let mut latencies = Vec::with_capacity(requests);
    let mut values = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = workers.join_next().await {
        let (worker_latencies, worker_values, worker_failures) = joined??;
        latencies.extend(worker_latencies);
        values.extend(worker_values);
        failures.extend(worker_failures);
    }
    let elapsed = started.elapsed();
    let cpu = CpuTimes::sample(&bench.owner).await.since(&cpu_before);
    for message in failures.iter().take(SHOWN_FAILURES) {
        eprintln!("scim bench: failed request: {message}");
    }
    if latencies.len() + failures.len() < requests {
        eprintln!(
            "scim bench: phase stopped at the {}s limit after {} of {requests} requests",
            bench.phase_limit.as_secs(),
            latencies.len() + failures.len()
        );
    }
    Ok(PhaseOutcome {
        phase: Phase::new(latencies, failures.len(), elapsed, requests, cpu),
        values,
    })
}

/// CPU time used by this process and by each PostgreSQL backend connected to the bench
/// database, read from `/proc`. Empty where `/proc` is missing, as on macOS.
struct CpuTimes {
    process: Option<Duration>,
    backends: HashMap<i32, Duration>,
}

/// CPU time used during one phase. This process runs the HTTP clients as well as the service,
/// so its share is an upper bound for the service. PostgreSQL's background processes (WAL
/// writer, checkpointer) are not counted.
#[derive(Clone, Copy, Default)]
struct CpuUsed {
    process: Option<Duration>,
    postgres: Option<Duration>,
}

impl CpuTimes {
    async fn sample(owner: &PgPool) -> CpuTimes {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend'",
        )
        .fetch_all(owner)
        .await
        .unwrap_or_default();
        let backends = pids
            .into_iter()
            .filter(|pid| is_local_postgres(*pid))
            .filter_map(|pid| Some((pid, cpu_time(&pid.to_string())?)))
            .collect();
        CpuTimes {
            process: cpu_time("self"),
            backends,
        }
    }

    /// Returns the CPU time used since `earlier`. A backend that exited in between is missed,
    /// and one that connected in between counts from its start.
    fn since(&self, earlier: &CpuTimes) -> CpuUsed {
        let process = self
            .process
            .zip(earlier.process)
            .map(|(now, before)| now.saturating_sub(before));
        let postgres = (!self.backends.is_empty()).then(|| {
            self.backends
                .iter()
                .map(|(pid, now)| {
                    now.saturating_sub(earlier.backends.get(pid).copied().unwrap_or_default())
                })
                .sum()
        });
        CpuUsed { process, postgres }
    }
}

/// Returns whether `pid` is a PostgreSQL process on this machine, which it is not when the
/// server runs elsewhere and the number names an unrelated local process.
fn is_local_postgres(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres")
}

/// Reads user plus system CPU time of `/proc/<pid>` (all threads of the process).
fn cpu_time(pid: &str) -> Option<Duration> {
    // NOTE: assumes 100 clock ticks per second (USER_HZ), which Linux uses on x86 and arm64;
    // reading the real value needs sysconf(_SC_CLK_TCK), an unsafe libc call.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in field 2 may contain spaces, so fields are counted after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1_000 / TICKS_PER_SECOND,
    ))
}

fn millis(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1_000.0)
}

fn micros_per_operation(cpu: Option<Duration>, operations: usize) -> String {
    match cpu {
        Some(cpu) if operations > 0 => {
            format!("{:.0}", cpu.as_secs_f64() * 1e6 / operations as f64)
        }
        _ => "n/a".to_owned(),
    }
}

fn print_table(results: &[Phase], baseline: &Phase) {
    println!();
    println!(
        "| operation | count | failed | requests/s | p50 ms | p99 ms | rate / baseline | p99 / baseline | bench process CPU µs/op | PostgreSQL CPU µs/op | cores busy |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let baseline_p99 = baseline.percentile(99.0).as_secs_f64().max(f64::EPSILON);
    for phase in results.iter().chain(std::iter::once(baseline)) {
        let incomplete = if phase.count() + phase.failures < phase.planned {
            " (stopped at time limit)"
        } else {
            ""
        };
        let operations = phase.count() + phase.failures;
        let cores_busy = match (phase.cpu.process, phase.cpu.postgres) {
            (Some(process), Some(postgres)) => format!(
                "{:.2}",
                (process + postgres).as_secs_f64() / phase.elapsed.as_secs_f64().max(f64::EPSILON)
            ),
            _ => "n/a".to_owned(),
        };
        println!(
            "| {}{incomplete} | {} | {} | {:.0} | {} | {} | {:.2} | {:.1} | {} | {} | {cores_busy} |",
            phase.name,
            phase.count(),
            phase.failures,
            phase.per_second(),
            millis(phase.percentile(50.0)),
            millis(phase.percentile(99.0)),
            phase.per_second() / baseline.per_second().max(f64::EPSILON),
            phase.percentile(99.0).as_secs_f64() / baseline_p99,
            micros_per_operation(phase.cpu.process, operations),
            micros_per_operation(phase.cpu.postgres, operations),
        );
    }
}

fn print_targets(results: &[Phase], first_read: &Phase, second_read: Option<&Phase>) {
    let creates: Vec<String> = results
        .iter()
        .filter(|phase| phase.name.starts_with("create"))
        .map(|phase| format!("{}: {:.0}/s", phase.name, phase.per_second()))
        .collect();
    println!();
    println!("targets (for reference, not asserted):");
    println!(
        "  creates >= {TARGET_CREATES_PER_SEC:.0}/s: measured {}",
        creates.join(", ")
    );
    for read in std::iter::once(first_read).chain(second_read) {
        println!(
            "  filtered reads >= {TARGET_READS_PER_SEC:.0}/s with p99 < {} ms: {}: {:.0}/s, p99 {} ms",
            TARGET_READ_P99.as_millis(),
            read.name,
            read.per_second(),
            millis(read.percentile(99.0)),
        );
    }
    if let Some(second) = second_read {
        println!(
            "  read p99 should not grow with the user count: {} ms ({}) vs {} ms ({})",
            millis(second.percentile(99.0)),
            second.name,
            millis(first_read.percentile(99.0)),
            first_read.name,
        );
    }
}
