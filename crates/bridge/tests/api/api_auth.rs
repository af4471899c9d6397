//! The gateway: bearer tokens, scopes, the tenant guard and problem details.

use bridge::gateway::{JwtKeys, Scope};
use secrecy::SecretString;
use serde_json::Value;

use crate::support::{JWT_SECRET, spawn_app};

#[tokio::test]
async fn wrong_tenant_token_is_forbidden_and_recorded() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("acme-a", "acme").await;
    app.create_tenant("globex-b", "globex").await;
    let token = app.all_scopes_token("acme-a");

    let response = app
        .http
        .get(app.url("/api/tenants/globex-b/readiness"))
        .bearer_auth(&token)
        .header("x-request-id", "req-cross-tenant-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 403);
    assert_eq!(body["request_id"], "req-cross-tenant-1");

    let row: (String, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT kind, principal_tenant, target_tenant, request_id FROM security_events",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap();
    assert_eq!(row.0, "cross_tenant_token");
    assert_eq!(row.1.as_deref(), Some("acme-a"));
    assert_eq!(row.2.as_deref(), Some("globex-b"));
    assert_eq!(row.3.as_deref(), Some("req-cross-tenant-1"));

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bridge_security_events_total{kind=\"cross_tenant_token\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn missing_scope_is_forbidden() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("acme-a", "acme").await;
    let token = app.token("acme-a", &[Scope::UsersRead]);
    let response = app
        .http
        .post(app.url("/api/tenants/acme-a/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("analytics:write"),
        "{body}"
    );
    let events: i64 = app
        .owner_count("SELECT count(*) FROM security_events")
        .await;
    assert_eq!(events, 0, "a missing scope is not a cross-tenant attempt");
}

#[tokio::test]
async fn expired_and_bad_tokens_are_unauthorized() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("acme-a", "acme").await;
    let keys = JwtKeys::new(&SecretString::from(JWT_SECRET), "enablement-bridge", 0).unwrap();
    let expired = keys
        .issue(
            &bridge::tenancy::TenantId::parse("acme-a").unwrap(),
            "test",
            &Scope::ALL.into_iter().collect(),
            chrono::Utc::now() - chrono::Duration::hours(2),
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let forged = JwtKeys::new(
        &SecretString::from("another-secret-another-secret-another"),
        "enablement-bridge",
        0,
    )
    .unwrap()
    .issue(
        &bridge::tenancy::TenantId::parse("acme-a").unwrap(),
        "test",
        &Scope::ALL.into_iter().collect(),
        chrono::Utc::now(),
        std::time::Duration::from_secs(60),
    )
    .unwrap();

    for (case, header) in [
        ("expired", Some(format!("Bearer {expired}"))),
        ("forged", Some(format!("Bearer {forged}"))),
        ("malformed", Some("Bearer not-a-jwt".to_owned())),
        ("wrong scheme", Some("Basic dXNlcjpwYXNz".to_owned())),
        ("missing", None),
    ] {
        let mut request = app.http.get(app.url("/api/tenants/acme-a/readiness"));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{case}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 401, "{case}");
    }
}

#[tokio::test]
async fn readiness_of_empty_tenant_has_nulls() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("empty-co", "acme").await;
    let token = app.all_scopes_token("empty-co");

    let missing = app
        .http
        .get(app.url("/api/tenants/empty-co/readiness"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let response = app
        .http
        .post(app.url("/api/tenants/empty-co/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["average_score"], Value::Null);
    assert_eq!(report["completion_rate"], Value::Null);
    assert_eq!(report["active_users"], 0);
    assert_eq!(report["score_count"], 0);
    assert_eq!(report["assigned_courses"], 0);
    assert_eq!(report["provisional"], false);

    let latest: Value = app
        .http
        .get(app.url("/api/tenants/empty-co/readiness"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["report_id"], report["report_id"]);
}

#[tokio::test]
async fn quiz_result_for_other_tenant_user_is_not_found() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    app.create_tenant("globex-b", "globex").await;
    let scim = app.scim_token(&acme).await;
    let acme_user = app
        .scim_create(
            &acme,
            &scim,
            crate::support::okta_user("alice@acme.example"),
        )
        .await;

    let body = serde_json::json!({
        "user_id": acme_user, "quiz_id": "q1", "score": 5, "max_score": 10,
        "submitted_at": "2026-11-01T10:00:00Z"
    });
    let response = app
        .http
        .post(app.url("/api/tenants/globex-b/quiz-results"))
        .bearer_auth(app.all_scopes_token("globex-b"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM quiz_results").await,
        0
    );

    let accepted = app
        .http
        .post(app.url("/api/tenants/acme-a/quiz-results"))
        .bearer_auth(app.all_scopes_token("acme-a"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
}

#[tokio::test]
async fn invalid_quiz_results_are_rejected() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&acme).await;
    let user = app
        .scim_create(
            &acme,
            &scim,
            crate::support::okta_user("alice@acme.example"),
        )
        .await;
    let token = app.all_scopes_token("acme-a");
    let cases = [
        (
            "score above max",
            serde_json::json!({"user_id": user, "quiz_id": "q", "score": 11, "max_score": 10, "submitted_at": "2026-11-01T10:00:00Z"}),
        ),
        (
            "zero max",
            serde_json::json!({"user_id": user, "quiz_id": "q", "score": 0, "max_score": 0, "submitted_at": "2026-11-01T10:00:00Z"}),
        ),
        (
            "negative score",
            serde_json::json!({"user_id": user, "quiz_id": "q", "score": -1, "max_score": 10, "submitted_at": "2026-11-01T10:00:00Z"}),
        ),
        (
            "empty quiz id",
            serde_json::json!({"user_id": user, "quiz_id": " ", "score": 1, "max_score": 10, "submitted_at": "2026-11-01T10:00:00Z"}),
        ),
        (
            "future submission",
            serde_json::json!({"user_id": user, "quiz_id": "q", "score": 1, "max_score": 10, "submitted_at": "2099-01-01T00:00:00Z"}),
        ),
        (
            "unknown field",
            serde_json::json!({"user_id": user, "quiz_id": "q", "score": 1, "max_score": 10, "submitted_at": "2026-11-01T10:00:00Z", "grade": "A"}),
        ),
        (
            "missing score",
            serde_json::json!({"user_id": user, "quiz_id": "q", "max_score": 10, "submitted_at": "2026-11-01T10:00:00Z"}),
        ),
    ];
    for (case, body) in cases {
        let response = app
            .http
            .post(app.url("/api/tenants/acme-a/quiz-results"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{case}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].is_string(), "{case}: {problem}");
    }
    assert_eq!(
        app.owner_count("SELECT count(*) FROM quiz_results").await,
        0
    );
}

#[tokio::test]
async fn operational_endpoints_answer() {
    let Some(app) = spawn_app().await else { return };
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));

    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");

    let openapi: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    for path in [
        "/api/tenants/{tenant}/users/{user}/sync-progress",
        "/api/tenants/{tenant}/quiz-results",
        "/api/tenants/{tenant}/readiness",
        "/api/tenants/{tenant}/readiness/aggregate",
        "/scim/v2/{tenant}/Users",
        "/scim/v2/{tenant}/Users/{id}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }

    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn token_of_deleted_tenant_opens_nothing() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("gone-co", "acme").await;
    let token = app.all_scopes_token("gone-co");
    let scim = app.scim_token(&tenant).await;
    // Verified once, so the SCIM token sits in the verification cache.
    let warm = app
        .http
        .get(app.url("/scim/v2/gone-co/Users"))
        .bearer_auth(&scim)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    bridge::tenancy::TenantRegistry::new(app.db.runtime.clone())
        .delete(&tenant)
        .await
        .unwrap();

    let aggregate = app
        .http
        .post(app.url("/api/tenants/gone-co/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        aggregate.status(),
        404,
        "a deleted tenant is not found, not a server error"
    );
    let create = app
        .http
        .post(app.url("/scim/v2/gone-co/Users"))
        .bearer_auth(&scim)
        .header("content-type", "application/scim+json")
        .body(crate::support::okta_user("planted@example.test").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 404);
    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 0);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM tenants WHERE tenant_id = 'gone-co'")
            .await,
        0
    );
}

#[tokio::test]
async fn odd_tenant_paths_are_not_found() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("acme-a", "acme").await;
    let token = app.all_scopes_token("acme-a");
    for path in [
        "/api/tenants/ACME-A/readiness",
        "/api/tenants/acme%2A/readiness",
        "/api/tenants/a%20b/readiness",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(
        app.owner_count("SELECT count(*) FROM security_events")
            .await,
        0
    );
}
