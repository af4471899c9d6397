//! Batched user pushes to MindTickle, their process checks, per-user retries and the reconcile.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{CHECK_PROCESS_JOB, PUSH_PENDING_JOB, RECONCILE_JOB, job_result, poll_interval};
use crate::app::AppState;
use crate::directory::PUSH_BATCH_KEY;
use crate::jobs::{self, ClaimedJob, JobFailure, JobOutcome, JobSpec};
use crate::tenancy::{TenantId, TenantTx};

/// Users per bulk upsert: MindTickle's upsert takes at most 100.
pub const BATCH_SIZE: i64 = 100;
/// Checks of a bulk process before its users are counted as failed.
const MAX_PROCESS_CHECKS: u32 = 60;
/// Delay before a user whose push failed is tried again, doubled per failure.
const USER_RETRY_BASE: chrono::Duration = chrono::Duration::seconds(30);
/// How often a tenant's directory is compared with MindTickle.
const RECONCILE_INTERVAL: chrono::Duration = chrono::Duration::hours(24);

fn database(error: sqlx::Error) -> JobFailure {
    JobFailure::Retryable {
        message: format!("database error: {error}"),
        not_before: None,
    }
}

#[derive(sqlx::FromRow)]
struct PendingUser {
    user_id: Uuid,
    version: i64,
    user_name: String,
    display_name: Option<String>,
    email: Option<String>,
    active: bool,
}

/// One user in flight, as the check job needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PushedUser {
    user_id: Uuid,
    version: i64,
    email: String,
}

async fn enqueue(state: &AppState, tenant: &TenantId, spec: JobSpec) -> Result<(), JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    jobs::enqueue(&mut tx, spec, state.config().jobs.max_attempts)
        .await
        .map_err(database)?;
    tx.commit().await.map_err(database)
}

/// Pushes one batch of the tenant's pending users, and queues the next batch when more wait.
pub async fn push_pending(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let tenant = &job.tenant_id;
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    // A user is due when its latest version is not in flight and its retry time has come.
    let due = sqlx::query_as::<_, PendingUser>(
        "SELECT user_id, version, user_name, display_name, email, active FROM users
         WHERE tenant_id = $1 AND mindtickle_state = 'pending'
           AND mindtickle_pushed_version IS DISTINCT FROM version
           AND (mindtickle_next_attempt_at IS NULL OR mindtickle_next_attempt_at <= now())
         ORDER BY updated_at, user_id
         LIMIT $2",
    )
    .bind(tenant.as_str())
    .bind(BATCH_SIZE)
    .fetch_all(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;
    if due.is_empty() {
        return Ok(JobOutcome::Done);
    }

    let (with_email, without_email): (Vec<_>, Vec<_>) =
        due.into_iter().partition(|user| user.email.is_some());
    for user in &without_email {
        mark_dead(
            state,
            tenant,
            user.user_id,
            user.version,
            "the user has no email, and MindTickle identifies users by email",
        )
        .await?;
    }
    if with_email.is_empty() {
        return more_or_done(state, tenant).await;
    }

    let client = state
        .mindtickle()
        .client(state.pool(), tenant)
        .await
        .map_err(|error| error.job_failure())?;
    // An upsert carries each user's state, so deactivating a user MindTickle has not seen yet
    // creates it deactivated instead of failing on an unknown email.
    let upserts: Vec<mindtickle::UserUpsert> = with_email
        .iter()
        .map(|user| mindtickle::UserUpsert {
            email: user.email.clone().unwrap_or_default(),
            name: user
                .display_name
                .clone()
                .unwrap_or_else(|| user.user_name.clone()),
            active: user.active,
            profile: Default::default(),
        })
        .collect();
    let process_ids = match client.upsert_users(&upserts).await {
        Ok(ids) => ids,
        Err(error) => return job_result(&error),
    };
    let pushed: Vec<PushedUser> = with_email
        .iter()
        .map(|user| PushedUser {
            user_id: user.user_id,
            version: user.version,
            email: user.email.clone().unwrap_or_default(),
        })
        .collect();

    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    for user in &pushed {
        sqlx::query(
            "UPDATE users SET mindtickle_pushed_version = $3
             WHERE tenant_id = $1 AND user_id = $2 AND version = $3",
        )
        .bind(tenant.as_str())
        .bind(user.user_id)
        .bind(user.version)
        .execute(tx.conn())
        .await
        .map_err(database)?;
    }
    jobs::enqueue(
        &mut tx,
        JobSpec {
            kind: CHECK_PROCESS_JOB,
            payload: json!({
                "process_ids": process_ids.iter().map(|id| id.0.clone()).collect::<Vec<_>>(),
                "users": pushed,
                "checks": 0,
            }),
            key: None,
            run_at: Some(Utc::now() + poll_interval(state)),
        },
        state.config().jobs.max_attempts,
    )
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;
    tracing::info!(tenant_id = %tenant, users = pushed.len(), processes = process_ids.len(), "users pushed to MindTickle");
    more_or_done(state, tenant).await
}

/// Queues the next batch when more users are due now, or a push at the earliest retry time.
async fn more_or_done(state: &AppState, tenant: &TenantId) -> Result<JobOutcome, JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    let next: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "SELECT min(coalesce(mindtickle_next_attempt_at, now())) FROM users
         WHERE tenant_id = $1 AND mindtickle_state = 'pending'
           AND mindtickle_pushed_version IS DISTINCT FROM version",
    )
    .bind(tenant.as_str())
    .fetch_one(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;
    if let Some(run_at) = next {
        enqueue(
            state,
            tenant,
            JobSpec {
                kind: PUSH_PENDING_JOB,
                payload: json!({}),
                key: Some(PUSH_BATCH_KEY.to_owned()),
                run_at: Some(run_at),
            },
        )
        .await?;
    }
    Ok(JobOutcome::Done)
}

#[derive(Deserialize)]
struct CheckProcessPayload {
    process_ids: Vec<String>,
    users: Vec<PushedUser>,
    checks: u32,
}

/// Polls a batch's bulk processes; records each user's outcome when they finish.
pub async fn check_process(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let payload: CheckProcessPayload =
        serde_json::from_value(job.payload.clone()).map_err(|error| {
            JobFailure::Permanent(format!(
                "job {} has an invalid payload: {error}",
                job.job_id
            ))
        })?;
    let tenant = &job.tenant_id;
    let client = state
        .mindtickle()
        .client(state.pool(), tenant)
        .await
        .map_err(|error| error.job_failure())?;
    let ids: Vec<mindtickle::ProcessId> = payload
        .process_ids
        .iter()
        .cloned()
        .map(mindtickle::ProcessId)
        .collect();
    let report = match client.process_status(&ids).await {
        Ok(report) => report,
        Err(error) => return job_result(&error),
    };

    let finished = ids.iter().all(|id| {
        report
            .state(id)
            .is_some_and(mindtickle::ProcessState::is_finished)
    });
    if !finished {
        if payload.checks + 1 >= MAX_PROCESS_CHECKS {
            let reason =
                format!("MindTickle process still not finished after {MAX_PROCESS_CHECKS} checks");
            for user in &payload.users {
                record_failure(state, tenant, user, &reason).await?;
            }
            push_again(state, tenant).await?;
            return Ok(JobOutcome::Done);
        }
        enqueue(
            state,
            tenant,
            JobSpec {
                kind: CHECK_PROCESS_JOB,
                payload: json!({
                    "process_ids": payload.process_ids,
                    "users": payload.users,
                    "checks": payload.checks + 1,
                }),
                key: None,
                run_at: Some(Utc::now() + poll_interval(state)),
            },
        )
        .await?;
        return Ok(JobOutcome::Done);
    }

    // Per-email errors name the users that failed; a failed process without them fails all.
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for error in report.errors.values().flatten() {
        errors.insert(error.email.to_ascii_lowercase(), error.message.clone());
    }
    let process_failed = ids
        .iter()
        .any(|id| report.state(id) == Some(mindtickle::ProcessState::Failed));
    let mut failures = 0;
    for user in &payload.users {
        match errors.get(&user.email.to_ascii_lowercase()) {
            Some(message) => {
                failures += 1;
                record_failure(
                    state,
                    tenant,
                    user,
                    &format!("MindTickle rejected the user: {message}"),
                )
                .await?;
            }
            None if process_failed && errors.is_empty() => {
                failures += 1;
                record_failure(
                    state,
                    tenant,
                    user,
                    "MindTickle reported the bulk process as failed",
                )
                .await?;
            }
            None => record_success(state, tenant, user).await?,
        }
    }
    tracing::info!(tenant_id = %tenant, users = payload.users.len(), failures, "MindTickle finished a user batch");
    if failures > 0 {
        push_again(state, tenant).await?;
    }
    Ok(JobOutcome::Done)
}

async fn record_success(
    state: &AppState,
    tenant: &TenantId,
    user: &PushedUser,
) -> Result<(), JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    // Only the version that was pushed: a newer change has its own push coming.
    sqlx::query(
        "UPDATE users SET mindtickle_state = 'synced', mindtickle_pushed_at = now(),
                mindtickle_error = NULL, mindtickle_attempts = 0, mindtickle_next_attempt_at = NULL
         WHERE tenant_id = $1 AND user_id = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(user.user_id)
    .bind(user.version)
    .execute(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)
}

/// Counts a failed push of one user: it is tried again after a growing delay, and marked
/// `failed` (dead) with the reason once it reaches `jobs.max_attempts` attempts.
async fn record_failure(
    state: &AppState,
    tenant: &TenantId,
    user: &PushedUser,
    reason: &str,
) -> Result<(), JobFailure> {
    let max_attempts = state.config().jobs.max_attempts;
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "UPDATE users SET mindtickle_attempts = mindtickle_attempts + 1, mindtickle_error = $4,
                mindtickle_pushed_version = NULL
         WHERE tenant_id = $1 AND user_id = $2 AND version = $3
         RETURNING mindtickle_attempts",
    )
    .bind(tenant.as_str())
    .bind(user.user_id)
    .bind(user.version)
    .bind(reason)
    .fetch_optional(tx.conn())
    .await
    .map_err(database)?;
    if let Some(attempts) = attempts {
        if attempts >= max_attempts {
            sqlx::query("UPDATE users SET mindtickle_state = 'failed' WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_str())
                .bind(user.user_id)
                .execute(tx.conn())
                .await
                .map_err(database)?;
            tracing::error!(tenant_id = %tenant, user_id = %user.user_id, attempts, "MindTickle push failed for good; the user is marked failed");
        } else {
            let exponent = u32::try_from(attempts.saturating_sub(1))
                .unwrap_or(0)
                .min(10);
            let delay = USER_RETRY_BASE * 2_i32.pow(exponent);
            sqlx::query(
                "UPDATE users SET mindtickle_next_attempt_at = now() + make_interval(secs => $3)
                 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_str())
            .bind(user.user_id)
            .bind(delay.num_seconds() as f64)
            .execute(tx.conn())
            .await
            .map_err(database)?;
            tracing::warn!(tenant_id = %tenant, user_id = %user.user_id, attempts, retry_in_secs = delay.num_seconds(), "MindTickle push failed; will retry");
        }
    }
    tx.commit().await.map_err(database)
}

async fn mark_dead(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
    version: i64,
    reason: &str,
) -> Result<(), JobFailure> {
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    sqlx::query(
        "UPDATE users SET mindtickle_state = 'failed', mindtickle_error = $4
         WHERE tenant_id = $1 AND user_id = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(version)
    .bind(reason)
    .execute(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;
    tracing::warn!(tenant_id = %tenant, %user_id, reason, "user cannot be pushed to MindTickle");
    Ok(())
}

async fn push_again(state: &AppState, tenant: &TenantId) -> Result<(), JobFailure> {
    more_or_done(state, tenant).await.map(|_| ())
}

/// Compares every user of the directory with MindTickle and queues a push for each one that is
/// missing there or whose active state differs. Runs again after `RECONCILE_INTERVAL`.
pub async fn reconcile(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let tenant = &job.tenant_id;
    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    let users: Vec<(Uuid, String, bool, String)> = sqlx::query_as(
        "SELECT user_id, email, active, mindtickle_state FROM users
         WHERE tenant_id = $1 AND email IS NOT NULL ORDER BY user_id",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;

    let client = state
        .mindtickle()
        .client(state.pool(), tenant)
        .await
        .map_err(|error| error.job_failure())?;
    let mut drifted = Vec::new();
    for chunk in users.chunks(BATCH_SIZE as usize) {
        let emails: Vec<String> = chunk.iter().map(|(_, email, _, _)| email.clone()).collect();
        let remote = match client.find_users_by_email(&emails).await {
            Ok(remote) => remote,
            // Deferred by the budget: start over later; reconciling is idempotent.
            Err(error) => return job_result(&error),
        };
        // An invited user (`ADDED`) counts as active: only `DEACTIVATED` is inactive.
        let remote: BTreeMap<String, bool> = remote
            .into_iter()
            .map(|user| {
                let active = user.user_state != mindtickle::UserState::Deactivated;
                (user.email.to_ascii_lowercase(), active)
            })
            .collect();
        for (user_id, email, active, local_state) in chunk {
            match remote.get(&email.to_ascii_lowercase()) {
                Some(remote_active) if remote_active == active => {}
                _ if local_state == "pending" => {}
                _ => drifted.push(*user_id),
            }
        }
    }

    let mut tx = TenantTx::begin(state.pool(), tenant)
        .await
        .map_err(database)?;
    for user_id in &drifted {
        sqlx::query(
            "UPDATE users SET mindtickle_state = 'pending', mindtickle_pushed_version = NULL,
                    mindtickle_attempts = 0, mindtickle_next_attempt_at = NULL
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_str())
        .bind(user_id)
        .execute(tx.conn())
        .await
        .map_err(database)?;
    }
    for spec in [
        JobSpec {
            kind: PUSH_PENDING_JOB,
            payload: json!({}),
            key: Some(PUSH_BATCH_KEY.to_owned()),
            run_at: None,
        },
        JobSpec {
            kind: RECONCILE_JOB,
            payload: json!({}),
            key: Some("reconcile".to_owned()),
            run_at: Some(Utc::now() + RECONCILE_INTERVAL),
        },
    ] {
        if spec.kind == PUSH_PENDING_JOB && drifted.is_empty() {
            continue;
        }
        jobs::enqueue(&mut tx, spec, state.config().jobs.max_attempts)
            .await
            .map_err(database)?;
    }
    tx.commit().await.map_err(database)?;
    if !drifted.is_empty() {
        tracing::warn!(tenant_id = %tenant, drifted = drifted.len(), "MindTickle drifted from the directory; pushes queued");
    }
    Ok(JobOutcome::Done)
}
