use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};

use super::TenantId;

/// The role every tenant transaction runs as. Row-level security policies name this role.
pub const TENANT_ROLE: &str = "bridge_app";

/// A transaction bound to one tenant: the only way tenant-scoped SQL runs.
///
/// It runs as `bridge_app` with `app.tenant_id` set for this transaction only, so row-level
/// security limits every statement to the tenant's rows. Both settings are `LOCAL`, which
/// means they end with the transaction and a pooled connection never carries one tenant's
/// context into another's request. Dropping the value without `commit` rolls it back.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    pub async fn begin(pool: &PgPool, tenant: &TenantId) -> Result<TenantTx, sqlx::Error> {
        // One round trip: BEGIN and both settings go as a single simple-query message. Inlining
        // the tenant id is safe because `TenantId` admits only [a-z0-9-], and `SET LOCAL` (rather
        // than `set_config`) is what Citus propagates to its workers.
        let begin = format!(
            "BEGIN; SET LOCAL ROLE {TENANT_ROLE}; SET LOCAL app.tenant_id = '{}'",
            tenant.as_str()
        );
        let tx = pool.begin_with(AssertSqlSafe(begin)).await?;
        Ok(TenantTx {
            tx,
            tenant: tenant.clone(),
        })
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// The named roles for work that spans tenants. Each has grants on its own tables only and
/// none can bypass row-level security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemRole {
    /// Publishes every tenant's outbox rows.
    Relay,
    /// Claims due jobs of every tenant.
    Worker,
    /// Creates, lists and deletes tenants.
    Admin,
    /// Runs with no tenant set: sees no tenant rows, may append security events.
    Anonymous,
}

impl SystemRole {
    pub fn role_name(self) -> &'static str {
        match self {
            SystemRole::Relay => "bridge_relay",
            SystemRole::Worker => "bridge_worker",
            SystemRole::Admin => "bridge_admin",
            SystemRole::Anonymous => TENANT_ROLE,
        }
    }
}

/// A transaction running as one of the cross-tenant roles, with no tenant set.
pub struct SystemTx {
    tx: Transaction<'static, Postgres>,
}

impl SystemTx {
    pub async fn begin(pool: &PgPool, role: SystemRole) -> Result<SystemTx, sqlx::Error> {
        // The role name is one of four constants, never input.
        let begin = format!(
            "BEGIN; SET LOCAL ROLE {}; SET LOCAL app.tenant_id = ''",
            role.role_name()
        );
        let tx = pool.begin_with(AssertSqlSafe(begin)).await?;
        Ok(SystemTx { tx })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}
