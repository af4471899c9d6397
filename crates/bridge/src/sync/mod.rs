//! Pushes directory changes to MindTickle through durable jobs, and keeps each tenant's
//! MindTickle client.

mod accounts;
pub mod budget;
mod credentials;
mod push;
mod status;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::AppState;
use crate::jobs::{ClaimedJob, JobFailure, JobOutcome};

pub use accounts::{MindTickleAccount, MindTickleAccounts, SyncError};
pub use credentials::{CredentialsError, CredentialsKey};
pub use status::{PendingWork, SyncStatus};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(status::sync_status))
}

/// Pushes the tenant's users whose latest version is not in MindTickle yet, up to
/// `push::BATCH_SIZE` per bulk upsert. Payload: `{}`; one pending job per tenant.
pub const PUSH_PENDING_JOB: &str = "mindtickle.push_pending";
/// The job kind of earlier versions, which pushed one user; it now runs a batch push.
pub const PUSH_USER_JOB: &str = "mindtickle.push_user";
/// Polls the bulk processes of a batch push until they finish. Payload: `{"process_ids",
/// "users": [{"user_id", "version", "email"}], "checks"}`.
pub const CHECK_PROCESS_JOB: &str = "mindtickle.check_process";
/// Compares the directory with MindTickle's users and queues pushes for what drifted.
/// Payload: `{}`; one pending job per tenant.
pub const RECONCILE_JOB: &str = "mindtickle.reconcile";
/// Deactivates a deleted user, by email. Payload: `{"user_id", "email"}`.
pub const REMOVE_USER_JOB: &str = "mindtickle.remove_user";

/// The time work may run again when MindTickle's limit, or the tenant's own budget, stopped it.
/// Such work is deferred, not failed: it spends no attempt.
pub fn deferral(error: &mindtickle::Error) -> Option<DateTime<Utc>> {
    match error {
        mindtickle::Error::BudgetExhausted { not_before } => Some(
            not_before
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(1)),
        ),
        mindtickle::Error::RateLimited { retry_after } => Some(
            Utc::now()
                + retry_after
                    .and_then(|delay| chrono::Duration::from_std(delay).ok())
                    .unwrap_or_else(|| chrono::Duration::seconds(30)),
        ),
        _ => None,
    }
}

/// Maps a MindTickle client error to a job's result: budget and 429 defer the job, transient
/// errors retry with backoff, the rest are permanent.
pub fn job_result(error: &mindtickle::Error) -> Result<JobOutcome, JobFailure> {
    match deferral(error) {
        Some(at) => Ok(JobOutcome::RunAgainAt(at)),
        None => Err(job_failure(error)),
    }
}

/// Maps a MindTickle client error to a job failure: transient errors retry with backoff, the
/// rest are permanent.
pub fn job_failure(error: &mindtickle::Error) -> JobFailure {
    match error {
        mindtickle::Error::RateLimited { retry_after } => JobFailure::Retryable {
            message: error.to_string(),
            not_before: retry_after
                .and_then(|delay| chrono::Duration::from_std(delay).ok())
                .map(|delay| Utc::now() + delay),
        },
        _ if error.is_retryable() => JobFailure::Retryable {
            message: error.to_string(),
            not_before: None,
        },
        _ => JobFailure::Permanent(error.to_string()),
    }
}

fn bad_payload(job: &ClaimedJob, error: serde_json::Error) -> JobFailure {
    JobFailure::Permanent(format!(
        "job {} has an invalid payload: {error}",
        job.job_id
    ))
}

/// Runs one claimed job. Unknown kinds are permanent failures, so they end up dead and visible.
pub async fn handle_job(state: AppState, job: ClaimedJob) -> Result<JobOutcome, JobFailure> {
    match job.kind.as_str() {
        PUSH_PENDING_JOB | PUSH_USER_JOB => push::push_pending(&state, &job).await,
        CHECK_PROCESS_JOB => push::check_process(&state, &job).await,
        RECONCILE_JOB => push::reconcile(&state, &job).await,
        REMOVE_USER_JOB => remove_user(&state, &job).await,
        crate::readiness::REFRESH_JOB => crate::readiness::refresh(&state, &job).await,
        crate::progress::SYNC_PROGRESS_JOB => {
            crate::progress::sync_progress_job(&state, &job).await
        }
        other => Err(JobFailure::Permanent(format!("unknown job kind {other:?}"))),
    }
}

#[derive(Deserialize)]
struct RemoveUserPayload {
    email: String,
}

async fn remove_user(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let payload: RemoveUserPayload =
        serde_json::from_value(job.payload.clone()).map_err(|error| bad_payload(job, error))?;
    let client = state
        .mindtickle()
        .client(state.pool(), &job.tenant_id)
        .await
        .map_err(|error| error.job_failure())?;
    if let Err(error) = client.deactivate_users(&[payload.email]).await {
        return job_result(&error);
    }
    tracing::info!(tenant_id = %job.tenant_id, job_id = %job.job_id, "deleted user deactivated in MindTickle");
    Ok(JobOutcome::Done)
}

pub(crate) fn poll_interval(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(state.config().mindtickle.process_poll_secs).unwrap_or(2),
    )
}
