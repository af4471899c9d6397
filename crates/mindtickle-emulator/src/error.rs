//! Error responses in the shape of MindTickle's API gateway: `{"message", "request_id"}`.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{routes::CONTROL_PREFIX, state::AppState};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Error returned by a handler. The request-id middleware writes the JSON body, because only
/// the middleware has the request id.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<String>,
    pub basic_challenge: bool,
}

/// Marks a response whose body the middleware still has to write.
#[derive(Debug, Clone)]
struct PendingErrorBody(String);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            basic_challenge: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn no_route() -> ApiError {
        ApiError::not_found("no Route matched with those values")
    }

    pub fn with_retry_after(mut self, value: Option<String>) -> ApiError {
        self.retry_after = value;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(value) = self
            .retry_after
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"MindTickle Reporting\""),
            );
        }
        response
            .extensions_mut()
            .insert(PendingErrorBody(self.message));
        response
    }
}

pub(crate) async fn no_route() -> ApiError {
    ApiError::no_route()
}

/// Gives every response an `x-request-id`, serves injected delays and faults before routing
/// (except on control endpoints), and writes the JSON body of error responses.
pub(crate) async fn request_id_and_faults(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();

    // Control endpoints must stay reachable while a test makes every other request fail.
    let control = request.uri().path().starts_with(CONTROL_PREFIX);
    if !control && let Some(delay) = state.shared.take_delay() {
        tokio::time::sleep(delay).await;
    }
    let fault = if control {
        None
    } else {
        state.shared.take_fault()
    };
    let mut response = match fault {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    };

    if let Some(PendingErrorBody(message)) = response.extensions_mut().remove::<PendingErrorBody>()
    {
        let body = json!({ "message": message, "request_id": request_id }).to_string();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() = axum::body::Body::from(body);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
