use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::tenancy::TenantTx;

/// Largest raw body kept in a dead letter, in bytes. Longer bodies are cut at a character
/// boundary and flagged `body_truncated`.
pub const MAX_DEAD_LETTER_BODY: usize = 64 * 1024;

/// A request the service could not accept, kept for review and replay.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub dead_letter_id: Uuid,
    pub source: String,
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub raw_body: String,
    pub body_truncated: bool,
    pub errors: serde_json::Value,
    pub status: String,
}

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

pub async fn list_dead_letters(tx: &mut TenantTx) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, DeadLetter>(
        "SELECT dead_letter_id, source, request_id, received_at, method, path, raw_body,
                body_truncated, errors, status
         FROM dead_letters WHERE tenant_id = $1 ORDER BY received_at DESC, dead_letter_id",
    )
    .bind(tenant)
    .fetch_all(tx.conn())
    .await
}
