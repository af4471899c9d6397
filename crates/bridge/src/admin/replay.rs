//! Replay and discard of dead letters, shared by the admin API and the CLI.
//!
//! A replay runs the stored request through the same service functions as a fresh request, so
//! it passes exactly the validation a new request would.

use scim::{ScimError, ScimType};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
use crate::scim_api::{DeadLetter, ScimApiError, service};
use crate::tenancy::{TenantId, TenantTx};
use crate::webhooks::{Change, Delivery, EventOutcome, handle_event, stale_claim_secs};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("dead letter {0} not found")]
    NotFound(Uuid),
    /// The letter cannot be replayed or discarded in its current state.
    #[error("{0}")]
    Conflict(String),
    /// The stored request still fails; the letter stays `new` with these errors.
    #[error("replay of dead letter {dead_letter_id} failed: {}; the letter stays new", error.detail)]
    Rejected {
        dead_letter_id: Uuid,
        error: ScimError,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ReplayError {
    fn from(error: sqlx::Error) -> Self {
        ReplayError::Internal(anyhow::Error::new(error).context("database statement failed"))
    }
}

/// The result of a successful replay.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub dead_letter_id: Uuid,
    pub status: &'static str,
    /// True when the replay created the resource (the API returns 201), false when it changed or
    /// deleted one.
    pub created: bool,
    /// `User` or `Group`.
    pub resource_type: &'static str,
    /// The resource's id; `None` after a webhook DELETE that matched no user.
    pub id: Option<Uuid>,
    /// The stored SCIM representation of a created or changed user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
}

/// The operation a stored request performs when it runs again.
enum Action {
    CreateUser,
    ReplaceUser(Uuid),
    PatchUser(Uuid),
    CreateGroup,
    ReplaceGroup(Uuid),
    PatchGroup(Uuid),
    WebhookEvent,
}

/// The reason a run of the stored request failed.
enum RunError {
    Rejected(ScimError),
    Conflict(String),
    Internal(anyhow::Error),
}

impl From<ScimApiError> for RunError {
    fn from(error: ScimApiError) -> Self {
        match error {
            ScimApiError::Scim(error) => RunError::Rejected(error),
            ScimApiError::Internal(error) => RunError::Internal(error),
            other => RunError::Internal(anyhow::Error::new(other)),
        }
    }
}

async fn find(state: &AppState, tenant: &TenantId, id: Uuid) -> Result<DeadLetter, ReplayError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let letter = DeadLetter::find(&mut tx, id).await?;
    tx.commit().await?;
    letter.ok_or(ReplayError::NotFound(id))
}

/// Replays a `new` dead letter. On success the letter becomes `replayed`; when the request still
/// fails, it stays `new` and its `errors` are replaced by the latest ones.
pub async fn replay_dead_letter(
    state: &AppState,
    tenant: &TenantId,
    dead_letter_id: Uuid,
    resolved_by: &str,
) -> Result<Replayed, ReplayError> {
    let letter = find(state, tenant, dead_letter_id).await?;
    if letter.status != "new" && letter.status != "replaying" {
        return Err(ReplayError::Conflict(format!(
            "dead letter {dead_letter_id} is {}; only a new letter can be replayed",
            letter.status
        )));
    }
    if letter.body_truncated {
        return Err(ReplayError::Conflict(format!(
            "dead letter {dead_letter_id} kept only the first 64 KiB of its body, so it cannot be replayed; have the sender resend the request and discard this letter"
        )));
    }
    let action = action_of(&letter, tenant)?;

    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let claimed =
        DeadLetter::claim_for_replay(&mut tx, dead_letter_id, stale_claim_secs(state)).await?;
    tx.commit().await?;
    let Some(letter) = claimed else {
        return Err(ReplayError::Conflict(format!(
            "dead letter {dead_letter_id} is being replayed or was resolved meanwhile; read it again"
        )));
    };

    match run(state, tenant, &letter, action).await {
        Ok(replayed) => {
            let mut tx = TenantTx::begin(state.pool(), tenant).await?;
            let finished =
                DeadLetter::finish_replay(&mut tx, dead_letter_id, replayed.id, resolved_by)
                    .await?;
            tx.commit().await?;
            if !finished {
                // The claim went stale and another replay took it over; the change is applied
                // either way, so this one still reports success.
                tracing::warn!(tenant_id = %tenant, %dead_letter_id, "dead letter claim lost during replay");
            }
            tracing::info!(tenant_id = %tenant, %dead_letter_id, resolved_by, "dead letter replayed");
            Ok(replayed)
        }
        Err(RunError::Rejected(error)) => {
            release(state, tenant, dead_letter_id, Some(error.to_json())).await?;
            tracing::warn!(
                tenant_id = %tenant, %dead_letter_id, status = error.status,
                scim_type = error.scim_type.map(ScimType::as_str),
                "dead letter replay rejected"
            );
            Err(ReplayError::Rejected {
                dead_letter_id,
                error,
            })
        }
        Err(RunError::Conflict(message)) => {
            release(state, tenant, dead_letter_id, None).await?;
            Err(ReplayError::Conflict(message))
        }
        Err(RunError::Internal(error)) => {
            if let Err(release_error) = release(state, tenant, dead_letter_id, None).await {
                tracing::error!(tenant_id = %tenant, %dead_letter_id, error = %release_error,
                    "failed to return a dead letter to new after a failed replay");
            }
            Err(ReplayError::Internal(error))
        }
    }
}

async fn release(
    state: &AppState,
    tenant: &TenantId,
    dead_letter_id: Uuid,
    errors: Option<Value>,
) -> Result<(), sqlx::Error> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    DeadLetter::release_replay(&mut tx, dead_letter_id, errors).await?;
    tx.commit().await
}

/// Marks a `new` dead letter `discarded` and returns it.
pub async fn discard_dead_letter(
    state: &AppState,
    tenant: &TenantId,
    dead_letter_id: Uuid,
    resolved_by: &str,
) -> Result<DeadLetter, ReplayError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let discarded = DeadLetter::discard(&mut tx, dead_letter_id, resolved_by).await?;
    let current = match discarded {
        Some(letter) => {
            tx.commit().await?;
            tracing::info!(tenant_id = %tenant, %dead_letter_id, resolved_by, "dead letter discarded");
            return Ok(letter);
        }
        None => DeadLetter::find(&mut tx, dead_letter_id).await?,
    };
    tx.commit().await?;
    match current {
        None => Err(ReplayError::NotFound(dead_letter_id)),
        Some(letter) => Err(ReplayError::Conflict(format!(
            "dead letter {dead_letter_id} is {}; only a new letter can be discarded",
            letter.status
        ))),
    }
}

/// Reads what the stored request did from its source, method and path.
fn action_of(letter: &DeadLetter, tenant: &TenantId) -> Result<Action, ReplayError> {
    let method = letter.method.as_deref().unwrap_or_default();
    let path = letter.path.as_deref().unwrap_or_default();
    let unsupported = || {
        ReplayError::Conflict(format!(
            "dead letter {} holds a {} request {method} {path}, which cannot be replayed; discard it and have the sender resend the request",
            letter.dead_letter_id, letter.source
        ))
    };
    match letter.source.as_str() {
        "webhook" => Ok(Action::WebhookEvent),
        "scim" => {
            let segments: Vec<&str> = path
                .strip_prefix("/scim/v2/")
                .ok_or_else(unsupported)?
                .split('/')
                .collect();
            // The path's tenant is the one the letter was stored under; anything else would
            // apply the request to a tenant that did not send it.
            if segments.first() != Some(&tenant.as_str()) {
                return Err(unsupported());
            }
            let id = |raw: &str| Uuid::parse_str(raw).map_err(|_| unsupported());
            match (method, &segments[1..]) {
                ("POST", ["Users"]) => Ok(Action::CreateUser),
                ("PUT", ["Users", raw]) => Ok(Action::ReplaceUser(id(raw)?)),
                ("PATCH", ["Users", raw]) => Ok(Action::PatchUser(id(raw)?)),
                ("POST", ["Groups"]) => Ok(Action::CreateGroup),
                ("PUT", ["Groups", raw]) => Ok(Action::ReplaceGroup(id(raw)?)),
                ("PATCH", ["Groups", raw]) => Ok(Action::PatchGroup(id(raw)?)),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// Runs the stored request once. Replays carry no `If-Match`, so PUT and PATCH apply to the
/// current version of the resource.
async fn run(
    state: &AppState,
    tenant: &TenantId,
    letter: &DeadLetter,
    action: Action,
) -> Result<Replayed, RunError> {
    let json: Value = serde_json::from_str(&letter.raw_body).map_err(|error| {
        RunError::Rejected(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {error}"),
        ))
    })?;
    let user = |created: bool, user: crate::directory::User| Replayed {
        dead_letter_id: letter.dead_letter_id,
        status: "replayed",
        created,
        resource_type: "User",
        id: Some(user.user_id),
        resource: Some(user.resource),
    };
    let group = |created: bool, view: service::GroupView| Replayed {
        dead_letter_id: letter.dead_letter_id,
        status: "replayed",
        created,
        resource_type: "Group",
        id: Some(view.group.group_id),
        resource: None,
    };
    match action {
        Action::CreateUser => Ok(user(
            true,
            service::create_user(state, tenant, &json).await?,
        )),
        Action::ReplaceUser(id) => Ok(user(
            false,
            service::replace_user(state, tenant, id, &json, None).await?,
        )),
        Action::PatchUser(id) => Ok(user(
            false,
            service::patch_user(state, tenant, id, &json, None).await?,
        )),
        Action::CreateGroup => Ok(group(
            true,
            service::create_group(state, tenant, &json).await?,
        )),
        Action::ReplaceGroup(id) => Ok(group(
            false,
            service::replace_group(state, tenant, id, &json, None).await?,
        )),
        Action::PatchGroup(id) => Ok(group(
            false,
            service::patch_group(state, tenant, id, &json, None).await?,
        )),
        Action::WebhookEvent => run_webhook_event(state, tenant, letter, &json).await,
    }
}

async fn run_webhook_event(
    state: &AppState,
    tenant: &TenantId,
    letter: &DeadLetter,
    event: &Value,
) -> Result<Replayed, RunError> {
    let request_id = crate::gateway::current_request_id();
    let delivery = Delivery {
        request_id: request_id.as_deref(),
        path: letter.path.as_deref().unwrap_or_default(),
        replay: true,
        stale_after_secs: stale_claim_secs(state),
    };
    match handle_event(state, tenant, &delivery, event).await {
        EventOutcome::Applied { change, .. } => {
            let id = change.user_id();
            let (created, resource) = match change {
                Change::Created(user) => (true, Some(user.resource)),
                Change::Replaced(user) => (false, Some(user.resource)),
                Change::Deleted(_) => (false, None),
            };
            Ok(Replayed {
                dead_letter_id: letter.dead_letter_id,
                status: "replayed",
                created,
                resource_type: "User",
                id,
                resource,
            })
        }
        EventOutcome::Duplicate { event_id, recorded } => Err(RunError::Conflict(format!(
            "webhook event {event_id:?} was already processed ({}) by another delivery; discard dead letter {}",
            recorded.status, letter.dead_letter_id
        ))),
        EventOutcome::Rejected { error, .. } => Err(RunError::Rejected(error)),
        EventOutcome::Failed { error, .. } => Err(RunError::Internal(error)),
    }
}
