//! Routers of the three listeners and helpers shared by their handlers.

mod auth;
mod content;
mod control;
mod entity;
mod groups;
mod legacy_jwt;
mod odata;
mod users;

use axum::{
    Router,
    body::Bytes,
    middleware,
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

pub(crate) use auth::{expire_tokens, revoke_tokens};
pub(crate) use control::CONTROL_PREFIX;

use crate::{
    error::{self, ApiError},
    state::{AppState, Company, Host},
};

/// Builds the router of one listener: REST and xAPI on the regional API hosts, OData on admin.
pub(crate) fn router(state: AppState) -> Router {
    let routes = match state.host {
        Host::Api(_) => Router::new()
            .route("/services/data/auth_token", post(auth::auth_token))
            .route(
                "/services/data/v2.0/mtobjects/Users/upsert",
                post(users::upsert),
            )
            .route(
                "/services/data/v2.0/mtobjects/Users/deactivate",
                post(users::deactivate),
            )
            .route(
                "/services/data/v2.0/process/status",
                get(users::process_status),
            )
            .route(
                "/services/data/v4.0/mtobjects/Users",
                post(users::search).get(users::search_continuation),
            )
            .route("/services/data/v2.0/mtobjects/Users", post(users::list_v2))
            .route(
                "/services/data/v2.0/mtobjects/User/{user_id}",
                get(users::get_user),
            )
            .route("/services/data/v2.0/mtobjects/Groups", post(groups::lookup))
            .route("/services/data/v2.0/mtobjects/Group", post(groups::create))
            .route("/api/v2/series/list", get(content::list_series))
            .route(
                "/api/v2/series/{series_id}/list",
                get(content::list_modules),
            )
            .route(
                "/api/v2/series/{series_id}/learners",
                post(content::assign_learners),
            )
            .route(
                "/api/v2/jit/series/{series_id}/entity/{module_id}",
                get(entity::module_details),
            )
            .route(
                "/api/v2/entity/{module_id}/learning_objects",
                get(entity::learning_objects),
            )
            .route(
                "/services/data/v4.0/xapi/statements",
                get(content::statements),
            ),
        Host::Admin => Router::new()
            .route(
                "/Odata.svc/LearnerModulePerformances",
                get(odata::learner_module_performances),
            )
            .route(
                control::FAULTS_PATH,
                post(control::inject_fault).delete(control::clear_faults),
            )
            .route(control::STATS_PATH, get(control::stats)),
    };
    routes
        .fallback(error::no_route)
        // The gateway matches on method and path together, so a wrong method is an unknown route.
        .method_not_allowed_fallback(error::no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::request_id_and_faults,
        ))
        .with_state(state)
}

/// Parses a JSON request body; an empty body reads as `T::default()`.
fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// Returns the first value of a query parameter.
fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn parse_limit(query: &[(String, String)], default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(raw) = query_param(query, "limit") else {
        return Ok(default);
    };
    let limit: usize = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid limit {raw:?}: expected a number")))?;
    if limit > max {
        return Err(ApiError::bad_request(format!(
            "Limit cannot be greater than {max}!"
        )));
    }
    if limit == 0 {
        return Err(ApiError::bad_request("Limit must be at least 1"));
    }
    Ok(limit)
}

/// Encodes paging state into an opaque cursor.
fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    // Serializing plain structs of strings and numbers to JSON cannot fail.
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request("Invalid cursor; restart the listing from the first page")
        })
}

/// Base URL for continuation links of a company: the global host while the quirk is on,
/// otherwise the host that served the page.
fn continuation_base<'a>(app: &'a AppState, company: &Company) -> &'a str {
    if company.switches.global_continuation {
        &app.shared.urls.api_global
    } else {
        app.shared.urls.of(app.host)
    }
}
