//! SCIM 2.0 over HTTP under `/scim/v2/{tenant}/`, mapped onto the directory. Malformed payloads
//! are answered 400 and kept as dead letters.

mod auth;
pub mod dead_letters;
mod discovery;
mod error;
mod groups;
pub mod query;
mod respond;
pub mod service;
mod users;

use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

pub use auth::{
    ScimCaller, ScimTokenCache, ScimTokenInfo, create_scim_token, list_scim_tokens,
    revoke_scim_token,
};
pub use dead_letters::{DeadLetter, list_dead_letters};
pub use error::ScimApiError;

/// The SCIM media type (RFC 7644 §3.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

pub fn router() -> OpenApiRouter<AppState> {
    let discovery = axum::Router::new()
        .route(
            "/scim/v2/{tenant}/ServiceProviderConfig",
            get(discovery::service_provider_config).fallback(discovery::read_only),
        )
        .route(
            "/scim/v2/{tenant}/ResourceTypes",
            get(discovery::list_resource_types).fallback(discovery::read_only),
        )
        .route(
            "/scim/v2/{tenant}/ResourceTypes/{id}",
            get(discovery::get_resource_type).fallback(discovery::read_only),
        )
        .route(
            "/scim/v2/{tenant}/Schemas",
            get(discovery::list_schemas).fallback(discovery::read_only),
        )
        .route(
            "/scim/v2/{tenant}/Schemas/{id}",
            get(discovery::get_schema).fallback(discovery::read_only),
        )
        .route(
            "/scim/v2/{tenant}/{*rest}",
            axum::routing::any(discovery::unknown_endpoint),
        );
    OpenApiRouter::new()
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::search_users))
        .routes(routes!(
            users::get_user,
            users::replace_user,
            users::patch_user,
            users::delete_user
        ))
        .routes(routes!(groups::create_group, groups::list_groups))
        .routes(routes!(groups::search_groups))
        .routes(routes!(groups::search_all))
        .routes(routes!(
            groups::get_group,
            groups::replace_group,
            groups::patch_group,
            groups::delete_group
        ))
        .merge(OpenApiRouter::from(discovery))
}
