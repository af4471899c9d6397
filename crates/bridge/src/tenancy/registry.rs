use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::{SystemRole, SystemTx, TenantId};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<String> for TenantId {
    type Error = super::TenantIdError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        TenantId::parse(&raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantRegistryError {
    #[error("tenant '{0}' already exists")]
    AlreadyExists(TenantId),
    #[error("tenant '{0}' not found")]
    NotFound(TenantId),
    #[error(
        "tenant id '{0}' belonged to a deleted tenant and is never reused, because tokens issued for it may still be valid; choose another id"
    )]
    Retired(TenantId),
    #[error("tenant name must not be empty")]
    EmptyName,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Tenant administration: the one cross-tenant path that creates, lists and deletes tenants.
/// It runs as `bridge_admin`.
#[derive(Clone)]
pub struct TenantRegistry {
    pool: PgPool,
}

impl TenantRegistry {
    pub fn new(pool: PgPool) -> TenantRegistry {
        TenantRegistry { pool }
    }

    pub async fn create(&self, id: &TenantId, name: &str) -> Result<Tenant, TenantRegistryError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(TenantRegistryError::EmptyName);
        }
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Admin).await?;
        let retired: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM retired_tenants WHERE id = $1)")
                .bind(id.as_str())
                .fetch_one(tx.conn())
                .await?;
        if retired {
            return Err(TenantRegistryError::Retired(id.clone()));
        }
        let created = sqlx::query_as::<_, Tenant>(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO NOTHING
             RETURNING tenant_id, name, created_at",
        )
        .bind(id.as_str())
        .bind(name)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        created.ok_or_else(|| TenantRegistryError::AlreadyExists(id.clone()))
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, TenantRegistryError> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Admin).await?;
        let tenants = sqlx::query_as::<_, Tenant>(
            "SELECT tenant_id, name, created_at FROM tenants ORDER BY tenant_id",
        )
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(tenants)
    }

    pub async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, TenantRegistryError> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Admin).await?;
        let tenant = sqlx::query_as::<_, Tenant>(
            "SELECT tenant_id, name, created_at FROM tenants WHERE tenant_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(tenant)
    }

    /// Deletes the tenant and, through `ON DELETE CASCADE` on every tenant table's foreign key
    /// to `tenants`, every row the tenant owns, in one transaction. The id is retired: no later
    /// tenant can take it.
    pub async fn delete(&self, id: &TenantId) -> Result<(), TenantRegistryError> {
        self.delete_tenant(id, true).await
    }

    /// Deletes a throwaway tenant and leaves its id free, for the demo, which re-creates its
    /// tenants on every run with a fresh signing secret. Never use it for a real tenant.
    pub async fn delete_demo_tenant(&self, id: &TenantId) -> Result<(), TenantRegistryError> {
        self.delete_tenant(id, false).await
    }

    async fn delete_tenant(&self, id: &TenantId, retire: bool) -> Result<(), TenantRegistryError> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Admin).await?;
        let deleted = sqlx::query("DELETE FROM tenants WHERE tenant_id = $1")
            .bind(id.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(TenantRegistryError::NotFound(id.clone()));
        }
        if retire {
            sqlx::query("INSERT INTO retired_tenants (id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(id.as_str())
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
