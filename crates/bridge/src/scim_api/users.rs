use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scim::{
    CompValue, CompareOp, Filter, ListQuery, Meta, ScimError, ScimType, UserResource,
    list_response, parse_filter,
};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::dead_letters::{NewDeadLetter, store_dead_letter};
use super::service;
use super::{SCIM_CONTENT_TYPE, ScimApiError, ScimCaller};
use crate::app::AppState;
use crate::directory::{self, User};
use crate::gateway::current_request_id;
use crate::tenancy::TenantTx;

/// Largest page a list returns, advertised as `filter.maxResults`.
pub const MAX_PAGE_SIZE: usize = 200;
const DEFAULT_PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
pub struct UserPath {
    #[allow(dead_code)]
    tenant: String,
    id: String,
}

#[derive(Deserialize)]
pub struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
}

/// The parts of a request a dead letter records.
struct RequestInfo<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

#[utoipa::path(
    post, path = "/scim/v2/{tenant}/Users", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 201, description = "User created"), (status = 400, description = "Invalid payload; stored as a dead letter"), (status = 409, description = "userName taken"))
)]
pub async fn create_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let request = RequestInfo {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let json = parse_json_body(&state, &caller, &request, &body).await?;
    let user = service::create_user(&state, &caller.tenant, &json)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(user_response(
        StatusCode::CREATED,
        &user,
        &headers,
        &caller,
        true,
    ))
}

#[utoipa::path(
    get, path = "/scim/v2/{tenant}/Users", tag = "SCIM",
    params(("tenant" = String, Path, description = "Tenant id"),
           ("filter" = Option<String>, Query, description = "userName eq \"…\" or externalId eq \"…\""),
           ("startIndex" = Option<String>, Query), ("count" = Option<String>, Query)),
    responses((status = 200, description = "ListResponse"))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimApiError> {
    let query = ListQuery::from_params(
        params.start_index.as_deref(),
        params.count.as_deref(),
        MAX_PAGE_SIZE,
        DEFAULT_PAGE_SIZE,
    )?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let (users, total) = match params.filter.as_deref() {
        Some(raw) => {
            let lookup = supported_lookup(&parse_filter(raw)?)?;
            let found = match lookup {
                Lookup::UserName(name) => directory::find_by_user_name(&mut tx, &name).await?,
                Lookup::ExternalId(id) => directory::find_by_external_id(&mut tx, &id).await?,
            };
            let total = found.iter().count() as i64;
            let page = found
                .into_iter()
                .skip(query.start_index - 1)
                .take(query.count)
                .collect();
            (page, total)
        }
        None => {
            directory::list_users(
                &mut tx,
                i64::try_from(query.start_index - 1).unwrap_or(i64::MAX),
                i64::try_from(query.count).unwrap_or(i64::MAX),
            )
            .await?
        }
    };
    tx.commit().await?;
    let resources = users
        .iter()
        .map(|user| user_json(user, &headers, &caller))
        .collect();
    let body = list_response(
        resources,
        usize::try_from(total).unwrap_or(0),
        query.start_index,
    );
    Ok(scim_response(StatusCode::OK, &body))
}

#[utoipa::path(
    get, path = "/scim/v2/{tenant}/Users/{id}", tag = "SCIM",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "User"), (status = 404, description = "Unknown id, or a user of another tenant"))
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(path): Path<UserPath>,
) -> Result<Response, ScimApiError> {
    let user_id = parse_user_id(&path.id)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let user = directory::get_user(&mut tx, user_id)
        .await?
        .ok_or_else(|| not_found(&path.id))?;
    tx.commit().await?;
    Ok(user_response(
        StatusCode::OK,
        &user,
        &headers,
        &caller,
        false,
    ))
}

#[utoipa::path(
    put, path = "/scim/v2/{tenant}/Users/{id}", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "User replaced"), (status = 412, description = "If-Match is stale"))
)]
pub async fn replace_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(path): Path<UserPath>,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let request = RequestInfo {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let user_id = parse_user_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    let json = parse_json_body(&state, &caller, &request, &body).await?;
    let user = service::replace_user(&state, &caller.tenant, user_id, &json, expected_version)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(user_response(
        StatusCode::OK,
        &user,
        &headers,
        &caller,
        false,
    ))
}

#[utoipa::path(
    patch, path = "/scim/v2/{tenant}/Users/{id}", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "User modified"), (status = 400, description = "Invalid PatchOp; stored as a dead letter"))
)]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(path): Path<UserPath>,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let request = RequestInfo {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let user_id = parse_user_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    let json = parse_json_body(&state, &caller, &request, &body).await?;
    let user = service::patch_user(&state, &caller.tenant, user_id, &json, expected_version)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(user_response(
        StatusCode::OK,
        &user,
        &headers,
        &caller,
        false,
    ))
}

#[utoipa::path(
    delete, path = "/scim/v2/{tenant}/Users/{id}", tag = "SCIM",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "User deleted"), (status = 404, description = "Unknown id"))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(path): Path<UserPath>,
) -> Result<Response, ScimApiError> {
    let user_id = parse_user_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    service::delete_user(&state, &caller.tenant, user_id, expected_version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The filters served now: equality on `userName` or `externalId`. Anything else is refused
/// with `invalidFilter` rather than answered with an unfiltered list.
enum Lookup {
    UserName(String),
    ExternalId(String),
}

fn supported_lookup(filter: &Filter) -> Result<Lookup, ScimError> {
    if let Filter::Compare {
        path,
        op: CompareOp::Eq,
        value: CompValue::String(value),
    } = filter
        && path.sub_attribute.is_none()
        && path
            .schema
            .as_deref()
            .is_none_or(|schema| schema.eq_ignore_ascii_case(scim::USER_SCHEMA))
    {
        if path.attribute.eq_ignore_ascii_case("userName") {
            return Ok(Lookup::UserName(value.clone()));
        }
        if path.attribute.eq_ignore_ascii_case("externalId") {
            return Ok(Lookup::ExternalId(value.clone()));
        }
    }
    Err(ScimError::bad_request(
        ScimType::InvalidFilter,
        "unsupported filter: only userName eq \"…\" and externalId eq \"…\" are supported",
    ))
}

fn parse_user_id(raw: &str) -> Result<Uuid, ScimApiError> {
    // A malformed id is answered exactly like an unknown one.
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!("User {id} not found")))
}

/// Reads `If-Match` as a row version: `W/"3"`, `"3"`, or `*` (any version).
fn if_match_version(headers: &HeaderMap) -> Result<Option<i64>, ScimApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            ScimApiError::Scim(ScimError::new(
                412,
                None,
                format!("If-Match {raw:?} is not a version this service issued"),
            ))
        })
}

/// Parses the body as JSON after checking its media type. Failures are stored as dead letters.
async fn parse_json_body(
    state: &AppState,
    caller: &ScimCaller,
    request: &RequestInfo<'_>,
    body: &Bytes,
) -> Result<Value, ScimApiError> {
    if let Some(content_type) = request.headers.get(header::CONTENT_TYPE) {
        let media_type = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media_type != SCIM_CONTENT_TYPE && media_type != "application/json" {
            return Err(ScimApiError::Scim(ScimError::new(
                415,
                None,
                format!(
                    "unsupported media type {media_type:?}; send application/scim+json or application/json"
                ),
            )));
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => Ok(value),
        Err(error) => {
            let error = ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("the request body is not valid JSON: {error}"),
            );
            Err(dead_letter(state, caller, request, body, error).await)
        }
    }
}

/// Stores payload errors of a write as dead letters before returning them.
trait OrDeadLetter<T> {
    async fn or_dead_letter(
        self,
        state: &AppState,
        caller: &ScimCaller,
        request: &RequestInfo<'_>,
        body: &Bytes,
    ) -> Result<T, ScimApiError>;
}

impl<T> OrDeadLetter<T> for Result<T, ScimApiError> {
    async fn or_dead_letter(
        self,
        state: &AppState,
        caller: &ScimCaller,
        request: &RequestInfo<'_>,
        body: &Bytes,
    ) -> Result<T, ScimApiError> {
        match self {
            Err(ScimApiError::Scim(error)) if error.status == 400 => {
                Err(dead_letter(state, caller, request, body, error).await)
            }
            other => other,
        }
    }
}

/// Stores a rejected payload as a dead letter and returns the error to answer with. A failure to
/// store is logged and does not change the answer.
async fn dead_letter(
    state: &AppState,
    caller: &ScimCaller,
    request: &RequestInfo<'_>,
    body: &Bytes,
    error: ScimError,
) -> ScimApiError {
    let request_id = current_request_id();
    let stored = async {
        let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
        let id = store_dead_letter(
            &mut tx,
            NewDeadLetter {
                source: "scim",
                request_id: request_id.as_deref(),
                method: request.method.as_str(),
                path: request.uri.path(),
                body,
                errors: error.to_json(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(id)
    };
    match stored.await {
        Ok(dead_letter_id) => tracing::warn!(
            tenant_id = %caller.tenant, %dead_letter_id, request_id = request_id.as_deref(),
            detail = %error.detail, "rejected SCIM payload stored as a dead letter"
        ),
        Err(store_error) => tracing::error!(
            tenant_id = %caller.tenant, request_id = request_id.as_deref(), error = %store_error,
            "failed to store a rejected SCIM payload as a dead letter"
        ),
    }
    ScimApiError::Scim(error)
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|scheme| *scheme == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn user_location(user: &User, headers: &HeaderMap, caller: &ScimCaller) -> String {
    format!(
        "{}/scim/v2/{}/Users/{}",
        base_url(headers),
        caller.tenant,
        user.user_id
    )
}

fn etag(user: &User) -> String {
    format!("W/\"{}\"", user.version)
}

fn user_json(user: &User, headers: &HeaderMap, caller: &ScimCaller) -> Value {
    let meta = Meta {
        resource_type: "User".into(),
        created: user.created_at,
        last_modified: user.updated_at,
        location: user_location(user, headers, caller),
        version: etag(user),
    };
    match UserResource::from_json(&user.resource) {
        Ok(resource) => resource.to_json(&user.user_id.to_string(), &meta),
        Err(error) => {
            // Stored resources were validated on write; a failure here means the validation
            // rules tightened since. Serve the stored form rather than fail the read.
            tracing::warn!(user_id = %user.user_id, detail = %error.detail, "stored SCIM resource no longer validates");
            let mut value = user.resource.clone();
            value["id"] = Value::String(user.user_id.to_string());
            value["meta"] = meta.to_json();
            value
        }
    }
}

fn user_response(
    status: StatusCode,
    user: &User,
    headers: &HeaderMap,
    caller: &ScimCaller,
    with_location: bool,
) -> Response {
    let mut response = scim_response(status, &user_json(user, headers, caller));
    if let Ok(value) = HeaderValue::from_str(&etag(user)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    if with_location && let Ok(value) = HeaderValue::from_str(&user_location(user, headers, caller))
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn scim_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}
