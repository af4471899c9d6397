//! HR webhooks: `POST /webhooks/{tenant}/scim-events` takes a signed batch of user change events
//! from HR systems that push changes instead of acting as SCIM clients. Each event runs through
//! the same directory service as a SCIM request.

mod events;
mod ledger;
mod secrets;
mod signature;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scim::{ScimError, ScimType};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::gateway::current_request_id;
use crate::tenancy::TenantId;

pub use events::{Change, Delivery, EventOutcome, EventResult, handle_event};
pub use ledger::RecordedEvent;
pub use secrets::{
    WebhookSecretInfo, create_webhook_secret, list_webhook_secrets, revoke_webhook_secret,
};
pub use signature::{
    MAX_TIMESTAMP_SKEW_SECS, SIGNATURE_HEADER, SignatureError, SignatureHeader, check_timestamp,
    parse_signature_header, sign, verify_signature,
};

/// Maximum number of events in one batch. A larger batch is rejected whole for the sender to
/// split, so one request cannot hold a connection for long.
pub const MAX_EVENTS_PER_BATCH: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_events))
}

/// Returns how long a claim of a webhook event or of a replayed dead letter lasts before another
/// delivery may take it over. It is twice the request time limit, because by then the timeout
/// layer has cancelled the HTTP request that took the claim.
pub fn stale_claim_secs(state: &AppState) -> f64 {
    state.config().request_timeout().as_secs_f64() * 2.0
}

#[derive(Deserialize)]
pub struct TenantPath {
    tenant: String,
}

/// Applies a signed batch of HR change events and returns one result per event, in order.
#[utoipa::path(
    post, path = "/webhooks/{tenant}/scim-events", tag = "Webhooks",
    params(("tenant" = String, Path, description = "Tenant id"),
           ("X-Bridge-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.\" + body>; several v1= allowed")),
    request_body(content = Object, content_type = "application/json",
                 description = "{\"events\": [{\"id\", \"operation\": \"CREATE|UPDATE|DELETE\", \"tenant\"?, \"user\": SCIM User}]}"),
    responses((status = 200, description = "One result per event: applied, duplicate or rejected"),
              (status = 400, description = "The body is not a batch; stored as a dead letter"),
              (status = 401, description = "Missing, invalid or expired signature; nothing was processed"))
)]
pub async fn receive_events(
    State(state): State<AppState>,
    Path(path): Path<TenantPath>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = current_request_id();
    let tenant = match authenticate(&state, &path.tenant, &headers, &body).await {
        Ok(tenant) => tenant,
        Err(error) => {
            // A signature that matches no secret is logged with the tenant where it is checked.
            if let AuthError::Signature(reason) = &error
                && *reason != SignatureError::Mismatch
            {
                tracing::warn!(request_id = request_id.as_deref(), %reason, "webhook request rejected");
            }
            return error.into_response(request_id.as_deref());
        }
    };
    tracing::Span::current().record("tenant_id", tenant.as_str());

    let delivery = Delivery {
        request_id: request_id.as_deref(),
        path: uri.path(),
        replay: false,
        stale_after_secs: stale_claim_secs(&state),
    };
    let events = match read_batch(&body) {
        Ok(events) => events,
        Err(BatchError::TooLarge(count)) => {
            tracing::warn!(tenant_id = %tenant, request_id = request_id.as_deref(), count, "webhook batch too large");
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the batch has {count} events; the maximum is {MAX_EVENTS_PER_BATCH}, so split it"
                ),
                request_id.as_deref(),
                None,
            );
        }
        Err(BatchError::Invalid(error)) => {
            // The body is the tenant's (its signature is valid), so it is kept like any other
            // rejected payload.
            let dead_letter_id =
                events::store_dead_letter(&state, &tenant, &delivery, &body, &error).await;
            tracing::warn!(
                tenant_id = %tenant, request_id = request_id.as_deref(),
                dead_letter_id = dead_letter_id.map(|id| id.to_string()),
                "webhook body rejected"
            );
            return problem(
                StatusCode::BAD_REQUEST,
                &error.detail,
                request_id.as_deref(),
                dead_letter_id.map(|id| json!(id)),
            );
        }
    };

    let mut results = Vec::with_capacity(events.len());
    for event in &events {
        let outcome = handle_event(&state, &tenant, &delivery, event).await;
        results.push(outcome.to_result(request_id.as_deref()));
    }
    Json(json!({ "results": results })).into_response()
}

enum AuthError {
    Signature(SignatureError),
    Internal(sqlx::Error),
}

impl AuthError {
    fn into_response(self, request_id: Option<&str>) -> Response {
        match self {
            AuthError::Signature(error) => problem(
                StatusCode::UNAUTHORIZED,
                &error.to_string(),
                request_id,
                None,
            ),
            AuthError::Internal(error) => {
                tracing::error!(%error, request_id, "failed to read webhook secrets");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; retry the request",
                    request_id,
                    None,
                )
            }
        }
    }
}

/// Verifies the signature with the tenant's active secrets, before the body is read at all: an
/// unsigned body is neither processed nor stored.
async fn authenticate(
    state: &AppState,
    raw_tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TenantId, AuthError> {
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or(AuthError::Signature(SignatureError::Missing))?
        .to_str()
        .map_err(|_| {
            AuthError::Signature(SignatureError::Malformed("the value is not ASCII".into()))
        })?;
    let header = parse_signature_header(value).map_err(AuthError::Signature)?;
    let now = chrono::Utc::now().timestamp();
    // Checked before the secrets are read, so stale replays cost no database round trip.
    check_timestamp(&header, now).map_err(AuthError::Signature)?;
    // An invalid tenant id has no secrets, so it gets the error of a wrong signature and the
    // response reveals nothing.
    let Ok(tenant) = TenantId::parse(raw_tenant) else {
        return Err(AuthError::Signature(SignatureError::Mismatch));
    };
    let secrets = secrets::active_secrets(state.pool(), &tenant)
        .await
        .map_err(AuthError::Internal)?;
    let keys: Vec<&[u8]> = secrets
        .iter()
        .map(|secret| secret.expose_secret().as_bytes())
        .collect();
    if let Err(error) = verify_signature(&header, now, body, &keys) {
        tracing::warn!(
            tenant_id = %tenant, request_id = current_request_id().as_deref(), active_secrets = keys.len(),
            "webhook signature rejected"
        );
        return Err(AuthError::Signature(error));
    }
    Ok(tenant)
}

enum BatchError {
    Invalid(ScimError),
    TooLarge(usize),
}

fn read_batch(body: &[u8]) -> Result<Vec<Value>, BatchError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        BatchError::Invalid(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {error}"),
        ))
    })?;
    let Value::Object(mut batch) = value else {
        return Err(not_a_batch());
    };
    let Some(Value::Array(events)) = batch.remove("events") else {
        return Err(not_a_batch());
    };
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(BatchError::TooLarge(events.len()));
    }
    Ok(events)
}

fn not_a_batch() -> BatchError {
    BatchError::Invalid(ScimError::bad_request(
        ScimType::InvalidSyntax,
        "the request body must be an object with an \"events\" array",
    ))
}

/// Builds an RFC 9457 problem-details response.
fn problem(
    status: StatusCode,
    detail: &str,
    request_id: Option<&str>,
    dead_letter_id: Option<Value>,
) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(request_id) = request_id {
        body["request_id"] = json!(request_id);
    }
    if let Some(dead_letter_id) = dead_letter_id {
        body["dead_letter_id"] = dead_letter_id;
    }
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
