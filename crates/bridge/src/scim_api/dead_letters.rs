use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::tenancy::TenantTx;

/// Largest raw body kept in a dead letter, in bytes. Longer bodies are cut at a character
/// boundary and flagged `body_truncated`.
pub const MAX_DEAD_LETTER_BODY: usize = 64 * 1024;

/// A request the service could not accept, kept for review and replay.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    pub dead_letter_id: Uuid,
    /// `scim` for a SCIM request, `webhook` for an HR webhook event or batch.
    pub source: String,
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub raw_body: String,
    pub body_truncated: bool,
    /// The SCIM error of the first rejection, or of the last failed replay.
    #[schema(value_type = Object)]
    pub errors: serde_json::Value,
    pub status: String,
    pub replay_attempts: i32,
    pub last_replay_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The API token subject, or `cli`, that replayed or discarded the letter.
    pub resolved_by: Option<String>,
    /// The user or group a successful replay created or changed.
    pub resource_id: Option<Uuid>,
}

const DEAD_LETTER_COLUMNS: &str = "dead_letter_id, source, request_id, received_at, method, path,
     raw_body, body_truncated, errors, status, replay_attempts, last_replay_at, resolved_at,
     resolved_by, resource_id";

pub struct NewDeadLetter<'a> {
    pub source: &'a str,
    pub request_id: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    pub errors: serde_json::Value,
}

pub async fn store_dead_letter(
    tx: &mut TenantTx,
    letter: NewDeadLetter<'_>,
) -> Result<Uuid, sqlx::Error> {
    let text = String::from_utf8_lossy(letter.body);
    let truncated = text.len() > MAX_DEAD_LETTER_BODY;
    let mut end = text.len().min(MAX_DEAD_LETTER_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dead_letter_id = Uuid::now_v7();
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query(
        "INSERT INTO dead_letters (tenant_id, dead_letter_id, source, request_id, method, path,
                                   raw_body, body_truncated, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant)
    .bind(dead_letter_id)
    .bind(letter.source)
    .bind(letter.request_id)
    .bind(letter.method)
    .bind(letter.path)
    .bind(&text[..end])
    .bind(truncated)
    .bind(letter.errors)
    .execute(tx.conn())
    .await?;
    metrics::counter!("bridge_dead_letters_total", "source" => letter.source.to_owned())
        .increment(1);
    Ok(dead_letter_id)
}

/// Lists the tenant's dead letters, newest first, optionally only those with `status` and at
/// most `limit` of them.
pub async fn list_dead_letters(
    tx: &mut TenantTx,
    status: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, DeadLetter>(AssertSqlSafe(format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters
         WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY received_at DESC, dead_letter_id DESC
         LIMIT $3"
    )))
    .bind(tenant)
    .bind(status)
    .bind(limit)
    .fetch_all(tx.conn())
    .await
}

impl DeadLetter {
    /// The statuses a letter moves through: `new` until an operator replays or discards it.
    /// `replaying` is held only while a replay runs.
    pub const STATUSES: [&'static str; 4] = ["new", "replaying", "replayed", "discarded"];

    /// Stores a rejected HR webhook event, or a whole webhook body that could not be read as a
    /// batch, as a `webhook` dead letter.
    pub async fn store_webhook(
        tx: &mut TenantTx,
        request_id: Option<&str>,
        path: &str,
        body: &[u8],
        errors: serde_json::Value,
    ) -> Result<Uuid, sqlx::Error> {
        store_dead_letter(
            tx,
            NewDeadLetter {
                source: "webhook",
                request_id,
                method: "POST",
                path,
                body,
                errors,
            },
        )
        .await
    }

    pub async fn find(
        tx: &mut TenantTx,
        dead_letter_id: Uuid,
    ) -> Result<Option<DeadLetter>, sqlx::Error> {
        let tenant = tx.tenant().as_str().to_owned();
        sqlx::query_as::<_, DeadLetter>(AssertSqlSafe(format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters
             WHERE tenant_id = $1 AND dead_letter_id = $2"
        )))
        .bind(tenant)
        .bind(dead_letter_id)
        .fetch_optional(tx.conn())
        .await
    }

    /// Moves a `new` letter to `replaying` and returns it, or returns `None` when the letter is
    /// in another state. A `replaying` claim older than `stale_after_secs` belonged to a replay
    /// that never finished (a crash or a timeout) and is taken over.
    pub async fn claim_for_replay(
        tx: &mut TenantTx,
        dead_letter_id: Uuid,
        stale_after_secs: f64,
    ) -> Result<Option<DeadLetter>, sqlx::Error> {
        let tenant = tx.tenant().as_str().to_owned();
        sqlx::query_as::<_, DeadLetter>(AssertSqlSafe(format!(
            "UPDATE dead_letters
             SET status = 'replaying', replay_attempts = replay_attempts + 1, last_replay_at = now()
             WHERE tenant_id = $1 AND dead_letter_id = $2
               AND (status = 'new'
                    OR (status = 'replaying' AND last_replay_at < now() - make_interval(secs => $3)))
             RETURNING {DEAD_LETTER_COLUMNS}"
        )))
        .bind(tenant)
        .bind(dead_letter_id)
        .bind(stale_after_secs)
        .fetch_optional(tx.conn())
        .await
    }

    /// Marks a claimed letter `replayed`. Returns false when the claim was lost meanwhile.
    pub async fn finish_replay(
        tx: &mut TenantTx,
        dead_letter_id: Uuid,
        resource_id: Option<Uuid>,
        resolved_by: &str,
    ) -> Result<bool, sqlx::Error> {
        let tenant = tx.tenant().as_str().to_owned();
        let updated = sqlx::query(
            "UPDATE dead_letters
             SET status = 'replayed', resolved_at = now(), resolved_by = $3, resource_id = $4
             WHERE tenant_id = $1 AND dead_letter_id = $2 AND status = 'replaying'",
        )
        .bind(tenant)
        .bind(dead_letter_id)
        .bind(resolved_by)
        .bind(resource_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Returns a claimed letter to `new` after a failed replay. With `errors`, they replace the
    /// stored ones, so the letter shows why the latest attempt failed.
    pub async fn release_replay(
        tx: &mut TenantTx,
        dead_letter_id: Uuid,
        errors: Option<serde_json::Value>,
    ) -> Result<(), sqlx::Error> {
        let tenant = tx.tenant().as_str().to_owned();
        sqlx::query(
            "UPDATE dead_letters SET status = 'new', errors = coalesce($3, errors)
             WHERE tenant_id = $1 AND dead_letter_id = $2 AND status = 'replaying'",
        )
        .bind(tenant)
        .bind(dead_letter_id)
        .bind(errors)
        .execute(tx.conn())
        .await?;
        Ok(())
    }

    /// Marks a `new` letter `discarded` and returns it, or returns `None` when the letter is in
    /// another state.
    pub async fn discard(
        tx: &mut TenantTx,
        dead_letter_id: Uuid,
        resolved_by: &str,
    ) -> Result<Option<DeadLetter>, sqlx::Error> {
        let tenant = tx.tenant().as_str().to_owned();
        sqlx::query_as::<_, DeadLetter>(AssertSqlSafe(format!(
            "UPDATE dead_letters SET status = 'discarded', resolved_at = now(), resolved_by = $3
             WHERE tenant_id = $1 AND dead_letter_id = $2 AND status = 'new'
             RETURNING {DEAD_LETTER_COLUMNS}"
        )))
        .bind(tenant)
        .bind(dead_letter_id)
        .bind(resolved_by)
        .fetch_optional(tx.conn())
        .await
    }
}
