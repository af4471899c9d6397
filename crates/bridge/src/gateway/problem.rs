use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request_context::{current_context, current_request_id};
use super::security::{SecurityEventKind, record_security_event};

/// An error of the `/api` routes, rendered as RFC 9457 problem details.
///
/// Client errors carry a detail that describes what was wrong. Server errors carry only the request
/// id: the cause chain goes to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// MindTickle failed or returned an unusable response.
    #[error("{0}")]
    BadGateway(String),
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u64,
    },
    /// PostgreSQL refused a statement under a row-level security policy (SQLSTATE 42501).
    #[error("row-level security policy violation")]
    PolicyViolation(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database) = &error
            && database.code().as_deref() == Some("42501")
        {
            return ApiError::PolicyViolation(error);
        }
        if is_missing_tenant(&error) {
            return ApiError::NotFound("tenant not found".into());
        }
        if matches!(error, sqlx::Error::PoolTimedOut) {
            return ApiError::Unavailable {
                detail: "the database is busy; retry the request".into(),
                retry_after_secs: 1,
            };
        }
        ApiError::Internal(anyhow::Error::new(error).context("database statement failed"))
    }
}

/// True when a write failed because the tenant itself no longer exists: a foreign key to
/// `tenants` (every tenant table has one, named `<table>_tenant_fkey`) was violated. A token
/// issued before the tenant was deleted can still be valid until it expires.
pub fn is_missing_tenant(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if database.code().as_deref() == Some("23503")
            && database.constraint().is_some_and(|name| name.ends_with("_tenant_fkey")))
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::PolicyViolation(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = current_request_id();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut body = json!({
            "type": "about:blank",
            "title": title,
            "status": status.as_u16(),
        });
        match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = ?error, request_id = request_id.as_deref(), "request failed");
            }
            ApiError::PolicyViolation(error) => {
                let detail = error.to_string();
                if let Some(context) = current_context() {
                    // Record off the response path; the audit insert must not delay or fail it.
                    tokio::spawn(async move {
                        record_security_event(
                            &context.state,
                            SecurityEventKind::PolicyViolation,
                            Some(context.request_id.as_str()),
                            None,
                            None,
                            &detail,
                        )
                        .await;
                    });
                }
                body["detail"] = json!("the request was refused by tenant isolation");
            }
            ApiError::BadGateway(detail) => {
                tracing::warn!(error = %detail, request_id = request_id.as_deref(), "upstream call failed");
                body["detail"] =
                    json!("MindTickle could not be reached or answered with an error; retry later");
            }
            _ if status.is_server_error() => {
                tracing::warn!(error = %self, request_id = request_id.as_deref(), "request failed");
            }
            _ => body["detail"] = json!(self.to_string()),
        }
        if let ApiError::Unavailable { detail, .. } = &self {
            body["detail"] = json!(detail);
        }
        if let Some(request_id) = &request_id {
            body["request_id"] = json!(request_id);
        }

        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"enablement-bridge\""),
            );
        }
        if let ApiError::Unavailable {
            retry_after_secs, ..
        } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
