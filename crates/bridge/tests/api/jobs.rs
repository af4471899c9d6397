//! Durable jobs: retries with backoff, then the dead state with the reason kept.

use bridge::jobs::{JobRunner, JobSpec, enqueue};
use bridge::tenancy::TenantTx;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn failing_job_retries_then_dies() {
    let Some(app) = spawn_app().await else { return };
    // A tenant with no MindTickle account: pushing its user fails in a retryable way.
    let tenant = crate::support::TestApp::tenant("no-account");
    bridge::tenancy::TenantRegistry::new(app.db.runtime.clone())
        .create(&tenant, "No account")
        .await
        .unwrap();
    // Creating the user enqueues its push; two attempts keep the test short.
    let scim = app.scim_token(&tenant).await;
    app.scim_create(
        &tenant,
        &scim,
        crate::support::okta_user("ann@example.test"),
    )
    .await;
    sqlx::query("UPDATE jobs SET max_attempts = 2")
        .execute(&app.db.owner)
        .await
        .unwrap();
    let mut tx = TenantTx::begin(&app.db.runtime, &tenant).await.unwrap();
    enqueue(
        &mut tx,
        JobSpec {
            kind: "no.such.kind",
            payload: json!({}),
            key: None,
            run_at: None,
        },
        5,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let runner = JobRunner::new(app.db.runtime.clone(), app.state.config().jobs.clone());
    let handler = |job| bridge::sync::handle_job(app.state.clone(), job);
    assert_eq!(runner.run_once(10, handler).await.unwrap(), 2);

    // The unknown kind is dead at once; the push waits for its backoff.
    let states: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT kind, status, attempts FROM jobs ORDER BY kind")
            .fetch_all(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(
        states[0],
        ("mindtickle.push_pending".into(), "pending".into(), 1)
    );
    assert_eq!(states[1], ("no.such.kind".into(), "dead".into(), 1));

    // Backoff in tests is at most 10 ms per attempt; poll a bounded number of times.
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if runner.run_once(10, handler).await.unwrap() > 0 {
            break;
        }
    }
    let (status, attempts, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT status, attempts, last_error FROM jobs WHERE kind = 'mindtickle.push_pending'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(status, "dead");
    assert_eq!(attempts, 2);
    assert!(error.unwrap().contains("no MindTickle account"));
}

#[tokio::test]
async fn pending_job_key_deduplicates() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let mut tx = TenantTx::begin(&app.db.runtime, &tenant).await.unwrap();
    let spec = JobSpec {
        kind: "readiness.refresh",
        payload: json!({}),
        key: Some("tenant".into()),
        run_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
    };
    assert!(enqueue(&mut tx, spec.clone(), 3).await.unwrap().is_some());
    assert!(enqueue(&mut tx, spec, 3).await.unwrap().is_none());
    tx.commit().await.unwrap();
    assert_eq!(app.owner_count("SELECT count(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn claims_rotate_across_tenants() {
    let Some(app) = spawn_app().await else { return };
    let busy = app.create_tenant("busy-a", "acme").await;
    let quiet = app.create_tenant("quiet-b", "globex").await;
    let mut tx = TenantTx::begin(&app.db.runtime, &busy).await.unwrap();
    for _ in 0..30 {
        let spec = JobSpec {
            kind: "noop",
            payload: json!({}),
            key: None,
            run_at: Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
        };
        enqueue(&mut tx, spec, 1).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = TenantTx::begin(&app.db.runtime, &quiet).await.unwrap();
    let spec = JobSpec {
        kind: "noop",
        payload: json!({}),
        key: None,
        run_at: None,
    };
    enqueue(&mut tx, spec, 1).await.unwrap();
    tx.commit().await.unwrap();

    // The quiet tenant's one job is newer than all 30 of the busy tenant's, and still comes
    // within the first claim.
    let runner = JobRunner::new(app.db.runtime.clone(), app.state.config().jobs.clone());
    let claimed = runner.claim(5).await.unwrap();
    assert_eq!(claimed.len(), 5);
    assert!(
        claimed.iter().any(|job| job.tenant_id == quiet),
        "{:?}",
        claimed
            .iter()
            .map(|job| job.tenant_id.to_string())
            .collect::<Vec<_>>()
    );
}
