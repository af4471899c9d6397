use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::budget::{BudgetLimits, Budgets, TenantGate};
use super::credentials::{CredentialsError, CredentialsKey};
use crate::jobs::JobFailure;
use crate::tenancy::{TenantId, TenantTx};

/// A tenant's MindTickle account: the regional hosts and both credential pairs.
#[derive(Clone)]
pub struct MindTickleAccount {
    /// REST host of the tenant's region, such as `https://api.prod-us.mindtickle.com`.
    pub api_base: String,
    /// Reporting host that serves the OData feed.
    pub admin_base: String,
    /// Learning-site host, such as `acme.mindtickle.com`.
    pub ls_url: String,
    pub api_key: String,
    pub secret_key: SecretString,
    pub reporting_user: String,
    pub reporting_password: SecretString,
    /// Override of the configured requests per second, for this tenant only.
    pub requests_per_second: Option<u32>,
    /// Override of the configured requests per minute, for this tenant only.
    pub requests_per_minute: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("tenant {0} has no MindTickle account configured")]
    NoAccount(TenantId),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SyncError {
    pub fn job_failure(&self) -> JobFailure {
        match self {
            // An operator can add the account; retrying later may then succeed.
            // An operator can add the account or fix the key; retrying later may then succeed.
            SyncError::NoAccount(_) | SyncError::Credentials(_) => JobFailure::Retryable {
                message: self.to_string(),
                not_before: None,
            },
            SyncError::Database(error) => JobFailure::Retryable {
                message: format!("database error: {error}"),
                not_before: None,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    api_base: String,
    admin_base: String,
    ls_url: String,
    api_key: String,
    secret_key: String,
    reporting_user: String,
    reporting_password: String,
    requests_per_second: Option<i32>,
    requests_per_minute: Option<i32>,
}

/// One MindTickle client per tenant, each with its own token, built from the tenant's account row.
#[derive(Clone)]
pub struct MindTickleAccounts {
    http: reqwest::Client,
    clients: Arc<Mutex<HashMap<TenantId, mindtickle::Client>>>,
    budgets: Budgets,
    default_limits: BudgetLimits,
    credentials_key: Option<CredentialsKey>,
}

impl MindTickleAccounts {
    pub fn new(
        timeout: Duration,
        default_limits: BudgetLimits,
        budget_max_wait: Duration,
        credentials_key: Option<&SecretString>,
        redis_url: Option<&SecretString>,
    ) -> anyhow::Result<MindTickleAccounts> {
        let shared = redis_url
            .map(|url| super::budget::SharedBudget::new(url.expose_secret()))
            .transpose()
            .map_err(|error| anyhow::anyhow!("redis.url is invalid: {error}"))?;
        let credentials_key = credentials_key
            .map(CredentialsKey::from_base64)
            .transpose()?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("enablement-bridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(MindTickleAccounts {
            http,
            clients: Arc::default(),
            budgets: Budgets::new(default_limits, budget_max_wait, shared),
            default_limits,
            credentials_key,
        })
    }

    /// The Redis-backed budget, when Redis is configured.
    pub fn shared_budget(&self) -> Option<&super::budget::SharedBudget> {
        self.budgets.shared()
    }

    /// Returns the tenant's client, loading its account on first use.
    pub async fn client(
        &self,
        pool: &PgPool,
        tenant: &TenantId,
    ) -> Result<mindtickle::Client, SyncError> {
        if let Some(client) = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
        {
            return Ok(client.clone());
        }
        let mut tx = TenantTx::begin(pool, tenant).await?;
        let row = sqlx::query_as::<_, AccountRow>(
            "SELECT api_base, admin_base, ls_url, api_key, secret_key, reporting_user, reporting_password,
                    requests_per_second, requests_per_minute
             FROM mindtickle_accounts WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        let row = row.ok_or_else(|| SyncError::NoAccount(tenant.clone()))?;
        let limits = match (row.requests_per_second, row.requests_per_minute) {
            (None, None) => None,
            (per_second, per_minute) => Some(BudgetLimits {
                per_second: per_second
                    .and_then(|value| u32::try_from(value).ok())
                    .unwrap_or(self.default_limits.per_second),
                per_minute: per_minute
                    .and_then(|value| u32::try_from(value).ok())
                    .unwrap_or(self.default_limits.per_minute),
            }),
        };
        let budget = self.budgets.for_tenant(tenant, limits);
        let key = self
            .credentials_key
            .as_ref()
            .ok_or(CredentialsError::NoKey)?;
        let secret_key = key.decrypt(tenant, "secret_key", &row.secret_key)?;
        let reporting_password =
            key.decrypt(tenant, "reporting_password", &row.reporting_password)?;
        let client = mindtickle::Client::new(
            self.http.clone(),
            mindtickle::TenantConfig {
                api_base: row.api_base,
                admin_base: row.admin_base,
                ls_url: row.ls_url,
                api_key: row.api_key,
                secret_key,
                reporting_user: row.reporting_user,
                reporting_password,
            },
        )
        .with_request_gate(Arc::new(TenantGate(budget)));
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), client.clone());
        Ok(client)
    }

    /// Stores the tenant's account, its secrets encrypted, and drops its cached client, so the
    /// next call uses it.
    pub async fn set_account(
        &self,
        pool: &PgPool,
        tenant: &TenantId,
        account: &MindTickleAccount,
    ) -> Result<(), SyncError> {
        let key = self
            .credentials_key
            .as_ref()
            .ok_or(CredentialsError::NoKey)?;
        let secret_key = key.encrypt(tenant, "secret_key", account.secret_key.expose_secret());
        let reporting_password = key.encrypt(
            tenant,
            "reporting_password",
            account.reporting_password.expose_secret(),
        );
        let mut tx = TenantTx::begin(pool, tenant).await?;
        sqlx::query(
            "INSERT INTO mindtickle_accounts
                 (tenant_id, api_base, admin_base, ls_url, api_key, secret_key, reporting_user,
                  reporting_password, requests_per_second, requests_per_minute)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id) DO UPDATE SET
                 api_base = EXCLUDED.api_base, admin_base = EXCLUDED.admin_base, ls_url = EXCLUDED.ls_url,
                 api_key = EXCLUDED.api_key, secret_key = EXCLUDED.secret_key,
                 reporting_user = EXCLUDED.reporting_user, reporting_password = EXCLUDED.reporting_password,
                 requests_per_second = EXCLUDED.requests_per_second,
                 requests_per_minute = EXCLUDED.requests_per_minute,
                 updated_at = now()",
        )
        .bind(tenant.as_str())
        .bind(&account.api_base)
        .bind(&account.admin_base)
        .bind(&account.ls_url)
        .bind(&account.api_key)
        .bind(&secret_key)
        .bind(&account.reporting_user)
        .bind(&reporting_password)
        .bind(account.requests_per_second.and_then(|value| i32::try_from(value).ok()))
        .bind(account.requests_per_minute.and_then(|value| i32::try_from(value).ok()))
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
        Ok(())
    }
}
