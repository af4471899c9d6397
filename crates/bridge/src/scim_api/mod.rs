//! SCIM 2.0 over HTTP under `/scim/v2/{tenant}/`, mapped onto the directory. Malformed payloads
//! are answered 400 and kept as dead letters.

mod auth;
mod dead_letters;
mod error;
pub mod service;
mod users;

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
    OpenApiRouter::new()
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(
            users::get_user,
            users::replace_user,
            users::patch_user,
            users::delete_user
        ))
}
