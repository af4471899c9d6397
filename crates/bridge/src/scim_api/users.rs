use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scim::{ListQuery, Meta, ScimError, ScimType, list_response, parse_filter};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::dead_letters::{NewDeadLetter, store_dead_letter};
use super::query::{ResourceKind, SqlFilter, filter_to_sql, sort_expression};
use super::respond::{Projection, base_url, if_match_version, scim_response};
use super::service;
use super::{SCIM_CONTENT_TYPE, ScimApiError, ScimCaller};
use crate::app::AppState;
use crate::directory::{self, User};
use crate::gateway::current_request_id;
use crate::tenancy::TenantTx;

/// Largest page a list returns, advertised as `filter.maxResults`.
pub const MAX_PAGE_SIZE: usize = 200;
pub const DEFAULT_PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
pub struct UserPath {
    #[allow(dead_code)]
    tenant: String,
    id: String,
}

/// Query parameters of a list, also the body of a `.search` request (RFC 7644 §3.4.3).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub filter: Option<String>,
    #[serde(rename = "startIndex", default, deserialize_with = "number_or_string")]
    pub start_index: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub count: Option<String>,
    pub attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    pub excluded_attributes: Option<String>,
    #[serde(rename = "sortBy")]
    pub sort_by: Option<String>,
    #[serde(rename = "sortOrder")]
    pub sort_order: Option<String>,
}

/// Accepts `5` and `"5"`: query strings carry text, `.search` bodies carry JSON numbers.
fn number_or_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    })
}

/// Parsed list parameters shared by Users and Groups.
pub struct ListRequest {
    pub query: ListQuery,
    pub filter: Option<SqlFilter>,
    pub order_by: String,
    pub projection: Projection,
}

impl ListParams {
    pub fn parse(&self, kind: ResourceKind) -> Result<ListRequest, ScimError> {
        let query = ListQuery::from_params(
            self.start_index.as_deref(),
            self.count.as_deref(),
            MAX_PAGE_SIZE,
            DEFAULT_PAGE_SIZE,
        )?;
        let filter = match self.filter.as_deref() {
            Some(raw) => Some(filter_to_sql(kind, &parse_filter(raw)?, 2)?),
            None => None,
        };
        let descending = match self
            .sort_order
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("sortOrder {other:?} is invalid: use ascending or descending"),
                ));
            }
        };
        let order_by = match self.sort_by.as_deref() {
            Some(sort_by) => {
                let expression = sort_expression(kind, sort_by)?;
                if descending {
                    format!("{expression} DESC NULLS LAST")
                } else {
                    format!("{expression} ASC NULLS LAST")
                }
            }
            None => "r.created_at".to_owned(),
        };
        let projection = Projection::parse(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )?;
        Ok(ListRequest {
            query,
            filter,
            order_by,
            projection,
        })
    }
}

/// The parts of a request a dead letter records.
pub struct RequestInfo<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
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
    query_users(&state, &caller, &headers, &params).await
}

#[utoipa::path(
    post, path = "/scim/v2/{tenant}/Users/.search", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "ListResponse"))
)]
pub async fn search_users(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let params = parse_search_request(&body)?;
    query_users(&state, &caller, &headers, &params).await
}

/// Parses a SearchRequest body (RFC 7644 §3.4.3).
pub fn parse_search_request(body: &Bytes) -> Result<ListParams, ScimApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ScimApiError::bad_request(
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {error}"),
        )
    })?;
    let schemas_ok = value
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            schemas
                .iter()
                .any(|schema| schema == scim::SEARCH_REQUEST_SCHEMA)
        });
    if !schemas_ok {
        return Err(ScimApiError::bad_request(
            ScimType::InvalidSyntax,
            format!("schemas must contain {}", scim::SEARCH_REQUEST_SCHEMA),
        ));
    }
    // In a body, attributes are JSON arrays rather than comma-separated text.
    let mut fields = value.clone();
    let mut lists = Vec::new();
    for key in ["attributes", "excludedAttributes"] {
        if let Some(object) = fields.as_object_mut()
            && let Some(Value::Array(names)) = object.remove(key)
        {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            lists.push((key, names.join(",")));
        }
    }
    let mut params: ListParams = serde_json::from_value(fields).map_err(|error| {
        ScimApiError::bad_request(
            ScimType::InvalidValue,
            format!("invalid SearchRequest: {error}"),
        )
    })?;
    for (key, names) in lists {
        match key {
            "attributes" => params.attributes = Some(names),
            _ => params.excluded_attributes = Some(names),
        }
    }
    Ok(params)
}

async fn query_users(
    state: &AppState,
    caller: &ScimCaller,
    headers: &HeaderMap,
    params: &ListParams,
) -> Result<Response, ScimApiError> {
    let request = params.parse(ResourceKind::User)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let (users, total) = directory::search_users(
        &mut tx,
        request.filter.as_ref(),
        &request.order_by,
        i64::try_from(request.query.offset()).unwrap_or(i64::MAX),
        i64::try_from(request.query.count).unwrap_or(i64::MAX),
    )
    .await?;
    tx.commit().await?;
    let resources = users
        .iter()
        .map(|user| request.projection.apply(user_json(user, headers, caller)))
        .collect();
    let body = list_response(
        resources,
        usize::try_from(total).unwrap_or(0),
        request.query.start_index,
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
    Query(params): Query<ListParams>,
) -> Result<Response, ScimApiError> {
    let projection = Projection::parse(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let user_id = parse_user_id(&path.id)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let user = directory::get_user(&mut tx, user_id)
        .await?
        .ok_or_else(|| not_found(&path.id))?;
    tx.commit().await?;
    let mut response = scim_response(
        StatusCode::OK,
        &projection.apply(user_json(&user, &headers, &caller)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag(&user)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
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

fn parse_user_id(raw: &str) -> Result<Uuid, ScimApiError> {
    // A malformed id gets the same 404 as an unknown one.
    Uuid::parse_str(raw).map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!("User {id} not found")))
}

/// Parses the body as JSON after checking its media type. Failures are stored as dead letters.
pub async fn parse_json_body(
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
pub trait OrDeadLetter<T> {
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

pub fn user_json(user: &User, headers: &HeaderMap, caller: &ScimCaller) -> Value {
    let meta = Meta {
        resource_type: "User".into(),
        created: user.created_at,
        last_modified: user.updated_at,
        location: user_location(user, headers, caller),
        version: etag(user),
    };
    // The stored resource is the output of `UserResource::to_json` without `id`, `meta` and
    // `password` (see `directory::create_user`), so it is served as stored plus those two.
    let mut json = user.resource.clone();
    let Some(object) = json.as_object_mut() else {
        return json;
    };
    object.insert("id".to_owned(), Value::String(user.user_id.to_string()));
    object.insert("meta".to_owned(), meta.to_json());
    // The manager's `$ref` is derived from its id, so it is never stored.
    let manager = object
        .get_mut(scim::ENTERPRISE_USER_SCHEMA)
        .and_then(|extension| extension.get_mut("manager"))
        .and_then(Value::as_object_mut);
    if let Some(manager) = manager
        && let Some(Value::String(id)) = manager.get("value").cloned()
    {
        manager.insert(
            "$ref".to_owned(),
            Value::String(format!(
                "{}/scim/v2/{}/Users/{id}",
                base_url(headers),
                caller.tenant
            )),
        );
    }
    json
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
