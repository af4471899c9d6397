//! Course progress pulled from MindTickle, and quiz results submitted to the service.

mod handlers;
mod quiz;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::directory;
use crate::events::{self, EventType};
use crate::gateway::ApiError;
use crate::tenancy::{TenantId, TenantTx};

pub use quiz::{AnswerIn, QuizResultIn, QuizResultOut, record_quiz_result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::get_progress, handlers::sync_progress))
        .routes(routes!(handlers::post_quiz_result))
}

/// One course of a user, as last synced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct CourseProgressOut {
    pub course_id: String,
    pub course_name: String,
    pub series_id: String,
    pub series_name: String,
    /// `course`, `quick_update`, `assessment` or MindTickle's own type name.
    pub kind: String,
    /// `not_started`, `in_progress` or `completed`.
    pub status: String,
    pub percent_completed: Option<f64>,
    pub score: Option<f64>,
    pub max_score: Option<f64>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A user's courses and when they were synced from MindTickle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressOut {
    pub user_id: Uuid,
    pub synced_at: DateTime<Utc>,
    pub courses: Vec<CourseProgressOut>,
}

fn kind_name(kind: &mindtickle::CourseKind) -> String {
    match kind {
        mindtickle::CourseKind::Course => "course".into(),
        mindtickle::CourseKind::QuickUpdate => "quick_update".into(),
        mindtickle::CourseKind::Assessment => "assessment".into(),
        mindtickle::CourseKind::Other(name) => name.to_ascii_lowercase(),
    }
}

fn status_name(status: &mindtickle::CourseStatus) -> &'static str {
    match status {
        mindtickle::CourseStatus::NotStarted => "not_started",
        mindtickle::CourseStatus::InProgress => "in_progress",
        mindtickle::CourseStatus::Completed => "completed",
    }
}

/// Pulls one user's progress when the tenant's MindTickle budget stopped it in a request.
/// Payload: `{"user_id"}`.
pub const SYNC_PROGRESS_JOB: &str = "progress.sync_user";

/// The result of a progress sync that did not fail.
#[derive(Debug)]
pub enum SyncOutcome {
    Synced(ProgressOut),
    /// The tenant's MindTickle budget, or MindTickle's own limit, leaves no room now.
    Deferred {
        not_before: DateTime<Utc>,
        reason: String,
    },
}

/// Runs a queued progress sync.
pub async fn sync_progress_job(
    state: &AppState,
    job: &crate::jobs::ClaimedJob,
) -> Result<crate::jobs::JobOutcome, crate::jobs::JobFailure> {
    use crate::jobs::{JobFailure, JobOutcome};
    let user_id = job
        .payload
        .get("user_id")
        .and_then(|value| value.as_str())
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| JobFailure::Permanent(format!("job {} has no user_id", job.job_id)))?;
    match sync_user_progress(state, &job.tenant_id, user_id).await {
        Ok(SyncOutcome::Synced(_)) => Ok(JobOutcome::Done),
        Ok(SyncOutcome::Deferred { not_before, .. }) => Ok(JobOutcome::RunAgainAt(not_before)),
        // Deleted since it was queued: nothing left to sync.
        Err(ApiError::NotFound(_)) => Ok(JobOutcome::Done),
        Err(error) => Err(JobFailure::Retryable {
            message: format!("progress sync of user {user_id} failed: {error}"),
            not_before: None,
        }),
    }
}

/// Queues a progress sync for when the tenant's budget allows it, at most one per user.
pub async fn queue_progress_sync(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
    not_before: DateTime<Utc>,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    crate::jobs::enqueue(
        &mut tx,
        crate::jobs::JobSpec {
            kind: SYNC_PROGRESS_JOB,
            payload: json!({ "user_id": user_id }),
            key: Some(user_id.to_string()),
            run_at: Some(not_before),
        },
        state.config().jobs.max_attempts,
    )
    .await?;
    // A sync already queued keeps its own time, which is the one the caller should expect.
    let run_at: DateTime<Utc> = sqlx::query_scalar(
        "SELECT run_at FROM jobs WHERE tenant_id = $1 AND kind = $2 AND job_key = $3 AND status = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(SYNC_PROGRESS_JOB)
    .bind(user_id.to_string())
    .fetch_optional(tx.conn())
    .await?
    .unwrap_or(not_before);
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %user_id, %run_at, "progress sync queued for the tenant's next MindTickle budget window");
    Ok(run_at)
}

/// Pulls a user's courses and scores from MindTickle and stores them.
///
/// No transaction is open during the MindTickle calls, so a slow upstream ties up no connection.
pub async fn sync_user_progress(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
) -> Result<SyncOutcome, ApiError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let user = directory::get_user(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id} not found")))?;
    tx.commit().await?;
    let email = user.email.ok_or_else(|| {
        ApiError::Conflict(format!(
            "user {user_id} has no email, and MindTickle identifies learners by email"
        ))
    })?;

    let client = state
        .mindtickle()
        .client(state.pool(), tenant)
        .await
        .map_err(|error| match error {
            crate::sync::SyncError::NoAccount(_) => ApiError::Conflict(error.to_string()),
            crate::sync::SyncError::Credentials(error) => {
                ApiError::Internal(anyhow::Error::new(error).context("open MindTickle credentials"))
            }
            crate::sync::SyncError::Database(error) => error.into(),
        })?;
    let courses = match client.learner_progress(&email).await {
        Ok(courses) => courses,
        Err(error) => {
            if let Some(not_before) = crate::sync::deferral(&error) {
                return Ok(SyncOutcome::Deferred {
                    not_before,
                    reason: error.to_string(),
                });
            }
            return Err(ApiError::BadGateway(error.to_string()));
        }
    };

    let synced_at = Utc::now();
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let tenant_id = tenant.as_str();
    for course in &courses {
        sqlx::query(
            "INSERT INTO course_series (tenant_id, series_id, name, synced_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, series_id) DO UPDATE SET name = EXCLUDED.name, synced_at = EXCLUDED.synced_at",
        )
        .bind(tenant_id)
        .bind(&course.series_id)
        .bind(&course.series_name)
        .bind(synced_at)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO courses (tenant_id, course_id, series_id, name, kind, synced_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, course_id) DO UPDATE SET series_id = EXCLUDED.series_id,
                 name = EXCLUDED.name, kind = EXCLUDED.kind, synced_at = EXCLUDED.synced_at",
        )
        .bind(tenant_id)
        .bind(&course.course_id)
        .bind(&course.series_id)
        .bind(&course.course_name)
        .bind(kind_name(&course.kind))
        .bind(synced_at)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO course_progress (tenant_id, user_id, course_id, status, percent_completed, score,
                                          max_score, started_at, completed_at, synced_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id, user_id, course_id) DO UPDATE SET status = EXCLUDED.status,
                 percent_completed = EXCLUDED.percent_completed, score = EXCLUDED.score,
                 max_score = EXCLUDED.max_score, started_at = EXCLUDED.started_at,
                 completed_at = EXCLUDED.completed_at, synced_at = EXCLUDED.synced_at",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(&course.course_id)
        .bind(status_name(&course.status))
        .bind(course.percent_completed)
        .bind(course.score)
        .bind(course.max_score)
        .bind(course.started_at)
        .bind(course.completed_at)
        .bind(synced_at)
        .execute(tx.conn())
        .await?;
    }
    // Courses MindTickle no longer lists for the user were unassigned.
    let course_ids: Vec<String> = courses
        .iter()
        .map(|course| course.course_id.clone())
        .collect();
    sqlx::query(
        "DELETE FROM course_progress WHERE tenant_id = $1 AND user_id = $2 AND NOT (course_id = ANY($3))",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(&course_ids)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "INSERT INTO progress_syncs (tenant_id, user_id, synced_at, course_count) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET synced_at = EXCLUDED.synced_at,
             course_count = EXCLUDED.course_count",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(synced_at)
    .bind(i32::try_from(courses.len()).unwrap_or(i32::MAX))
    .execute(tx.conn())
    .await?;
    let completed = courses
        .iter()
        .filter(|course| matches!(course.status, mindtickle::CourseStatus::Completed))
        .count();
    events::record(
        &mut tx,
        EventType::ProgressSynced,
        json!({ "user_id": user_id, "courses": courses.len(), "completed": completed, "synced_at": synced_at }),
    )
    .await?;
    let progress = load_progress(&mut tx, user_id).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %user_id, courses = courses.len(), "progress synced from MindTickle");
    progress
        .map(SyncOutcome::Synced)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("progress vanished after sync")))
}

/// Returns the last synced progress of a user, or `None` if it was never synced.
pub async fn load_progress(
    tx: &mut TenantTx,
    user_id: Uuid,
) -> Result<Option<ProgressOut>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let synced_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT synced_at FROM progress_syncs WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(&tenant)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(synced_at) = synced_at else {
        return Ok(None);
    };
    let courses = sqlx::query_as::<_, CourseProgressOut>(
        "SELECT p.course_id, c.name AS course_name, c.series_id, s.name AS series_name, c.kind,
                p.status, p.percent_completed, p.score, p.max_score, p.started_at, p.completed_at
         FROM course_progress p
         JOIN courses c ON c.tenant_id = p.tenant_id AND c.course_id = p.course_id
         JOIN course_series s ON s.tenant_id = c.tenant_id AND s.series_id = c.series_id
         WHERE p.tenant_id = $1 AND p.user_id = $2
         ORDER BY s.name, c.name, p.course_id",
    )
    .bind(&tenant)
    .bind(user_id)
    .fetch_all(tx.conn())
    .await?;
    Ok(Some(ProgressOut {
        user_id,
        synced_at,
        courses,
    }))
}
