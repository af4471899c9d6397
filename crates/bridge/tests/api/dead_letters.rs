//! Dead letters: review, replay and discard over the admin API and the CLI.

use std::process::Command;

use bridge::gateway::Scope;
use bridge::tenancy::TenantId;
use serde_json::{Value, json};

use crate::support::{TestApp, okta_user, spawn_app};

async fn call(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> (u16, Value) {
    let response = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

/// Sends a SCIM POST whose user has no userName, which is stored as a dead letter.
async fn post_invalid_user(app: &TestApp, tenant: &TenantId) -> String {
    let token = app.scim_token(tenant).await;
    let mut user = okta_user("judy@acme.example");
    user.as_object_mut().unwrap().remove("userName");
    let response = app
        .http
        .post(app.url(&format!("/scim/v2/{tenant}/Users")))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let letters = dead_letter_ids(app, tenant).await;
    assert_eq!(letters.len(), 1);
    letters[0].clone()
}

async fn dead_letter_ids(app: &TestApp, tenant: &TenantId) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT dead_letter_id::text FROM dead_letters WHERE tenant_id = $1 ORDER BY received_at",
    )
    .bind(tenant.as_str())
    .fetch_all(&app.db.owner)
    .await
    .unwrap()
}

/// Inserts a letter directly as the owner, as if a request had failed for a reason since fixed.
async fn insert_letter(
    app: &TestApp,
    tenant: &TenantId,
    source: &str,
    method: &str,
    path: &str,
    body: &str,
    truncated: bool,
) -> String {
    sqlx::query_scalar(
        "INSERT INTO dead_letters (tenant_id, dead_letter_id, source, method, path, raw_body,
                                   body_truncated, errors)
         VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, $6, '{}')
         RETURNING dead_letter_id::text",
    )
    .bind(tenant.as_str())
    .bind(source)
    .bind(method)
    .bind(path)
    .bind(body)
    .bind(truncated)
    .fetch_one(&app.db.owner)
    .await
    .unwrap()
}

async fn letter_status(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM dead_letters WHERE dead_letter_id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_post_is_listed_and_shown() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let id = post_invalid_user(&app, &tenant).await;
    let token = app.token("dl-a", &[Scope::UsersRead]);

    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-a/dead-letters",
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let letters = body["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["dead_letter_id"], id.as_str());
    assert_eq!(letters[0]["status"], "new");
    assert_eq!(letters[0]["source"], "scim");

    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-a/dead-letters?status=replayed",
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["dead_letters"], json!([]));
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-a/dead-letters?status=lost",
        &token,
    )
    .await;
    assert_eq!(status, 400, "unknown status");

    let (status, letter) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/tenants/dl-a/dead-letters/{id}"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{letter}");
    assert_eq!(letter["method"], "POST");
    assert_eq!(letter["path"], "/scim/v2/dl-a/Users");
    let stored: Value = serde_json::from_str(letter["raw_body"].as_str().unwrap()).unwrap();
    assert_eq!(stored["emails"][0]["value"], "judy@acme.example");
    assert_eq!(letter["errors"]["status"], "400");

    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-a/dead-letters/not-a-uuid",
        &token,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unfixed_letter_fails_replay() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let id = post_invalid_user(&app, &tenant).await;
    let token = app.token("dl-a", &[Scope::UsersRead, Scope::UsersWrite]);

    let (status, problem) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"]["status"], "400");
    assert_eq!(problem["dead_letter_id"], id.as_str());

    let (_, letter) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/tenants/dl-a/dead-letters/{id}"),
        &token,
    )
    .await;
    assert_eq!(letter["status"], "new");
    assert_eq!(letter["replay_attempts"], 1);
    assert!(letter["last_replay_at"].is_string());
    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn valid_letter_replays_to_created() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let body = okta_user("ken@acme.example").to_string();
    let id = insert_letter(
        &app,
        &tenant,
        "scim",
        "POST",
        "/scim/v2/dl-a/Users",
        &body,
        false,
    )
    .await;
    let token = app.token("dl-a", &[Scope::UsersRead, Scope::UsersWrite]);

    let (status, replayed) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{replayed}");
    assert_eq!(replayed["status"], "replayed");
    assert_eq!(replayed["resource_type"], "User");
    assert_eq!(replayed["resource"]["userName"], "ken@acme.example");
    let user_id = replayed["id"].as_str().unwrap();

    let scim = app.scim_token(&tenant).await;
    let response = app
        .http
        .get(app.url(&format!("/scim/v2/dl-a/Users/{user_id}")))
        .bearer_auth(&scim)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (_, letter) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/tenants/dl-a/dead-letters/{id}"),
        &token,
    )
    .await;
    assert_eq!(letter["status"], "replayed");
    assert_eq!(letter["resource_id"], user_id);
    assert_eq!(letter["resolved_by"], "test");

    for action in ["replay", "discard"] {
        let (status, problem) = call(
            &app,
            reqwest::Method::POST,
            &format!("/api/tenants/dl-a/dead-letters/{id}/{action}"),
            &token,
        )
        .await;
        assert_eq!(status, 409, "{action} of a replayed letter: {problem}");
    }
}

#[tokio::test]
async fn replayed_put_replaces_user() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let scim = app.scim_token(&tenant).await;
    let user_id = app
        .scim_create(&tenant, &scim, okta_user("lena@acme.example"))
        .await;
    let mut replacement = okta_user("lena@acme.example");
    replacement["displayName"] = json!("Lena Replaced");
    let id = insert_letter(
        &app,
        &tenant,
        "scim",
        "PUT",
        &format!("/scim/v2/dl-a/Users/{user_id}"),
        &replacement.to_string(),
        false,
    )
    .await;
    let token = app.token("dl-a", &[Scope::UsersWrite]);

    let (status, replayed) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["id"], user_id.as_str());
    assert_eq!(replayed["resource"]["displayName"], "Lena Replaced");
}

#[tokio::test]
async fn truncated_letter_cannot_be_replayed() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let id = insert_letter(
        &app,
        &tenant,
        "scim",
        "POST",
        "/scim/v2/dl-a/Users",
        "{\"user",
        true,
    )
    .await;
    let token = app.token("dl-a", &[Scope::UsersWrite]);

    let (status, problem) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("64 KiB"),
        "{problem}"
    );
    assert_eq!(letter_status(&app, &id).await, "new");
}

#[tokio::test]
async fn webhook_letter_replays_as_event() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let event = json!({"id": "hr-1", "operation": "UPDATE", "user": okta_user("mia@acme.example")});
    let id = insert_letter(
        &app,
        &tenant,
        "webhook",
        "POST",
        "/webhooks/dl-a/scim-events",
        &event.to_string(),
        false,
    )
    .await;
    let token = app.token("dl-a", &[Scope::UsersWrite]);

    let (status, replayed) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(
        status, 201,
        "an UPDATE of an unknown user creates it: {replayed}"
    );
    assert_eq!(replayed["resource"]["userName"], "mia@acme.example");
    assert_eq!(
        app.owner_count(
            "SELECT count(*) FROM webhook_events WHERE event_id = 'hr-1' AND status = 'applied'"
        )
        .await,
        1
    );
    assert_eq!(letter_status(&app, &id).await, "replayed");
}

#[tokio::test]
async fn discard_marks_letter_discarded() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let id = post_invalid_user(&app, &tenant).await;
    let token = app.token("dl-a", &[Scope::UsersWrite]);

    let (status, letter) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/discard"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{letter}");
    assert_eq!(letter["status"], "discarded");
    assert!(letter["resolved_at"].is_string());

    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/replay"),
        &token,
    )
    .await;
    assert_eq!(status, 409, "replay of a discarded letter");
}

#[tokio::test]
async fn other_tenant_cannot_see_letter() {
    let Some(app) = spawn_app().await else { return };
    let tenant_a = app.create_tenant("dl-a", "acme").await;
    app.create_tenant("dl-b", "globex").await;
    let id = post_invalid_user(&app, &tenant_a).await;
    let token_b = app.all_scopes_token("dl-b");

    let (status, list) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-b/dead-letters",
        &token_b,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["dead_letters"], json!([]));
    let unknown = uuid::Uuid::now_v7();
    for (method, suffix) in [
        (reqwest::Method::GET, ""),
        (reqwest::Method::POST, "/replay"),
        (reqwest::Method::POST, "/discard"),
    ] {
        let (status, foreign) = call(
            &app,
            method.clone(),
            &format!("/api/tenants/dl-b/dead-letters/{id}{suffix}"),
            &token_b,
        )
        .await;
        let (unknown_status, missing) = call(
            &app,
            method,
            &format!("/api/tenants/dl-b/dead-letters/{unknown}{suffix}"),
            &token_b,
        )
        .await;
        assert_eq!(status, 404, "{suffix}: {foreign}");
        assert_eq!(unknown_status, 404, "{suffix}: {missing}");
        assert_eq!(foreign["title"], missing["title"], "{suffix}");
    }
    // A token of tenant B on tenant A's path is rejected before any lookup.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        &format!("/api/tenants/dl-a/dead-letters/{id}/discard"),
        &token_b,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(letter_status(&app, &id).await, "new");
}

#[tokio::test]
async fn scopes_are_enforced() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let id = post_invalid_user(&app, &tenant).await;
    let reader = app.token("dl-a", &[Scope::UsersRead]);
    let outsider = app.token("dl-a", &[Scope::CoursesRead]);

    for action in ["replay", "discard"] {
        let (status, problem) = call(
            &app,
            reqwest::Method::POST,
            &format!("/api/tenants/dl-a/dead-letters/{id}/{action}"),
            &reader,
        )
        .await;
        assert_eq!(status, 403, "{action} with users:read: {problem}");
    }
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/api/tenants/dl-a/dead-letters",
        &outsider,
    )
    .await;
    assert_eq!(status, 403, "list without users:read");
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/tenants/dl-a/dead-letters/{id}"),
        &outsider,
    )
    .await;
    assert_eq!(status, 403, "show without users:read");
    assert_eq!(letter_status(&app, &id).await, "new");
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_enablement-bridge"))
        .args(args)
        .env("BRIDGE_DATABASE_URL", &app.db.runtime_url)
        .env_remove("BRIDGE_DATABASE_OWNER_URL")
        .output()
        .unwrap()
}

fn assert_usage_error(output: &std::process::Output, args: &[&str], expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

#[tokio::test]
async fn cli_rejects_invalid_ids() {
    let Some(app) = spawn_app().await else { return };
    app.create_tenant("dl-a", "acme").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let cases: [(&[&str], &str); 9] = [
        (
            &["dead-letters", "show", "--tenant", "dl-a", "nope"],
            "invalid dead letter id",
        ),
        (
            &["dead-letters", "replay", "--tenant", "dl-a", "nope"],
            "invalid dead letter id",
        ),
        (
            &[
                "dead-letters",
                "discard",
                "--tenant",
                "dl-a",
                "nope",
                "--yes",
            ],
            "invalid dead letter id",
        ),
        (
            &["dead-letters", "show", "--tenant", "dl-a", &unknown],
            "not found",
        ),
        (
            &["dead-letters", "replay", "--tenant", "dl-a", &unknown],
            "not found",
        ),
        (
            &["dead-letters", "list", "--tenant", "ghost"],
            "tenant 'ghost' not found",
        ),
        (
            &[
                "dead-letters",
                "list",
                "--tenant",
                "dl-a",
                "--status",
                "lost",
            ],
            "unknown status",
        ),
        (
            &["scim-token", "revoke", "--tenant", "dl-a", &unknown],
            "not found",
        ),
        (
            &["webhook-secret", "revoke", "--tenant", "dl-a", "nope"],
            "invalid webhook secret id",
        ),
    ];
    for (args, expected) in cases {
        let output = cli(&app, args);
        assert_usage_error(&output, args, expected);
    }
    let args = ["dead-letters", "discard", "--tenant", "dl-a", &unknown];
    assert_usage_error(&cli(&app, &args), &args, "--yes");
}

#[tokio::test]
async fn cli_replays_and_discards() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    let body = okta_user("nina@acme.example").to_string();
    let valid = insert_letter(
        &app,
        &tenant,
        "scim",
        "POST",
        "/scim/v2/dl-a/Users",
        &body,
        false,
    )
    .await;
    let invalid = insert_letter(
        &app,
        &tenant,
        "scim",
        "POST",
        "/scim/v2/dl-a/Users",
        "{}",
        false,
    )
    .await;

    let output = cli(
        &app,
        &[
            "dead-letters",
            "list",
            "--tenant",
            "dl-a",
            "--status",
            "new",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);

    let output = cli(
        &app,
        &["dead-letters", "replay", "--tenant", "dl-a", &valid],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replayed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(replayed["created"], true);
    assert_eq!(letter_status(&app, &valid).await, "replayed");
    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 1);

    let output = cli(
        &app,
        &["dead-letters", "replay", "--tenant", "dl-a", &invalid],
    );
    assert_eq!(output.status.code(), Some(1), "a replay that still fails");
    assert!(String::from_utf8_lossy(&output.stderr).contains("stays new"));
    assert_eq!(letter_status(&app, &invalid).await, "new");

    let output = cli(
        &app,
        &[
            "dead-letters",
            "discard",
            "--tenant",
            "dl-a",
            &invalid,
            "--yes",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(letter_status(&app, &invalid).await, "discarded");

    let output = cli(
        &app,
        &["dead-letters", "show", "--tenant", "dl-a", &invalid],
    );
    assert!(output.status.success());
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["resolved_by"], "cli");
}

#[tokio::test]
async fn cli_manages_tokens_and_secrets() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("dl-a", "acme").await;
    app.scim_token(&tenant).await;

    let output = cli(&app, &["scim-token", "list", "--tenant", "dl-a"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token: Value = serde_json::from_slice(&output.stdout).unwrap();
    let token_id = token["token_id"].as_str().unwrap();
    let output = cli(
        &app,
        &["scim-token", "revoke", "--tenant", "dl-a", token_id],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM scim_tokens WHERE revoked_at IS NOT NULL")
            .await,
        1
    );

    let output = cli(&app, &["webhook-secret", "create", "--tenant", "dl-a"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(secret.len() >= 43, "{secret}");
    let output = cli(&app, &["webhook-secret", "list", "--tenant", "dl-a"]);
    let listed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(!listed.contains(&secret), "list must not print the secret");
    let info: Value = serde_json::from_str(listed.trim()).unwrap();
    let secret_id = info["secret_id"].as_str().unwrap();
    let output = cli(
        &app,
        &["webhook-secret", "revoke", "--tenant", "dl-a", secret_id],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM webhook_secrets WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
}
