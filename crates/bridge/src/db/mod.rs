//! Connection pools, migrations, the embedded database and the isolation self-check.

#[cfg(feature = "embedded")]
mod embedded;
mod self_check;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

pub use self_check::{SelfCheckError, isolation_self_check};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's database: the runtime pool, plus the embedded server when one is running.
pub struct Database {
    pub pool: PgPool,
    /// Migrations and the schema belong to this connection's role.
    owner_url: SecretString,
    /// True when the login role is the embedded server's superuser, which the self-check accepts
    /// because every statement still runs under `SET LOCAL ROLE`.
    pub embedded: bool,
    #[cfg(feature = "embedded")]
    _server: Option<embedded::EmbeddedServer>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "database.url is not set and this build has no embedded database; set BRIDGE_DATABASE_URL or build with the `embedded` feature"
    )]
    NoDatabase,
    #[error("failed to start the embedded database in {path}: {message}")]
    Embedded { path: String, message: String },
    #[error("failed to connect to PostgreSQL ({what}): {source}")]
    Connect {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("failed to run migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Database {
    /// Connects to the configured server, or starts the embedded one when no URL is set.
    pub async fn open(config: &DatabaseConfig) -> Result<Database, DatabaseError> {
        if let Some(url) = &config.url {
            let pool = connect(url.expose_secret(), config).await?;
            return Ok(Database {
                pool,
                owner_url: config.owner_url.clone().unwrap_or_else(|| url.clone()),
                embedded: false,
                #[cfg(feature = "embedded")]
                _server: None,
            });
        }
        #[cfg(feature = "embedded")]
        {
            let server = embedded::EmbeddedServer::start(&config.data_dir).await?;
            // The embedded server serves one connection at a time.
            let single = DatabaseConfig {
                max_connections: 1,
                ..config.clone()
            };
            let pool = connect(server.url(), &single).await?;
            Ok(Database {
                pool,
                owner_url: SecretString::from(server.url().to_owned()),
                embedded: true,
                _server: Some(server),
            })
        }
        #[cfg(not(feature = "embedded"))]
        Err(DatabaseError::NoDatabase)
    }

    /// Closes the pool, then stops the embedded server if there is one.
    pub async fn close(self) {
        self.pool.close().await;
        #[cfg(feature = "embedded")]
        if let Some(server) = self._server {
            server.shutdown().await;
        }
    }

    /// Runs pending migrations as the owner role.
    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        if self.embedded {
            MIGRATOR.run(&self.pool).await?;
            return Ok(());
        }
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .connect(self.owner_url.expose_secret())
            .await
            .map_err(|source| DatabaseError::Connect {
                what: "owner role for migrations",
                source,
            })?;
        let result = MIGRATOR.run(&owner).await;
        owner.close().await;
        result?;
        Ok(())
    }
}

/// The options of the service's pool, shared with the benchmarks so they measure the same pool.
pub fn pool_options(max_connections: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // sqlx pings every connection before handing it out by default, one more round trip per
        // transaction. Without the ping, a connection that died fails the statement that uses it,
        // like any other database error.
        .test_before_acquire(false)
}

async fn connect(url: &str, config: &DatabaseConfig) -> Result<PgPool, DatabaseError> {
    let options: PgConnectOptions = url.parse().map_err(|source| DatabaseError::Connect {
        what: "parse database.url",
        source,
    })?;
    pool_options(
        config.max_connections,
        Duration::from_secs(config.acquire_timeout_secs),
    )
    .connect_with(options.application_name("enablement-bridge"))
    .await
    .map_err(|source| DatabaseError::Connect {
        what: "runtime role",
        source,
    })
}
