//! Team readiness reports: average quiz score and course completion rate per tenant, with team
//! and role breakdowns, marked provisional when the progress behind them is stale.

pub mod role_mappings;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AssertSqlSafe;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::events::{self, EventType};
use crate::gateway::{ApiCaller, ApiError, Scope};
use crate::jobs::{self, ClaimedJob, JobFailure, JobOutcome, JobSpec};
use crate::tenancy::{TenantId, TenantTx};

/// Re-syncs stale progress and re-aggregates the tenant's report. Payload: `{}`.
pub const REFRESH_JOB: &str = "readiness.refresh";
/// Delay before a provisional report is refreshed.
const REFRESH_DELAY: chrono::Duration = chrono::Duration::minutes(15);
/// Users whose progress one refresh job re-syncs; the rest wait for the next report.
const REFRESH_BATCH: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(aggregate_handler))
        .routes(routes!(latest_handler))
        .routes(routes!(
            role_mappings::get_mappings,
            role_mappings::put_mappings
        ))
}

/// A tenant's readiness report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct ReadinessReport {
    pub report_id: Uuid,
    pub generated_at: DateTime<Utc>,
    /// Active users in the directory.
    pub active_users: i32,
    /// Active users with at least one quiz score.
    pub users_with_scores: i32,
    /// Scores behind `average_score`: the latest per user and quiz.
    pub score_count: i32,
    /// Mean of `score / max_score × 100` over those scores; null when there are none.
    pub average_score: Option<f64>,
    /// Courses assigned to active users, counted per user.
    pub assigned_courses: i32,
    pub completed_courses: i32,
    /// `completed_courses / assigned_courses`, from 0 to 1; null when nothing is assigned.
    pub completion_rate: Option<f64>,
    /// Active users whose progress was synced at least once.
    pub users_synced: i32,
    /// True when some active user's progress is older than the staleness limit or was never
    /// synced; a refresh is then scheduled.
    pub provisional: bool,
    pub provisional_reason: Option<String>,
    /// One entry per manager with direct reports among the active users, plus one with a null
    /// manager for active users without one.
    #[sqlx(json)]
    pub teams: Vec<TeamReadiness>,
    /// One entry per effective role (`rep`, `manager`, `admin`) present among active users.
    #[sqlx(json)]
    pub roles: Vec<RoleReadiness>,
}

/// Readiness of one manager's direct reports.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamReadiness {
    /// The manager's user id; null for users with no manager in the directory.
    pub manager_user_id: Option<Uuid>,
    pub manager_user_name: Option<String>,
    #[serde(flatten)]
    pub readiness: GroupReadiness,
}

/// Readiness of the active users with one role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleReadiness {
    pub role: String,
    #[serde(flatten)]
    pub readiness: GroupReadiness,
}

/// The figures of a report, for a subset of its users.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GroupReadiness {
    pub users: i64,
    pub score_count: i64,
    pub average_score: Option<f64>,
    pub assigned_courses: i64,
    pub completed_courses: i64,
    pub completion_rate: Option<f64>,
}

/// Running sums behind a `GroupReadiness`.
#[derive(Default)]
struct Figures {
    users: i64,
    score_sum: f64,
    score_count: i64,
    assigned: i64,
    completed: i64,
}

impl Figures {
    fn add(&mut self, row: &UserFigures) {
        self.users += 1;
        self.score_sum += row.score_sum;
        self.score_count += row.score_count;
        self.assigned += row.assigned;
        self.completed += row.completed;
    }

    fn finish(&self) -> GroupReadiness {
        GroupReadiness {
            users: self.users,
            score_count: self.score_count,
            average_score: (self.score_count > 0).then(|| self.score_sum / self.score_count as f64),
            assigned_courses: self.assigned,
            completed_courses: self.completed,
            completion_rate: (self.assigned > 0)
                .then(|| self.completed as f64 / self.assigned as f64),
        }
    }
}

/// One active user's contribution to the breakdowns.
#[derive(sqlx::FromRow)]
struct UserFigures {
    role: String,
    manager_user_id: Option<Uuid>,
    manager_user_name: Option<String>,
    score_sum: f64,
    score_count: i64,
    assigned: i64,
    completed: i64,
}

/// Groups the per-user figures by manager and by role.
fn breakdowns(rows: &[UserFigures]) -> (Vec<TeamReadiness>, Vec<RoleReadiness>) {
    let mut teams: std::collections::BTreeMap<Option<Uuid>, (Option<String>, Figures)> =
        std::collections::BTreeMap::new();
    let mut roles: std::collections::BTreeMap<String, Figures> = std::collections::BTreeMap::new();
    for row in rows {
        let team = teams
            .entry(row.manager_user_id)
            .or_insert_with(|| (row.manager_user_name.clone(), Figures::default()));
        team.1.add(row);
        roles.entry(row.role.clone()).or_default().add(row);
    }
    let teams = teams
        .into_iter()
        .map(
            |(manager_user_id, (manager_user_name, totals))| TeamReadiness {
                manager_user_id,
                manager_user_name,
                readiness: totals.finish(),
            },
        )
        .collect();
    let roles = roles
        .into_iter()
        .map(|(role, totals)| RoleReadiness {
            role,
            readiness: totals.finish(),
        })
        .collect();
    (teams, roles)
}

#[derive(sqlx::FromRow)]
struct Totals {
    active_users: i64,
    users_with_scores: i64,
    score_count: i64,
    average_score: Option<f64>,
    assigned_courses: i64,
    completed_courses: i64,
    users_synced: i64,
    users_fresh: i64,
}

fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Computes, stores and returns the tenant's readiness report, and emits
/// `readiness.aggregated`. A tenant with no data gets null averages and zero counts.
pub async fn aggregate(
    state: &AppState,
    tenant: &TenantId,
) -> Result<ReadinessReport, sqlx::Error> {
    let stale_after = i64::try_from(state.config().readiness.stale_after_secs).unwrap_or(i64::MAX);
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    // Scores come from submitted quiz results and from MindTickle's assessment scores; the latest
    // per (user, quiz) counts, so a retake replaces the earlier attempt.
    let totals = sqlx::query_as::<_, Totals>(
        "WITH active AS (
             SELECT user_id FROM users WHERE tenant_id = $1 AND active
         ),
         attempts AS (
             SELECT user_id, quiz_id, score, max_score, submitted_at AS at
             FROM quiz_results WHERE tenant_id = $1
             UNION ALL
             SELECT user_id, course_id, score, max_score, coalesce(completed_at, synced_at)
             FROM course_progress
             WHERE tenant_id = $1 AND score IS NOT NULL AND max_score > 0
         ),
         latest AS (
             SELECT DISTINCT ON (user_id, quiz_id) user_id, score / max_score * 100 AS percent
             FROM attempts
             WHERE user_id IN (SELECT user_id FROM active)
             ORDER BY user_id, quiz_id, at DESC
         ),
         assigned AS (
             SELECT status FROM course_progress
             WHERE tenant_id = $1 AND user_id IN (SELECT user_id FROM active)
         ),
         syncs AS (
             SELECT synced_at FROM progress_syncs
             WHERE tenant_id = $1 AND user_id IN (SELECT user_id FROM active)
         )
         SELECT
             (SELECT count(*) FROM active) AS active_users,
             (SELECT count(DISTINCT user_id) FROM latest) AS users_with_scores,
             (SELECT count(*) FROM latest) AS score_count,
             (SELECT avg(percent) FROM latest) AS average_score,
             (SELECT count(*) FROM assigned) AS assigned_courses,
             (SELECT count(*) FROM assigned WHERE status = 'completed') AS completed_courses,
             (SELECT count(*) FROM syncs) AS users_synced,
             (SELECT count(*) FROM syncs WHERE synced_at >= now() - make_interval(secs => $2)) AS users_fresh",
    )
    .bind(tenant.as_str())
    .bind(stale_after as f64)
    .fetch_one(tx.conn())
    .await?;

    let figures = sqlx::query_as::<_, UserFigures>(AssertSqlSafe(format!(
        "WITH active AS (
             SELECT u.user_id, u.manager_ref, {role} AS role FROM users u
             WHERE u.tenant_id = $1 AND u.active
         ),
         attempts AS (
             SELECT user_id, quiz_id, score, max_score, submitted_at AS at
             FROM quiz_results WHERE tenant_id = $1
             UNION ALL
             SELECT user_id, course_id, score, max_score, coalesce(completed_at, synced_at)
             FROM course_progress
             WHERE tenant_id = $1 AND score IS NOT NULL AND max_score > 0
         ),
         latest AS (
             SELECT DISTINCT ON (user_id, quiz_id) user_id, score / max_score * 100 AS percent
             FROM attempts
             ORDER BY user_id, quiz_id, at DESC
         )
         SELECT a.role, m.user_id AS manager_user_id, m.user_name AS manager_user_name,
                coalesce((SELECT sum(l.percent) FROM latest l WHERE l.user_id = a.user_id), 0) AS score_sum,
                (SELECT count(*) FROM latest l WHERE l.user_id = a.user_id) AS score_count,
                (SELECT count(*) FROM course_progress p WHERE p.tenant_id = $1 AND p.user_id = a.user_id) AS assigned,
                (SELECT count(*) FROM course_progress p
                 WHERE p.tenant_id = $1 AND p.user_id = a.user_id AND p.status = 'completed') AS completed
         FROM active a
         LEFT JOIN users m ON m.tenant_id = $1 AND m.user_id::text = a.manager_ref",
        role = crate::directory::EFFECTIVE_ROLE_SQL
    )))
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    let (teams, roles) = breakdowns(&figures);

    let completion_rate = (totals.assigned_courses > 0)
        .then(|| totals.completed_courses as f64 / totals.assigned_courses as f64);
    let stale_users = totals.active_users - totals.users_fresh;
    let provisional = stale_users > 0;
    let provisional_reason = provisional.then(|| {
        format!(
            "{stale_users} of {} active users have progress older than {} hours or never synced; a refresh is scheduled",
            totals.active_users,
            stale_after / 3600
        )
    });

    let report = sqlx::query_as::<_, ReadinessReport>(
        "INSERT INTO readiness_reports (tenant_id, report_id, generated_at, active_users, users_with_scores,
             score_count, average_score, assigned_courses, completed_courses, completion_rate,
             users_synced, provisional, provisional_reason, teams, roles)
         VALUES ($1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING report_id, generated_at, active_users, users_with_scores, score_count, average_score,
             assigned_courses, completed_courses, completion_rate, users_synced, provisional, provisional_reason,
             teams, roles",
    )
    .bind(tenant.as_str())
    .bind(Uuid::now_v7())
    .bind(to_i32(totals.active_users))
    .bind(to_i32(totals.users_with_scores))
    .bind(to_i32(totals.score_count))
    .bind(totals.average_score)
    .bind(to_i32(totals.assigned_courses))
    .bind(to_i32(totals.completed_courses))
    .bind(completion_rate)
    .bind(to_i32(totals.users_synced))
    .bind(provisional)
    .bind(&provisional_reason)
    .bind(sqlx::types::Json(&teams))
    .bind(sqlx::types::Json(&roles))
    .fetch_one(tx.conn())
    .await?;

    events::record(
        &mut tx,
        EventType::ReadinessAggregated,
        json!({
            "report_id": report.report_id,
            "average_score": report.average_score,
            "completion_rate": report.completion_rate,
            "provisional": report.provisional,
        }),
    )
    .await?;
    if provisional {
        jobs::enqueue(
            &mut tx,
            JobSpec {
                kind: REFRESH_JOB,
                payload: json!({}),
                key: Some("tenant".into()),
                run_at: Some(Utc::now() + REFRESH_DELAY),
            },
            state.config().jobs.max_attempts,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, report_id = %report.report_id, provisional, "readiness report aggregated");
    Ok(report)
}

pub async fn latest(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Option<ReadinessReport>, sqlx::Error> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let report = sqlx::query_as::<_, ReadinessReport>(
        "SELECT report_id, generated_at, active_users, users_with_scores, score_count, average_score,
             assigned_courses, completed_courses, completion_rate, users_synced, provisional, provisional_reason,
             teams, roles
         FROM readiness_reports WHERE tenant_id = $1
         ORDER BY generated_at DESC, report_id DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Re-syncs the progress of active users whose data is stale, then re-aggregates.
pub async fn refresh(state: &AppState, job: &ClaimedJob) -> Result<JobOutcome, JobFailure> {
    let stale_after = i64::try_from(state.config().readiness.stale_after_secs).unwrap_or(i64::MAX);
    let database = |error: sqlx::Error| JobFailure::Retryable {
        message: format!("database error: {error}"),
        not_before: None,
    };
    let mut tx = TenantTx::begin(state.pool(), &job.tenant_id)
        .await
        .map_err(database)?;
    let stale: Vec<Uuid> = sqlx::query_scalar(
        "SELECT u.user_id FROM users u
         LEFT JOIN progress_syncs p ON p.tenant_id = u.tenant_id AND p.user_id = u.user_id
         WHERE u.tenant_id = $1 AND u.active AND u.email IS NOT NULL
           AND (p.synced_at IS NULL OR p.synced_at < now() - make_interval(secs => $2))
         ORDER BY p.synced_at NULLS FIRST, u.user_id
         LIMIT $3",
    )
    .bind(job.tenant_id.as_str())
    .bind(stale_after as f64)
    .bind(REFRESH_BATCH)
    .fetch_all(tx.conn())
    .await
    .map_err(database)?;
    tx.commit().await.map_err(database)?;

    for user_id in stale {
        match crate::progress::sync_user_progress(state, &job.tenant_id, user_id).await {
            Ok(crate::progress::SyncOutcome::Synced(_)) => {}
            // The users synced so far are fresh now; the rest wait for the budget.
            Ok(crate::progress::SyncOutcome::Deferred { not_before, .. }) => {
                return Ok(JobOutcome::RunAgainAt(not_before));
            }
            Err(error) => {
                return Err(JobFailure::Retryable {
                    message: format!("progress sync of user {user_id} failed: {error}"),
                    not_before: None,
                });
            }
        }
    }
    aggregate(state, &job.tenant_id).await.map_err(database)?;
    Ok(JobOutcome::Done)
}

#[derive(Deserialize)]
pub struct TenantPath {
    #[allow(dead_code)]
    tenant: String,
}

/// Computes and stores the tenant's readiness report and returns it.
#[utoipa::path(
    post, path = "/api/tenants/{tenant}/readiness/aggregate", tag = "Readiness",
    params(("tenant" = String, Path)),
    responses((status = 200, body = ReadinessReport)),
    security(("bearer" = ["analytics:write"]))
)]
pub async fn aggregate_handler(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
) -> Result<Json<ReadinessReport>, ApiError> {
    caller.require(Scope::AnalyticsWrite)?;
    Ok(Json(aggregate(&state, &caller.tenant).await?))
}

/// Returns the tenant's latest readiness report.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/readiness", tag = "Readiness",
    params(("tenant" = String, Path)),
    responses((status = 200, body = ReadinessReport), (status = 404, description = "No report yet")),
    security(("bearer" = ["analytics:read"]))
)]
pub async fn latest_handler(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
) -> Result<Json<ReadinessReport>, ApiError> {
    caller.require(Scope::AnalyticsRead)?;
    latest(&state, &caller.tenant)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(
                "no readiness report yet; POST /api/tenants/{tenant}/readiness/aggregate to compute one"
                    .into(),
            )
        })
}
