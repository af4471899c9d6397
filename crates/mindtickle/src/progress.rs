//! Mapping of MindTickle's statements, reporting rows and catalog to [`CourseProgress`].
//! This is the one place where MindTickle's terms become this project's.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    CourseKind, CourseProgress, CourseStatus, LearnerModulePerformance, Module, Series, Statement,
    StatementVerb,
};

/// Modules by id, each with the first series that lists it.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub modules: HashMap<String, (Module, Series)>,
}

impl Catalog {
    pub fn new(series_modules: Vec<(Series, Vec<Module>)>) -> Catalog {
        let mut modules = HashMap::new();
        for (series, list) in series_modules {
            for module in list {
                modules
                    .entry(module.id.clone())
                    .or_insert_with(|| (module, series.clone()));
            }
        }
        Catalog { modules }
    }
}

/// Undoes the live `stored` quirk: some tenants send the event's epoch seconds as epoch
/// milliseconds, so a 2026 completion reads as January 1970. No real event predates 2000, so
/// anything earlier is scaled back by 1000.
pub(crate) fn corrected_event_time(stored: DateTime<Utc>) -> DateTime<Utc> {
    let cutoff = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
    match cutoff {
        Some(cutoff) if stored < cutoff => {
            DateTime::from_timestamp(stored.timestamp_millis(), 0).unwrap_or(stored)
        }
        _ => stored,
    }
}

fn verb_status(verb: &StatementVerb) -> Option<CourseStatus> {
    match verb {
        StatementVerb::NotStarted => Some(CourseStatus::NotStarted),
        StatementVerb::InProgress => Some(CourseStatus::InProgress),
        StatementVerb::Completed => Some(CourseStatus::Completed),
        StatementVerb::Other(_) => None,
    }
}

/// The furthest state a learner reached in a module, with the event time that goes with it.
struct StatementSummary {
    status: CourseStatus,
    event_at: Option<DateTime<Utc>>,
}

/// Merges statements (status), reporting rows (scores, percentages, times) and the catalog
/// (names, module types) into one entry per module, ordered by module id.
pub(crate) fn merge(
    statements: &[Statement],
    performances: &[LearnerModulePerformance],
    catalog: &Catalog,
) -> Vec<CourseProgress> {
    // The statements contain the learner's whole history, so a module can appear more than
    // once. Keep the furthest state, because MindTickle progress does not move backwards.
    let mut summaries: BTreeMap<&str, StatementSummary> = BTreeMap::new();
    for statement in statements {
        let Some(status) = verb_status(&statement.verb) else {
            tracing::debug!(module_id = %statement.module_id, "ignored statement with unknown verb");
            continue;
        };
        // A statement with no event repeats the serving time in `stored`, so only started or
        // completed states carry an event time.
        let event_at = match status {
            CourseStatus::NotStarted => None,
            _ => statement.stored.map(corrected_event_time),
        };
        let entry = summaries
            .entry(statement.module_id.as_str())
            .or_insert(StatementSummary { status, event_at });
        if status > entry.status {
            *entry = StatementSummary { status, event_at };
        }
    }
    let rows: BTreeMap<&str, &LearnerModulePerformance> = performances
        .iter()
        .map(|row| (row.module_id.as_str(), row))
        .collect();

    let mut module_ids: Vec<&str> = summaries.keys().chain(rows.keys()).copied().collect();
    module_ids.sort_unstable();
    module_ids.dedup();

    module_ids
        .into_iter()
        .map(|module_id| {
            let summary = summaries.get(module_id);
            let row = rows.get(module_id).copied();
            course_progress(module_id, summary, row, catalog)
        })
        .collect()
}

fn course_progress(
    module_id: &str,
    summary: Option<&StatementSummary>,
    row: Option<&LearnerModulePerformance>,
    catalog: &Catalog,
) -> CourseProgress {
    let known = catalog.modules.get(module_id);
    let status = match (summary, row) {
        (Some(summary), _) => summary.status,
        (None, Some(row)) => row_status(row),
        (None, None) => CourseStatus::NotStarted,
    };
    let statement_time = |wanted: CourseStatus| {
        summary
            .filter(|s| s.status == wanted)
            .and_then(|s| s.event_at)
    };

    let percent_completed = row.and_then(|r| r.percent_completed).or(match status {
        CourseStatus::NotStarted => Some(0.0),
        CourseStatus::Completed => Some(100.0),
        CourseStatus::InProgress => None,
    });
    let started_at = row
        .and_then(|r| r.start_time)
        .or_else(|| statement_time(CourseStatus::InProgress));
    let completed_at = match status {
        CourseStatus::Completed => row
            .and_then(|r| r.end_time)
            .or_else(|| statement_time(CourseStatus::Completed)),
        _ => None,
    };

    let (course_name, kind) = match known {
        Some((module, _)) => (
            module.name.clone(),
            CourseKind::from_module_type(&module.module_type),
        ),
        None => (
            row.map(|r| r.module_name.clone()).unwrap_or_default(),
            CourseKind::Other(String::new()),
        ),
    };
    let (series_id, series_name) = match (row, known) {
        (Some(row), _) if !row.series_id.is_empty() => {
            (row.series_id.clone(), row.series_name.clone())
        }
        (_, Some((_, series))) => (series.id.clone(), series.name.clone()),
        _ => (String::new(), String::new()),
    };

    CourseProgress {
        course_id: module_id.to_owned(),
        course_name,
        series_id,
        series_name,
        kind,
        status,
        percent_completed,
        score: row.and_then(|r| r.score),
        max_score: row.and_then(|r| r.max_score),
        started_at,
        completed_at,
    }
}

/// Status from a reporting row, for modules without a statement.
fn row_status(row: &LearnerModulePerformance) -> CourseStatus {
    if row.end_time.is_some() || row.percent_completed.is_some_and(|p| p >= 100.0) {
        CourseStatus::Completed
    } else if row.has_started || row.start_time.is_some() {
        CourseStatus::InProgress
    } else {
        CourseStatus::NotStarted
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn quirky_stored_time_is_scaled_back() {
        let real = at("2026-01-12T14:35:00Z");
        let quirky = DateTime::from_timestamp_millis(real.timestamp()).unwrap();
        assert!(quirky.to_rfc3339().starts_with("1970-01-21"));
        assert_eq!(corrected_event_time(quirky), real);
        assert_eq!(corrected_event_time(real), real);
    }

    #[test]
    fn furthest_verb_wins_over_later_statements() {
        let statement = |verb, stored| Statement {
            module_id: "m1".into(),
            verb,
            timestamp: None,
            stored: Some(at(stored)),
        };
        let statements = [
            statement(StatementVerb::Completed, "2026-01-10T00:00:00Z"),
            statement(StatementVerb::NotStarted, "2026-03-01T00:00:00Z"),
        ];
        let progress = merge(&statements, &[], &Catalog::default());
        assert_eq!(progress.len(), 1);
        assert_eq!(progress[0].status, CourseStatus::Completed);
        assert_eq!(progress[0].completed_at, Some(at("2026-01-10T00:00:00Z")));
        assert_eq!(progress[0].percent_completed, Some(100.0));
    }
}
