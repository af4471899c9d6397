use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::tenancy::TenantId;

/// One published event.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// `tenant.<id>.<event>`, built from the outbox row's tenant column, never from the payload.
    pub routing_key: String,
    pub tenant: TenantId,
    pub event_type: String,
    pub event_id: Uuid,
    pub payload: serde_json::Value,
}

/// The in-process bus of the embedded mode: every subscriber sees every envelope and filters by
/// tenant. Subscribers that fall more than `capacity` envelopes behind lose the oldest ones, which
/// the outbox rows still record.
#[derive(Clone)]
pub struct Bus {
    sender: Arc<broadcast::Sender<Envelope>>,
}

impl Bus {
    pub fn in_process(capacity: usize) -> Bus {
        let (sender, _) = broadcast::channel(capacity);
        Bus {
            sender: Arc::new(sender),
        }
    }

    pub fn publish(&self, envelope: Envelope) {
        metrics::counter!("bridge_events_published_total", "event" => envelope.event_type.clone())
            .increment(1);
        // No subscriber is not an error: the relay has already recorded the row as published.
        let _ = self.sender.send(envelope);
    }

    /// Subscribes to one tenant's events only.
    pub fn subscribe(&self, tenant: TenantId) -> TenantSubscription {
        TenantSubscription {
            tenant,
            receiver: self.sender.subscribe(),
        }
    }
}

pub struct TenantSubscription {
    tenant: TenantId,
    receiver: broadcast::Receiver<Envelope>,
}

impl TenantSubscription {
    /// Returns the next envelope of this tenant that is already published, without waiting.
    pub fn try_next(&mut self) -> Option<Envelope> {
        loop {
            match self.receiver.try_recv() {
                Ok(envelope) if envelope.tenant == self.tenant => return Some(envelope),
                Ok(_) => continue,
                Err(broadcast::error::TryRecvError::Lagged(skipped)) => {
                    tracing::warn!(tenant_id = %self.tenant, skipped, "event subscriber lagged");
                    continue;
                }
                Err(_) => return None,
            }
        }
    }
}
