//! Start-up shared by `serve` and `demo`: database, self-check, state and background workers.

use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::config::Config;
use crate::db::{Database, isolation_self_check};
use crate::events::{Bus, Relay};
use crate::gateway::JwtKeys;
use crate::jobs::JobRunner;
use crate::tenancy::TENANT_ROLE;

/// Opens the database, migrates an embedded one, and runs the isolation self-check. The service
/// refuses to start when the check fails.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let database = Database::open(&config.database).await?;
    if database.embedded {
        // The embedded database belongs to this process, so it is migrated on start. A server is
        // migrated explicitly with `migrate`, by the owner role.
        database.migrate().await?;
    }
    isolation_self_check(&database.pool, TENANT_ROLE, !database.embedded).await?;
    tracing::info!(
        embedded = database.embedded,
        "database ready; tenant isolation self-check passed"
    );
    Ok(database)
}

/// Fills in `mindtickle.credentials_key` for the embedded database when it is not configured: a
/// key kept beside the data, created on first use with permissions for its owner only. A server
/// deployment must configure the key, because its data may outlive any one machine.
pub fn resolve_credentials_key(config: &mut Config, embedded: bool) -> anyhow::Result<()> {
    if config.mindtickle.credentials_key.is_some() || !embedded {
        return Ok(());
    }
    std::fs::create_dir_all(&config.database.data_dir).map_err(|error| {
        anyhow::anyhow!(
            "failed to create {}: {error}",
            config.database.data_dir.display()
        )
    })?;
    let path = config.database.data_dir.join("mindtickle-credentials.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(existing) => SecretString::from(existing.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = crate::sync::CredentialsKey::generate();
            write_private(&path, secrecy::ExposeSecret::expose_secret(&key))?;
            tracing::info!(path = %path.display(), "created the key that encrypts MindTickle secrets");
            key
        }
        Err(error) => {
            return Err(anyhow::anyhow!(
                "failed to read {}: {error}",
                path.display()
            ));
        }
    };
    crate::sync::CredentialsKey::from_base64(&key)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    config.mindtickle.credentials_key = Some(key);
    Ok(())
}

fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|error| anyhow::anyhow!("failed to create {}: {error}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

pub fn jwt_keys(config: &Config, secret: Option<SecretString>) -> anyhow::Result<JwtKeys> {
    let secret = secret.or_else(|| config.auth.jwt_secret.clone()).ok_or_else(|| {
        anyhow::anyhow!(
            "auth.jwt_secret is not set; set BRIDGE_AUTH_JWT_SECRET (at least 32 bytes) or auth.jwt_secret in the --config file"
        )
    })?;
    Ok(JwtKeys::new(
        &secret,
        &config.auth.jwt_issuer,
        config.auth.leeway_secs,
    )?)
}

/// The job runner and the outbox relay, running until `shutdown`.
pub struct Workers {
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn spawn(state: &AppState) -> Workers {
        let (shutdown, receiver) = watch::channel(false);
        let mut handles = Vec::new();

        if state.config().jobs.enabled {
            let runner = JobRunner::new(state.pool().clone(), state.config().jobs.clone());
            let job_state = state.clone();
            let job_shutdown = receiver.clone();
            handles.push(tokio::spawn(async move {
                runner
                    .run_until_shutdown(
                        move |job| crate::sync::handle_job(job_state.clone(), job),
                        job_shutdown,
                    )
                    .await;
            }));
        }

        let relay = Relay::new(state.pool().clone(), state.bus().clone());
        let interval = Duration::from_millis(state.config().jobs.poll_interval_ms);
        let mut relay_shutdown = receiver;
        handles.push(tokio::spawn(async move {
            while !*relay_shutdown.borrow() {
                if let Err(error) = relay.drain().await {
                    tracing::error!(%error, "outbox relay failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = relay_shutdown.changed() => {}
                }
            }
        }));
        Workers { shutdown, handles }
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

pub fn in_process_bus() -> Bus {
    Bus::in_process(4096)
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
