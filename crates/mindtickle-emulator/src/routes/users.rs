//! User writes (asynchronous bulk processes), process status and the v4.0 user search.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    fixtures::UserState,
    routes::{
        auth::authenticate, continuation_base, decode_cursor, encode_cursor, parse_body,
        parse_limit, query_param,
    },
    state::{AppState, Company, EmulatedUser, ProcessAction, UserWrite},
};

/// The most entries one upsert or deactivate request may carry.
const MAX_BATCH: usize = 100;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsertRequest {
    #[serde(default)]
    users: Vec<UserInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserInput {
    email: String,
    name: String,
    group_ids: Option<Vec<String>>,
    profile: Option<BTreeMap<String, String>>,
    user_state: Option<UserState>,
}

#[derive(Debug, Default, Deserialize)]
struct DeactivateRequest {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
}

fn check_batch_size(count: usize, what: &str) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::bad_request(format!(
            "{what} must contain at least one entry"
        )));
    }
    if count > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "{what} has {count} entries; at most {MAX_BATCH} are allowed per request, so split it into batches"
        )));
    }
    Ok(())
}

fn accepted(process_id: String) -> Response {
    let body = Json(json!({ "processIds": [process_id] }));
    (StatusCode::ACCEPTED, body).into_response()
}

/// `POST /services/data/v2.0/mtobjects/Users/upsert`: creates or updates users keyed by email.
pub(crate) async fn upsert(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let request: UpsertRequest = parse_body(&body)?;
    check_batch_size(request.users.len(), "users")?;

    let writes = request
        .users
        .into_iter()
        .map(|u| UserWrite {
            email: u.email,
            name: u.name,
            group_ids: u.group_ids,
            profile: u.profile,
            user_state: u.user_state,
        })
        .collect();
    let process_id = state.start_process(&company_id, ProcessAction::Upsert(writes));
    Ok(accepted(process_id))
}

/// `POST /services/data/v2.0/mtobjects/Users/deactivate`: deactivates users by email or id.
pub(crate) async fn deactivate(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let request: DeactivateRequest = parse_body(&body)?;
    check_batch_size(request.emails.len() + request.ids.len(), "emails and ids")?;

    let action = ProcessAction::Deactivate {
        emails: request.emails,
        ids: request.ids,
    };
    let process_id = state.start_process(&company_id, action);
    Ok(accepted(process_id))
}

/// `GET /services/data/v2.0/process/status?processIds=a,b`.
pub(crate) async fn process_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let ids: Vec<&str> = query_param(&query, "processIds")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::bad_request("missing parameter processIds"));
    }

    let delay = app.shared.options.process_delay;
    let mut statuses = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    for id in ids {
        let process = state
            .processes
            .iter()
            .find(|p| p.id == id && p.company_id == company_id)
            .ok_or_else(|| ApiError::not_found(format!("Process not found: {id}")))?;
        statuses.insert(id.to_owned(), json!(state.process_state(process, delay)));
        if let Some((_, process_errors)) = &process.outcome
            && !process_errors.is_empty()
        {
            errors.insert(id.to_owned(), json!(process_errors));
        }
    }
    Ok(Json(json!({ "status": statuses, "errors": errors })))
}

/// Filters of the v4.0 user search. All given filters must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserSearch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    group_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    user_states: Vec<UserState>,
}

impl UserSearch {
    fn matching<'a>(&self, company: &'a Company) -> Vec<&'a EmulatedUser> {
        company
            .users
            .iter()
            .filter(|u| {
                self.emails.is_empty()
                    || self.emails.iter().any(|e| e.eq_ignore_ascii_case(&u.email))
            })
            .filter(|u| {
                self.group_ids.is_empty() || u.group_ids.iter().any(|g| self.group_ids.contains(g))
            })
            .filter(|u| self.user_states.is_empty() || self.user_states.contains(&u.user_state))
            .collect()
    }
}

/// A user as the API returns it. The emulator stores no manager links, so `managers` is empty.
fn user_json(user: &EmulatedUser) -> Value {
    let mut value = json!(user);
    value["managers"] = json!([]);
    value
}

#[derive(Debug, Serialize, Deserialize)]
struct UserCursor {
    company_id: String,
    search: UserSearch,
    offset: usize,
    limit: usize,
}

/// `POST /services/data/v4.0/mtobjects/Users?limit=`: the first page of a user search.
pub(crate) async fn search(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if query_param(&query, "cursor").is_some() {
        return search_continuation(State(app), headers, Query(query)).await;
    }
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let limit = parse_limit(&query, DEFAULT_PAGE, MAX_PAGE)?;
    let search: UserSearch = parse_body(&body)?;
    let cursor = UserCursor {
        company_id,
        search,
        offset: 0,
        limit,
    };
    Ok(Json(search_page(&app, &state, cursor)))
}

/// `GET /services/data/v4.0/mtobjects/Users?cursor=`: a continuation page.
pub(crate) async fn search_continuation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, true)?;
    let raw = query_param(&query, "cursor")
        .ok_or_else(|| ApiError::bad_request("missing parameter cursor"))?;
    let cursor: UserCursor = decode_cursor(raw)?;
    if cursor.company_id != company_id {
        return Err(ApiError::bad_request(
            "Invalid cursor; restart the listing from the first page",
        ));
    }
    Ok(Json(search_page(&app, &state, cursor)))
}

fn search_page(app: &AppState, state: &crate::state::State, cursor: UserCursor) -> Value {
    let Some(company) = state.companies.get(&cursor.company_id) else {
        return json!({ "users": [], "done": true });
    };
    let matching = cursor.search.matching(company);

    let end = (cursor.offset + cursor.limit).min(matching.len());
    let page = matching.get(cursor.offset..end).unwrap_or_default();
    let users: Vec<Value> = page.iter().map(|u| user_json(u)).collect();

    if end >= matching.len() {
        return json!({ "users": users, "done": true });
    }
    let next = UserCursor {
        offset: end,
        ..cursor
    };
    // MindTickle puts the continuation URL on the global host whatever the tenant's region,
    // unless a test switched that quirk off.
    let next_url = format!(
        "{}/services/data/v4.0/mtobjects/Users?cursor={}",
        continuation_base(app, company),
        encode_cursor(&next)
    );
    json!({ "users": users, "done": false, "nextRecordsUrl": next_url })
}

/// `POST /services/data/v2.0/mtobjects/Users`: every matching user in one response, unpaged.
/// The body takes the same filters as the v4.0 search.
pub(crate) async fn list_v2(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let search: UserSearch = parse_body(&body)?;
    let Some(company) = state.companies.get(&company_id) else {
        return Ok(Json(json!({ "users": [], "totalSize": 0 })));
    };
    let users: Vec<Value> = search
        .matching(company)
        .into_iter()
        .map(user_json)
        .collect();
    Ok(Json(json!({ "totalSize": users.len(), "users": users })))
}

/// `GET /services/data/v2.0/mtobjects/User/{user_id}`.
// NOTE: proposed response body: the user object alone, as the v4.0 search lists it.
pub(crate) async fn get_user(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    state
        .companies
        .get(&company_id)
        .and_then(|c| c.users.iter().find(|u| u.id == user_id))
        .map(|user| Json(user_json(user)))
        .ok_or_else(|| ApiError::not_found(format!("User not found: {user_id}")))
}
