//! Per-tenant webhook signing secrets.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::tenancy::{TenantId, TenantTx};

/// A webhook secret's metadata. The secret itself is shown once, when it is created.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WebhookSecretInfo {
    pub secret_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Creates a signing secret for the tenant and returns its id and the secret. The HMAC key is
/// the secret string's UTF-8 bytes, exactly as returned.
pub async fn create_webhook_secret(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<(Uuid, SecretString), sqlx::Error> {
    let secret_id = Uuid::now_v7();
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);

    let mut tx = TenantTx::begin(pool, tenant).await?;
    sqlx::query("INSERT INTO webhook_secrets (tenant_id, secret_id, secret) VALUES ($1, $2, $3)")
        .bind(tenant.as_str())
        .bind(secret_id)
        .bind(&secret)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok((secret_id, SecretString::from(secret)))
}

/// Lists the tenant's webhook secrets, newest first, without the secrets themselves.
pub async fn list_webhook_secrets(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<Vec<WebhookSecretInfo>, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let secrets = sqlx::query_as::<_, WebhookSecretInfo>(
        "SELECT secret_id, created_at, revoked_at FROM webhook_secrets
         WHERE tenant_id = $1 ORDER BY created_at DESC, secret_id",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(secrets)
}

/// Revokes one of the tenant's webhook secrets; the next request signed with it is rejected.
/// Returns false when the tenant has no such secret.
pub async fn revoke_webhook_secret(
    pool: &PgPool,
    tenant: &TenantId,
    secret_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let revoked = sqlx::query(
        "UPDATE webhook_secrets SET revoked_at = coalesce(revoked_at, now())
         WHERE tenant_id = $1 AND secret_id = $2",
    )
    .bind(tenant.as_str())
    .bind(secret_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(revoked == 1)
}

/// Returns the tenant's unrevoked secrets, read through its own row-level security policy, so another
/// tenant's secret can never authenticate this tenant's endpoint.
pub(crate) async fn active_secrets(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<Vec<SecretString>, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let secrets: Vec<String> = sqlx::query_scalar(
        "SELECT secret FROM webhook_secrets WHERE tenant_id = $1 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(secrets.into_iter().map(SecretString::from).collect())
}
