//! The command line: `serve`, `demo`, `migrate` and the admin subcommands.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::{AppState, router};
use crate::config::Config;
use crate::db::Database;
use crate::gateway::Scope;
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
    /// Create SCIM bearer tokens for identity providers.
    ScimToken {
        #[command(subcommand)]
        command: ScimTokenCommand,
    },
    /// Inspect rejected SCIM payloads.
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
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List the tenant's dead letters as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
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
    let config = match Config::load(cli.config.as_deref()) {
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
            with_existing_tenant(&config, &tenant, |_| async { Ok(()) }).await?;
            let ttl = Duration::from_secs(ttl.unwrap_or(config.auth.default_token_ttl_secs));
            let token = keys
                .issue(&tenant, &subject, &scopes, chrono::Utc::now(), ttl)
                .map_err(|error| Failure::Runtime(error.into()))?;
            println!("{token}");
            Ok(())
        }
        Command::ScimToken {
            command: ScimTokenCommand::Create { tenant },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let token = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move { crate::scim_api::create_scim_token(&pool, &tenant).await }
            })
            .await?;
            println!("{}", token.expose_secret());
            Ok(())
        }
        Command::DeadLetters {
            command: DeadLetterCommand::List { tenant },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let letters = with_existing_tenant(&config, &tenant, |pool| {
                let tenant = tenant.clone();
                async move {
                    let mut tx = TenantTx::begin(&pool, &tenant).await?;
                    let letters = crate::scim_api::list_dead_letters(&mut tx).await?;
                    tx.commit().await?;
                    Ok(letters)
                }
            })
            .await?;
            for letter in letters {
                println!(
                    "{}",
                    serde_json::to_string(&letter).map_err(anyhow::Error::from)?
                );
            }
            Ok(())
        }
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
async fn with_existing_tenant<T, F, Fut>(
    config: &Config,
    tenant: &TenantId,
    action: F,
) -> Result<T, Failure>
where
    F: FnOnce(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let database = open_database(config).await?;
    let exists = TenantRegistry::new(database.pool.clone()).get(tenant).await;
    let result = match exists {
        Ok(Some(_)) => action(database.pool.clone())
            .await
            .map_err(Failure::Runtime),
        Ok(None) => Err(Failure::Usage(format!("tenant '{tenant}' not found"))),
        Err(error) => Err(error.into()),
    };
    database.close().await;
    result
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
            };
            crate::sync::MindTickleAccounts::new(Duration::from_secs(30))?
                .set_account(&database.pool, &tenant, &account)
                .await?;
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
