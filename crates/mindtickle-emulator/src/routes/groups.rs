//! Group lookup by exact name and group creation.

use axum::{Json, body::Bytes, extract::State, http::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    routes::{auth::authenticate, parse_body},
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
struct LookupRequest {
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CreateRequest {
    name: Option<String>,
}

/// `POST /services/data/v2.0/mtobjects/Groups`: the groups whose names match exactly
/// (case-sensitive). Names with no group are left out of the response.
pub(crate) async fn lookup(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let request: LookupRequest = parse_body(&body)?;
    if request.names.is_empty() {
        return Err(ApiError::bad_request(
            "names must contain at least one group name",
        ));
    }
    let groups: Vec<Value> = state
        .companies
        .get(&company_id)
        .map(|c| c.groups.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|g| request.names.contains(&g.name))
        .map(|g| json!({ "id": g.id, "name": g.name }))
        .collect();
    Ok(Json(json!({ "groups": groups })))
}

/// `POST /services/data/v2.0/mtobjects/Group`: creates a group, or returns the existing group
/// of that exact name, with 200 either way.
// NOTE: proposed route and behaviour; the live route is not public and the v1 SDK only shows
// `createGroup(name)`.
pub(crate) async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let request: CreateRequest = parse_body(&body)?;
    let name = request
        .name
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("missing parameter name"))?;
    let group = state
        .find_or_create_group(&company_id, &name)
        .ok_or_else(|| ApiError::unauthorized("Unauthorized"))?;
    Ok(Json(json!({ "id": group.id, "name": group.name })))
}
