//! HR webhooks: signed batches of user change events applied through the directory service.

use bridge::tenancy::TenantId;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::{TestApp, okta_user, spawn_app};

async fn create_secret(app: &TestApp, tenant: &TenantId) -> String {
    let (_, secret) = bridge::webhooks::create_webhook_secret(&app.db.runtime, tenant)
        .await
        .unwrap();
    secret.expose_secret().to_owned()
}

/// Posts `body` to the tenant's webhook endpoint, signed with `secret` at `timestamp`.
async fn post_signed(
    app: &TestApp,
    tenant: &str,
    secret: &str,
    timestamp: i64,
    body: &str,
) -> (u16, Value) {
    let signature = bridge::webhooks::sign(secret.as_bytes(), timestamp, body.as_bytes());
    let response = app
        .http
        .post(app.url(&format!("/webhooks/{tenant}/scim-events")))
        .header("content-type", "application/json")
        .header("x-bridge-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_events(app: &TestApp, tenant: &str, secret: &str, events: Value) -> (u16, Value) {
    let body = json!({ "events": events }).to_string();
    post_signed(app, tenant, secret, chrono::Utc::now().timestamp(), &body).await
}

/// Looks a user up over SCIM by userName; returns the resource or `None`.
async fn scim_find(
    app: &TestApp,
    tenant: &TenantId,
    token: &str,
    user_name: &str,
) -> Option<Value> {
    let response = app
        .http
        .get(app.url(&format!("/scim/v2/{tenant}/Users")))
        .query(&[("filter", format!("userName eq \"{user_name}\""))])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    list["Resources"].as_array().unwrap().first().cloned()
}

fn event(id: &str, operation: &str, user: Value) -> Value {
    json!({ "id": id, "operation": operation, "user": user })
}

#[tokio::test]
async fn batch_applies_create_update_delete() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let secret = create_secret(&app, &tenant).await;
    let token = app.scim_token(&tenant).await;

    let mut renamed = okta_user("alice@acme.example");
    renamed["displayName"] = json!("Alice Renamed");
    let (status, body) = post_events(
        &app,
        "hr-a",
        &secret,
        json!([
            event("e1", "CREATE", okta_user("alice@acme.example")),
            event("e2", "create", okta_user("bob@acme.example")),
            event("e3", "Update", renamed),
            // HR feeds often send UPDATE for an employee the directory has never seen.
            event("e4", "UPDATE", okta_user("carol@acme.example")),
            event("e5", "DELETE", json!({ "userName": "BOB@acme.example" })),
            // Deleting an unknown user succeeds, so a repeated delete is harmless.
            event("e6", "DELETE", json!({ "externalId": "00unknown" })),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["status"], "applied", "event {index}: {result}");
        assert_eq!(result["id"], format!("e{}", index + 1));
    }
    assert_eq!(results[0]["user_id"], results[2]["user_id"]);

    let alice = scim_find(&app, &tenant, &token, "alice@acme.example")
        .await
        .expect("alice exists");
    assert_eq!(alice["displayName"], "Alice Renamed");
    assert_eq!(alice["meta"]["version"], "W/\"2\"");
    assert_eq!(alice["id"], results[0]["user_id"]);
    assert!(
        scim_find(&app, &tenant, &token, "carol@acme.example")
            .await
            .is_some()
    );
    assert!(
        scim_find(&app, &tenant, &token, "bob@acme.example")
            .await
            .is_none()
    );
    assert!(results[5].get("user_id").is_none(), "{}", results[5]);
}

#[tokio::test]
async fn repeated_event_id_is_duplicate() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let secret = create_secret(&app, &tenant).await;
    let token = app.scim_token(&tenant).await;

    let (status, first) = post_events(
        &app,
        "hr-a",
        &secret,
        json!([event("e1", "CREATE", okta_user("dave@acme.example"))]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["results"][0]["status"], "applied");

    let mut changed = okta_user("dave@acme.example");
    changed["displayName"] = json!("Changed By Redelivery");
    let (status, second) = post_events(
        &app,
        "hr-a",
        &secret,
        json!([event("e1", "UPDATE", changed)]),
    )
    .await;
    assert_eq!(status, 200);
    let result = &second["results"][0];
    assert_eq!(result["status"], "duplicate", "{result}");
    assert_eq!(result["original_status"], "applied");
    assert_eq!(result["user_id"], first["results"][0]["user_id"]);

    let dave = scim_find(&app, &tenant, &token, "dave@acme.example")
        .await
        .unwrap();
    assert_eq!(dave["displayName"], "dave Test");
    assert_eq!(dave["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn invalid_signatures_are_rejected() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let secret = create_secret(&app, &tenant).await;
    let body =
        json!({ "events": [event("e1", "CREATE", okta_user("eve@acme.example"))] }).to_string();
    let now = chrono::Utc::now().timestamp();

    let cases = [
        ("wrong secret", "not-the-secret", now),
        ("expired timestamp", secret.as_str(), now - 301),
        ("future timestamp", secret.as_str(), now + 301),
    ];
    for (case, key, timestamp) in cases {
        let (status, problem) = post_signed(&app, "hr-a", key, timestamp, &body).await;
        assert_eq!(status, 401, "{case}: {problem}");
        assert_eq!(problem["status"], 401, "{case}");
        assert!(problem["detail"].is_string(), "{case}: {problem}");
    }

    let response = app
        .http
        .post(app.url("/webhooks/hr-a/scim-events"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "missing header");

    // A valid signature over a different body does not cover this one.
    let other = bridge::webhooks::sign(secret.as_bytes(), now, b"{\"events\": []}");
    let response = app
        .http
        .post(app.url("/webhooks/hr-a/scim-events"))
        .header("x-bridge-signature", other)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "signature of another body");

    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 0);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM webhook_events").await,
        0
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM dead_letters").await,
        0
    );
}

#[tokio::test]
async fn rotated_secrets_both_verify() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let old = create_secret(&app, &tenant).await;
    let new = create_secret(&app, &tenant).await;

    let (status, _) = post_events(&app, "hr-a", &old, json!([])).await;
    assert_eq!(status, 200, "old secret");
    let (status, _) = post_events(&app, "hr-a", &new, json!([])).await;
    assert_eq!(status, 200, "new secret");

    let secrets = bridge::webhooks::list_webhook_secrets(&app.db.runtime, &tenant)
        .await
        .unwrap();
    assert_eq!(secrets.len(), 2);
    let oldest = secrets.last().unwrap().secret_id;
    assert!(
        bridge::webhooks::revoke_webhook_secret(&app.db.runtime, &tenant, oldest)
            .await
            .unwrap()
    );
    let (status, _) = post_events(&app, "hr-a", &old, json!([])).await;
    assert_eq!(status, 401, "revoked secret");
    let (status, _) = post_events(&app, "hr-a", &new, json!([])).await;
    assert_eq!(status, 200, "remaining secret");
}

#[tokio::test]
async fn secret_of_other_tenant_is_rejected() {
    let Some(app) = spawn_app().await else { return };
    let tenant_a = app.create_tenant("hr-a", "acme").await;
    app.create_tenant("hr-b", "globex").await;
    let secret_a = create_secret(&app, &tenant_a).await;

    let (status, problem) = post_events(
        &app,
        "hr-b",
        &secret_a,
        json!([event("e1", "CREATE", okta_user("mallory@globex.example"))]),
    )
    .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 0);

    // An unknown tenant gets the same 401 as a wrong secret.
    let (status, _) = post_events(&app, "nobody", &secret_a, json!([])).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn cross_tenant_event_is_rejected() {
    let Some(app) = spawn_app().await else { return };
    let tenant_a = app.create_tenant("hr-a", "acme").await;
    app.create_tenant("hr-b", "globex").await;
    let secret = create_secret(&app, &tenant_a).await;

    let mut foreign = event("e1", "CREATE", okta_user("intruder@globex.example"));
    foreign["tenant"] = json!("hr-b");
    let mut own = event("e2", "CREATE", okta_user("frank@acme.example"));
    own["tenant"] = json!("hr-a");
    let (status, body) = post_events(&app, "hr-a", &secret, json!([foreign, own])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "rejected");
    assert_eq!(body["results"][0]["error"]["status"], "403");
    assert_eq!(body["results"][1]["status"], "applied");

    assert_eq!(
        app.owner_count(
            "SELECT count(*) FROM security_events WHERE kind = 'cross_tenant_webhook' \
             AND principal_tenant = 'hr-a' AND target_tenant = 'hr-b'"
        )
        .await,
        1
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM users WHERE tenant_id = 'hr-b'")
            .await,
        0
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM users WHERE tenant_id = 'hr-a'")
            .await,
        1
    );
    // Nothing of the rejected event is kept under either tenant.
    assert_eq!(
        app.owner_count("SELECT count(*) FROM webhook_events WHERE event_id = 'e1'")
            .await,
        0
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM dead_letters").await,
        0
    );
}

#[tokio::test]
async fn malformed_event_becomes_dead_letter() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let secret = create_secret(&app, &tenant).await;

    let mut invalid_user = okta_user("grace@acme.example");
    invalid_user.as_object_mut().unwrap().remove("userName");
    let (status, body) = post_events(
        &app,
        "hr-a",
        &secret,
        json!([
            "not an event",
            event("e1", "CREATE", invalid_user),
            event("e2", "CREATE", okta_user("heidi@acme.example")),
            { "id": "e3", "operation": "RENAME", "user": okta_user("ivan@acme.example") },
            { "id": "e4", "operation": "CREATE" },
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|result| result["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["rejected", "rejected", "applied", "rejected", "rejected"]
    );
    for index in [0, 1, 3, 4] {
        assert!(
            results[index]["dead_letter_id"].is_string(),
            "event {index}: {}",
            results[index]
        );
        assert_eq!(results[index]["error"]["status"], "400");
    }
    assert_eq!(
        app.owner_count(
            "SELECT count(*) FROM dead_letters WHERE tenant_id = 'hr-a' AND source = 'webhook'"
        )
        .await,
        4
    );
    let stored: String =
        sqlx::query_scalar("SELECT raw_body FROM dead_letters WHERE dead_letter_id = $1::uuid")
            .bind(results[1]["dead_letter_id"].as_str().unwrap())
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["id"], "e1", "the letter holds the event itself");

    // The rejected id is recorded: a redelivery returns the same outcome and letter.
    let (_, again) = post_events(
        &app,
        "hr-a",
        &secret,
        json!([event("e1", "CREATE", okta_user("grace@acme.example"))]),
    )
    .await;
    assert_eq!(again["results"][0]["status"], "duplicate");
    assert_eq!(again["results"][0]["original_status"], "rejected");
    assert_eq!(
        again["results"][0]["dead_letter_id"],
        results[1]["dead_letter_id"]
    );
    assert_eq!(app.owner_count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn body_that_is_not_json_is_rejected() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("hr-a", "acme").await;
    let secret = create_secret(&app, &tenant).await;
    let now = chrono::Utc::now().timestamp();

    let (status, problem) = post_signed(&app, "hr-a", &secret, now, "{\"events\": [").await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["dead_letter_id"].is_string(), "{problem}");
    let (status, _) = post_signed(&app, "hr-a", &secret, now, "{\"changes\": []}").await;
    assert_eq!(status, 400, "an object without events");
    assert_eq!(
        app.owner_count("SELECT count(*) FROM dead_letters WHERE source = 'webhook'")
            .await,
        2
    );

    let too_many: Vec<Value> = (0..501)
        .map(|index| event(&format!("e{index}"), "DELETE", json!({"userName": "x"})))
        .collect();
    let (status, problem) = post_events(&app, "hr-a", &secret, json!(too_many)).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("500"),
        "{problem}"
    );
    assert_eq!(
        app.owner_count("SELECT count(*) FROM webhook_events").await,
        0
    );
}
