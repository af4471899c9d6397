//! SCIM error responses (RFC 7644 §3.12).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ERROR_SCHEMA;

/// The `scimType` detail error keyword of a 400 response (RFC 7644 §3.12, table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// Returns the keyword as it appears in the `scimType` member.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl std::fmt::Display for ScimType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A SCIM error: the HTTP status, the optional `scimType` keyword and a human-readable detail.
///
/// The detail is sent to the client, so it must not contain secrets or internal error chains.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM error {status}{}: {detail}", scim_type.map(|t| format!(" ({t})")).unwrap_or_default())]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    /// Creates an error with any status.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> ScimError {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// Creates a 400 error with a `scimType` keyword.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError::new(400, Some(scim_type), detail)
    }

    /// Creates a 404 error, which RFC 7644 §3.12 gives no `scimType`.
    pub fn not_found(detail: impl Into<String>) -> ScimError {
        ScimError::new(404, None, detail)
    }

    /// Creates a 409 error with `scimType` `uniqueness`, the response to a create or update that
    /// would duplicate a unique attribute such as `userName` (RFC 7644 §3.3).
    pub fn conflict_uniqueness(detail: impl Into<String>) -> ScimError {
        ScimError::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// Shorthand for a 400 `invalidValue` error, the most common validation failure.
    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError::bad_request(ScimType::InvalidValue, detail)
    }

    /// Renders the error response body. RFC 7644 §3.12 defines `status` as a string, and
    /// clients such as Okta fail to parse a body where it is a number.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(scim_type), Some(object)) = (self.scim_type, body.as_object_mut()) {
            object.insert("scimType".to_owned(), Value::from(scim_type.as_str()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_json_renders_status_as_string() {
        let error = ScimError::bad_request(
            ScimType::InvalidValue,
            "attribute 'emails' must be an array",
        );

        let body = error.to_json();

        assert_eq!(body["schemas"], json!([ERROR_SCHEMA]));
        assert_eq!(body["status"], json!("400"));
        assert_eq!(body["scimType"], json!("invalidValue"));
        assert_eq!(body["detail"], json!("attribute 'emails' must be an array"));
    }

    #[test]
    fn to_json_omits_scim_type_when_absent() {
        let body = ScimError::not_found("user not found").to_json();

        assert_eq!(body["status"], json!("404"));
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn conflict_uniqueness_is_409() {
        let error = ScimError::conflict_uniqueness("userName already exists");

        assert_eq!(error.status, 409);
        assert_eq!(error.to_json()["scimType"], json!("uniqueness"));
    }

    #[test]
    fn scim_type_serializes_as_rfc_keyword() {
        let keywords = [
            (ScimType::InvalidFilter, "invalidFilter"),
            (ScimType::TooMany, "tooMany"),
            (ScimType::Uniqueness, "uniqueness"),
            (ScimType::Mutability, "mutability"),
            (ScimType::InvalidSyntax, "invalidSyntax"),
            (ScimType::InvalidPath, "invalidPath"),
            (ScimType::NoTarget, "noTarget"),
            (ScimType::InvalidValue, "invalidValue"),
            (ScimType::InvalidVers, "invalidVers"),
            (ScimType::Sensitive, "sensitive"),
        ];
        for (scim_type, keyword) in keywords {
            assert_eq!(serde_json::to_value(scim_type).ok(), Some(json!(keyword)));
            assert_eq!(scim_type.as_str(), keyword);
        }
    }
}
