//! SCIM `/Groups` handlers.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scim::{ScimError, list_response};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::query::ResourceKind;
use super::respond::{Projection, base_url, if_match_version, scim_response};
use super::service::{self, GroupView};
use super::users::{ListParams, OrDeadLetter, RequestInfo, parse_json_body, parse_search_request};
use super::{ScimApiError, ScimCaller};
use crate::app::AppState;
use crate::directory::groups;
use crate::tenancy::TenantTx;

#[derive(Deserialize)]
pub struct GroupPath {
    #[allow(dead_code)]
    tenant: String,
    id: String,
}

fn parse_group_id(raw: &str) -> Result<Uuid, ScimApiError> {
    // A malformed id gets the same 404 as an unknown one.
    Uuid::parse_str(raw)
        .map_err(|_| ScimApiError::Scim(ScimError::not_found(format!("Group {raw} not found"))))
}

fn etag(view: &GroupView) -> String {
    format!("W/\"{}\"", view.group.version)
}

fn location(view: &GroupView, headers: &HeaderMap, caller: &ScimCaller) -> String {
    format!(
        "{}/scim/v2/{}/Groups/{}",
        base_url(headers),
        caller.tenant,
        view.group.group_id
    )
}

fn group_json(view: &GroupView, headers: &HeaderMap, caller: &ScimCaller) -> Value {
    let meta = scim::Meta {
        resource_type: "Group".into(),
        created: view.group.created_at,
        last_modified: view.group.updated_at,
        location: location(view, headers, caller),
        version: etag(view),
    };
    let mut json = view
        .resource()
        .to_json(&view.group.group_id.to_string(), &meta);
    // A member's `$ref` is derived from its id, so it is never stored.
    if let Some(Value::Array(members)) = json.get_mut("members") {
        for member in members.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(id)) = member.get("value").cloned() {
                member.insert(
                    "$ref".to_owned(),
                    Value::String(format!(
                        "{}/scim/v2/{}/Users/{id}",
                        base_url(headers),
                        caller.tenant
                    )),
                );
            }
        }
    }
    json
}

fn group_response(
    status: StatusCode,
    view: &GroupView,
    headers: &HeaderMap,
    caller: &ScimCaller,
    projection: &Projection,
) -> Response {
    let mut response = scim_response(status, &projection.apply(group_json(view, headers, caller)));
    if let Ok(value) = HeaderValue::from_str(&etag(view)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED
        && let Ok(value) = HeaderValue::from_str(&location(view, headers, caller))
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[utoipa::path(
    post, path = "/scim/v2/{tenant}/Groups", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path)),
    responses((status = 201, description = "Group created"), (status = 409, description = "displayName taken"))
)]
pub async fn create_group(
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
    let view = service::create_group(&state, &caller.tenant, &json)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(group_response(
        StatusCode::CREATED,
        &view,
        &headers,
        &caller,
        &Projection::Default,
    ))
}

#[utoipa::path(
    get, path = "/scim/v2/{tenant}/Groups", tag = "SCIM",
    params(("tenant" = String, Path), ("filter" = Option<String>, Query),
           ("startIndex" = Option<String>, Query), ("count" = Option<String>, Query),
           ("attributes" = Option<String>, Query), ("excludedAttributes" = Option<String>, Query)),
    responses((status = 200, description = "ListResponse"))
)]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimApiError> {
    query_groups(&state, &caller, &headers, &params).await
}

#[utoipa::path(
    post, path = "/scim/v2/{tenant}/Groups/.search", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "ListResponse"))
)]
pub async fn search_groups(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let params = parse_search_request(&body)?;
    query_groups(&state, &caller, &headers, &params).await
}

async fn query_groups(
    state: &AppState,
    caller: &ScimCaller,
    headers: &HeaderMap,
    params: &ListParams,
) -> Result<Response, ScimApiError> {
    let request = params.parse(ResourceKind::Group)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let (found, total) = groups::search_groups(
        &mut tx,
        request.filter.as_ref(),
        &request.order_by,
        i64::try_from(request.query.offset()).unwrap_or(i64::MAX),
        i64::try_from(request.query.count).unwrap_or(i64::MAX),
    )
    .await?;
    // Members are read only when they will be returned: Entra lists groups with
    // excludedAttributes=members, and large groups are expensive to expand.
    let with_members = !matches!(&request.projection, Projection::Excluding(paths)
        if paths.iter().any(|path| path.attribute.eq_ignore_ascii_case("members") && path.sub_attribute.is_none()));
    let mut resources = Vec::with_capacity(found.len());
    for group in found {
        let members = if with_members {
            groups::members(&mut tx, group.group_id).await?
        } else {
            Vec::new()
        };
        let view = GroupView { group, members };
        let mut json = request.projection.apply(group_json(&view, headers, caller));
        if !with_members && let Some(object) = json.as_object_mut() {
            object.remove("members");
        }
        resources.push(json);
    }
    tx.commit().await?;
    let body = list_response(
        resources,
        usize::try_from(total).unwrap_or(0),
        request.query.start_index,
    );
    Ok(scim_response(StatusCode::OK, &body))
}

#[utoipa::path(
    get, path = "/scim/v2/{tenant}/Groups/{id}", tag = "SCIM",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Group"), (status = 404, description = "Unknown id, or a group of another tenant"))
)]
pub async fn get_group(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(path): Path<GroupPath>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimApiError> {
    let projection = Projection::parse(
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )?;
    let group_id = parse_group_id(&path.id)?;
    let view = service::get_group(&state, &caller.tenant, group_id).await?;
    Ok(group_response(
        StatusCode::OK,
        &view,
        &headers,
        &caller,
        &projection,
    ))
}

#[utoipa::path(
    put, path = "/scim/v2/{tenant}/Groups/{id}", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Group replaced"), (status = 412, description = "If-Match is stale"))
)]
pub async fn replace_group(
    State(state): State<AppState>,
    caller: ScimCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let request = RequestInfo {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let group_id = parse_group_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    let json = parse_json_body(&state, &caller, &request, &body).await?;
    let view = service::replace_group(&state, &caller.tenant, group_id, &json, expected_version)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(group_response(
        StatusCode::OK,
        &view,
        &headers,
        &caller,
        &Projection::Default,
    ))
}

#[utoipa::path(
    patch, path = "/scim/v2/{tenant}/Groups/{id}", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Group modified"))
)]
pub async fn patch_group(
    State(state): State<AppState>,
    caller: ScimCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(path): Path<GroupPath>,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let request = RequestInfo {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let group_id = parse_group_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    let json = parse_json_body(&state, &caller, &request, &body).await?;
    let view = service::patch_group(&state, &caller.tenant, group_id, &json, expected_version)
        .await
        .or_dead_letter(&state, &caller, &request, &body)
        .await?;
    Ok(group_response(
        StatusCode::OK,
        &view,
        &headers,
        &caller,
        &Projection::Default,
    ))
}

#[utoipa::path(
    delete, path = "/scim/v2/{tenant}/Groups/{id}", tag = "SCIM",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Group deleted"), (status = 404, description = "Unknown id"))
)]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    Path(path): Path<GroupPath>,
) -> Result<Response, ScimApiError> {
    let group_id = parse_group_id(&path.id)?;
    let expected_version = if_match_version(&headers)?;
    service::delete_group(&state, &caller.tenant, group_id, expected_version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post, path = "/scim/v2/{tenant}/.search", tag = "SCIM",
    request_body(content = Object, content_type = "application/scim+json"),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "ListResponse of Users, then Groups"))
)]
/// Searches Users and Groups together (RFC 7644 §3.4.3): users come first, then groups. A filter
/// that names an attribute only one resource type has applies to that type alone.
pub async fn search_all(
    State(state): State<AppState>,
    caller: ScimCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimApiError> {
    let params = parse_search_request(&body)?;
    let users = params.parse(ResourceKind::User);
    let groups = params.parse(ResourceKind::Group);
    let (users, groups) = match (users, groups) {
        (Err(error), Err(_)) => return Err(error.into()),
        (users, groups) => (users.ok(), groups.ok()),
    };
    let page = users
        .as_ref()
        .or(groups.as_ref())
        .map(|request| request.query)
        .ok_or_else(|| ScimError::bad_request(scim::ScimType::InvalidFilter, "invalid search"))?;

    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let mut resources = Vec::new();
    let mut total = 0usize;
    let mut offset = page.offset();
    let mut remaining = page.count;
    if let Some(request) = &users {
        let (_, user_total) = crate::directory::search_users(
            &mut tx,
            request.filter.as_ref(),
            &request.order_by,
            0,
            0,
        )
        .await?;
        let user_total = usize::try_from(user_total).unwrap_or(0);
        total += user_total;
        if offset < user_total && remaining > 0 {
            let (found, _) = crate::directory::search_users(
                &mut tx,
                request.filter.as_ref(),
                &request.order_by,
                i64::try_from(offset).unwrap_or(i64::MAX),
                i64::try_from(remaining).unwrap_or(i64::MAX),
            )
            .await?;
            remaining -= found.len();
            for user in &found {
                resources.push(
                    request
                        .projection
                        .apply(super::users::user_json(user, &headers, &caller)),
                );
            }
        }
        offset = offset.saturating_sub(user_total);
    }
    if let Some(request) = &groups {
        let (found, group_total) = groups::search_groups(
            &mut tx,
            request.filter.as_ref(),
            &request.order_by,
            i64::try_from(offset).unwrap_or(i64::MAX),
            i64::try_from(remaining).unwrap_or(i64::MAX),
        )
        .await?;
        total += usize::try_from(group_total).unwrap_or(0);
        for group in found {
            let members = groups::members(&mut tx, group.group_id).await?;
            let view = GroupView { group, members };
            resources.push(
                request
                    .projection
                    .apply(group_json(&view, &headers, &caller)),
            );
        }
    }
    tx.commit().await?;
    Ok(scim_response(
        StatusCode::OK,
        &list_response(resources, total, page.start_index),
    ))
}
