//! The OData reporting feed on the admin host, with HTTP Basic auth.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    routes::query_param,
    state::{AppState, Company},
};

/// Columns in the order the CSV output lists them.
const COLUMNS: [&str; 14] = [
    "LearnerEmailId",
    "SeriesId",
    "SeriesName",
    "ModuleId",
    "ModuleName",
    "InvitedOn",
    "StartTime",
    "EndTime",
    "PercentCompleted",
    "Score",
    "MaxScore",
    "HasStarted",
    "IsOverdue",
    "HasFailed",
];

/// Columns `$filter` may compare. The emulator supports only `eq` joined by `and`.
const FILTERABLE: [&str; 5] = [
    "LearnerEmailId",
    "SeriesId",
    "SeriesName",
    "ModuleId",
    "ModuleName",
];

enum Format {
    Json,
    Csv,
}

/// `GET /Odata.svc/LearnerModulePerformances?$filter=...&$format=json|csv&$top=&$skip=`.
pub(crate) async fn learner_module_performances(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut state = app.shared.lock();
    let company_id = basic_auth_company(&headers, state.companies.values())?;
    app.shared.admit(&mut state, &company_id)?;

    let format = match query_param(&query, "$format") {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unsupported $format {other:?}; use json or csv"
            )));
        }
        None if accepts_json(&headers) => Format::Json,
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "The emulator does not serve Atom XML; pass $format=json or $format=csv",
            ));
        }
    };
    let filters = match query_param(&query, "$filter") {
        Some(raw) => parse_filter(raw)?,
        None => Vec::new(),
    };
    let skip = parse_count(&query, "$skip")?.unwrap_or(0);
    let top = parse_count(&query, "$top")?;

    let Some(company) = state.companies.get(&company_id) else {
        return Err(ApiError::unauthorized("Invalid reporting credentials"));
    };
    let rows: Vec<Value> = performance_rows(company)
        .into_iter()
        .filter(|row| {
            filters
                .iter()
                .all(|(column, value)| matches(row, column, value))
        })
        .collect();
    let end = top.map_or(rows.len(), |top| (skip + top).min(rows.len()));
    let page = rows.get(skip.min(end)..end).unwrap_or_default();

    match format {
        Format::Csv => Ok(csv_response(page)),
        Format::Json => {
            let mut d = json!({ "results": page });
            if end < rows.len() {
                d["__next"] = json!(next_link(&app, &query, end));
            }
            Ok(Json(json!({ "d": d })).into_response())
        }
    }
}

fn basic_auth_company<'a>(
    headers: &HeaderMap,
    companies: impl Iterator<Item = &'a Company>,
) -> Result<String, ApiError> {
    let challenge = |message: &str| {
        let mut error = ApiError::unauthorized(message);
        error.basic_challenge = true;
        error
    };
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| {
            challenge("Missing Basic credentials; send the reporting API user and password")
        })?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| challenge("Malformed Basic credentials"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| challenge("Malformed Basic credentials"))?;

    let mut companies = companies;
    companies
        .find(|c| c.fixture.reporting_user == user && c.fixture.reporting_password == password)
        .map(|c| c.fixture.company_id.clone())
        .ok_or_else(|| challenge("Invalid reporting credentials"))
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn parse_count(query: &[(String, String)], name: &str) -> Result<Option<usize>, ApiError> {
    query_param(query, name)
        .map(|raw| {
            raw.parse().map_err(|_| {
                ApiError::bad_request(format!("Invalid {name} {raw:?}: expected a number"))
            })
        })
        .transpose()
}

/// Parses `Column eq 'value' and Column eq 'value'`, with `''` as an escaped quote.
fn parse_filter(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let invalid = |detail: &str| {
        ApiError::bad_request(format!(
            "Invalid $filter {raw:?}: {detail}; the emulator supports Column eq 'value' joined by and"
        ))
    };
    let mut clauses = Vec::new();
    let mut rest = raw.trim_start();
    loop {
        let column_end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let column = &rest[..column_end];
        if !FILTERABLE.contains(&column) {
            return Err(invalid(&format!("column {column:?} cannot be filtered")));
        }
        rest = rest[column_end..].trim_start();
        rest = rest
            .strip_prefix("eq ")
            .ok_or_else(|| invalid("expected eq after the column"))?
            .trim_start();
        rest = rest
            .strip_prefix('\'')
            .ok_or_else(|| invalid("expected a quoted value"))?;

        let mut value = String::new();
        let mut chars = rest.char_indices();
        let consumed = loop {
            match chars.next() {
                Some((i, '\'')) => {
                    if rest[i + 1..].starts_with('\'') {
                        value.push('\'');
                        chars.next();
                    } else {
                        break i + 1;
                    }
                }
                Some((_, c)) => value.push(c),
                None => return Err(invalid("unterminated quoted value")),
            }
        };
        clauses.push((column.to_owned(), value));

        rest = rest[consumed..].trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        rest = rest
            .strip_prefix("and ")
            .ok_or_else(|| invalid("expected and between clauses"))?
            .trim_start();
    }
}

fn matches(row: &Value, column: &str, expected: &str) -> bool {
    let actual = row[column].as_str().unwrap_or_default();
    if column == "LearnerEmailId" {
        actual.eq_ignore_ascii_case(expected)
    } else {
        actual == expected
    }
}

/// Builds one row per activity entry of a learner who exists in the company, in any state.
fn performance_rows(company: &Company) -> Vec<Value> {
    let fixture = &company.fixture;
    let time = |at: Option<DateTime<Utc>>| at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    fixture
        .activity
        .iter()
        .filter(|row| company.user_index(&row.email).is_some())
        .filter_map(|row| {
            let module = fixture.modules.iter().find(|m| m.id == row.module_id)?;
            let series = fixture.series.iter().find(|s| s.id == module.series_id)?;
            Some(json!({
                "LearnerEmailId": row.email,
                "SeriesId": series.id,
                "SeriesName": series.name,
                "ModuleId": module.id,
                "ModuleName": module.name,
                "InvitedOn": time(row.invited_at),
                "StartTime": time(row.started_at),
                "EndTime": time(row.completed_at),
                "PercentCompleted": row.percent_completed,
                "Score": row.score,
                "MaxScore": row.max_score,
                "HasStarted": row.started_at.is_some(),
                "IsOverdue": row.is_overdue,
                "HasFailed": row.has_failed,
            }))
        })
        .collect()
}

fn next_link(app: &AppState, query: &[(String, String)], skip: usize) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(key, _)| key != "$skip")
        .cloned()
        .collect();
    pairs.push(("$skip".to_owned(), skip.to_string()));
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    format!(
        "{}/Odata.svc/LearnerModulePerformances?{}",
        app.shared.urls.admin,
        encoded.join("&")
    )
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~$".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn csv_response(rows: &[Value]) -> Response {
    let mut body = COLUMNS.join(",");
    body.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|column| match &row[column] {
                Value::Null => String::new(),
                Value::String(s) => csv_cell(s),
                other => other.to_string(),
            })
            .collect();
        body.push_str(&cells.join(","));
        body.push_str("\r\n");
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response
}

fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filter_parses_eq_and_escaped_quotes() {
        let clauses =
            parse_filter("LearnerEmailId eq 'o''neil@acme.example' and SeriesId eq '42'").unwrap();
        assert_eq!(
            clauses,
            [
                (
                    "LearnerEmailId".to_owned(),
                    "o'neil@acme.example".to_owned()
                ),
                ("SeriesId".to_owned(), "42".to_owned()),
            ]
        );
    }

    #[test]
    fn filter_rejects_other_operators() {
        let error = parse_filter("Score gt '5'").unwrap_err();
        assert!(error.message.contains("\"Score\""), "{}", error.message);
        assert!(parse_filter("ModuleId ne '1'").is_err());
        assert!(parse_filter("ModuleId eq '1").is_err());
        assert!(parse_filter("ModuleId eq '1' or ModuleId eq '2'").is_err());
    }
}
