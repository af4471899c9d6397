//! The edge of the API: authentication, the tenant guard, problem-details errors, request ids
//! and security events.

mod auth;
mod problem;
mod request_context;
mod security;

pub use auth::{ApiCaller, Claims, JwtKeys, Scope, ScopeParseError, TokenError};
pub use problem::{ApiError, is_missing_tenant};
pub use request_context::{RequestContext, current_request_id, request_context_layer};
pub use security::{SecurityEventKind, record_security_event};
