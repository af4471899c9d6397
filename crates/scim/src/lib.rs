//! SCIM 2.0 protocol types for a service provider: resource parsing and validation
//! (RFC 7643), error bodies, the filter parser, the PATCH engine and list paging (RFC 7644).
//!
//! The crate does no I/O and has no notion of tenants or HTTP frameworks. Parsing is
//! lenient where identity providers are known to deviate from the RFCs (capitalized PATCH
//! ops, booleans sent as strings, attribute names in any case) and strict where a lenient
//! reading could change data the client did not mean to change.

mod error;
mod filter;
mod group;
mod json;
mod list;
mod patch;
mod user;

pub use error::{ScimError, ScimType};
pub use filter::{
    AttrPath, CompValue, CompareOp, Filter, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, parse_filter,
};
pub use group::{GroupMember, GroupResource};
pub use json::parse_bool_lenient;
pub use list::{ListQuery, list_response};
pub use patch::{
    MAX_PATCH_OPERATIONS, PatchOpKind, PatchOperation, PatchPath, PatchRequest, apply_patch,
};
pub use user::{EnterpriseUser, Manager, Meta, MultiValue, Name, UserResource};

/// Core schema of a User resource (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core schema of a Group resource (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema of a query response (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Schema of a PATCH request body (RFC 7644 §3.5.2).
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Schema of an error response body (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// Schema of a POST /.search request body (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
