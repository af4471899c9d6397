//! Content catalog (series and modules) and learner progress as xAPI statements.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    fixtures::{ActivityFixture, ActivityState, UserState},
    routes::{
        auth::authenticate, continuation_base, decode_cursor, encode_cursor, parse_body,
        parse_limit, query_param,
    },
    state::{AppState, ProcessAction},
};

/// MindTickle rejects larger pages of statements with 400.
const MAX_STATEMENTS_PAGE: usize = 20;

/// Maximum learners per assignment request, the same cap as user upserts.
// NOTE: proposed; the real limit of content assignment is not public.
const MAX_ASSIGN_BATCH: usize = 100;

/// `GET /api/v2/series/list`: every series of the company, unpaged.
pub(crate) async fn list_series(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let series = state
        .companies
        .get(&company_id)
        .map(|c| c.fixture.series.as_slice())
        .unwrap_or_default();
    let hits: Vec<Value> = series
        .iter()
        .map(|s| json!({ "id": s.id, "name": s.name, "description": s.description }))
        .collect();
    Ok(Json(json!({ "totalHits": hits.len(), "hits": hits })))
}

/// `GET /api/v2/series/{series_id}/list`: the modules of one series, unpaged.
pub(crate) async fn list_modules(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(series_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let Some(company) = state.companies.get(&company_id) else {
        return Err(ApiError::not_found(format!(
            "Series not found: {series_id}"
        )));
    };
    if !company.fixture.series.iter().any(|s| s.id == series_id) {
        return Err(ApiError::not_found(format!(
            "Series not found: {series_id}"
        )));
    }
    let hits: Vec<Value> = company
        .fixture
        .modules
        .iter()
        .filter(|m| m.series_id == series_id)
        .map(|m| {
            json!({
                "id": m.id,
                "name": m.name,
                "moduleType": m.module_type,
                "description": m.description,
            })
        })
        .collect();
    Ok(Json(json!({ "totalHits": hits.len(), "hits": hits })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignRequest {
    identifier_type: Option<String>,
    #[serde(default)]
    learners: Vec<Learner>,
}

#[derive(Debug, Deserialize)]
struct Learner {
    identifier: String,
}

/// `POST /api/v2/series/{series_id}/learners`: assigns every module of a series to learners
/// by email, as a bulk process. Each learner must exist.
// NOTE: proposed route and body, modelled on the v1 SDK's `addLearners` request.
pub(crate) async fn assign_learners(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(series_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let request: AssignRequest = parse_body(&body)?;
    match request.identifier_type.as_deref() {
        Some("EMAIL") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unsupported identifierType {other:?}; use EMAIL"
            )));
        }
        None => return Err(ApiError::bad_request("missing parameter identifierType")),
    }
    let count = request.learners.len();
    if count == 0 {
        return Err(ApiError::bad_request(
            "learners must contain at least one entry",
        ));
    }
    if count > MAX_ASSIGN_BATCH {
        return Err(ApiError::bad_request(format!(
            "learners has {count} entries; at most {MAX_ASSIGN_BATCH} are allowed per request, so split it into batches"
        )));
    }
    let series_exists = state
        .companies
        .get(&company_id)
        .is_some_and(|c| c.fixture.series.iter().any(|s| s.id == series_id));
    if !series_exists {
        return Err(ApiError::not_found(format!(
            "Series not found: {series_id}"
        )));
    }

    let action = ProcessAction::Assign {
        series_id,
        emails: request.learners.into_iter().map(|l| l.identifier).collect(),
    };
    let process_id = state.start_process(&company_id, action);
    let body = Json(json!({ "processIds": [process_id] }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

#[derive(Debug, Serialize, Deserialize)]
struct StatementCursor {
    company_id: String,
    email: String,
    offset: usize,
    limit: usize,
}

#[derive(Debug, Deserialize)]
struct Agent {
    mbox: String,
}

/// `GET /services/data/v4.0/xapi/statements?agent={"mbox":"mailto:..."}&limit=`, continued
/// with `more=`.
pub(crate) async fn statements(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let more = query_param(&query, "more");
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, more.is_some())?;

    let cursor = match more {
        Some(raw) => {
            let cursor: StatementCursor = decode_cursor(raw)?;
            if cursor.company_id != company_id {
                return Err(ApiError::bad_request(
                    "Invalid cursor; restart the listing from the first page",
                ));
            }
            cursor
        }
        None => StatementCursor {
            company_id,
            email: agent_email(&query)?,
            offset: 0,
            limit: parse_limit(&query, MAX_STATEMENTS_PAGE, MAX_STATEMENTS_PAGE)?,
        },
    };

    let Some(company) = state.companies.get(&cursor.company_id) else {
        return Ok(Json(json!({ "statements": [] })));
    };
    // Only active users have progress; an unknown or deactivated learner reads as no history.
    let active = company
        .user_index(&cursor.email)
        .is_some_and(|i| company.users[i].user_state == UserState::Active);
    let rows: Vec<&ActivityFixture> = if active {
        company
            .fixture
            .activity
            .iter()
            .filter(|row| row.email.eq_ignore_ascii_case(&cursor.email))
            .collect()
    } else {
        Vec::new()
    };

    let served_at = Utc::now();
    let end = (cursor.offset + cursor.limit).min(rows.len());
    let statements: Vec<Value> = rows
        .get(cursor.offset..end)
        .unwrap_or_default()
        .iter()
        .map(|row| {
            statement(
                &company.fixture.company_id,
                row,
                served_at,
                app.shared.options.stored_quirk,
            )
        })
        .collect();

    if end >= rows.len() {
        return Ok(Json(json!({ "statements": statements })));
    }
    let next = StatementCursor {
        offset: end,
        ..cursor
    };
    // Like nextRecordsUrl, `more` points at the global host whatever the tenant's region.
    let more = format!(
        "{}/services/data/v4.0/xapi/statements?more={}",
        continuation_base(&app, company),
        encode_cursor(&next)
    );
    Ok(Json(json!({ "statements": statements, "more": more })))
}

fn agent_email(query: &[(String, String)]) -> Result<String, ApiError> {
    let raw = query_param(query, "agent")
        .ok_or_else(|| ApiError::bad_request("missing parameter agent"))?;
    let agent: Agent = serde_json::from_str(raw).map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid agent {raw:?}; expected {{\"mbox\":\"mailto:<email>\"}}"
        ))
    })?;
    agent
        .mbox
        .strip_prefix("mailto:")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("Invalid agent mbox; expected mailto:<email>"))
}

/// Builds one statement. `timestamp` is the time the request was served and `stored` the time
/// of the event, as MindTickle reports them.
fn statement(
    company_id: &str,
    row: &ActivityFixture,
    served_at: DateTime<Utc>,
    stored_quirk: bool,
) -> Value {
    let event_at = match row.state {
        ActivityState::Completed => row.completed_at,
        ActivityState::InProgress => row.started_at,
        ActivityState::NotStarted => None,
    };
    let stored = match event_at {
        // The live quirk: the event's epoch seconds read back as epoch milliseconds.
        Some(at) if stored_quirk => DateTime::from_timestamp_millis(at.timestamp()).unwrap_or(at),
        Some(at) => at,
        // A statement with no event repeats the serving time.
        None => served_at,
    };
    let verb = row.state.verb();
    json!({
        "id": statement_id(company_id, &row.email, &row.module_id),
        "actor": { "objectType": "Agent", "mbox": format!("mailto:{}", row.email) },
        "verb": {
            // NOTE: the verb IRI MindTickle uses is not public; clients should read the display.
            "id": format!("https://www.mindtickle.com/xapi/verbs/{verb}"),
            "display": { "en-US": verb },
        },
        "object": { "objectType": "Activity", "id": row.module_id },
        "timestamp": served_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "stored": stored.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// Derives a stable UUID-shaped id from the learner and module, so repeated reads match.
fn statement_id(company_id: &str, email: &str, module_id: &str) -> String {
    // 128-bit FNV-1a; any stable hash works since the id only has to be repeatable.
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for byte in company_id
        .bytes()
        .chain([0])
        .chain(email.to_ascii_lowercase().bytes())
        .chain([0])
        .chain(module_id.bytes())
    {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    uuid::Uuid::from_u128(hash).hyphenated().to_string()
}
