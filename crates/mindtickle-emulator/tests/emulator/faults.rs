//! Fault switches and counters, from the library and over the admin control endpoints.

use std::time::{Duration, Instant};

use mindtickle_emulator::{Fault, Options, Region};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, demo_company, fast_processes, spawn};

impl TestApp {
    async fn inject_over_http(&self, fault: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.control("faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn series_list(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.api(Region::Global, "/api/v2/series/list"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn start_upsert(&self, region: Region, token: &str, users: Value) -> String {
        let url = self.api(region, "/services/data/v2.0/mtobjects/Users/upsert");
        let (status, body) = self.post(url, Some(token), json!({ "users": users })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["processIds"][0].as_str().unwrap().to_owned()
    }

    async fn process_state(&self, token: &str, process_id: &str) -> String {
        let url = self.api(
            Region::Global,
            &format!("/services/data/v2.0/process/status?processIds={process_id}"),
        );
        let (_, body) = self.get(url, Some(token)).await;
        body["status"][process_id].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn status_fault_over_http_sends_retry_after() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;

    let (status, _) = app
        .inject_over_http(json!({
            "kind": "status", "status": 503, "count": 2, "retryAfter": { "seconds": 7 }
        }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Control endpoints bypass the queued faults.
    let stats = app.http.get(app.control("stats")).send().await.unwrap();
    assert_eq!(stats.status(), StatusCode::OK);

    for _ in 0..2 {
        let response = app.series_list(&token).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Service temporarily unavailable");
    }
    assert_eq!(app.series_list(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn status_fault_over_http_without_retry_after() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;

    app.inject_over_http(json!({ "kind": "status", "status": 429, "count": 1 }))
        .await;
    let response = app.series_list(&token).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!response.headers().contains_key("retry-after"));
}

async fn timed_series_list(app: &TestApp, token: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let status = app.series_list(token).await.status();
    (status, started.elapsed())
}

#[tokio::test]
async fn delay_fault_slows_next_calls_from_library() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let delay = Duration::from_millis(400);

    app.emulator.inject(Fault::Delay {
        delay_ms: 400,
        count: 2,
    });

    for call in 0..2 {
        let (status, elapsed) = timed_series_list(&app, &token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(elapsed >= delay, "call {call} took {elapsed:?}");
    }
    let (_, elapsed) = timed_series_list(&app, &token).await;
    assert!(elapsed < delay, "third call took {elapsed:?}");
}

#[tokio::test]
async fn delay_fault_trips_client_timeout_over_http() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let (status, _) = app
        .inject_over_http(json!({ "kind": "delay", "delayMs": 1500, "count": 1 }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let error = app
        .http
        .get(app.api(Region::Global, "/api/v2/series/list"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();

    assert!(error.is_timeout(), "{error}");
}

#[tokio::test]
async fn token_ttl_fault_expires_tokens_early() {
    let app = spawn(fast_processes()).await;
    let acme = demo_company("acme");
    let long_lived = app.token_for(&acme).await;

    let (status, _) = app
        .inject_over_http(json!({ "kind": "tokenTtl", "companyId": "acme", "ttlMs": 300 }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let pair = &acme.key_pairs[0];
    let exchange = json!({
        "api_key": pair.api_key, "secret_key": pair.secret_key, "ls_url": acme.ls_url,
    });
    let issued: Value = app
        .token_response(Region::Global, exchange)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(issued["expires_in"], 0);
    let short_lived = issued["token"].as_str().unwrap().to_owned();

    // The switch also applies to the token issued before it, which is now over 300 ms old.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        app.series_list(&short_lived).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.series_list(&long_lived).await.status(),
        StatusCode::FORBIDDEN
    );

    let (status, _) = app
        .inject_over_http(json!({ "kind": "tokenTtl", "companyId": "acme", "ttlMs": null }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.series_list(&long_lived).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_ttl_fault_from_library_is_per_company() {
    let app = spawn(fast_processes()).await;
    let acme = app.token_for(&demo_company("acme")).await;
    let globex = app.token_for(&demo_company("globex")).await;

    app.emulator.inject(Fault::TokenTtl {
        company_id: "acme".into(),
        ttl_ms: Some(0),
    });

    assert_eq!(app.series_list(&acme).await.status(), StatusCode::FORBIDDEN);
    let globex_list = app
        .get(app.api(Region::Us, "/api/v2/series/list"), Some(&globex))
        .await;
    assert_eq!(globex_list.0, StatusCode::OK);
}

#[tokio::test]
async fn stalled_processes_stay_in_progress_until_cleared() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let (status, _) = app
        .inject_over_http(json!({ "kind": "stallProcesses", "companyId": "acme", "stalled": true }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let process_id = app
        .start_upsert(
            Region::Global,
            &token,
            json!([{ "email": "gus.hale@acme.example", "name": "Gus Hale" }]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.process_state(&token, &process_id).await, "IN_PROGRESS");
    assert!(app.emulator.user("acme", "gus.hale@acme.example").is_none());

    app.inject_over_http(
        json!({ "kind": "stallProcesses", "companyId": "acme", "stalled": false }),
    )
    .await;
    assert_eq!(app.process_state(&token, &process_id).await, "SUCCESS");
    assert!(app.emulator.user("acme", "gus.hale@acme.example").is_some());
}

#[tokio::test]
async fn stalled_processes_from_library() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    app.emulator.inject(Fault::StallProcesses {
        company_id: "acme".into(),
        stalled: true,
    });

    let process_id = app
        .start_upsert(
            Region::Global,
            &token,
            json!([{ "email": "gus.hale@acme.example", "name": "Gus Hale" }]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.process_state(&token, &process_id).await, "IN_PROGRESS");

    app.emulator.clear_faults();
    assert_eq!(app.process_state(&token, &process_id).await, "SUCCESS");
}

#[tokio::test]
async fn failing_email_fails_upsert_process() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    app.emulator.inject(Fault::FailEmails {
        company_id: "acme".into(),
        emails: vec!["Hana.Ito@acme.example".into()],
    });

    let process_id = app
        .start_upsert(
            Region::Global,
            &token,
            json!([
                { "email": "hana.ito@acme.example", "name": "Hana Ito" },
                { "email": "ivan.roy@acme.example", "name": "Ivan Roy" },
            ]),
        )
        .await;
    let outcome = app
        .wait_for_process(Region::Global, &token, &process_id)
        .await;

    assert_eq!(outcome["status"][&process_id], "FAILED");
    let errors = outcome["errors"][&process_id].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["email"], "hana.ito@acme.example");
    assert!(app.emulator.user("acme", "hana.ito@acme.example").is_none());
    assert!(app.emulator.user("acme", "ivan.roy@acme.example").is_some());
}

#[tokio::test]
async fn failing_email_over_http_then_cleared() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let (status, _) = app
        .inject_over_http(json!({
            "kind": "failEmails", "companyId": "acme", "emails": ["jo.kim@acme.example"]
        }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let user = json!([{ "email": "jo.kim@acme.example", "name": "Jo Kim" }]);

    let failed = app.start_upsert(Region::Global, &token, user.clone()).await;
    let outcome = app.wait_for_process(Region::Global, &token, &failed).await;
    assert_eq!(outcome["status"][&failed], "FAILED");
    assert_eq!(
        outcome["errors"][&failed][0]["message"],
        "Failed to save user jo.kim@acme.example"
    );

    let response = app.http.delete(app.control("faults")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let retried = app.start_upsert(Region::Global, &token, user).await;
    let outcome = app.wait_for_process(Region::Global, &token, &retried).await;
    assert_eq!(outcome["status"][&retried], "SUCCESS");
    assert_eq!(
        app.emulator.creation_count("acme", "jo.kim@acme.example"),
        1
    );
}

/// Returns the `nextRecordsUrl` of globex's first one-user page of users.
async fn globex_next_page(app: &TestApp, token: &str) -> String {
    let url = app.api(Region::Us, "/services/data/v4.0/mtobjects/Users?limit=1");
    let (status, page) = app.post(url, Some(token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    page["nextRecordsUrl"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn global_continuation_can_be_switched_off() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("globex")).await;
    app.upsert(
        Region::Us,
        &token,
        json!([
            { "email": "kai.moss@globex.example", "name": "Kai Moss" },
            { "email": "lia.chen@globex.example", "name": "Lia Chen" },
        ]),
    )
    .await;

    let quirky = globex_next_page(&app, &token).await;
    assert!(quirky.starts_with(&app.emulator.api_url(Region::Global)));
    let (status, _) = app.get(quirky, Some(&token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let (status, _) = app
        .inject_over_http(
            json!({ "kind": "globalContinuation", "companyId": "globex", "enabled": false }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let regional = globex_next_page(&app, &token).await;
    assert!(regional.starts_with(&app.emulator.api_url(Region::Us)));
    let (status, page) = app.get(regional, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["users"][0]["email"], "lia.chen@globex.example");
    assert_eq!(page["done"], true);
}

#[tokio::test]
async fn global_continuation_off_by_option_for_statements() {
    let app = spawn(Options {
        global_continuation: false,
        ..fast_processes()
    })
    .await;
    let token = app.token_for(&demo_company("globex")).await;
    let learner = "mailto:erin.walsh@globex.example";
    app.upsert(
        Region::Us,
        &token,
        json!([{ "email": "erin.walsh@globex.example", "name": "Erin Walsh" }]),
    )
    .await;

    let response = app
        .http
        .get(app.api(Region::Us, "/services/data/v4.0/xapi/statements"))
        .query(&[
            ("agent", json!({ "mbox": learner }).to_string()),
            ("limit", "1".to_owned()),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page: Value = response.json().await.unwrap();
    let more = page["more"].as_str().unwrap_or_default();
    assert!(
        more.starts_with(&app.emulator.api_url(Region::Us)),
        "{page}"
    );

    app.emulator.inject(Fault::GlobalContinuation {
        company_id: "globex".into(),
        enabled: true,
    });
    let page: Value = app
        .http
        .get(app.api(Region::Us, "/services/data/v4.0/xapi/statements"))
        .query(&[
            ("agent", json!({ "mbox": learner }).to_string()),
            ("limit", "1".to_owned()),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let more = page["more"].as_str().unwrap();
    assert!(more.starts_with(&app.emulator.api_url(Region::Global)));
}

#[tokio::test]
async fn stats_count_requests_and_creations() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let user = json!([{ "email": "max.rue@acme.example", "name": "Max Rue" }]);
    app.upsert(Region::Global, &token, user.clone()).await;
    app.upsert(Region::Global, &token, user).await;
    let (status, _) = app
        .get(app.api(Region::Us, "/api/v2/series/list"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let stats: Value = app
        .http
        .get(app.control("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let acme = &stats["companies"]["acme"];
    assert_eq!(acme["requestCount"], app.emulator.request_count("acme"));
    assert_eq!(acme["rejectedCount"], 0);
    assert_eq!(acme["tokenRequestCount"], 1);
    assert_eq!(acme["userCreations"], json!({ "max.rue@acme.example": 1 }));
    assert_eq!(
        app.emulator.creation_count("acme", "MAX.RUE@acme.example"),
        1
    );
    assert_eq!(
        app.emulator.creation_count("acme", "nobody@acme.example"),
        0
    );
    assert_eq!(stats["companies"]["globex"]["requestCount"], 0);
    assert_eq!(
        app.emulator.stats()["acme"].request_count,
        app.emulator.request_count("acme")
    );
}

#[tokio::test]
async fn fault_endpoint_rejects_invalid_faults() {
    let app = spawn(fast_processes()).await;
    let cases = [
        (json!({ "kind": "meteor" }), "unknown variant"),
        (
            json!({ "kind": "status", "status": 200, "count": 1 }),
            "not an error status",
        ),
        (
            json!({ "kind": "delay", "delayMs": 60001, "count": 1 }),
            "exceeds the maximum",
        ),
        (
            json!({ "kind": "stallProcesses", "companyId": "initech", "stalled": true }),
            "not in the fixtures",
        ),
        (
            json!({ "kind": "tokenTtl", "companyId": "acme", "ttl": 5 }),
            "unknown field",
        ),
    ];

    for (fault, expected) in cases {
        let (status, body) = app.inject_over_http(fault.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fault}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{fault}: {message}");
    }
}
