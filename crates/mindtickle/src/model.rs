//! MindTickle's data as the client returns it, and the wire shapes behind it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Id of an asynchronous bulk user process.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub String);

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user to create or update, keyed by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpsert {
    pub email: String,
    pub name: String,
    /// False writes `userState: DEACTIVATED`.
    pub active: bool,
    /// MindTickle profile fields by their short keys (`rg`, `dg`, `dp`, `a_<n>`).
    pub profile: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessState {
    Queued,
    InProgress,
    Success,
    Failed,
}

impl ProcessState {
    pub fn is_finished(self) -> bool {
        matches!(self, ProcessState::Success | ProcessState::Failed)
    }
}

/// A per-user failure inside a bulk process.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessError {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub message: String,
}

/// States of the requested processes, and the per-user errors of those that reported any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessStatusReport {
    pub states: BTreeMap<ProcessId, ProcessState>,
    pub errors: BTreeMap<ProcessId, Vec<ProcessError>>,
}

impl ProcessStatusReport {
    pub fn state(&self, id: &ProcessId) -> Option<ProcessState> {
        self.states.get(id).copied()
    }

    /// True when every listed process reached `SUCCESS` or `FAILED`.
    pub fn all_finished(&self) -> bool {
        self.states.values().all(|state| state.is_finished())
    }
}

/// MindTickle's `userState`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserState {
    Active,
    /// Invited but never signed in.
    Added,
    Deactivated,
    Other(String),
}

impl<'de> Deserialize<'de> for UserState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(match raw.as_str() {
            "ACTIVE" => UserState::Active,
            "ADDED" => UserState::Added,
            "DEACTIVATED" => UserState::Deactivated,
            _ => UserState::Other(raw),
        })
    }
}

/// A user as the v4.0 user search returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub user_state: UserState,
    #[serde(default)]
    pub group_ids: Vec<String>,
    /// Profile values; numbers and booleans are kept in their JSON text form.
    #[serde(default, deserialize_with = "profile_strings")]
    pub profile: BTreeMap<String, String>,
}

fn profile_strings<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(key, value)| match value {
            Value::Null => None,
            Value::String(s) => Some((key, s)),
            other => Some((key, other.to_string())),
        })
        .collect())
}

/// A series (MindTickle's programme of modules).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Series {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A module of a series: a course, quick update, assessment or another type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    pub id: String,
    pub name: String,
    /// `COURSE`, `UPDATE`, `ASSESSMENT`, or another MindTickle type.
    #[serde(default)]
    pub module_type: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CourseKind {
    Course,
    /// MindTickle's `UPDATE` module.
    QuickUpdate,
    Assessment,
    Other(String),
}

impl CourseKind {
    pub fn from_module_type(module_type: &str) -> CourseKind {
        match module_type.to_ascii_uppercase().as_str() {
            "COURSE" => CourseKind::Course,
            "UPDATE" | "QUICK_UPDATE" => CourseKind::QuickUpdate,
            "ASSESSMENT" => CourseKind::Assessment,
            _ => CourseKind::Other(module_type.to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CourseStatus {
    NotStarted,
    InProgress,
    Completed,
}

/// A learner's progress in one module, in this project's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseProgress {
    /// MindTickle module id.
    pub course_id: String,
    pub course_name: String,
    pub series_id: String,
    pub series_name: String,
    pub kind: CourseKind,
    pub status: CourseStatus,
    pub percent_completed: Option<f64>,
    pub score: Option<f64>,
    pub max_score: Option<f64>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The verb of an xAPI statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementVerb {
    NotStarted,
    InProgress,
    Completed,
    Other(String),
}

impl StatementVerb {
    fn parse(raw: &str) -> StatementVerb {
        match raw {
            "not_started" => StatementVerb::NotStarted,
            "in_progress" => StatementVerb::InProgress,
            "completed" => StatementVerb::Completed,
            other => StatementVerb::Other(other.to_owned()),
        }
    }
}

/// One xAPI statement about a learner and a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub module_id: String,
    pub verb: StatementVerb,
    /// The time MindTickle served the statement, not the time of the event.
    pub timestamp: Option<DateTime<Utc>>,
    /// The time of the event as sent, before any correction (see `learner_progress`).
    pub stored: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireStatement {
    verb: WireVerb,
    object: WireObject,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    stored: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct WireVerb {
    #[serde(default)]
    id: String,
    #[serde(default)]
    display: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct WireObject {
    id: String,
}

impl From<WireStatement> for Statement {
    fn from(wire: WireStatement) -> Statement {
        // The display text is the documented field; the last IRI segment is the fallback.
        let verb = wire
            .verb
            .display
            .get("en-US")
            .map(String::as_str)
            .or_else(|| wire.verb.id.rsplit('/').next())
            .unwrap_or_default();
        Statement {
            module_id: wire.object.id,
            verb: StatementVerb::parse(verb),
            timestamp: wire.timestamp,
            stored: wire.stored,
        }
    }
}

/// One row of the OData `LearnerModulePerformances` feed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LearnerModulePerformance {
    #[serde(rename = "LearnerEmailId")]
    pub learner_email: String,
    #[serde(default)]
    pub series_id: String,
    #[serde(default)]
    pub series_name: String,
    pub module_id: String,
    #[serde(default)]
    pub module_name: String,
    #[serde(default, deserialize_with = "odata_time")]
    pub invited_on: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "odata_time")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "odata_time")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_number")]
    pub percent_completed: Option<f64>,
    #[serde(default, deserialize_with = "lenient_number")]
    pub score: Option<f64>,
    #[serde(default, deserialize_with = "lenient_number")]
    pub max_score: Option<f64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub has_started: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_overdue: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub has_failed: bool,
}

/// Reads an OData time as RFC 3339 (`2024-01-31T12:00:00Z`) or the OData v2 JSON form
/// `/Date(<epoch ms>)/`; empty means none.
fn odata_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(millis) = raw
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
    {
        // An offset suffix such as `+0000` may follow the milliseconds.
        let digits = millis.split(['+', '-']).next().unwrap_or(millis);
        let millis: i64 = digits.parse().map_err(serde::de::Error::custom)?;
        return DateTime::from_timestamp_millis(millis)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("time out of range: {raw}")));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    // OData v2 often omits the zone; MindTickle's feed reports UTC.
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| Some(naive.and_utc()))
        .map_err(|e| serde::de::Error::custom(format!("invalid time {raw:?}: {e}")))
}

/// Reads a number sent as a JSON number or a string (OData v2 sends decimals as strings).
fn lenient_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("invalid number {s:?}"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("invalid boolean {s:?}"))),
        },
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a boolean, got {other}"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn performance_row_accepts_odata_v2_forms() {
        let row: LearnerModulePerformance = serde_json::from_value(json!({
            "LearnerEmailId": "a@b.example",
            "ModuleId": "1",
            "StartTime": "/Date(1767225600000)/",
            "EndTime": "2026-01-02T00:00:00",
            "PercentCompleted": "100",
            "Score": 9.5,
            "MaxScore": null,
            "HasStarted": "true",
        }))
        .unwrap();
        assert_eq!(
            row.start_time.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            row.end_time.unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(row.percent_completed, Some(100.0));
        assert_eq!(row.score, Some(9.5));
        assert_eq!(row.max_score, None);
        assert!(row.has_started);
        assert!(!row.has_failed);
    }

    #[test]
    fn statement_verb_falls_back_to_iri_segment() {
        let wire: WireStatement = serde_json::from_value(json!({
            "verb": { "id": "https://example.com/verbs/completed" },
            "object": { "id": "7" },
        }))
        .unwrap();
        assert_eq!(Statement::from(wire).verb, StatementVerb::Completed);
    }
}
