use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    ProgressOut, QuizResultIn, QuizResultOut, SyncOutcome, load_progress, queue_progress_sync,
    record_quiz_result, sync_user_progress,
};
use crate::app::AppState;
use crate::gateway::{ApiCaller, ApiError, Scope};
use crate::tenancy::TenantTx;

#[derive(Deserialize)]
pub struct UserPath {
    #[allow(dead_code)]
    tenant: String,
    user: String,
}

fn parse_user_id(raw: &str) -> Result<Uuid, ApiError> {
    // A malformed id gets the same 404 as an unknown one.
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("user {raw} not found")))
}

/// Returns the user's courses as last synced, without calling MindTickle.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/users/{user}/sync-progress", tag = "Progress",
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = ProgressOut), (status = 404, description = "Unknown user, or never synced")),
    security(("bearer" = ["courses:read"]))
)]
pub async fn get_progress(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<UserPath>,
) -> Result<Json<ProgressOut>, ApiError> {
    caller.require(Scope::CoursesRead)?;
    let user_id = parse_user_id(&path.user)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    if crate::directory::get_user(&mut tx, user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("user {user_id} not found")));
    }
    let progress = load_progress(&mut tx, user_id).await?;
    tx.commit().await?;
    progress.map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "progress of user {user_id} has never been synced; POST to this path to sync it"
        ))
    })
}

/// Pulls the user's courses and quiz scores from MindTickle, stores them and returns them.
#[utoipa::path(
    post, path = "/api/tenants/{tenant}/users/{user}/sync-progress", tag = "Progress",
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = ProgressOut), (status = 404, description = "Unknown user"),
              (status = 202, body = SyncQueued, description = "Over the tenant's MindTickle budget: queued for the next window")),
    security(("bearer" = ["courses:write"]))
)]
pub async fn sync_progress(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<UserPath>,
) -> Result<Response, ApiError> {
    caller.require(Scope::CoursesWrite)?;
    let user_id = parse_user_id(&path.user)?;
    match sync_user_progress(&state, &caller.tenant, user_id).await? {
        SyncOutcome::Synced(progress) => Ok(Json(progress).into_response()),
        SyncOutcome::Deferred { not_before, reason } => {
            let run_at = queue_progress_sync(&state, &caller.tenant, user_id, not_before).await?;
            let retry_after = (run_at - chrono::Utc::now()).num_seconds().max(1);
            let mut response = (
                StatusCode::ACCEPTED,
                Json(SyncQueued {
                    status: "queued",
                    user_id,
                    run_at,
                    reason,
                }),
            )
                .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            Ok(response)
        }
    }
}

/// The response body when a sync did not fit the tenant's MindTickle budget.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SyncQueued {
    /// Always `queued`.
    pub status: &'static str,
    pub user_id: Uuid,
    /// When the queued sync is due to run; `GET` on the same path shows its result after that.
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub reason: String,
}

#[derive(Deserialize)]
pub struct TenantPath {
    #[allow(dead_code)]
    tenant: String,
}

/// Records a quiz submission and emits `quiz.completed`.
#[utoipa::path(
    post, path = "/api/tenants/{tenant}/quiz-results", tag = "Progress",
    params(("tenant" = String, Path)),
    request_body = QuizResultIn,
    responses((status = 201, body = QuizResultOut), (status = 400, description = "Invalid submission"),
              (status = 404, description = "Unknown user")),
    security(("bearer" = ["courses:write"]))
)]
pub async fn post_quiz_result(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
    body: Result<Json<QuizResultIn>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<QuizResultOut>), ApiError> {
    caller.require(Scope::CoursesWrite)?;
    let Json(input) = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let result = record_quiz_result(&state, &caller.tenant, input).await?;
    Ok((StatusCode::CREATED, Json(result)))
}
