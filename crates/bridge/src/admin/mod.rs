//! Tenant administration over the API: review, replay and discard of dead letters.

mod replay;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::gateway::{ApiCaller, ApiError, Scope, current_request_id};
use crate::scim_api::{DeadLetter, list_dead_letters};
use crate::tenancy::TenantTx;

pub use replay::{ReplayError, Replayed, discard_dead_letter, replay_dead_letter};

/// Page size of the dead-letter list when `limit` is not given, and its maximum.
const DEFAULT_LIST_LIMIT: i64 = 100;
const MAX_LIST_LIMIT: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(replay))
        .routes(routes!(discard))
}

#[derive(Deserialize)]
pub struct TenantPath {
    #[allow(dead_code)]
    tenant: String,
}

#[derive(Deserialize)]
pub struct DeadLetterPath {
    #[allow(dead_code)]
    tenant: String,
    id: String,
}

#[derive(Deserialize)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<i64>,
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    // A malformed id gets the same 404 as an unknown one.
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("dead letter {raw} not found")))
}

/// Lists the tenant's dead letters, newest first.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/dead-letters", tag = "Dead letters",
    params(("tenant" = String, Path),
           ("status" = Option<String>, Query, description = "new, replaying, replayed or discarded"),
           ("limit" = Option<i64>, Query, description = "at most this many letters, 1 to 200 (default 100)")),
    responses((status = 200, description = "{\"dead_letters\": [DeadLetter]}"),
              (status = 400, description = "Unknown status or limit out of range")),
    security(("bearer" = ["users:read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::UsersRead)?;
    if let Some(status) = params.status.as_deref()
        && !DeadLetter::STATUSES.contains(&status)
    {
        return Err(ApiError::BadRequest(format!(
            "unknown status {status:?}; use one of {}",
            DeadLetter::STATUSES.join(", ")
        )));
    }
    let limit = params.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range; use 1 to {MAX_LIST_LIMIT}"
        )));
    }
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let letters = list_dead_letters(&mut tx, params.status.as_deref(), Some(limit)).await?;
    tx.commit().await?;
    Ok(Json(json!({ "dead_letters": letters })).into_response())
}

/// Returns one dead letter with its stored body and errors.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/dead-letters/{id}", tag = "Dead letters",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DeadLetter),
              (status = 404, description = "Unknown id, or a letter of another tenant")),
    security(("bearer" = ["users:read"]))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<DeadLetterPath>,
) -> Result<Json<DeadLetter>, ApiError> {
    caller.require(Scope::UsersRead)?;
    let id = parse_id(&path.id)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let letter = DeadLetter::find(&mut tx, id).await?;
    tx.commit().await?;
    letter
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("dead letter {id} not found")))
}

/// Runs the stored request again through the same validation as a fresh one.
#[utoipa::path(
    post, path = "/api/tenants/{tenant}/dead-letters/{id}/replay", tag = "Dead letters",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 201, description = "The replay created the resource; the letter is replayed"),
              (status = 200, description = "The replay changed or deleted a resource; the letter is replayed"),
              (status = 404, description = "Unknown id, or a letter of another tenant"),
              (status = 409, description = "The letter is not new, its body was truncated, or its request cannot be replayed"),
              (status = 422, description = "The request still fails; the letter stays new with the new errors")),
    security(("bearer" = ["users:write"]))
)]
pub async fn replay(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<DeadLetterPath>,
) -> Response {
    if let Err(error) = caller.require(Scope::UsersWrite) {
        return error.into_response();
    }
    let id = match parse_id(&path.id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match replay_dead_letter(&state, &caller.tenant, id, &caller.subject).await {
        Ok(replayed) => {
            let status = if replayed.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(replayed)).into_response()
        }
        Err(error) => replay_error_response(error),
    }
}

/// Marks a new dead letter discarded.
#[utoipa::path(
    post, path = "/api/tenants/{tenant}/dead-letters/{id}/discard", tag = "Dead letters",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DeadLetter),
              (status = 404, description = "Unknown id, or a letter of another tenant"),
              (status = 409, description = "The letter is not new")),
    security(("bearer" = ["users:write"]))
)]
pub async fn discard(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<DeadLetterPath>,
) -> Response {
    if let Err(error) = caller.require(Scope::UsersWrite) {
        return error.into_response();
    }
    let id = match parse_id(&path.id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match discard_dead_letter(&state, &caller.tenant, id, &caller.subject).await {
        Ok(letter) => Json(letter).into_response(),
        Err(error) => replay_error_response(error),
    }
}

/// Renders a replay failure as problem details. A request that still fails returns 422 with the
/// SCIM error in `errors`, which `ApiError` has no variant for.
fn replay_error_response(error: ReplayError) -> Response {
    let detail = error.to_string();
    match error {
        ReplayError::NotFound(_) => ApiError::NotFound(detail).into_response(),
        ReplayError::Conflict(message) => ApiError::Conflict(message).into_response(),
        ReplayError::Internal(error) => ApiError::Internal(error).into_response(),
        ReplayError::Rejected {
            dead_letter_id,
            error,
        } => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let mut body = json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("Unprocessable Entity"),
                "status": status.as_u16(),
                "detail": detail,
                "dead_letter_id": dead_letter_id,
                "errors": error.to_json(),
            });
            if let Some(request_id) = current_request_id() {
                body["request_id"] = json!(request_id);
            }
            let mut response = (status, Json(body)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            response
        }
    }
}
