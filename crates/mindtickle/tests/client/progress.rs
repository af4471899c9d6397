use chrono::{DateTime, Utc};
use mindtickle::{CourseKind, CourseStatus, StatementVerb};
use mindtickle_emulator::Options;

use crate::harness::{ACME, ALICE, client, options, provision, spawn, upsert};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn demo_learner_progress_maps_status_and_scores() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    provision(&client, &[upsert(ALICE, "Alice Nguyen")]).await;

    let progress = client.learner_progress(ALICE).await.unwrap();

    assert_eq!(progress.len(), 5);
    let by_name = |name: &str| {
        progress
            .iter()
            .find(|p| p.course_name == name)
            .unwrap_or_else(|| panic!("no progress for {name}: {progress:?}"))
    };
    let certification = by_name("Onboarding Certification");
    assert_eq!(certification.kind, CourseKind::Assessment);
    assert_eq!(certification.status, CourseStatus::Completed);
    assert_eq!(certification.score, Some(92.0));
    assert_eq!(certification.max_score, Some(100.0));
    assert_eq!(certification.series_name, "Sales Onboarding");
    assert_eq!(certification.completed_at, Some(at("2026-01-12T14:35:00Z")));

    let fundamentals = by_name("Product Fundamentals");
    assert_eq!(fundamentals.kind, CourseKind::Course);
    assert_eq!(fundamentals.status, CourseStatus::Completed);
    assert_eq!(fundamentals.score, None);

    let pricing = by_name("Pricing Conversations");
    assert_eq!(pricing.status, CourseStatus::InProgress);
    assert_eq!(pricing.percent_completed, Some(40.0));
    assert_eq!(pricing.started_at, Some(at("2026-01-20T08:30:00Z")));
    assert_eq!(pricing.completed_at, None);

    let quiz = by_name("Negotiation Quiz");
    assert_eq!(quiz.status, CourseStatus::NotStarted);
    assert_eq!(quiz.series_name, "Negotiation Mastery");
}

#[tokio::test]
async fn quirky_stored_time_is_corrected() {
    let emulator = spawn(Options {
        stored_quirk: true,
        ..options()
    })
    .await;
    let client = client(&emulator, ACME);
    provision(&client, &[upsert(ALICE, "Alice Nguyen")]).await;

    let statements = client.learner_statements(ALICE).await.unwrap();
    let completed = statements
        .iter()
        .find(|s| s.verb == StatementVerb::Completed)
        .unwrap();
    assert!(completed.stored.unwrap() < at("1971-01-01T00:00:00Z"));

    let first_completed = mindtickle_emulator::demo_fixtures()
        .company(ACME)
        .unwrap()
        .activity
        .iter()
        .find(|row| row.email == ALICE && row.module_id == completed.module_id)
        .unwrap()
        .completed_at;
    let progress = client.learner_progress(ALICE).await.unwrap();
    let entry = progress
        .iter()
        .find(|p| p.course_id == completed.module_id)
        .unwrap();
    assert_eq!(entry.completed_at, first_completed);
}

#[tokio::test]
async fn unknown_learner_has_no_progress() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);

    let progress = client.learner_progress(ALICE).await.unwrap();

    assert!(progress.is_empty(), "{progress:?}");
}
