use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::JobsConfig;
use crate::tenancy::{SystemRole, SystemTx, TenantId};

/// A job claimed by this runner.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    #[sqlx(try_from = "String")]
    pub tenant_id: TenantId,
    pub job_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Attempts including this one.
    pub attempts: i32,
    pub max_attempts: i32,
}

/// The result of a job that did not fail.
#[derive(Debug)]
pub enum JobOutcome {
    Done,
    /// Not finished, and not a failure (a bulk process still running): run again at this time
    /// without spending an attempt.
    RunAgainAt(DateTime<Utc>),
}

/// The reason a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// Worth retrying, after the backoff or at the time the remote side asked for.
    #[error("{message}")]
    Retryable {
        message: String,
        not_before: Option<DateTime<Utc>>,
    },
    /// Retrying cannot help: the job is marked dead at once.
    #[error("{0}")]
    Permanent(String),
}

/// A job that ran longer than this is taken to belong to a crashed runner and is claimed again.
const LEASE: &str = "5 minutes";

/// Claims due jobs of every tenant as `bridge_worker` and records their outcome. The handler runs
/// the job's tenant-scoped work in its own tenant transaction.
#[derive(Clone)]
pub struct JobRunner {
    pool: PgPool,
    config: JobsConfig,
    worker_id: String,
}

impl JobRunner {
    pub fn new(pool: PgPool, config: JobsConfig) -> JobRunner {
        JobRunner {
            pool,
            config,
            worker_id: format!("worker-{}", Uuid::now_v7()),
        }
    }

    pub async fn claim(&self, limit: i64) -> Result<Vec<ClaimedJob>, sqlx::Error> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Worker).await?;
        // Due jobs are taken round-robin across tenants (each tenant's oldest first, then each
        // tenant's second oldest, ...), so one tenant's backlog cannot fill every claim.
        let jobs = sqlx::query_as::<_, ClaimedJob>(AssertSqlSafe(format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_at = now(),
                    locked_by = $1, updated_at = now()
             WHERE (tenant_id, job_id) IN (
                 SELECT j.tenant_id, j.job_id FROM jobs j
                 JOIN (
                     SELECT tenant_id, job_id,
                            row_number() OVER (PARTITION BY tenant_id ORDER BY run_at, job_id) AS turn
                     FROM jobs
                     WHERE (status = 'pending' AND run_at <= now())
                        OR (status = 'running' AND locked_at < now() - interval '{LEASE}')
                 ) due ON due.tenant_id = j.tenant_id AND due.job_id = j.job_id
                 ORDER BY due.turn, j.run_at
                 LIMIT $2
                 FOR UPDATE OF j SKIP LOCKED)
             RETURNING tenant_id, job_id, kind, payload, attempts, max_attempts"
        )))
        .bind(&self.worker_id)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Claims up to `limit` due jobs, runs each with `handler` and records the outcomes. Returns
    /// how many jobs ran.
    pub async fn run_once<H, F>(&self, limit: i64, handler: H) -> Result<usize, sqlx::Error>
    where
        H: Fn(ClaimedJob) -> F,
        F: Future<Output = Result<JobOutcome, JobFailure>>,
    {
        let jobs = self.claim(limit).await?;
        let count = jobs.len();
        // Claimed jobs run concurrently: a job waiting for its tenant's MindTickle budget must not
        // hold back the jobs of other tenants.
        let runs = jobs.into_iter().map(|job| {
            let span = tracing::info_span!("job", tenant_id = %job.tenant_id, job_id = %job.job_id, kind = %job.kind, attempt = job.attempts);
            let outcome = handler(job.clone()).instrument(span);
            async move { (job, outcome.await) }
        });
        for (job, outcome) in futures::future::join_all(runs).await {
            self.record(&job, outcome).await?;
        }
        Ok(count)
    }

    async fn record(
        &self,
        job: &ClaimedJob,
        outcome: Result<JobOutcome, JobFailure>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = SystemTx::begin(&self.pool, SystemRole::Worker).await?;
        let tenant = job.tenant_id.as_str();
        match outcome {
            Ok(JobOutcome::Done) => {
                sqlx::query(
                    "UPDATE jobs SET status = 'succeeded', locked_at = NULL, locked_by = NULL,
                            last_error = NULL, updated_at = now()
                     WHERE tenant_id = $1 AND job_id = $2",
                )
                .bind(tenant)
                .bind(job.job_id)
                .execute(tx.conn())
                .await?;
                metrics::counter!("bridge_jobs_total", "kind" => job.kind.clone(), "outcome" => "succeeded").increment(1);
            }
            Ok(JobOutcome::RunAgainAt(at)) => {
                sqlx::query(
                    "UPDATE jobs SET status = 'pending', attempts = attempts - 1, run_at = $3,
                            locked_at = NULL, locked_by = NULL, updated_at = now()
                     WHERE tenant_id = $1 AND job_id = $2",
                )
                .bind(tenant)
                .bind(job.job_id)
                .bind(at)
                .execute(tx.conn())
                .await?;
            }
            Err(failure) => {
                let message = failure.to_string();
                let dead =
                    matches!(failure, JobFailure::Permanent(_)) || job.attempts >= job.max_attempts;
                if dead {
                    tracing::error!(tenant_id = %job.tenant_id, job_id = %job.job_id, kind = %job.kind,
                        attempts = job.attempts, error = %message, "job is dead");
                    sqlx::query(
                        "UPDATE jobs SET status = 'dead', last_error = $3, locked_at = NULL,
                                locked_by = NULL, updated_at = now()
                         WHERE tenant_id = $1 AND job_id = $2",
                    )
                    .bind(tenant)
                    .bind(job.job_id)
                    .bind(&message)
                    .execute(tx.conn())
                    .await?;
                    metrics::counter!("bridge_jobs_total", "kind" => job.kind.clone(), "outcome" => "dead").increment(1);
                } else {
                    let backoff = self.backoff(job.attempts);
                    let mut run_at = Utc::now()
                        + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::zero());
                    if let JobFailure::Retryable {
                        not_before: Some(not_before),
                        ..
                    } = &failure
                    {
                        run_at = run_at.max(*not_before);
                    }
                    tracing::warn!(tenant_id = %job.tenant_id, job_id = %job.job_id, kind = %job.kind,
                        attempts = job.attempts, max_attempts = job.max_attempts, retry_at = %run_at,
                        error = %message, "job failed; will retry");
                    sqlx::query(
                        "UPDATE jobs SET status = 'pending', run_at = $3, last_error = $4,
                                locked_at = NULL, locked_by = NULL, updated_at = now()
                         WHERE tenant_id = $1 AND job_id = $2",
                    )
                    .bind(tenant)
                    .bind(job.job_id)
                    .bind(run_at)
                    .bind(&message)
                    .execute(tx.conn())
                    .await?;
                    metrics::counter!("bridge_jobs_total", "kind" => job.kind.clone(), "outcome" => "retried").increment(1);
                }
            }
        }
        tx.commit().await
    }

    /// Exponential backoff with full jitter: a uniform delay in [0, min(cap, base × 2^(attempt-1))].
    pub fn backoff(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let ceiling_ms = self
            .config
            .base_backoff_ms
            .saturating_mul(1u64 << exponent)
            .min(self.config.max_backoff_secs.saturating_mul(1000));
        Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
    }

    /// Runs jobs until `shutdown` turns true, polling every `poll_interval_ms` when idle.
    pub async fn run_until_shutdown<H, F>(&self, handler: H, mut shutdown: watch::Receiver<bool>)
    where
        H: Fn(ClaimedJob) -> F,
        F: Future<Output = Result<JobOutcome, JobFailure>>,
    {
        let idle = Duration::from_millis(self.config.poll_interval_ms);
        tracing::info!(worker_id = %self.worker_id, "job runner started");
        while !*shutdown.borrow() {
            let ran = match self.run_once(10, &handler).await {
                Ok(ran) => ran,
                Err(error) => {
                    tracing::error!(%error, "job runner failed to claim or record jobs");
                    0
                }
            };
            if ran == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        tracing::info!(worker_id = %self.worker_id, "job runner stopped");
    }
}
