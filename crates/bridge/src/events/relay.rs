use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Bus, Envelope};
use crate::tenancy::{SystemRole, SystemTx, TenantId};

#[derive(sqlx::FromRow)]
struct OutboxRow {
    tenant_id: String,
    event_id: Uuid,
    event_type: String,
    payload: serde_json::Value,
    #[allow(dead_code)]
    created_at: DateTime<Utc>,
}

/// Publishes committed outbox rows to the bus and marks them sent. It runs as `bridge_relay`,
/// which can read and mark the outbox of every tenant and touch nothing else.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    bus: Bus,
}

impl Relay {
    pub fn new(pool: PgPool, bus: Bus) -> Relay {
        Relay { pool, bus }
    }

    /// Publishes up to `limit` unpublished events, oldest first, and returns how many it sent.
    ///
    /// Rows are locked with `SKIP LOCKED`, so several relays can run at once without sending an
    /// event twice. A crash between publish and commit sends the batch again on the next run:
    /// delivery is at least once, and subscribers deduplicate on `event_id`.
    pub async fn run_once(&self, limit: i64) -> Result<usize, sqlx::Error> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Relay).await?;
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT tenant_id, event_id, event_type, payload, created_at FROM outbox
             WHERE published_at IS NULL
             ORDER BY created_at, event_id
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
        let mut sent = 0;
        for row in rows {
            let tenant = match TenantId::parse(&row.tenant_id) {
                Ok(tenant) => tenant,
                Err(error) => {
                    // The tenants table's CHECK constraint makes this unreachable; skip rather than
                    // publish under a routing key built from an unvalidated string.
                    tracing::error!(%error, event_id = %row.event_id, "outbox row has an invalid tenant id");
                    continue;
                }
            };
            self.bus.publish(Envelope {
                routing_key: format!("tenant.{}.{}", tenant, row.event_type),
                tenant,
                event_type: row.event_type,
                event_id: row.event_id,
                payload: row.payload,
            });
            sqlx::query(
                "UPDATE outbox SET published_at = now() WHERE tenant_id = $1 AND event_id = $2",
            )
            .bind(&row.tenant_id)
            .bind(row.event_id)
            .execute(tx.conn())
            .await?;
            sent += 1;
        }
        tx.commit().await?;
        Ok(sent)
    }

    /// Publishes until the outbox is empty, in batches.
    pub async fn drain(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        // Bounded so a steady stream of new events cannot keep a caller here forever.
        for _ in 0..1000 {
            let sent = self.run_once(500).await?;
            total += sent;
            if sent == 0 {
                break;
            }
        }
        Ok(total)
    }
}
