//! Pushes directory changes to MindTickle through durable jobs, and holds each tenant's
//! MindTickle client.

mod accounts;

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::directory;
use crate::jobs::{self, ClaimedJob, JobFailure, JobOutcome, JobSpec};
use crate::tenancy::TenantTx;

pub use accounts::{MindTickleAccount, MindTickleAccounts, SyncError};

/// Upserts or deactivates one user in MindTickle. Payload: `{"user_id"}`.
pub const PUSH_USER_JOB: &str = "mindtickle.push_user";
/// Polls the bulk processes of a push until they finish. Payload: `{"user_id", "version",
/// "process_ids", "checks"}`.
pub const CHECK_PROCESS_JOB: &str = "mindtickle.check_process";
/// Deactivates a deleted user, by email. Payload: `{"user_id", "email"}`.
pub const REMOVE_USER_JOB: &str = "mindtickle.remove_user";

/// How many times a bulk process is polled before the push is recorded as failed.
const MAX_PROCESS_CHECKS: u32 = 60;

/// Maps a MindTickle client error to a job failure: 429 waits for `Retry-After`, transient
/// errors retry with backoff, the rest are permanent.
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

fn database_failure(error: sqlx::Error) -> JobFailure {
    JobFailure::Retryable {
        message: format!("database error: {error}"),
        not_before: None,
    }
}

/// Runs one claimed job. Unknown kinds are permanent failures, so they end up dead and visible.
pub async fn handle_job(state: AppState, job: ClaimedJob) -> Result<JobOutcome, JobFailure> {
    match job.kind.as_str() {
        PUSH_USER_JOB => push_user(&state, &job).await,
        CHECK_PROCESS_JOB => check_process(&state, &job).await,
        REMOVE_USER_JOB => remove_user(&state, &job).await,
        crate::readiness::REFRESH_JOB => crate::readiness::refresh(&state, &job).await,
        other => Err(JobFailure::Permanent(format!("unknown job kind {other:?}"))),
    }
}

#[derive(Deserialize)]
struct PushUserPayload {
    user_id: Uuid,
}

async fn push_user(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let payload: PushUserPayload =
        serde_json::from_value(job.payload.clone()).map_err(|error| bad_payload(job, error))?;
    let tenant = &job.tenant_id;

    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database_failure)?;
    let user = directory::get_user(&mut tx, payload.user_id)
        .await
        .map_err(database_failure)?;
    tx.commit().await.map_err(database_failure)?;
    let Some(user) = user else {
        // Deleted since the job was enqueued; the removal job takes care of MindTickle.
        return Ok(JobOutcome::Done);
    };
    let Some(email) = user.email.clone() else {
        let reason = "the user has no email, and MindTickle identifies users by email";
        record_state(state, job, user.user_id, "failed", Some(reason)).await?;
        return Err(JobFailure::Permanent(reason.into()));
    };

    let client = state
        .mindtickle()
        .client(state.pool(), tenant)
        .await
        .map_err(|error| error.job_failure())?;
    // An upsert carries the user's state, so a deactivation of a user MindTickle has not seen
    // yet creates it deactivated instead of failing on an unknown email.
    let name = user
        .display_name
        .clone()
        .unwrap_or_else(|| user.user_name.clone());
    let result = client
        .upsert_users(&[mindtickle::UserUpsert {
            email,
            name,
            active: user.active,
            profile: Default::default(),
        }])
        .await;
    let process_ids = match result {
        Ok(ids) => ids,
        Err(error) => {
            let failure = job_failure(&error);
            if matches!(failure, JobFailure::Permanent(_)) {
                record_state(state, job, user.user_id, "failed", Some(&error.to_string())).await?;
            }
            return Err(failure);
        }
    };
    tracing::info!(tenant_id = %tenant, user_id = %user.user_id, active = user.active, processes = process_ids.len(), "user pushed to MindTickle");

    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database_failure)?;
    jobs::enqueue(
        &mut tx,
        JobSpec {
            kind: CHECK_PROCESS_JOB,
            payload: json!({
                "user_id": user.user_id,
                "version": user.version,
                "process_ids": process_ids.iter().map(|id| id.0.clone()).collect::<Vec<_>>(),
                "checks": 0,
            }),
            key: None,
            run_at: Some(Utc::now() + poll_interval(state)),
        },
        state.config().jobs.max_attempts,
    )
    .await
    .map_err(database_failure)?;
    tx.commit().await.map_err(database_failure)?;
    Ok(JobOutcome::Done)
}

#[derive(Deserialize)]
struct CheckProcessPayload {
    user_id: Uuid,
    version: i64,
    process_ids: Vec<String>,
    checks: u32,
}

async fn check_process(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let payload: CheckProcessPayload =
        serde_json::from_value(job.payload.clone()).map_err(|error| bad_payload(job, error))?;
    let client = state
        .mindtickle()
        .client(state.pool(), &job.tenant_id)
        .await
        .map_err(|error| error.job_failure())?;
    let ids: Vec<mindtickle::ProcessId> = payload
        .process_ids
        .iter()
        .cloned()
        .map(mindtickle::ProcessId)
        .collect();
    let report = client
        .process_status(&ids)
        .await
        .map_err(|error| job_failure(&error))?;

    if let Some(failure) = process_failure(&report) {
        record_versioned_state(
            state,
            job,
            payload.user_id,
            payload.version,
            "failed",
            Some(&failure),
        )
        .await?;
        return Err(JobFailure::Permanent(failure));
    }
    if all_succeeded(&report, &ids) {
        record_versioned_state(state, job, payload.user_id, payload.version, "synced", None)
            .await?;
        tracing::info!(tenant_id = %job.tenant_id, user_id = %payload.user_id, "MindTickle confirmed the user push");
        return Ok(JobOutcome::Done);
    }
    if payload.checks + 1 >= MAX_PROCESS_CHECKS {
        let reason =
            format!("MindTickle process still not finished after {MAX_PROCESS_CHECKS} checks");
        record_versioned_state(
            state,
            job,
            payload.user_id,
            payload.version,
            "failed",
            Some(&reason),
        )
        .await?;
        return Err(JobFailure::Permanent(reason));
    }
    // Count the check in the payload: re-running does not spend an attempt.
    let mut tx = TenantTx::begin(state.pool(), &job.tenant_id)
        .await
        .map_err(database_failure)?;
    jobs::enqueue(
        &mut tx,
        JobSpec {
            kind: CHECK_PROCESS_JOB,
            payload: json!({
                "user_id": payload.user_id,
                "version": payload.version,
                "process_ids": payload.process_ids,
                "checks": payload.checks + 1,
            }),
            key: None,
            run_at: Some(Utc::now() + poll_interval(state)),
        },
        state.config().jobs.max_attempts,
    )
    .await
    .map_err(database_failure)?;
    tx.commit().await.map_err(database_failure)?;
    Ok(JobOutcome::Done)
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
    client
        .deactivate_users(&[payload.email])
        .await
        .map_err(|error| job_failure(&error))?;
    tracing::info!(tenant_id = %job.tenant_id, job_id = %job.job_id, "deleted user deactivated in MindTickle");
    Ok(JobOutcome::Done)
}

/// Describes why a push failed: a failed process or per-user errors, which a one-user push
/// treats alike.
fn process_failure(report: &mindtickle::ProcessStatusReport) -> Option<String> {
    let messages: Vec<String> = report
        .errors
        .values()
        .flatten()
        .map(|error| error.message.clone())
        .collect();
    let failed = report
        .states
        .values()
        .any(|state| *state == mindtickle::ProcessState::Failed);
    if messages.is_empty() && !failed {
        return None;
    }
    if messages.is_empty() {
        return Some("MindTickle reported the bulk process as failed".into());
    }
    Some(format!(
        "MindTickle rejected the user: {}",
        messages.join("; ")
    ))
}

fn all_succeeded(report: &mindtickle::ProcessStatusReport, ids: &[mindtickle::ProcessId]) -> bool {
    ids.iter()
        .all(|id| report.state(id) == Some(mindtickle::ProcessState::Success))
}

fn poll_interval(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(state.config().mindtickle.process_poll_secs).unwrap_or(2),
    )
}

async fn record_state(
    state: &AppState,
    job: &ClaimedJob,
    user_id: Uuid,
    sync_state: &str,
    error: Option<&str>,
) -> Result<(), JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), &job.tenant_id)
        .await
        .map_err(database_failure)?;
    directory::set_mindtickle_state(&mut tx, user_id, sync_state, error, None)
        .await
        .map_err(database_failure)?;
    tx.commit().await.map_err(database_failure)
}

/// Records the outcome of a push only if the user has not changed since: a newer change has its
/// own push pending, and its state must stay `pending` until that push finishes.
async fn record_versioned_state(
    state: &AppState,
    job: &ClaimedJob,
    user_id: Uuid,
    version: i64,
    sync_state: &str,
    error: Option<&str>,
) -> Result<(), JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), &job.tenant_id)
        .await
        .map_err(database_failure)?;
    directory::set_mindtickle_state(&mut tx, user_id, sync_state, error, Some(version))
        .await
        .map_err(database_failure)?;
    tx.commit().await.map_err(database_failure)
}
