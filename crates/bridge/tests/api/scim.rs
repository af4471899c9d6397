//! SCIM `/Users` as Okta and Entra ID drive it.

use serde_json::{Value, json};

use crate::support::{TestApp, okta_user, spawn_app};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/scim+json; charset=utf-8");
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 204 {
        assert_eq!(
            response.headers()["content-type"],
            "application/scim+json",
            "{path}"
        );
    }
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

#[tokio::test]
async fn user_lifecycle_okta_and_entra() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;

    // Okta checks for the user first: an empty ListResponse, never 404.
    let (status, list) = send(&app, reqwest::Method::GET,
        "/scim/v2/acme-a/Users?filter=userName%20eq%20%22alice%40acme.example%22&startIndex=1&count=100",
        &token, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 0);
    assert_eq!(list["Resources"], json!([]));

    let (status, created) = send(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Users",
        &token,
        Some(&okta_user("alice@acme.example").to_string()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], "alice@acme.example");
    assert_eq!(created["active"], true);
    assert!(
        created.get("password").is_none(),
        "password must never be returned"
    );
    assert_eq!(created["meta"]["version"], "W/\"1\"");
    assert!(
        created["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/acme-a/Users/{id}"))
    );

    // userName matches case-insensitively.
    let (status, list) = send(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?filter=userName%20eq%20%22ALICE%40ACME.EXAMPLE%22",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], id.as_str());

    let (status, duplicate) = send(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Users",
        &token,
        Some(&okta_user("Alice@acme.example").to_string()),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(duplicate["scimType"], "uniqueness");
    assert_eq!(duplicate["status"], "409");

    // Entra deactivates with a capitalized op and a string boolean.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (status, patched) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/scim/v2/acme-a/Users/{id}"),
        &token,
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["meta"]["version"], "W/\"2\"");

    // Okta OIN reactivates with a no-path replace.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]});
    let (status, patched) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/scim/v2/acme-a/Users/{id}"),
        &token,
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], true);

    let (status, fetched) = send(
        &app,
        reqwest::Method::GET,
        &format!("/scim/v2/acme-a/Users/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["active"], true);

    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/scim/v2/acme-a/Users/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, missing) = send(
        &app,
        reqwest::Method::GET,
        &format!("/scim/v2/acme-a/Users/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["status"], "404");

    // Each change wrote a user_changed event in its transaction.
    let events = app
        .owner_count("SELECT count(*) FROM outbox WHERE event_type = 'user_changed'")
        .await;
    assert_eq!(events, 4);
}

#[tokio::test]
async fn stale_if_match_is_rejected() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;
    let id = app
        .scim_create(&tenant, &token, okta_user("alice@acme.example"))
        .await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "AE"}]});
    let response = app
        .http
        .patch(app.url(&format!("/scim/v2/acme-a/Users/{id}")))
        .bearer_auth(&token)
        .header("if-match", "W/\"7\"")
        .header("content-type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 412);
}

#[tokio::test]
async fn malformed_payloads_become_dead_letters() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;

    let (status, error) = send(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Users",
        &token,
        Some("{\"userName\": "),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["scimType"], "invalidSyntax");
    assert_eq!(
        error["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );

    let no_user_name =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": true});
    let (status, error) = send(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Users",
        &token,
        Some(&no_user_name.to_string()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["detail"].as_str().unwrap().contains("userName"),
        "{error}"
    );

    let (status, error) = send(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?filter=userName%20zz%20%22x%22",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["scimType"], "invalidFilter");

    assert_eq!(
        app.owner_count("SELECT count(*) FROM users").await,
        0,
        "nothing half-applied"
    );
    let letters: Vec<(String, String, serde_json::Value)> =
        sqlx::query_as("SELECT tenant_id, raw_body, errors FROM dead_letters ORDER BY received_at")
            .fetch_all(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].0, "acme-a");
    assert_eq!(letters[0].1, "{\"userName\": ");
    assert_eq!(letters[0].2["scimType"], "invalidSyntax");
}

#[tokio::test]
async fn other_tenant_resources_are_invisible() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let globex = app.create_tenant("globex-b", "globex").await;
    let acme_token = app.scim_token(&acme).await;
    let globex_token = app.scim_token(&globex).await;
    let acme_user = app
        .scim_create(&acme, &acme_token, okta_user("alice@acme.example"))
        .await;
    // The same userName may exist in another tenant.
    app.scim_create(&globex, &globex_token, okta_user("alice@acme.example"))
        .await;

    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, _) = send(
            &app,
            method.clone(),
            &format!("/scim/v2/globex-b/Users/{acme_user}"),
            &globex_token,
            None,
        )
        .await;
        assert_eq!(status, 404, "{method}");
    }
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/scim/v2/globex-b/Users/{acme_user}"),
        &globex_token,
        Some(&patch.to_string()),
    )
    .await;
    assert_eq!(status, 404);

    // A token of one tenant does not open another tenant's SCIM endpoint.
    let (status, error) = send(
        &app,
        reqwest::Method::GET,
        "/scim/v2/globex-b/Users",
        &acme_token,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error["status"], "401");

    let (_, list) = send(
        &app,
        reqwest::Method::GET,
        "/scim/v2/globex-b/Users",
        &globex_token,
        None,
    )
    .await;
    assert_eq!(list["totalResults"], 1);
    assert_ne!(list["Resources"][0]["id"], acme_user.as_str());
    let active: bool = sqlx::query_scalar("SELECT active FROM users WHERE tenant_id = 'acme-a'")
        .fetch_one(&app.db.owner)
        .await
        .unwrap();
    assert!(active, "acme's user was changed through globex's endpoint");
}
