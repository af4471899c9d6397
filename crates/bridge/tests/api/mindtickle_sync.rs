//! The MindTickle side: per-tenant budget and backoff, batched pushes, per-user retries,
//! reconcile and the sync status.

use std::time::Duration;

use bridge::gateway::JwtKeys;
use mindtickle_emulator::{Fault, RetryAfter};
use serde_json::{Value, json};

use crate::support::{JWT_SECRET, TestApp, okta_user, spawn_app, test_config};

/// Serves the same database with another configuration, and returns its base URL.
async fn serve_with(
    app: &TestApp,
    mut config: bridge::config::Config,
) -> (String, bridge::app::AppState) {
    // The same key as the app that stored the accounts, or their secrets would not open.
    config.mindtickle.credentials_key = app.state.config().mindtickle.credentials_key.clone();
    let keys = JwtKeys::new(
        &secrecy::SecretString::from(JWT_SECRET),
        "enablement-bridge",
        0,
    )
    .unwrap();
    let state = bridge::app::AppState::new(
        app.db.runtime.clone(),
        config,
        keys,
        bridge::server::in_process_bus(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let router = bridge::app::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, state)
}

#[tokio::test]
async fn over_budget_sync_is_queued() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    let alice = app
        .scim_create(&acme, &scim, okta_user("alice.nguyen@acme.example"))
        .await;
    app.run_jobs().await;

    // A budget of one request a minute, and no waiting for it.
    let mut config = test_config();
    config.mindtickle.requests_per_second = 1;
    config.mindtickle.requests_per_minute = 1;
    config.mindtickle.budget_max_wait_ms = 0;
    let (address, _) = serve_with(&app, config).await;
    let token = app.all_scopes_token("acme-a");
    let before = app.emulator.request_count("acme");
    let response = app
        .http
        .post(format!(
            "{address}/api/tenants/acme-a/users/{alice}/sync-progress"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let has_retry_after = response.headers().contains_key("retry-after");
    let queued: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{queued}");
    assert!(has_retry_after);
    assert_eq!(queued["status"], "queued");
    let run_at: chrono::DateTime<chrono::Utc> = queued["run_at"].as_str().unwrap().parse().unwrap();
    assert!(run_at > chrono::Utc::now(), "{queued}");
    // Only what fit the budget was sent (the token exchange); the rest waits for the window.
    assert!(app.emulator.request_count("acme") - before <= 1);

    let status: Value = app
        .http
        .get(format!(
            "{address}/api/tenants/acme-a/users/{alice}/sync-status"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pending = status["pending"].as_array().unwrap();
    assert!(
        pending
            .iter()
            .any(|work| work["kind"] == "progress.sync_user"),
        "{status}"
    );
    assert_eq!(status["in_mindtickle"], true);
    assert_eq!(status["state"], "synced");

    // When the window comes (forced here), the queued job syncs the user.
    sqlx::query("UPDATE jobs SET run_at = now() WHERE kind = 'progress.sync_user'")
        .execute(&app.db.owner)
        .await
        .unwrap();
    app.run_jobs().await;
    let progress = app
        .http
        .get(app.url(&format!("/api/tenants/acme-a/users/{alice}/sync-progress")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(progress.status(), 200);
}

#[tokio::test]
async fn rate_limit_backs_off_one_tenant() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let globex = app.create_tenant("globex-b", "globex").await;
    let acme_scim = app.scim_token(&acme).await;
    let globex_scim = app.scim_token(&globex).await;
    let alice = app
        .scim_create(&acme, &acme_scim, okta_user("alice.nguyen@acme.example"))
        .await;
    let bob = app
        .scim_create(&acme, &acme_scim, okta_user("bob.okafor@acme.example"))
        .await;
    let erin = app
        .scim_create(
            &globex,
            &globex_scim,
            okta_user("erin.walsh@globex.example"),
        )
        .await;
    app.run_jobs().await;

    let mut config = test_config();
    config.mindtickle.budget_max_wait_ms = 0;
    let (address, _) = serve_with(&app, config).await;
    let acme_token = app.all_scopes_token("acme-a");
    app.emulator.inject(Fault::Status {
        status: 429,
        count: 1,
        retry_after: RetryAfter::Seconds(40),
    });
    let first = app
        .http
        .post(format!(
            "{address}/api/tenants/acme-a/users/{alice}/sync-progress"
        ))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let queued: Value = first.json().await.unwrap();
    let run_at: chrono::DateTime<chrono::Utc> = queued["run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        run_at > chrono::Utc::now() + chrono::Duration::seconds(30),
        "{queued}"
    );

    // The tenant backs off: the next call is queued without reaching MindTickle.
    let before = app.emulator.request_count("acme");
    let second = app
        .http
        .post(format!(
            "{address}/api/tenants/acme-a/users/{bob}/sync-progress"
        ))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 202);
    assert_eq!(app.emulator.request_count("acme"), before);

    // Another tenant is not delayed.
    let other = app
        .http
        .post(format!(
            "{address}/api/tenants/globex-b/users/{erin}/sync-progress"
        ))
        .bearer_auth(app.all_scopes_token("globex-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn users_are_pushed_in_batches_once() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    for index in 0..150 {
        app.scim_create(
            &acme,
            &scim,
            okta_user(&format!("user{index:03}@acme.example")),
        )
        .await;
    }
    let before = app.emulator.request_count("acme");
    app.run_jobs().await;
    let calls = app.emulator.request_count("acme") - before;
    // Two upserts (100 + 50), their process checks and a token exchange: far fewer than 150.
    assert!(calls <= 8, "{calls} MindTickle calls for 150 users");
    for index in 0..150 {
        let email = format!("user{index:03}@acme.example");
        assert_eq!(app.emulator.creation_count("acme", &email), 1, "{email}");
    }
    let synced = app
        .owner_count("SELECT count(*) FROM users WHERE mindtickle_state = 'synced'")
        .await;
    assert_eq!(synced, 150);
}

#[tokio::test]
async fn failing_user_retries_then_is_marked_failed() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    app.emulator.inject(Fault::FailEmails {
        company_id: "acme".into(),
        emails: vec!["bad@acme.example".into()],
    });
    let bad = app
        .scim_create(&acme, &scim, okta_user("bad@acme.example"))
        .await;
    app.scim_create(&acme, &scim, okta_user("good@acme.example"))
        .await;
    app.run_jobs().await;

    let (state, attempts, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT mindtickle_state, mindtickle_attempts, mindtickle_error FROM users WHERE user_name = 'bad@acme.example'")
        .fetch_one(&app.db.owner).await.unwrap();
    assert_eq!(state, "pending", "a first failure is retried");
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("rejected"));
    let good: String = sqlx::query_scalar(
        "SELECT mindtickle_state FROM users WHERE user_name = 'good@acme.example'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(good, "synced");

    // Retries come due (forced here) until the attempts run out.
    for _ in 0..10 {
        sqlx::query("UPDATE users SET mindtickle_next_attempt_at = now() WHERE mindtickle_state = 'pending'")
            .execute(&app.db.owner).await.unwrap();
        sqlx::query("UPDATE jobs SET run_at = now() WHERE status = 'pending'")
            .execute(&app.db.owner)
            .await
            .unwrap();
        app.run_jobs().await;
    }
    let status: Value = app
        .http
        .get(app.url(&format!("/api/tenants/acme-a/users/{bad}/sync-status")))
        .bearer_auth(app.all_scopes_token("acme-a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["in_mindtickle"], false);
    assert!(
        status["last_error"].as_str().unwrap().contains("rejected"),
        "{status}"
    );
    let attempts: i32 = sqlx::query_scalar(
        "SELECT mindtickle_attempts FROM users WHERE user_name = 'bad@acme.example'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(attempts, app.state.config().jobs.max_attempts);
}

#[tokio::test]
async fn reconcile_repairs_drift() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    app.scim_create(&acme, &scim, okta_user("alice.nguyen@acme.example"))
        .await;
    app.run_jobs().await;

    // Someone deactivates the user in MindTickle directly.
    let client = app
        .state
        .mindtickle()
        .client(&app.db.runtime, &acme)
        .await
        .unwrap();
    client
        .deactivate_users(&["alice.nguyen@acme.example".to_owned()])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tx = bridge::tenancy::TenantTx::begin(&app.db.runtime, &acme)
        .await
        .unwrap();
    bridge::jobs::enqueue(
        &mut tx,
        bridge::jobs::JobSpec {
            kind: bridge::sync::RECONCILE_JOB,
            payload: json!({}),
            key: Some("reconcile".into()),
            run_at: None,
        },
        3,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.run_jobs().await;

    let user = app
        .emulator
        .user("acme", "alice.nguyen@acme.example")
        .unwrap();
    assert_eq!(
        format!("{:?}", user.user_state).to_ascii_uppercase(),
        "ACTIVE"
    );
    assert_eq!(
        app.emulator
            .creation_count("acme", "alice.nguyen@acme.example"),
        1
    );
    let next = app.owner_count("SELECT count(*) FROM jobs WHERE kind = 'mindtickle.reconcile' AND status = 'pending' AND run_at > now() + interval '23 hours'").await;
    assert_eq!(next, 1, "the next reconcile is scheduled");
}

#[tokio::test]
async fn credentials_are_encrypted_at_rest() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("acme-a", "acme").await;
    let fixtures = mindtickle_emulator::demo_fixtures();
    let company = fixtures.company("acme").unwrap();
    let (secret_key, reporting_password): (String, String) = sqlx::query_as(
        "SELECT secret_key, reporting_password FROM mindtickle_accounts WHERE tenant_id = 'acme-a'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert!(secret_key.starts_with("v1:"), "{secret_key}");
    assert!(!secret_key.contains(&company.key_pairs[0].secret_key));
    assert!(!reporting_password.contains(&company.reporting_password));

    // A row copied into another tenant does not decrypt there.
    let other = app.create_tenant("globex-b", "globex").await;
    sqlx::query("UPDATE mindtickle_accounts SET secret_key = $1 WHERE tenant_id = 'globex-b'")
        .bind(&secret_key)
        .execute(&app.db.owner)
        .await
        .unwrap();
    let Err(error) = app.state.mindtickle().client(&app.db.runtime, &other).await else {
        panic!("a secret sealed for another tenant must not open");
    };
    assert!(error.to_string().contains("cannot be decrypted"), "{error}");
}

#[tokio::test]
async fn stalled_process_is_polled_until_it_finishes() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    app.emulator.inject(Fault::StallProcesses {
        company_id: "acme".into(),
        stalled: true,
    });
    app.scim_create(&acme, &scim, okta_user("slow@acme.example"))
        .await;
    // A few rounds (the push, then checks): the process stays in progress throughout.
    let runner =
        bridge::jobs::JobRunner::new(app.db.runtime.clone(), app.state.config().jobs.clone());
    for _ in 0..5 {
        runner
            .run_once(10, |job| bridge::sync::handle_job(app.state.clone(), job))
            .await
            .unwrap();
    }
    let state: String = sqlx::query_scalar(
        "SELECT mindtickle_state FROM users WHERE user_name = 'slow@acme.example'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(
        state, "pending",
        "a stalled process is neither success nor failure"
    );
    let checks = app.owner_count("SELECT count(*) FROM jobs WHERE kind = 'mindtickle.check_process' AND status = 'pending'").await;
    assert_eq!(checks, 1, "the process keeps being polled");

    app.emulator.inject(Fault::StallProcesses {
        company_id: "acme".into(),
        stalled: false,
    });
    app.run_jobs().await;
    let state: String = sqlx::query_scalar(
        "SELECT mindtickle_state FROM users WHERE user_name = 'slow@acme.example'",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(state, "synced");
    assert_eq!(app.emulator.creation_count("acme", "slow@acme.example"), 1);
}
