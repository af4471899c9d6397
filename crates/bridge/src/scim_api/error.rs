use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim::{ScimError, ScimType};

use super::SCIM_CONTENT_TYPE;
use crate::directory::DirectoryError;
use crate::gateway::current_request_id;

/// An error of the SCIM routes, rendered in the SCIM error schema (RFC 7644 §3.12).
#[derive(Debug, thiserror::Error)]
pub enum ScimApiError {
    #[error("{}", .0.detail)]
    Scim(ScimError),
    /// The tenant sent more requests than its inbound limit allows.
    #[error("too many SCIM requests for this tenant")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ScimError> for ScimApiError {
    fn from(error: ScimError) -> Self {
        ScimApiError::Scim(error)
    }
}

impl From<sqlx::Error> for ScimApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::gateway::is_missing_tenant(&error) {
            return ScimApiError::Scim(ScimError::not_found("tenant not found"));
        }
        ScimApiError::Internal(anyhow::Error::new(error).context("database statement failed"))
    }
}

impl From<DirectoryError> for ScimApiError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::UserNameTaken(_) => {
                ScimApiError::Scim(ScimError::conflict_uniqueness(error.to_string()))
            }
            DirectoryError::NotFound(id) => {
                ScimApiError::Scim(ScimError::not_found(format!("User {id} not found")))
            }
            DirectoryError::GroupNotFound(id) => {
                ScimApiError::Scim(ScimError::not_found(format!("Group {id} not found")))
            }
            DirectoryError::DisplayNameTaken(_) => {
                ScimApiError::Scim(ScimError::conflict_uniqueness(error.to_string()))
            }
            DirectoryError::UnknownMember(_) => ScimApiError::Scim(ScimError::bad_request(
                ScimType::InvalidValue,
                error.to_string(),
            )),
            DirectoryError::VersionMismatch { .. } => ScimApiError::Scim(ScimError::new(
                412,
                None,
                "the resource changed since the version in If-Match; GET it and retry",
            )),
            DirectoryError::Database(error) => error.into(),
        }
    }
}

impl ScimApiError {
    pub fn unauthorized() -> ScimApiError {
        ScimApiError::Scim(ScimError::new(
            401,
            None,
            "missing or invalid SCIM bearer token for this tenant",
        ))
    }

    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> ScimApiError {
        ScimApiError::Scim(ScimError::bad_request(scim_type, detail))
    }
}

impl IntoResponse for ScimApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        let retry_after = match &self {
            ScimApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let error = match self {
            ScimApiError::Scim(error) => error,
            ScimApiError::RateLimited { retry_after_secs } => ScimError::new(
                429,
                None,
                format!("too many requests for this tenant; retry after {retry_after_secs} s"),
            ),
            ScimApiError::Internal(error) => {
                tracing::error!(error = ?error, request_id = request_id.as_deref(), "SCIM request failed");
                ScimError::new(
                    500,
                    None,
                    format!(
                        "internal error; quote request id {} when reporting it",
                        request_id.as_deref().unwrap_or("unknown")
                    ),
                )
            }
        };
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, error.to_json().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}
