//! The command line: `serve`, `demo`, `migrate` and the admin subcommands.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use clap::{Parser, Subcommand};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::admin::ReplayError;
use crate::app::{AppState, router};
use crate::config::Config;
use crate::db::Database;
use crate::gateway::{JwtKeys, Scope};
use crate::scim_api::DeadLetter;
use crate::server::{Workers, in_process_bus, jwt_keys, open_database, shutdown_signal};
use crate::tenancy::{TenantId, TenantRegistry, TenantRegistryError, TenantTx};

#[derive(Debug, Parser)]
#[command(
    name = "enablement-bridge",
    version,
    about = "Multi-tenant bridge between identity providers and MindTickle"
)]
pub struct Cli {
    /// TOML configuration file; `BRIDGE_*` environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, the SCIM endpoints and the background workers.
    Serve,
    /// Run the end-to-end demo on an in-process MindTickle emulator and print each tenant's report.
    Demo {
        /// Keep serving after the demo and print a token and curl commands to try.
        #[arg(long)]
        serve: bool,
    },
    /// Apply database migrations as the owner role (`database.owner_url`, else `database.url`).
    Migrate,
    /// Create, list and delete tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Issue API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create, list and revoke SCIM bearer tokens for identity providers.
    ScimToken {
        #[command(subcommand)]
        command: ScimTokenCommand,
    },
    /// Create, list and revoke the secrets that sign HR webhook requests.
    WebhookSecret {
        #[command(subcommand)]
        command: WebhookSecretCommand,
    },
    /// List, inspect, replay and discard rejected SCIM requests and webhook events.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant.
    Create {
        /// Tenant id: lowercase letters, digits and '-', 1 to 63 characters.
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// List tenants.
    List,
    /// Delete a tenant and every row it owns.
    Delete {
        id: String,
        /// Confirm the deletion; without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Set the tenant's MindTickle account. The secret key and the reporting password are read
    /// from MINDTICKLE_SECRET_KEY and MINDTICKLE_REPORTING_PASSWORD, never from flags.
    SetMindtickle {
        id: String,
        /// REST host of the tenant's region, such as https://api.mindtickle.com.
        #[arg(long)]
        api_base: String,
        /// Reporting host that serves the OData feed, such as https://admin.mindtickle.com.
        #[arg(long)]
        admin_base: String,
        /// Learning-site host, such as acme.mindtickle.com.
        #[arg(long)]
        ls_url: String,
        #[arg(long)]
        api_key: String,
        #[arg(long)]
        reporting_user: String,
        /// Override of mindtickle.requests_per_second for this tenant.
        #[arg(long)]
        requests_per_second: Option<u32>,
        /// Override of mindtickle.requests_per_minute for this tenant.
        #[arg(long)]
        requests_per_minute: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed API token (JWT) for one tenant.
    Issue {
        #[arg(long)]
        tenant: String,
        /// Comma- or space-separated scopes, such as users:read,analytics:read.
        #[arg(long)]
        scopes: String,
        /// Lifetime in seconds (default: auth.default_token_ttl_secs).
        #[arg(long)]
        ttl: Option<u64>,
        /// The `sub` claim.
        #[arg(long, default_value = "cli")]
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Print a new SCIM bearer token for the tenant; only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// List the tenant's SCIM tokens (id, creation and revocation time) as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke one SCIM token; servers stop accepting it within 60 seconds.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The token id: the part of the token before the first '.'.
        token_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookSecretCommand {
    /// Print a new webhook signing secret for the tenant. It is shown only this once.
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// List the tenant's webhook secrets (id, creation and revocation time) as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke one webhook secret; the next request signed only with it is rejected.
    Revoke {
        #[arg(long)]
        tenant: String,
        secret_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List the tenant's dead letters, newest first, as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
        /// Only letters with this status: new, replaying, replayed or discarded.
        #[arg(long)]
        status: Option<String>,
    },
    /// Print one dead letter as JSON, with its stored body and errors.
    Show {
        #[arg(long)]
        tenant: String,
        dead_letter_id: String,
    },
    /// Run a new dead letter's request again; on success the letter becomes replayed.
    Replay {
        #[arg(long)]
        tenant: String,
        dead_letter_id: String,
    },
    /// Mark a new dead letter discarded.
    Discard {
        #[arg(long)]
        tenant: String,
        dead_letter_id: String,
        /// Confirm; without it nothing changes.
        #[arg(long)]
        yes: bool,
    },
}

/// A command-line failure: usage errors (invalid ids, unknown tenants) exit with 2, others with 1.
enum Failure {
    Usage(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

impl From<TenantRegistryError> for Failure {
    fn from(error: TenantRegistryError) -> Self {
        match error {
            TenantRegistryError::Database(error) => Failure::Runtime(error.into()),
            other => Failure::Usage(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Runtime(error.into())
    }
}

fn parse_tenant(raw: &str) -> Result<TenantId, Failure> {
    TenantId::parse(raw).map_err(|error| Failure::Usage(error.to_string()))
}

pub async fn run(cli: Cli) -> ExitCode {
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let default_level = match cli.command {
        Command::Serve => "info",
        _ => "warn",
    };
    crate::telemetry::init_logging(&config.log, default_level);
    let embedded = config.database.url.is_none();
    if let Err(error) = crate::server::resolve_credentials_key(&mut config, embedded) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    match execute(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Serve => serve(config).await,
        Command::Demo { serve } => crate::demo::run(config, serve, &mut std::io::stdout())
            .await
            .map_err(Failure::Runtime),
        Command::Migrate => {
            let database = Database::open(&config.database)
                .await
                .map_err(anyhow::Error::from)?;
            database.migrate().await.map_err(anyhow::Error::from)?;
            println!("migrations applied");
            database.close().await;
            Ok(())
        }
        Command::Tenant { command } => tenant_command(command, config).await,
        Command::Token {
            command:
                TokenCommand::Issue {
                    tenant,
                    scopes,
                    ttl,
                    subject,
                },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let scopes = parse_scopes(&scopes)?;
            let keys = jwt_keys(&config, None)?;
            with_existing_tenant(&config, &tenant, |_| async { Ok::<_, Failure>(()) }).await?;
            // A token cannot be revoked, so its lifetime is what bounds a leak.
            const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
            let ttl_secs = ttl.unwrap_or(config.auth.default_token_ttl_secs);
            if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
                return Err(Failure::Usage(format!(
                    "--ttl {ttl_secs} is invalid: expected 1 to {MAX_TTL_SECS} seconds (30 days)"
                )));
            }
            let ttl = Duration::from_secs(ttl_secs);
            let token = keys
                .issue(&tenant, &subject, &scopes, chrono::Utc::now(), ttl)
                .map_err(|error| Failure::Runtime(error.into()))?;
            println!("{token}");
            Ok(())
        }
        Command::ScimToken { command } => scim_token_command(command, &config).await,
        Command::WebhookSecret { command } => webhook_secret_command(command, &config).await,
        Command::DeadLetters { command } => dead_letter_command(command, config).await,
    }
}

fn parse_scopes(raw: &str) -> Result<BTreeSet<Scope>, Failure> {
    let scopes = raw
        .split([',', ' '])
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<Scope>())
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|error| Failure::Usage(error.to_string()))?;
    if scopes.is_empty() {
        return Err(Failure::Usage(
            "--scopes must name at least one scope".into(),
        ));
    }
    Ok(scopes)
}

/// Opens the database, checks that the tenant exists, runs `action`, and closes the database.
async fn with_existing_tenant<T, E, F, Fut>(
    config: &Config,
    tenant: &TenantId,
    action: F,
) -> Result<T, Failure>
where
    F: FnOnce(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    Failure: From<E>,
{
    let database = open_database(config).await?;
    let exists = TenantRegistry::new(database.pool.clone()).get(tenant).await;
    let result = match exists {
        Ok(Some(_)) => action(database.pool.clone()).await.map_err(Failure::from),
        Ok(None) => Err(Failure::Usage(format!("tenant '{tenant}' not found"))),
        Err(error) => Err(error.into()),
    };
    database.close().await;
    result
}

fn parse_uuid(raw: &str, what: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw).map_err(|_| {
        Failure::Usage(format!(
            "invalid {what} {raw:?}: expected a UUID such as 0190c0de-7b3a-7c4e-9f00-000000000000"
        ))
    })
}

fn print_json_line<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string(value).map_err(anyhow::Error::from)?
    );
    Ok(())
}

async fn scim_token_command(command: ScimTokenCommand, config: &Config) -> Result<(), Failure> {
    match command {
        ScimTokenCommand::Create { tenant } => {
            let tenant = parse_tenant(&tenant)?;
            let token = with_existing_tenant(config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::scim_api::create_scim_token(&pool, &tenant).await }
            })
            .await?;
            println!("{}", token.expose_secret());
        }
        ScimTokenCommand::List { tenant } => {
            let tenant = parse_tenant(&tenant)?;
            let tokens = with_existing_tenant(config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::scim_api::list_scim_tokens(&pool, &tenant).await }
            })
            .await?;
            for token in &tokens {
                print_json_line(token)?;
            }
        }
        ScimTokenCommand::Revoke { tenant, token_id } => {
            let tenant = parse_tenant(&tenant)?;
            let token_id = parse_uuid(&token_id, "SCIM token id")?;
            let revoked = with_existing_tenant(config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::scim_api::revoke_scim_token(&pool, &tenant, token_id).await }
            })
            .await?;
            if !revoked {
                return Err(Failure::Usage(format!(
                    "SCIM token {token_id} not found in tenant '{tenant}'; see `scim-token list --tenant {tenant}`"
                )));
            }
            println!("revoked SCIM token {token_id} of tenant {tenant}");
        }
    }
    Ok(())
}

async fn webhook_secret_command(
    command: WebhookSecretCommand,
    config: &Config,
) -> Result<(), Failure> {
    match command {
        WebhookSecretCommand::Create { tenant } => {
            let tenant = parse_tenant(&tenant)?;
            let (secret_id, secret) = with_existing_tenant(config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::webhooks::create_webhook_secret(&pool, &tenant).await }
            })
            .await?;
            // The secret alone goes to stdout, so it can be piped into a secret store.
            eprintln!(
                "created webhook secret {secret_id} for tenant {tenant}; it is not shown again"
            );
            println!("{}", secret.expose_secret());
        }
        WebhookSecretCommand::List { tenant } => {
            let tenant = parse_tenant(&tenant)?;
            let secrets = with_existing_tenant(config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::webhooks::list_webhook_secrets(&pool, &tenant).await }
            })
            .await?;
            for secret in &secrets {
                print_json_line(secret)?;
            }
        }
        WebhookSecretCommand::Revoke { tenant, secret_id } => {
            let tenant = parse_tenant(&tenant)?;
            let secret_id = parse_uuid(&secret_id, "webhook secret id")?;
            let revoked =
                with_existing_tenant(config, &tenant, |pool| {
                    let tenant = tenant.clone();
                    async move {
                        crate::webhooks::revoke_webhook_secret(&pool, &tenant, secret_id).await
                    }
                })
                .await?;
            if !revoked {
                return Err(Failure::Usage(format!(
                    "webhook secret {secret_id} not found in tenant '{tenant}'; see `webhook-secret list --tenant {tenant}`"
                )));
            }
            println!("revoked webhook secret {secret_id} of tenant {tenant}");
        }
    }
    Ok(())
}

impl From<ReplayError> for Failure {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::NotFound(_) => Failure::Usage(error.to_string()),
            ReplayError::Internal(error) => Failure::Runtime(error),
            other => Failure::Runtime(anyhow::Error::new(other)),
        }
    }
}

/// Application state for running service code from the command line. No API token is issued or
/// verified there, so the JWT key is random and thrown away.
fn command_line_state(pool: sqlx::PgPool, config: &Config) -> anyhow::Result<AppState> {
    let mut key = [0u8; 48];
    rand::rng().fill_bytes(&mut key);
    let secret = SecretString::from(base64::engine::general_purpose::STANDARD.encode(key));
    let keys = JwtKeys::new(&secret, &config.auth.jwt_issuer, 0)?;
    AppState::new(pool, config.clone(), keys, in_process_bus())
}

async fn dead_letter_command(command: DeadLetterCommand, config: Config) -> Result<(), Failure> {
    match command {
        DeadLetterCommand::List { tenant, status } => {
            let tenant = parse_tenant(&tenant)?;
            if let Some(status) = status.as_deref()
                && !DeadLetter::STATUSES.contains(&status)
            {
                return Err(Failure::Usage(format!(
                    "unknown status {status:?}; use one of {}",
                    DeadLetter::STATUSES.join(", ")
                )));
            }
            let letters = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move {
                    let mut tx = TenantTx::begin(&pool, &tenant).await?;
                    let letters =
                        crate::scim_api::list_dead_letters(&mut tx, status.as_deref(), None)
                            .await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(letters)
                }
            })
            .await?;
            for letter in &letters {
                print_json_line(letter)?;
            }
        }
        DeadLetterCommand::Show {
            tenant,
            dead_letter_id,
        } => {
            let tenant = parse_tenant(&tenant)?;
            let id = parse_uuid(&dead_letter_id, "dead letter id")?;
            let letter = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move {
                    let mut tx = TenantTx::begin(&pool, &tenant).await?;
                    let letter = DeadLetter::find(&mut tx, id).await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(letter)
                }
            })
            .await?
            .ok_or_else(|| {
                Failure::Usage(format!("dead letter {id} not found in tenant '{tenant}'"))
            })?;
            println!(
                "{}",
                serde_json::to_string_pretty(&letter).map_err(anyhow::Error::from)?
            );
        }
        DeadLetterCommand::Replay {
            tenant,
            dead_letter_id,
        } => {
            let tenant = parse_tenant(&tenant)?;
            let id = parse_uuid(&dead_letter_id, "dead letter id")?;
            let replayed = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                let config = config.clone();
                async move {
                    let state = command_line_state(pool, &config)?;
                    Ok::<_, Failure>(
                        crate::admin::replay_dead_letter(&state, &tenant, id, "cli").await?,
                    )
                }
            })
            .await?;
            print_json_line(&replayed)?;
        }
        DeadLetterCommand::Discard {
            tenant,
            dead_letter_id,
            yes,
        } => {
            let tenant = parse_tenant(&tenant)?;
            let id = parse_uuid(&dead_letter_id, "dead letter id")?;
            if !yes {
                return Err(Failure::Usage(format!(
                    "discarding dead letter {id} ends its review; run again with --yes to confirm"
                )));
            }
            let letter = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                let config = config.clone();
                async move {
                    let state = command_line_state(pool, &config)?;
                    Ok::<_, Failure>(
                        crate::admin::discard_dead_letter(&state, &tenant, id, "cli").await?,
                    )
                }
            })
            .await?;
            print_json_line(&letter)?;
        }
    }
    Ok(())
}

async fn tenant_command(command: TenantCommand, config: Config) -> Result<(), Failure> {
    // Validate arguments before touching the database, so a typo fails fast.
    match &command {
        TenantCommand::Create { id, .. }
        | TenantCommand::Delete { id, .. }
        | TenantCommand::SetMindtickle { id, .. } => {
            parse_tenant(id)?;
        }
        TenantCommand::List => {}
    }
    if let TenantCommand::Delete { id, yes: false } = &command {
        return Err(Failure::Usage(format!(
            "deleting tenant '{id}' removes all of its data; run again with --yes to confirm"
        )));
    }
    let database = open_database(&config).await?;
    let registry = TenantRegistry::new(database.pool.clone());
    let result = match command {
        TenantCommand::Create { id, name } => {
            let tenant = registry.create(&parse_tenant(&id)?, &name).await?;
            println!("created tenant {} ({})", tenant.tenant_id, tenant.name);
            Ok(())
        }
        TenantCommand::List => {
            for tenant in registry.list().await? {
                println!(
                    "{}\t{}\t{}",
                    tenant.tenant_id,
                    tenant.name,
                    tenant.created_at.to_rfc3339()
                );
            }
            Ok(())
        }
        TenantCommand::Delete { id, .. } => {
            registry.delete(&parse_tenant(&id)?).await?;
            println!("deleted tenant {id} and all of its data");
            Ok(())
        }
        TenantCommand::SetMindtickle {
            id,
            api_base,
            admin_base,
            ls_url,
            api_key,
            reporting_user,
            requests_per_second,
            requests_per_minute,
        } => {
            let tenant = parse_tenant(&id)?;
            if registry.get(&tenant).await?.is_none() {
                return Err(Failure::Usage(format!("tenant '{tenant}' not found")));
            }
            let secret = |name: &str| {
                std::env::var(name).map_err(|_| {
                    Failure::Usage(format!(
                        "{name} is not set; export it before running this command"
                    ))
                })
            };
            let account = crate::sync::MindTickleAccount {
                api_base,
                admin_base,
                ls_url,
                api_key,
                secret_key: secret("MINDTICKLE_SECRET_KEY")?.into(),
                reporting_user,
                reporting_password: secret("MINDTICKLE_REPORTING_PASSWORD")?.into(),
                requests_per_second,
                requests_per_minute,
            };
            if requests_per_second == Some(0) || requests_per_minute == Some(0) {
                return Err(Failure::Usage(
                    "--requests-per-second and --requests-per-minute must be at least 1".into(),
                ));
            }
            crate::sync::MindTickleAccounts::new(
                Duration::from_secs(config.mindtickle.request_timeout_secs),
                crate::sync::budget::BudgetLimits {
                    per_second: config.mindtickle.requests_per_second,
                    per_minute: config.mindtickle.requests_per_minute,
                },
                Duration::from_millis(config.mindtickle.budget_max_wait_ms),
                config.mindtickle.credentials_key.as_ref(),
                config.redis.url.as_ref(),
            )?
            .set_account(&database.pool, &tenant, &account)
            .await
            .map_err(|error| match error {
                crate::sync::SyncError::Credentials(error) => Failure::Usage(error.to_string()),
                other => Failure::Runtime(other.into()),
            })?;
            println!("MindTickle account of tenant {tenant} saved");
            Ok(())
        }
    };
    database.close().await;
    result
}

async fn serve(config: Config) -> Result<(), Failure> {
    let keys = jwt_keys(&config, None)?;
    let database = open_database(&config).await?;
    let listen = config.server.listen;
    let state = AppState::new(database.pool.clone(), config, keys, in_process_bus())?;
    let workers = Workers::spawn(&state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("failed to listen on {listen}: {error}"))?;
    tracing::info!(%listen, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(anyhow::Error::from)?;
    workers.stop().await;
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}
