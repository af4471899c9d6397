//! Emulator behaviour seen over HTTP on loopback ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod generator;
mod legacy_jwt;
mod routes;

use std::time::Duration;

use mindtickle_emulator::{
    CompanyFixture, Emulator, Fixtures, Options, RateLimitProfile, Region, demo_fixtures,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct TestApp {
    emulator: Emulator,
    http: reqwest::Client,
}

async fn spawn(options: Options) -> TestApp {
    spawn_with(demo_fixtures(), options).await
}

async fn spawn_with(fixtures: Fixtures, options: Options) -> TestApp {
    // reqwest with `rustls-no-provider` panics on construction without a crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    TestApp {
        emulator: Emulator::start(fixtures, options).await.unwrap(),
        http: reqwest::Client::new(),
    }
}

/// Options with no rate limit and bulk processes that finish after 30 ms.
fn fast_processes() -> Options {
    Options {
        process_delay: Duration::from_millis(30),
        ..no_limit()
    }
}

fn demo_company(company_id: &str) -> CompanyFixture {
    demo_fixtures()
        .companies
        .into_iter()
        .find(|c| c.company_id == company_id)
        .unwrap()
}

fn no_limit() -> Options {
    Options {
        rate_limit: RateLimitProfile::Off,
        ..Options::default()
    }
}

impl TestApp {
    async fn token_response(&self, region: Region, body: Value) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/services/data/auth_token",
                self.emulator.api_url(region)
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn acme_token(&self) -> String {
        let company = demo_fixtures().companies.remove(0);
        let pair = &company.key_pairs[0];
        let body = json!({
            "api_key": pair.api_key,
            "secret_key": pair.secret_key,
            "ls_url": company.ls_url,
        });
        let response: Value = self
            .token_response(Region::Global, body)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(response["expires_in"], 3600);
        response["token"].as_str().unwrap().to_owned()
    }

    /// Exchanges the first key pair of a company for a token on the host of its region.
    async fn token_for(&self, company: &CompanyFixture) -> String {
        let pair = &company.key_pairs[0];
        let body = json!({
            "api_key": pair.api_key,
            "secret_key": pair.secret_key,
            "ls_url": company.ls_url,
        });
        let response = self.token_response(company.region, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    fn api(&self, region: Region, path: &str) -> String {
        format!("{}{path}", self.emulator.api_url(region))
    }

    fn control(&self, path: &str) -> String {
        format!("{}/__emulator/{path}", self.emulator.admin_url())
    }

    async fn post(&self, url: String, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Starts an upsert and waits until its process finishes; returns the process id.
    async fn upsert(&self, region: Region, token: &str, users: Value) -> String {
        let url = self.api(region, "/services/data/v2.0/mtobjects/Users/upsert");
        let (status, body) = self.post(url, Some(token), json!({ "users": users })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let process_id = body["processIds"][0].as_str().unwrap().to_owned();
        self.wait_for_process(region, token, &process_id).await;
        process_id
    }

    /// Polls a process until it reports SUCCESS or FAILED, for at most five seconds, and
    /// returns the whole status response.
    async fn wait_for_process(&self, region: Region, token: &str, process_id: &str) -> Value {
        let url = self.api(
            region,
            &format!("/services/data/v2.0/process/status?processIds={process_id}"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.get(url.clone(), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let state = body["status"][process_id].as_str().unwrap();
            if state == "SUCCESS" || state == "FAILED" {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process {process_id} still {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, url: String, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(response.headers().contains_key("x-request-id"));
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn statements_limit_over_twenty_is_rejected() {
    let app = spawn(no_limit()).await;
    let token = app.acme_token().await;

    let url = format!(
        "{}/services/data/v4.0/xapi/statements?agent={}&limit=21",
        app.emulator.api_url(Region::Global),
        "%7B%22mbox%22%3A%22mailto%3Aalice.nguyen%40acme.example%22%7D"
    );
    let (status, body) = app.get(url, Some(&token)).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Limit cannot be greater than 20!");
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn token_request_without_ls_url_is_rejected() {
    let app = spawn(no_limit()).await;

    let response = app
        .token_response(
            Region::Global,
            json!({ "api_key": "k", "secret_key": "s", "company_id": "1" }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "missing parameter ls_url" }));
}

#[tokio::test]
async fn token_request_with_bad_secret_is_unauthorized() {
    let app = spawn(no_limit()).await;

    let response = app
        .token_response(
            Region::Global,
            json!({ "api_key": "k", "secret_key": "s", "ls_url": "acme.mindtickle.com" }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Invalid API key or secret");
}

#[tokio::test]
async fn token_request_in_wrong_region_is_not_found() {
    let app = spawn(no_limit()).await;

    let response = app
        .token_response(
            Region::Us,
            json!({ "api_key": "k", "secret_key": "s", "ls_url": "acme.mindtickle.com" }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Learning Site not found!");
}

#[tokio::test]
async fn bearer_failures_are_rejected() {
    let app = spawn(no_limit()).await;
    let token = app.acme_token().await;
    let global = format!(
        "{}/api/v2/series/list",
        app.emulator.api_url(Region::Global)
    );
    let us = format!("{}/api/v2/series/list", app.emulator.api_url(Region::Us));

    assert_eq!(
        app.get(global.clone(), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(global.clone(), Some("bogus")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get(us, Some(&token)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(global.clone(), Some(&token)).await.0,
        StatusCode::OK
    );

    app.emulator.expire_tokens("acme");
    assert_eq!(app.get(global, Some(&token)).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn expired_token_status_is_configurable() {
    let app = spawn(Options {
        expired_token_status: 401,
        ..no_limit()
    })
    .await;
    let token = app.acme_token().await;
    app.emulator.expire_tokens("acme");

    let url = format!(
        "{}/api/v2/series/list",
        app.emulator.api_url(Region::Global)
    );
    assert_eq!(app.get(url, Some(&token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_route_has_gateway_message() {
    let app = spawn(no_limit()).await;

    let url = format!("{}/v2/users", app.emulator.api_url(Region::Global));
    let (status, body) = app.get(url, None).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no Route matched with those values");
}

#[tokio::test]
async fn odata_filters_by_learner_with_basic_auth() {
    let app = spawn(no_limit()).await;
    let token = app.acme_token().await;
    let upsert =
        json!({ "users": [{ "email": "carla.mendes@acme.example", "name": "Carla Mendes" }] });
    let accepted = app
        .http
        .post(format!(
            "{}/services/data/v2.0/mtobjects/Users/upsert",
            app.emulator.api_url(Region::Global)
        ))
        .bearer_auth(&token)
        .json(&upsert)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app
        .emulator
        .user("acme", "carla.mendes@acme.example")
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "upsert never applied");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let url = format!(
        "{}/Odata.svc/LearnerModulePerformances",
        app.emulator.admin_url()
    );
    let filter =
        "LearnerEmailId eq 'carla.mendes@acme.example' and ModuleId eq '1407221365079360143'";
    let response = app
        .http
        .get(&url)
        .query(&[("$filter", filter), ("$format", "json")])
        .basic_auth("reporting@acme.example", Some("demo-acme-reporting-5c2e"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let rows = body["d"]["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Score"], 58.0);
    assert_eq!(rows[0]["HasFailed"], true);

    let unauthorized = app
        .http
        .get(&url)
        .query(&[("$format", "json")])
        .basic_auth("reporting@acme.example", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
}
