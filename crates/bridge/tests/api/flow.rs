//! The main job end to end against real PostgreSQL and the emulator.

use serde_json::{Value, json};

use crate::support::{okta_user, spawn_app};

#[tokio::test]
async fn provision_sync_score_and_aggregate() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let globex = app.create_tenant("globex-b", "globex").await;
    let scim = app.scim_token(&acme).await;
    let mut subscription = app.state.bus().subscribe(acme.clone());
    let mut other = app.state.bus().subscribe(globex.clone());

    let alice = app
        .scim_create(&acme, &scim, okta_user("alice.nguyen@acme.example"))
        .await;
    let bob = app
        .scim_create(&acme, &scim, okta_user("bob.okafor@acme.example"))
        .await;

    // One batch push of both users, then its process check.
    // One batch push of both users, then its process check.
    assert!(app.run_jobs().await >= 2);
    let pushed = app.emulator.users("acme");
    assert_eq!(
        pushed
            .iter()
            .filter(|user| user.email == "alice.nguyen@acme.example")
            .count(),
        1,
        "alice must exist in MindTickle exactly once"
    );
    let states: Vec<String> =
        sqlx::query_scalar("SELECT mindtickle_state FROM users WHERE tenant_id = 'acme-a'")
            .fetch_all(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(states, vec!["synced", "synced"]);
    assert!(
        app.emulator
            .users("globex")
            .iter()
            .all(|user| !user.email.ends_with("@acme.example"))
    );

    let token = app.all_scopes_token("acme-a");
    let never = app
        .http
        .get(app.url(&format!("/api/tenants/acme-a/users/{alice}/sync-progress")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(never.status(), 404);

    let synced: Value = app
        .http
        .post(app.url(&format!("/api/tenants/acme-a/users/{alice}/sync-progress")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let courses = synced["courses"]
        .as_array()
        .unwrap_or_else(|| panic!("no courses in {synced}"));
    assert!(!courses.is_empty(), "{synced}");
    assert!(
        courses.iter().any(|course| course["status"] == "completed"),
        "{synced}"
    );
    assert!(
        courses.iter().any(|course| course["score"].is_number()),
        "{synced}"
    );

    let read: Value = app
        .http
        .get(app.url(&format!("/api/tenants/acme-a/users/{alice}/sync-progress")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["synced_at"], synced["synced_at"]);
    assert_eq!(read["courses"], synced["courses"]);

    let response = app
        .http
        .post(app.url("/api/tenants/acme-a/quiz-results"))
        .bearer_auth(&token)
        .json(
            &json!({"user_id": bob, "quiz_id": "pricing-check", "score": 6, "max_score": 8,
                      "submitted_at": "2026-11-20T10:00:00Z",
                      "answers": [{"question_id": "q1", "answer": "b", "correct": true}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let quiz: Value = response.json().await.unwrap();
    assert_eq!(quiz["percent"], 75.0);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM quiz_answers WHERE tenant_id = 'acme-a'")
            .await,
        1
    );

    let report: Value = app
        .http
        .post(app.url("/api/tenants/acme-a/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["active_users"], 2);
    assert_eq!(report["users_synced"], 1);
    assert_eq!(
        report["provisional"], true,
        "bob was never synced: {report}"
    );
    assert!(
        report["provisional_reason"]
            .as_str()
            .unwrap()
            .contains("1 of 2")
    );
    let assigned = report["assigned_courses"].as_i64().unwrap();
    assert_eq!(assigned, courses.len() as i64);
    let completed = courses
        .iter()
        .filter(|course| course["status"] == "completed")
        .count() as f64;
    let rate = report["completion_rate"].as_f64().unwrap();
    assert!(
        (rate - completed / assigned as f64).abs() < 1e-9,
        "{report}"
    );

    // The expected average: the latest score per (user, quiz) from both sources.
    let mut percents: Vec<f64> = courses
        .iter()
        .filter_map(|course| {
            Some(course["score"].as_f64()? / course["max_score"].as_f64()? * 100.0)
        })
        .collect();
    percents.push(75.0);
    let expected = percents.iter().sum::<f64>() / percents.len() as f64;
    let average = report["average_score"].as_f64().unwrap();
    assert!(
        (average - expected).abs() < 1e-9,
        "average {average}, expected {expected}"
    );
    assert_eq!(report["users_with_scores"], 2);

    // A provisional report schedules its refresh.
    assert_eq!(
        app.owner_count(
            "SELECT count(*) FROM jobs WHERE kind = 'readiness.refresh' AND status = 'pending'"
        )
        .await,
        1
    );

    // The outbox relay publishes acme's events under acme's routing keys only.
    let relay = bridge::events::Relay::new(app.db.runtime.clone(), app.state.bus().clone());
    assert!(relay.drain().await.unwrap() >= 5);
    let mut keys = Vec::new();
    while let Some(envelope) = subscription.try_next() {
        assert_eq!(envelope.tenant, acme);
        keys.push(envelope.routing_key);
    }
    for expected in [
        "tenant.acme-a.user_changed",
        "tenant.acme-a.progress.synced",
        "tenant.acme-a.quiz.completed",
        "tenant.acme-a.readiness.aggregated",
    ] {
        assert!(
            keys.iter().any(|key| key == expected),
            "{expected} not in {keys:?}"
        );
    }
    assert!(other.try_next().is_none(), "globex received acme's events");
    assert_eq!(
        app.owner_count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn deactivation_reaches_mindtickle() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    let id = app
        .scim_create(&acme, &scim, okta_user("carla.mendes@acme.example"))
        .await;
    app.run_jobs().await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let response = app
        .http
        .patch(app.url(&format!("/scim/v2/acme-a/Users/{id}")))
        .bearer_auth(&scim)
        .header("content-type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.run_jobs().await;
    let user = app
        .emulator
        .user("acme", "carla.mendes@acme.example")
        .expect("pushed");
    assert_eq!(
        format!("{:?}", user.user_state).to_ascii_uppercase(),
        "DEACTIVATED"
    );
    let dead = app
        .owner_count("SELECT count(*) FROM jobs WHERE status = 'dead'")
        .await;
    assert_eq!(dead, 0);
}
