//! The ledger of processed webhook event ids, which makes each event idempotent on its id.
//!
//! The directory write runs in its own transaction, so the ledger cannot commit together with
//! it. Instead an event is claimed (`processing`) before the write and its outcome recorded
//! after. A claim left behind by a request that was cancelled or crashed becomes stale after
//! `stale_after_secs` and is taken over by the next delivery.

use sqlx::PgPool;
use uuid::Uuid;

use crate::tenancy::{TenantId, TenantTx};

/// The outcome stored for an event id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordedEvent {
    pub status: String,
    pub user_id: Option<Uuid>,
    pub error: Option<serde_json::Value>,
    pub dead_letter_id: Option<Uuid>,
}

pub(crate) enum Claim {
    /// This delivery owns the event and must record its outcome or release it.
    Claimed,
    /// The event was processed, or is being processed, by an earlier delivery.
    Recorded(RecordedEvent),
}

/// Claims `event_id` for processing. With `retry_rejected`, an event recorded as rejected is
/// claimed again; dead-letter replay uses this to re-run an event that failed validation.
pub(crate) async fn claim(
    pool: &PgPool,
    tenant: &TenantId,
    event_id: &str,
    operation: Option<&str>,
    stale_after_secs: f64,
    retry_rejected: bool,
) -> Result<Claim, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO webhook_events (tenant_id, event_id, operation) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, event_id) DO UPDATE
         SET operation = EXCLUDED.operation, status = 'processing', claimed_at = now(),
             user_id = NULL, error = NULL, dead_letter_id = NULL, processed_at = NULL
         WHERE (webhook_events.status = 'processing'
                AND webhook_events.claimed_at < now() - make_interval(secs => $4))
            OR ($5 AND webhook_events.status = 'rejected')
         RETURNING event_id",
    )
    .bind(tenant.as_str())
    .bind(event_id)
    .bind(operation)
    .bind(stale_after_secs)
    .bind(retry_rejected)
    .fetch_optional(tx.conn())
    .await?;

    let claim = match claimed {
        Some(_) => Claim::Claimed,
        None => {
            let recorded = sqlx::query_as::<_, RecordedEvent>(
                "SELECT status, user_id, error, dead_letter_id FROM webhook_events
                 WHERE tenant_id = $1 AND event_id = $2",
            )
            .bind(tenant.as_str())
            .bind(event_id)
            .fetch_one(tx.conn())
            .await?;
            Claim::Recorded(recorded)
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// Records the final outcome of a claimed event: `applied` or `rejected`.
pub(crate) async fn record(
    pool: &PgPool,
    tenant: &TenantId,
    event_id: &str,
    outcome: &RecordedEvent,
) -> Result<(), sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    sqlx::query(
        "UPDATE webhook_events
         SET status = $3, user_id = $4, error = $5, dead_letter_id = $6, processed_at = now()
         WHERE tenant_id = $1 AND event_id = $2 AND status = 'processing'",
    )
    .bind(tenant.as_str())
    .bind(event_id)
    .bind(&outcome.status)
    .bind(outcome.user_id)
    .bind(&outcome.error)
    .bind(outcome.dead_letter_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Drops a claim after a failure unrelated to the event itself (a database error), so the
/// sender's retry processes it.
pub(crate) async fn release(
    pool: &PgPool,
    tenant: &TenantId,
    event_id: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    sqlx::query(
        "DELETE FROM webhook_events
         WHERE tenant_id = $1 AND event_id = $2 AND status = 'processing'",
    )
    .bind(tenant.as_str())
    .bind(event_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}
