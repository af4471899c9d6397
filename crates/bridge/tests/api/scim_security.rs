//! SCIM tokens across tenants, token rotation and the inbound limit.

use crate::support::{spawn_app, test_config};

#[tokio::test]
async fn foreign_scim_token_is_recorded() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    app.create_tenant("globex-b", "globex").await;
    let acme_token = app.scim_token(&acme).await;

    let response = app
        .http
        .get(app.url("/scim/v2/globex-b/Users"))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let row: (String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT kind, principal_tenant, target_tenant FROM security_events")
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            "cross_tenant_token".into(),
            Some("acme-a".into()),
            Some("globex-b".into())
        )
    );

    // Once verified and cached for its own tenant, the token is still refused and recorded elsewhere.
    let own = app
        .http
        .get(app.url("/scim/v2/acme-a/Users"))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let again = app
        .http
        .get(app.url("/scim/v2/globex-b/Users"))
        .bearer_auth(&acme_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM security_events")
            .await,
        2
    );

    // A garbage token is a plain 401, not a security event.
    let garbage = app
        .http
        .get(app.url("/scim/v2/globex-b/Users"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM security_events")
            .await,
        2
    );
}

#[tokio::test]
async fn tokens_rotate_and_revoke() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let old = app.scim_token(&acme).await;
    let new = app.scim_token(&acme).await;
    for token in [&old, &new] {
        let response = app
            .http
            .get(app.url("/scim/v2/acme-a/Users"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let tokens = bridge::scim_api::list_scim_tokens(&app.db.runtime, &acme)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 2);
    let old_id: uuid::Uuid = old.split('.').next().unwrap().parse().unwrap();
    assert!(
        bridge::scim_api::revoke_scim_token(&app.db.runtime, &acme, old_id)
            .await
            .unwrap()
    );

    // A fresh server has no verified-token cache, so the revocation shows at once.
    let state = bridge::app::AppState::new(
        app.db.runtime.clone(),
        test_config(),
        bridge::gateway::JwtKeys::new(
            &secrecy::SecretString::from(crate::support::JWT_SECRET),
            "enablement-bridge",
            0,
        )
        .unwrap(),
        bridge::server::in_process_bus(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, bridge::app::router(state))
            .await
            .unwrap()
    });
    let revoked = app
        .http
        .get(format!("http://{address}/scim/v2/acme-a/Users"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
    let current = app
        .http
        .get(format!("http://{address}/scim/v2/acme-a/Users"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
}

#[tokio::test]
async fn inbound_limit_answers_429() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let globex = app.create_tenant("globex-b", "globex").await;
    let acme_token = app.scim_token(&acme).await;
    let globex_token = app.scim_token(&globex).await;

    let mut config = test_config();
    config.scim.requests_per_second = 1;
    config.scim.burst = 3;
    let state = bridge::app::AppState::new(
        app.db.runtime.clone(),
        config,
        bridge::gateway::JwtKeys::new(
            &secrecy::SecretString::from(crate::support::JWT_SECRET),
            "enablement-bridge",
            0,
        )
        .unwrap(),
        bridge::server::in_process_bus(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, bridge::app::router(state))
            .await
            .unwrap()
    });

    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app
            .http
            .get(format!("http://{address}/scim/v2/acme-a/Users"))
            .bearer_auth(&acme_token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry_after >= 1);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["status"], "429");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");

    // Another tenant's budget is untouched.
    let other = app
        .http
        .get(format!("http://{address}/scim/v2/globex-b/Users"))
        .bearer_auth(&globex_token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}
