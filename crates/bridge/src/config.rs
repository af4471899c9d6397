//! Configuration: built-in defaults, then an optional TOML file, then `BRIDGE_*` environment
//! variables. Validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The environment variable prefix. `BRIDGE_DATABASE_OWNER_URL` sets `database.owner_url`: the
/// first word after the prefix names the section and the rest the key.
pub const ENV_PREFIX: &str = "BRIDGE_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub mindtickle: MindTickleConfig,
    #[serde(default)]
    pub scim: ScimConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub readiness: ReadinessConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Time limit for one request, in seconds.
    pub request_timeout_secs: u64,
    /// Maximum request body size, in bytes.
    pub body_limit_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            request_timeout_secs: 30,
            body_limit_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL URL the service connects with (the `bridge_service` login role in
    /// production). Unset: embedded PostgreSQL under `data_dir`.
    pub url: Option<SecretString>,
    /// PostgreSQL URL of the role that owns the schema and runs migrations. Unset: `url`.
    pub owner_url: Option<SecretString>,
    /// Directory of the embedded database.
    pub data_dir: PathBuf,
    /// Maximum connections of the service's pool.
    pub max_connections: u32,
    /// Seconds to wait for a free connection before failing a request with 503.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            owner_url: None,
            data_dir: PathBuf::from("./data"),
            max_connections: 10,
            acquire_timeout_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC secret that signs and verifies API tokens (HS256), at least 32 bytes.
    pub jwt_secret: Option<SecretString>,
    /// `iss` claim of issued tokens, required on verified ones.
    pub jwt_issuer: String,
    /// Lifetime of `token issue` tokens when `--ttl` is not given, in seconds.
    pub default_token_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp`, in seconds.
    pub leeway_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            jwt_issuer: "enablement-bridge".to_owned(),
            default_token_ttl_secs: 3600,
            leeway_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MindTickleConfig {
    /// Time limit of one MindTickle request, in seconds.
    pub request_timeout_secs: u64,
    /// Seconds between checks of a bulk user process.
    pub process_poll_secs: u64,
    /// Requests per second one tenant may send to MindTickle, across all its hosts.
    pub requests_per_second: u32,
    /// Requests per minute one tenant may send to MindTickle.
    pub requests_per_minute: u32,
    /// Milliseconds a call may wait for its tenant's budget before the work is queued for the
    /// next window instead.
    pub budget_max_wait_ms: u64,
    /// AES-256 key (32 bytes, base64) that encrypts tenants' MindTickle secrets at rest. Unset
    /// with the embedded database: a key is created in `database.data_dir`.
    #[serde(skip_serializing)]
    pub credentials_key: Option<SecretString>,
}

impl Default for MindTickleConfig {
    fn default() -> Self {
        MindTickleConfig {
            request_timeout_secs: 30,
            process_poll_secs: 2,
            requests_per_second: 3,
            requests_per_minute: 55,
            budget_max_wait_ms: 1000,
            credentials_key: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Redis URL. Set: MindTickle request budgets are shared by every replica through it.
    pub url: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// Sustained SCIM requests per second accepted from one tenant. Requests above it get 429.
    pub requests_per_second: u32,
    /// Requests one tenant may send at once above the sustained rate.
    pub burst: u32,
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig {
            requests_per_second: 100,
            burst: 200,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run the job runner inside `serve`.
    pub enabled: bool,
    /// Milliseconds between polls for due jobs when the queue is empty.
    pub poll_interval_ms: u64,
    /// Attempts before a job is marked dead.
    pub max_attempts: i32,
    /// First retry delay in milliseconds; it doubles per attempt, with full jitter.
    pub base_backoff_ms: u64,
    /// Maximum retry delay, in seconds.
    pub max_backoff_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            poll_interval_ms: 500,
            max_attempts: 8,
            base_backoff_ms: 1000,
            max_backoff_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessConfig {
    /// Progress older than this many seconds makes a readiness report provisional.
    pub stale_after_secs: u64,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        ReadinessConfig {
            stale_after_secs: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one object a line) or `pretty`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,bridge=debug`. Unset: `info` for `serve`,
    /// `warn` for the other commands, whose output is for a person at a terminal.
    pub level: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} not found")]
    FileNotFound(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layered configuration. `file` is the `--config` path, if one was given.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let mut figment = Figment::new()
            .merge(Serialized::default("server", ServerConfig::default()))
            .merge(Serialized::default("jobs", JobsConfig::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::FileNotFound(path.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env.map(|key| {
            // `DATABASE_OWNER_URL` → `database.owner_url`.
            let lower = key.as_str().to_ascii_lowercase();
            match lower.split_once('_') {
                Some((section, rest)) => format!("{section}.{rest}").into(),
                None => lower.into(),
            }
        }));
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Invalid(describe_figment_error(error)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values serde cannot: ranges, lengths and URL schemes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: String, expected: &str| {
            Err(ConfigError::Invalid(format!(
                "{key} = {value} is invalid: expected {expected} (set it in the --config file or as {})",
                env_name(key)
            )))
        };
        if self.server.request_timeout_secs == 0 {
            return invalid("server.request_timeout_secs", "0".into(), "at least 1");
        }
        if self.server.body_limit_bytes < 1024 {
            return invalid(
                "server.body_limit_bytes",
                self.server.body_limit_bytes.to_string(),
                "at least 1024",
            );
        }
        for (key, url) in [
            ("database.url", &self.database.url),
            ("database.owner_url", &self.database.owner_url),
        ] {
            if let Some(url) = url {
                let url = url.expose_secret();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    // The URL may hold a password, so only its scheme is shown.
                    let scheme = url.split("://").next().unwrap_or_default();
                    return invalid(
                        key,
                        format!("a URL with scheme {scheme:?}"),
                        "a postgres:// or postgresql:// URL",
                    );
                }
            }
        }
        if let Some(url) = &self.redis.url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                let scheme = url.split("://").next().unwrap_or_default();
                return invalid(
                    "redis.url",
                    format!("a URL with scheme {scheme:?}"),
                    "a redis:// or rediss:// URL",
                );
            }
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "0".into(), "at least 1");
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secret.expose_secret().len() < 32
        {
            return invalid(
                "auth.jwt_secret",
                format!("a secret of {} bytes", secret.expose_secret().len()),
                "at least 32 bytes",
            );
        }
        if self.jobs.max_attempts < 1 {
            return invalid(
                "jobs.max_attempts",
                self.jobs.max_attempts.to_string(),
                "at least 1",
            );
        }
        if let Some(level) = &self.log.level
            && let Err(error) = tracing_subscriber::EnvFilter::try_new(level)
        {
            return invalid(
                "log.level",
                format!("{level:?}"),
                &format!("a tracing filter such as info or info,bridge=debug ({error})"),
            );
        }
        if let Some(key) = &self.mindtickle.credentials_key
            && crate::sync::CredentialsKey::from_base64(key).is_err()
        {
            return invalid(
                "mindtickle.credentials_key",
                "a value (not shown)".into(),
                "32 random bytes in base64, such as the output of openssl rand -base64 32",
            );
        }
        if self.mindtickle.requests_per_second == 0 {
            return invalid("mindtickle.requests_per_second", "0".into(), "at least 1");
        }
        if self.mindtickle.requests_per_minute == 0 {
            return invalid("mindtickle.requests_per_minute", "0".into(), "at least 1");
        }
        if self.scim.requests_per_second == 0 {
            return invalid("scim.requests_per_second", "0".into(), "at least 1");
        }
        if self.scim.burst == 0 {
            return invalid("scim.burst", "0".into(), "at least 1");
        }
        if self.jobs.poll_interval_ms == 0 {
            return invalid("jobs.poll_interval_ms", "0".into(), "at least 1");
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }
}

/// The environment variable that sets a dotted key.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replacen('.', "_", 1).to_ascii_uppercase()
    )
}

/// Renders a figment error with the key, the offending value and where it came from, without
/// echoing values of keys that may hold secrets.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let source = match error.metadata.as_ref() {
                Some(metadata) if metadata.name.contains("environment") => {
                    format!("environment variable {}", env_name(&key))
                }
                Some(metadata) => match &metadata.source {
                    Some(source) => format!("{} ({source})", metadata.name),
                    None => metadata.name.to_string(),
                },
                None => "defaults".to_owned(),
            };
            let kind = if is_secret_key(&key) {
                "invalid value (not shown because the key holds a secret)".to_owned()
            } else {
                error.kind.to_string()
            };
            if key.is_empty() {
                format!("{kind}, from {source}")
            } else {
                format!("{key}: {kind}, from {source}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_secret_key(key: &str) -> bool {
    key.ends_with("url")
        || key.contains("secret")
        || key.contains("password")
        || key.ends_with("_key")
}

#[cfg(test)]
// figment's `Jail` closures return its large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in_jail(file: Option<&str>) -> Result<Config, ConfigError> {
        Config::load_from(file.map(Path::new), Env::prefixed(ENV_PREFIX))
    }

    #[test]
    fn defaults_without_file_or_env() {
        Jail::expect_with(|_jail| {
            let config = load_in_jail(None).map_err(|e| e.to_string())?;
            assert_eq!(config.server.listen.to_string(), "127.0.0.1:3000");
            assert!(config.database.url.is_none());
            assert_eq!(config.jobs.max_attempts, 8);
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file() {
        Jail::expect_with(|jail| {
            jail.create_file("bridge.toml", "[server]\nlisten = \"127.0.0.1:4000\"\n")?;
            jail.set_env("BRIDGE_SERVER_LISTEN", "127.0.0.1:5000");
            jail.set_env(
                "BRIDGE_DATABASE_OWNER_URL",
                "postgres://owner@localhost/bridge",
            );
            let config = load_in_jail(Some("bridge.toml")).map_err(|e| e.to_string())?;
            assert_eq!(config.server.listen.to_string(), "127.0.0.1:5000");
            assert!(config.database.owner_url.is_some());
            Ok(())
        });
    }

    #[test]
    fn unknown_key_is_rejected() {
        Jail::expect_with(|jail| {
            jail.create_file("bridge.toml", "[server]\nlisten_port = 3000\n")?;
            let error = load_in_jail(Some("bridge.toml")).expect_err("unknown key must fail");
            let message = error.to_string();
            assert!(message.contains("listen_port"), "{message}");
            assert!(message.contains("bridge.toml"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn bad_env_value_names_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("BRIDGE_DATABASE_MAX_CONNECTIONS", "many");
            let error = load_in_jail(None).expect_err("non-numeric value must fail");
            let message = error.to_string();
            assert!(message.contains("database.max_connections"), "{message}");
            assert!(
                message.contains("BRIDGE_DATABASE_MAX_CONNECTIONS"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn short_jwt_secret_is_rejected_without_echo() {
        Jail::expect_with(|jail| {
            jail.set_env("BRIDGE_AUTH_JWT_SECRET", "hunter2");
            let error = load_in_jail(None).expect_err("short secret must fail");
            let message = error.to_string();
            assert!(message.contains("auth.jwt_secret"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn missing_config_file_is_reported() {
        Jail::expect_with(|_jail| {
            let error = load_in_jail(Some("absent.toml")).expect_err("missing file must fail");
            assert!(error.to_string().contains("absent.toml"));
            Ok(())
        });
    }

    #[test]
    fn database_url_scheme_checked_without_echo() {
        Jail::expect_with(|jail| {
            jail.set_env("BRIDGE_DATABASE_URL", "mysql://root:pw@localhost/db");
            let error = load_in_jail(None).expect_err("mysql URL must fail");
            let message = error.to_string();
            assert!(message.contains("database.url"), "{message}");
            assert!(!message.contains("pw@"), "{message}");
            Ok(())
        });
    }
}
