//! Durable jobs in PostgreSQL: enqueued inside tenant transactions, claimed across tenants with
//! `FOR UPDATE SKIP LOCKED`, retried with exponential backoff and full jitter, and marked dead
//! after `max_attempts`.

mod runner;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::tenancy::TenantTx;

pub use runner::{ClaimedJob, JobFailure, JobOutcome, JobRunner};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub kind: &'static str,
    pub payload: Value,
    /// At most one pending job per (tenant, kind, key): a second enqueue with the same key is a
    /// no-op while the first has not started.
    pub key: Option<String>,
    pub run_at: Option<DateTime<Utc>>,
}

/// Enqueues a job in the caller's tenant transaction, so it exists exactly when the change that
/// needs it commits. Returns `None` when a pending job with the same key already exists.
pub async fn enqueue(
    tx: &mut TenantTx,
    spec: JobSpec,
    max_attempts: i32,
) -> Result<Option<Uuid>, sqlx::Error> {
    let job_id = Uuid::now_v7();
    let tenant = tx.tenant().as_str().to_owned();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (tenant_id, job_id, kind, job_key, payload, max_attempts, run_at)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))
         ON CONFLICT (tenant_id, kind, job_key) WHERE job_key IS NOT NULL AND status = 'pending'
         DO NOTHING
         RETURNING job_id",
    )
    .bind(tenant)
    .bind(job_id)
    .bind(spec.kind)
    .bind(spec.key)
    .bind(spec.payload)
    .bind(max_attempts)
    .bind(spec.run_at)
    .fetch_optional(tx.conn())
    .await?;
    Ok(inserted)
}

/// Counts of a tenant's jobs by status, for status pages and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub dead: i64,
}

pub async fn counts(tx: &mut TenantTx) -> Result<JobCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM jobs WHERE tenant_id = $1 GROUP BY status")
            .bind(tx.tenant().as_str().to_owned())
            .fetch_all(tx.conn())
            .await?;
    let mut counts = JobCounts::default();
    for (status, count) in rows {
        match status.as_str() {
            "pending" => counts.pending = count,
            "running" => counts.running = count,
            "succeeded" => counts.succeeded = count,
            "dead" => counts.dead = count,
            _ => {}
        }
    }
    Ok(counts)
}
