use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::directory;
use crate::events::{self, EventType};
use crate::gateway::ApiError;
use crate::tenancy::{TenantId, TenantTx};

/// Maximum number of answers in one submission.
pub const MAX_ANSWERS: usize = 500;
/// How far in the future `submitted_at` may be, to allow for clock skew.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// A quiz submission.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuizResultIn {
    pub user_id: Uuid,
    /// The quiz: a MindTickle assessment module id, or the caller's own quiz id.
    pub quiz_id: String,
    pub score: f64,
    pub max_score: f64,
    pub started_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    /// Time spent, in seconds.
    pub duration_seconds: Option<i32>,
    #[serde(default)]
    pub answers: Vec<AnswerIn>,
}

/// One answered question.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    pub question_id: String,
    /// The answer as the quiz recorded it: an option id, a list of them, or free text.
    pub answer: serde_json::Value,
    pub correct: Option<bool>,
}

/// A recorded quiz submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuizResultOut {
    pub result_id: Uuid,
    pub user_id: Uuid,
    pub quiz_id: String,
    pub score: f64,
    pub max_score: f64,
    /// `score / max_score × 100`.
    pub percent: f64,
    pub submitted_at: DateTime<Utc>,
    pub answer_count: usize,
}

fn validate(input: &QuizResultIn) -> Result<(), ApiError> {
    let quiz_id = input.quiz_id.trim();
    if quiz_id.is_empty() || quiz_id.len() > 200 {
        return Err(ApiError::BadRequest(
            "quiz_id must be 1 to 200 characters".into(),
        ));
    }
    if !input.max_score.is_finite() || input.max_score <= 0.0 {
        return Err(ApiError::BadRequest(format!(
            "max_score {} is invalid: expected a number above 0",
            input.max_score
        )));
    }
    if !input.score.is_finite() || input.score < 0.0 || input.score > input.max_score {
        return Err(ApiError::BadRequest(format!(
            "score {} is invalid: expected a number from 0 to max_score ({})",
            input.score, input.max_score
        )));
    }
    if input.submitted_at > Utc::now() + MAX_CLOCK_SKEW {
        return Err(ApiError::BadRequest(format!(
            "submitted_at {} is in the future",
            input.submitted_at
        )));
    }
    if let Some(started_at) = input.started_at
        && started_at > input.submitted_at
    {
        return Err(ApiError::BadRequest(
            "started_at is after submitted_at".into(),
        ));
    }
    if input.duration_seconds.is_some_and(|seconds| seconds < 0) {
        return Err(ApiError::BadRequest(
            "duration_seconds must not be negative".into(),
        ));
    }
    if input.answers.len() > MAX_ANSWERS {
        return Err(ApiError::BadRequest(format!(
            "{} answers sent; at most {MAX_ANSWERS} are accepted",
            input.answers.len()
        )));
    }
    if let Some(position) = input
        .answers
        .iter()
        .position(|answer| answer.question_id.trim().is_empty())
    {
        return Err(ApiError::BadRequest(format!(
            "answers[{position}].question_id is empty"
        )));
    }
    Ok(())
}

/// Stores a quiz submission with its answers and emits `quiz.completed`, in one transaction.
pub async fn record_quiz_result(
    state: &AppState,
    tenant: &TenantId,
    input: QuizResultIn,
) -> Result<QuizResultOut, ApiError> {
    validate(&input)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    // A user of another tenant is invisible here, so it gets the same 404 as an unknown one.
    if directory::get_user(&mut tx, input.user_id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "user {} not found",
            input.user_id
        )));
    }
    let result_id = Uuid::now_v7();
    let quiz_id = input.quiz_id.trim().to_owned();
    sqlx::query(
        "INSERT INTO quiz_results (tenant_id, result_id, user_id, quiz_id, score, max_score,
                                   started_at, submitted_at, duration_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.as_str())
    .bind(result_id)
    .bind(input.user_id)
    .bind(&quiz_id)
    .bind(input.score)
    .bind(input.max_score)
    .bind(input.started_at)
    .bind(input.submitted_at)
    .bind(input.duration_seconds)
    .execute(tx.conn())
    .await?;
    for (position, answer) in input.answers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO quiz_answers (tenant_id, result_id, position, question_id, answer, correct)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.as_str())
        .bind(result_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(answer.question_id.trim())
        .bind(&answer.answer)
        .bind(answer.correct)
        .execute(tx.conn())
        .await?;
    }
    let percent = input.score / input.max_score * 100.0;
    events::record(
        &mut tx,
        EventType::QuizCompleted,
        json!({
            "result_id": result_id,
            "user_id": input.user_id,
            "quiz_id": quiz_id,
            "score": input.score,
            "max_score": input.max_score,
            "percent": percent,
            "submitted_at": input.submitted_at,
        }),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %result_id, user_id = %input.user_id, "quiz result recorded");
    Ok(QuizResultOut {
        result_id,
        user_id: input.user_id,
        quiz_id,
        score: input.score,
        max_score: input.max_score,
        percent,
        submitted_at: input.submitted_at,
        answer_count: input.answers.len(),
    })
}
