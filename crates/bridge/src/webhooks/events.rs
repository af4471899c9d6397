//! One HR change event: validation, the idempotency ledger and the directory write.

use scim::{ScimError, ScimType, UserResource};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::ledger::{self, Claim, RecordedEvent};
use crate::app::AppState;
use crate::directory::{self, User};
use crate::gateway::{SecurityEventKind, record_security_event};
use crate::scim_api::service;
use crate::scim_api::{DeadLetter, ScimApiError};
use crate::tenancy::{TenantId, TenantTx};

/// Maximum length of an event id, in bytes.
const MAX_EVENT_ID_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn parse(raw: &str) -> Option<Operation> {
        match raw.to_ascii_uppercase().as_str() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// The source of an event: a webhook delivery, or the replay of a stored dead letter.
pub struct Delivery<'a> {
    pub request_id: Option<&'a str>,
    /// The request path, kept on dead letters.
    pub path: &'a str,
    /// True when a dead letter is replayed: the event is not stored as a new dead letter, and an
    /// id recorded as rejected may be processed again.
    pub replay: bool,
    /// How long a `processing` claim of the ledger lasts before another delivery may take it.
    pub stale_after_secs: f64,
}

/// The directory change an applied event made.
#[derive(Debug)]
pub enum Change {
    Created(User),
    Replaced(User),
    /// The deleted user's id, or `None` when no user matched, which counts as success.
    Deleted(Option<Uuid>),
}

impl Change {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Change::Created(user) | Change::Replaced(user) => Some(user.user_id),
            Change::Deleted(user_id) => *user_id,
        }
    }
}

/// The outcome of one event.
#[derive(Debug)]
pub enum EventOutcome {
    Applied {
        event_id: String,
        change: Change,
    },
    /// The id was processed before; nothing was applied this time.
    Duplicate {
        event_id: String,
        recorded: RecordedEvent,
    },
    /// The event itself is wrong (invalid, conflicting, or naming another tenant).
    Rejected {
        event_id: Option<String>,
        error: ScimError,
        dead_letter_id: Option<Uuid>,
    },
    /// The service failed (a database error); the sender should retry the event.
    Failed {
        event_id: Option<String>,
        error: anyhow::Error,
    },
}

/// One entry of the webhook response's `results`.
#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    pub id: Option<String>,
    /// `applied`, `duplicate` or `rejected`.
    pub status: &'static str,
    /// For a duplicate: the status recorded when the id was first processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_id: Option<Uuid>,
}

impl EventOutcome {
    pub fn to_result(&self, request_id: Option<&str>) -> EventResult {
        let empty = |id: Option<String>, status| EventResult {
            id,
            status,
            original_status: None,
            user_id: None,
            error: None,
            dead_letter_id: None,
        };
        match self {
            EventOutcome::Applied { event_id, change } => EventResult {
                user_id: change.user_id(),
                ..empty(Some(event_id.clone()), "applied")
            },
            EventOutcome::Duplicate { event_id, recorded } => EventResult {
                original_status: Some(recorded.status.clone()),
                user_id: recorded.user_id,
                error: recorded.error.clone(),
                dead_letter_id: recorded.dead_letter_id,
                ..empty(Some(event_id.clone()), "duplicate")
            },
            EventOutcome::Rejected {
                event_id,
                error,
                dead_letter_id,
            } => EventResult {
                error: Some(error.to_json()),
                dead_letter_id: *dead_letter_id,
                ..empty(event_id.clone(), "rejected")
            },
            EventOutcome::Failed { event_id, .. } => EventResult {
                error: Some(
                    ScimError::new(
                        500,
                        None,
                        format!(
                            "internal error; retry the event, and quote request id {} when reporting it",
                            request_id.unwrap_or("unknown")
                        ),
                    )
                    .to_json(),
                ),
                ..empty(event_id.clone(), "rejected")
            },
        }
    }
}

/// A validated event.
struct Event {
    operation: Operation,
    user: Value,
}

/// Validates, claims and applies one event, and logs it when it is rejected or fails.
pub async fn handle_event(
    state: &AppState,
    tenant: &TenantId,
    delivery: &Delivery<'_>,
    raw: &Value,
) -> EventOutcome {
    let outcome = process(state, tenant, delivery, raw).await;
    match &outcome {
        EventOutcome::Rejected {
            event_id,
            error,
            dead_letter_id,
        } => tracing::warn!(
            tenant_id = %tenant,
            event_id = event_id.as_deref(),
            request_id = delivery.request_id,
            status = error.status,
            scim_type = error.scim_type.map(|kind| kind.as_str()),
            dead_letter_id = dead_letter_id.map(|id| id.to_string()),
            "webhook event rejected"
        ),
        EventOutcome::Failed { event_id, error } => tracing::error!(
            tenant_id = %tenant,
            event_id = event_id.as_deref(),
            request_id = delivery.request_id,
            error = ?error,
            "webhook event failed"
        ),
        EventOutcome::Applied { event_id, change } => tracing::info!(
            tenant_id = %tenant,
            event_id = event_id.as_str(),
            user_id = change.user_id().map(|id| id.to_string()),
            "webhook event applied"
        ),
        EventOutcome::Duplicate { .. } => {}
    }
    outcome
}

async fn process(
    state: &AppState,
    tenant: &TenantId,
    delivery: &Delivery<'_>,
    raw: &Value,
) -> EventOutcome {
    // An event naming another tenant is rejected before anything of it is stored, so it never
    // touches this tenant's ledger or dead letters.
    if let Some(named) = raw.get("tenant").and_then(Value::as_str)
        && named != tenant.as_str()
    {
        return reject_cross_tenant(state, tenant, delivery, raw, named).await;
    }

    let event_id = match event_id(raw) {
        Ok(id) => id,
        Err(error) => return reject_malformed(state, tenant, delivery, raw, None, error).await,
    };
    let operation = raw
        .get("operation")
        .and_then(Value::as_str)
        .and_then(Operation::parse);

    match ledger::claim(
        state.pool(),
        tenant,
        &event_id,
        operation.map(Operation::as_str),
        delivery.stale_after_secs,
        delivery.replay,
    )
    .await
    {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Recorded(recorded)) => {
            return EventOutcome::Duplicate { event_id, recorded };
        }
        Err(error) => {
            return EventOutcome::Failed {
                event_id: Some(event_id),
                error: error.into(),
            };
        }
    }

    let outcome = match parse_event(raw) {
        Ok(event) => match apply(state, tenant, &event).await {
            Ok(change) => EventOutcome::Applied { event_id, change },
            Err(error) => {
                let payload_error = service::is_payload_error(&error);
                match error {
                    ScimApiError::Scim(error) if payload_error => {
                        reject_malformed(state, tenant, delivery, raw, Some(event_id), error).await
                    }
                    ScimApiError::Scim(error) => EventOutcome::Rejected {
                        event_id: Some(event_id),
                        error,
                        dead_letter_id: None,
                    },
                    ScimApiError::Internal(error) => EventOutcome::Failed {
                        event_id: Some(event_id),
                        error,
                    },
                    other => EventOutcome::Failed {
                        event_id: Some(event_id),
                        error: anyhow::Error::new(other),
                    },
                }
            }
        },
        Err(error) => reject_malformed(state, tenant, delivery, raw, Some(event_id), error).await,
    };
    finish_claim(state, tenant, outcome).await
}

/// Records a final outcome in the ledger, or releases the claim after a failure.
async fn finish_claim(state: &AppState, tenant: &TenantId, outcome: EventOutcome) -> EventOutcome {
    let (event_id, recorded) = match &outcome {
        EventOutcome::Applied { event_id, change } => (
            event_id.clone(),
            Some(RecordedEvent {
                status: "applied".into(),
                user_id: change.user_id(),
                error: None,
                dead_letter_id: None,
            }),
        ),
        EventOutcome::Rejected {
            event_id: Some(event_id),
            error,
            dead_letter_id,
        } => (
            event_id.clone(),
            Some(RecordedEvent {
                status: "rejected".into(),
                user_id: None,
                error: Some(error.to_json()),
                dead_letter_id: *dead_letter_id,
            }),
        ),
        EventOutcome::Failed {
            event_id: Some(event_id),
            ..
        } => (event_id.clone(), None),
        _ => return outcome,
    };
    let written = match &recorded {
        Some(recorded) => ledger::record(state.pool(), tenant, &event_id, recorded).await,
        None => ledger::release(state.pool(), tenant, &event_id).await,
    };
    if let Err(error) = written {
        // The change itself is done. Without its ledger row, a redelivery after the claim goes
        // stale is claimed again and runs the directory write a second time.
        tracing::error!(
            tenant_id = %tenant, event_id = event_id.as_str(), %error,
            "failed to record the outcome of a webhook event"
        );
    }
    outcome
}

fn event_id(raw: &Value) -> Result<String, ScimError> {
    let object = raw.as_object().ok_or_else(|| {
        ScimError::bad_request(ScimType::InvalidSyntax, "the event is not a JSON object")
    })?;
    match object.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() && id.len() <= MAX_EVENT_ID_LEN => {
            Ok(id.clone())
        }
        Some(Value::String(_)) => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("the event id must be 1 to {MAX_EVENT_ID_LEN} bytes long"),
        )),
        Some(_) => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "the event id must be a string",
        )),
        None => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "the event has no id; give every event a unique id so a redelivery is recognized",
        )),
    }
}

fn parse_event(raw: &Value) -> Result<Event, ScimError> {
    if raw.get("tenant").is_some_and(|tenant| !tenant.is_string()) {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "the event's tenant must be a string",
        ));
    }
    let operation = match raw.get("operation") {
        Some(Value::String(raw_operation)) => Operation::parse(raw_operation).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidValue,
                format!("unknown operation {raw_operation:?}; use CREATE, UPDATE or DELETE"),
            )
        })?,
        _ => {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                "the event has no operation; use CREATE, UPDATE or DELETE",
            ));
        }
    };
    let user = match raw.get("user") {
        Some(user @ Value::Object(_)) => user.clone(),
        _ => {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                "the event has no user object; send the SCIM User resource in \"user\"",
            ));
        }
    };
    Ok(Event { operation, user })
}

/// Runs the event through the same service functions as the SCIM endpoints.
///
/// UPDATE of a user the directory does not have creates it: HR systems often send an update as
/// the first event for an employee, and dropping it would lose the employee. DELETE of an
/// unknown user succeeds, so a repeated or late delete is harmless.
async fn apply(state: &AppState, tenant: &TenantId, event: &Event) -> Result<Change, ScimApiError> {
    match event.operation {
        Operation::Create => service::create_user(state, tenant, &event.user)
            .await
            .map(Change::Created),
        Operation::Update => {
            let resource = UserResource::from_json(&event.user)?;
            let existing = find_user(
                state,
                tenant,
                Some(&resource.user_name),
                resource.external_id.as_deref(),
            )
            .await?;
            match existing {
                Some(user_id) => service::replace_user(state, tenant, user_id, &event.user, None)
                    .await
                    .map(Change::Replaced),
                None => service::create_user(state, tenant, &event.user)
                    .await
                    .map(Change::Created),
            }
        }
        Operation::Delete => {
            let user_name = event.user.get("userName").and_then(Value::as_str);
            let external_id = event.user.get("externalId").and_then(Value::as_str);
            if user_name.is_none() && external_id.is_none() {
                return Err(ScimApiError::bad_request(
                    ScimType::InvalidValue,
                    "a DELETE event's user needs a userName or an externalId",
                ));
            }
            let Some(user_id) = find_user(state, tenant, user_name, external_id).await? else {
                return Ok(Change::Deleted(None));
            };
            match service::delete_user(state, tenant, user_id, None).await {
                Ok(user) => Ok(Change::Deleted(Some(user.user_id))),
                // Deleted concurrently by another request: the outcome is the same.
                Err(ScimApiError::Scim(error)) if error.status == 404 => Ok(Change::Deleted(None)),
                Err(error) => Err(error),
            }
        }
    }
}

/// Finds a user by `userName` (case-insensitive), then by `externalId`, so a renamed employee is
/// still found through the HR system's id.
async fn find_user(
    state: &AppState,
    tenant: &TenantId,
    user_name: Option<&str>,
    external_id: Option<&str>,
) -> Result<Option<Uuid>, ScimApiError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let mut found = None;
    if let Some(user_name) = user_name {
        found = directory::find_by_user_name(&mut tx, user_name).await?;
    }
    if found.is_none()
        && let Some(external_id) = external_id
    {
        found = directory::find_by_external_id(&mut tx, external_id).await?;
    }
    tx.commit().await?;
    Ok(found.map(|user| user.user_id))
}

/// Stores a malformed event as a dead letter (unless it is being replayed from one) and returns
/// the rejection.
async fn reject_malformed(
    state: &AppState,
    tenant: &TenantId,
    delivery: &Delivery<'_>,
    raw: &Value,
    event_id: Option<String>,
    error: ScimError,
) -> EventOutcome {
    let dead_letter_id = if delivery.replay {
        None
    } else {
        store_dead_letter(state, tenant, delivery, raw.to_string().as_bytes(), &error).await
    };
    EventOutcome::Rejected {
        event_id,
        error,
        dead_letter_id,
    }
}

/// Stores a webhook dead letter and returns its id. A failure to store is logged and returns
/// `None`: the sender still gets the rejection.
pub(crate) async fn store_dead_letter(
    state: &AppState,
    tenant: &TenantId,
    delivery: &Delivery<'_>,
    body: &[u8],
    error: &ScimError,
) -> Option<Uuid> {
    let stored = async {
        let mut tx = TenantTx::begin(state.pool(), tenant).await?;
        let id = DeadLetter::store_webhook(
            &mut tx,
            delivery.request_id,
            delivery.path,
            body,
            error.to_json(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(id)
    };
    match stored.await {
        Ok(id) => Some(id),
        Err(store_error) => {
            tracing::error!(
                tenant_id = %tenant, request_id = delivery.request_id, error = %store_error,
                "failed to store a rejected webhook event as a dead letter"
            );
            None
        }
    }
}

async fn reject_cross_tenant(
    state: &AppState,
    tenant: &TenantId,
    delivery: &Delivery<'_>,
    raw: &Value,
    named: &str,
) -> EventOutcome {
    let event_id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
    record_security_event(
        state,
        SecurityEventKind::CrossTenantWebhook,
        delivery.request_id,
        Some(tenant.as_str()),
        Some(named),
        &json!({ "path": delivery.path, "event_id": event_id }).to_string(),
    )
    .await;
    EventOutcome::Rejected {
        event_id,
        error: ScimError::new(
            403,
            None,
            format!(
                "the event names tenant '{named}' but was sent to tenant '{tenant}'; send each tenant's events to its own endpoint"
            ),
        ),
        dead_letter_id: None,
    }
}
