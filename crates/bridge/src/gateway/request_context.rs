use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// What error responses and security events need to know about the request being served.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub state: AppState,
}

tokio::task_local! {
    static REQUEST_CONTEXT: RequestContext;
}

/// Makes the request id and the application state available to code that has no access to the
/// request, such as `IntoResponse` for errors.
pub async fn request_context_layer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let context = RequestContext { request_id, state };
    REQUEST_CONTEXT.scope(context, next.run(request)).await
}

pub fn current_request_id() -> Option<String> {
    REQUEST_CONTEXT
        .try_with(|context| context.request_id.clone())
        .ok()
}

pub(crate) fn current_context() -> Option<RequestContext> {
    REQUEST_CONTEXT.try_with(Clone::clone).ok()
}
