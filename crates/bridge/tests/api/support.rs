use std::collections::BTreeSet;
use std::time::Duration;

use bridge::app::{AppState, router};
use bridge::config::Config;
use bridge::gateway::{JwtKeys, Scope};
use bridge::jobs::JobRunner;
use bridge::sync::MindTickleAccount;
use bridge::tenancy::{TenantId, TenantRegistry};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The server URL of a role allowed to create databases; override with
/// ENABLEMENT_BRIDGE_TEST_DATABASE_URL.
fn admin_url() -> String {
    std::env::var("ENABLEMENT_BRIDGE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn services_required() -> bool {
    std::env::var("ENABLEMENT_BRIDGE_REQUIRE_SERVICES").is_ok_and(|value| value == "1")
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{database}")
}

/// A fresh database with the migrations applied, and pools for its two roles.
pub struct TestDatabase {
    /// The schema owner (a superuser here): for seeding and for reading past row-level security.
    pub owner: PgPool,
    /// The service's own login role, `bridge_service`.
    pub runtime: PgPool,
    pub runtime_url: String,
    name: String,
    admin_url: String,
}

impl Drop for TestDatabase {
    /// Drops the database, so runs do not pile up databases on a shared server. `Drop` cannot
    /// await, so a short-lived thread with its own runtime does it; `WITH (FORCE)` ends the
    /// pools' connections.
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect(&admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .map_err(std::io::Error::other)?;
                admin.close().await;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

impl TestDatabase {
    /// Creates the database, or returns `None` after printing a notice when PostgreSQL is not
    /// reachable and the services are not required.
    pub async fn create() -> Option<TestDatabase> {
        Self::create_with_pool_size(5).await
    }

    pub async fn create_with_pool_size(size: u32) -> Option<TestDatabase> {
        let admin_url = admin_url();
        let admin = match PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&admin_url)
            .await
        {
            Ok(pool) => pool,
            Err(error) => {
                if services_required() {
                    panic!(
                        "PostgreSQL is required (ENABLEMENT_BRIDGE_REQUIRE_SERVICES=1) but unreachable at {admin_url}: {error}"
                    );
                }
                eprintln!(
                    "skipped: PostgreSQL unreachable at {admin_url} ({error}); set ENABLEMENT_BRIDGE_TEST_DATABASE_URL"
                );
                return None;
            }
        };
        let name = format!("bridge_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;

        let owner_url = with_database(&admin_url, &name);
        let owner = PgPoolOptions::new()
            .max_connections(2)
            .connect(&owner_url)
            .await
            .expect("connect as owner");
        bridge::db::MIGRATOR.run(&owner).await.expect("migrate");

        let runtime_url = {
            let parsed = url::Url::parse(&owner_url).expect("valid URL");
            let host = parsed.host_str().unwrap_or("127.0.0.1");
            let port = parsed.port().unwrap_or(5432);
            format!("postgres://bridge_service@{host}:{port}/{name}")
        };
        let runtime = PgPoolOptions::new()
            .max_connections(size)
            .connect(&runtime_url)
            .await
            .expect("connect as bridge_service");
        Some(TestDatabase {
            owner,
            runtime,
            runtime_url,
            name,
            admin_url,
        })
    }
}

/// The service running on 127.0.0.1:0 against a fresh database and an in-process emulator.
pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub db: TestDatabase,
    pub http: reqwest::Client,
    pub emulator: mindtickle_emulator::Emulator,
    keys: JwtKeys,
}

pub fn test_config() -> Config {
    let mut config = Config::load(None).expect("default config");
    config.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    config.mindtickle.process_poll_secs = 0;
    config.mindtickle.credentials_key = Some(bridge::sync::CredentialsKey::generate());
    // Tests other than the budget's own run at full speed against the emulator.
    config.mindtickle.requests_per_second = 10_000;
    config.mindtickle.requests_per_minute = 1_000_000;
    config.jobs.base_backoff_ms = 10;
    config
}

pub async fn spawn_app() -> Option<TestApp> {
    bridge::install_crypto_provider();
    // ENABLEMENT_BRIDGE_TEST_LOG=debug shows the service's log of a failing test.
    if let Ok(level) = std::env::var("ENABLEMENT_BRIDGE_TEST_LOG") {
        bridge::telemetry::init_logging(
            &bridge::config::LogConfig {
                format: bridge::config::LogFormat::Pretty,
                level: Some(level),
            },
            "info",
        );
    }
    let db = TestDatabase::create().await?;
    bridge::db::isolation_self_check(&db.runtime, bridge::tenancy::TENANT_ROLE, true)
        .await
        .expect("self-check passes on a fresh database");
    let config = test_config();
    let keys =
        JwtKeys::new(&SecretString::from(JWT_SECRET), &config.auth.jwt_issuer, 0).expect("keys");
    let state = AppState::new(
        db.runtime.clone(),
        config,
        keys.clone(),
        bridge::server::in_process_bus(),
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let app = router(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server");
    });
    let emulator = mindtickle_emulator::Emulator::start(
        mindtickle_emulator::demo_fixtures(),
        mindtickle_emulator::Options {
            process_delay: Duration::from_millis(0),
            // Tests run with a budget far above any MindTickle profile (see `test_config`), so
            // the emulator does not limit them either; the budget has tests of its own.
            rate_limit: mindtickle_emulator::RateLimitProfile::Off,
            ..Default::default()
        },
    )
    .await
    .expect("emulator");
    Some(TestApp {
        address,
        state,
        db,
        http: reqwest::Client::new(),
        emulator,
        keys,
    })
}

impl TestApp {
    pub fn tenant(raw: &str) -> TenantId {
        TenantId::parse(raw).expect("valid tenant id")
    }

    /// Creates a tenant linked to one of the emulator's demo companies (`acme` or `globex`).
    pub async fn create_tenant(&self, id: &str, company: &str) -> TenantId {
        let tenant = Self::tenant(id);
        TenantRegistry::new(self.db.runtime.clone())
            .create(&tenant, id)
            .await
            .expect("create tenant");
        let fixtures = mindtickle_emulator::demo_fixtures();
        let company = fixtures.company(company).expect("demo company");
        let keys = &company.key_pairs[0];
        self.state
            .mindtickle()
            .set_account(
                &self.db.runtime,
                &tenant,
                &MindTickleAccount {
                    api_base: self.emulator.api_url(company.region),
                    admin_base: self.emulator.admin_url(),
                    ls_url: company.ls_url.clone(),
                    api_key: keys.api_key.clone(),
                    secret_key: keys.secret_key.clone().into(),
                    reporting_user: company.reporting_user.clone(),
                    reporting_password: company.reporting_password.clone().into(),
                    requests_per_second: None,
                    requests_per_minute: None,
                },
            )
            .await
            .expect("set account");
        tenant
    }

    pub fn token(&self, tenant: &str, scopes: &[Scope]) -> String {
        let scopes: BTreeSet<Scope> = scopes.iter().copied().collect();
        self.keys
            .issue(
                &Self::tenant(tenant),
                "test",
                &scopes,
                chrono::Utc::now(),
                Duration::from_secs(600),
            )
            .expect("issue token")
    }

    pub fn all_scopes_token(&self, tenant: &str) -> String {
        self.token(tenant, &Scope::ALL)
    }

    pub async fn scim_token(&self, tenant: &TenantId) -> String {
        bridge::scim_api::create_scim_token(&self.db.runtime, tenant)
            .await
            .expect("scim token")
            .expose_secret()
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs due jobs until none is left, within a bounded number of rounds.
    pub async fn run_jobs(&self) -> usize {
        let runner = JobRunner::new(self.db.runtime.clone(), self.state.config().jobs.clone());
        let mut total = 0;
        for _ in 0..50 {
            let ran = runner
                .run_once(50, |job| bridge::sync::handle_job(self.state.clone(), job))
                .await
                .expect("run jobs");
            total += ran;
            if ran == 0 {
                break;
            }
        }
        total
    }

    /// Creates a user over SCIM and returns its id.
    pub async fn scim_create(
        &self,
        tenant: &TenantId,
        token: &str,
        body: serde_json::Value,
    ) -> String {
        let response = self
            .http
            .post(self.url(&format!("/scim/v2/{tenant}/Users")))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .expect("send");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("json body");
        assert_eq!(status, 201, "create failed: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn owner_count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.owner)
            .await
            .expect("count")
    }
}

pub fn okta_user(email: &str) -> serde_json::Value {
    let local = email.split('@').next().unwrap_or(email);
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": local, "familyName": "Test"},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": format!("{local} Test"),
        "locale": "en-US",
        "externalId": format!("00u{local}"),
        "groups": [],
        "password": "Secret-Passw0rd!",
        "active": true
    })
}
