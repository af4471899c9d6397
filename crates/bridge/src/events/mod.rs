//! Domain events: the transactional outbox, the relay that publishes it, and the bus.

mod bus;
mod relay;

use serde::Serialize;
use uuid::Uuid;

use crate::tenancy::TenantTx;

pub use bus::{Bus, Envelope};
pub use relay::Relay;

/// The events the service publishes. The routing key is `tenant.<id>.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    UserChanged,
    GroupChanged,
    ProgressSynced,
    QuizCompleted,
    ReadinessAggregated,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserChanged => "user_changed",
            EventType::GroupChanged => "group_changed",
            EventType::ProgressSynced => "progress.synced",
            EventType::QuizCompleted => "quiz.completed",
            EventType::ReadinessAggregated => "readiness.aggregated",
        }
    }
}

/// Writes an event to the outbox inside the caller's tenant transaction, so the event exists
/// exactly when the change it describes commits.
pub async fn record(
    tx: &mut TenantTx,
    event_type: EventType,
    payload: serde_json::Value,
) -> Result<Uuid, sqlx::Error> {
    let event_id = Uuid::now_v7();
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query(
        "INSERT INTO outbox (tenant_id, event_id, event_type, payload) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(event_id)
    .bind(event_type.as_str())
    .bind(payload)
    .execute(tx.conn())
    .await?;
    Ok(event_id)
}
