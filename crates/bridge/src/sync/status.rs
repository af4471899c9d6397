//! `GET /api/tenants/{tenant}/users/{user}/sync-status`: a user's sync state in MindTickle.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::directory;
use crate::gateway::{ApiCaller, ApiError, Scope};
use crate::tenancy::TenantTx;

/// A user's MindTickle sync state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStatus {
    pub user_id: Uuid,
    /// True once MindTickle has confirmed a push of this user.
    pub in_mindtickle: bool,
    /// `pending` (a push is queued or running), `synced` or `failed`.
    pub state: String,
    pub last_pushed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Queued or running work for this user.
    pub pending: Vec<PendingWork>,
}

/// One queued or running job.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct PendingWork {
    pub kind: String,
    pub status: String,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

#[derive(Deserialize)]
pub struct UserPath {
    #[allow(dead_code)]
    tenant: String,
    user: String,
}

/// Returns whether the user is in MindTickle, when it was last pushed, what is pending, and the
/// last error.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/users/{user}/sync-status", tag = "Sync",
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses((status = 200, body = SyncStatus), (status = 404, description = "Unknown user")),
    security(("bearer" = ["users:read"]))
)]
pub async fn sync_status(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(path): Path<UserPath>,
) -> Result<Json<SyncStatus>, ApiError> {
    caller.require(Scope::UsersRead)?;
    let not_found = || ApiError::NotFound(format!("user {} not found", path.user));
    let user_id = Uuid::parse_str(&path.user).map_err(|_| not_found())?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let user = directory::get_user(&mut tx, user_id)
        .await?
        .ok_or_else(not_found)?;
    let pending = sqlx::query_as::<_, PendingWork>(
        "SELECT kind, status, run_at, attempts, last_error FROM jobs
         WHERE tenant_id = $1 AND status IN ('pending', 'running')
           AND (job_key = $2 OR payload ->> 'user_id' = $2)
         ORDER BY run_at",
    )
    .bind(caller.tenant.as_str())
    .bind(user_id.to_string())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Json(SyncStatus {
        user_id,
        in_mindtickle: user.mindtickle_pushed_at.is_some(),
        state: user.mindtickle_state,
        last_pushed_at: user.mindtickle_pushed_at,
        last_error: user.mindtickle_error,
        pending,
    }))
}
