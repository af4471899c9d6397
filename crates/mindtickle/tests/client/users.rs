use mindtickle::{ProcessState, UserState};
use mindtickle_emulator::UserState as EmulatedState;

use crate::harness::{ACME, GLOBEX, client, options, provision, spawn, upsert, wait_for};

#[tokio::test]
async fn upsert_applies_and_user_is_found_once() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    let email = "new.hire@acme.example".to_owned();

    let ids = client
        .upsert_users(&[upsert(&email, "New Hire")])
        .await
        .unwrap();
    let report = wait_for(&client, &ids).await;

    assert_eq!(report.state(&ids[0]), Some(ProcessState::Success));
    assert!(report.errors.is_empty(), "{report:?}");
    let users = client
        .find_users_by_email(std::slice::from_ref(&email))
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "New Hire");
    assert_eq!(users[0].user_state, UserState::Active);
    assert_eq!(users[0].profile["dg"], "Account Executive");
}

#[tokio::test]
async fn upserting_same_email_twice_updates() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);

    provision(&client, &[upsert("twice@acme.example", "First Name")]).await;
    provision(&client, &[upsert("TWICE@acme.example", "Second Name")]).await;

    let users = client
        .find_users_by_email(&["twice@acme.example".to_owned()])
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "Second Name");
    assert_eq!(emulator.users(ACME).len(), 1);
}

#[tokio::test]
async fn invalid_email_fails_its_process() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);

    let ids = client
        .upsert_users(&[upsert("not-an-email", "Nobody")])
        .await
        .unwrap();
    let report = wait_for(&client, &ids).await;

    assert_eq!(report.state(&ids[0]), Some(ProcessState::Failed));
    assert_eq!(report.errors[&ids[0]][0].email, "not-an-email");
}

#[tokio::test]
async fn deactivate_sets_deactivated_state() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    let email = "leaver@acme.example".to_owned();
    provision(&client, &[upsert(&email, "Leaver")]).await;

    let ids = client
        .deactivate_users(std::slice::from_ref(&email))
        .await
        .unwrap();
    let report = wait_for(&client, &ids).await;

    assert_eq!(report.state(&ids[0]), Some(ProcessState::Success));
    let users = client
        .find_users_by_email(std::slice::from_ref(&email))
        .await
        .unwrap();
    assert_eq!(users[0].user_state, UserState::Deactivated);
    let stored = emulator.user(ACME, &email).unwrap();
    assert_eq!(stored.user_state, EmulatedState::Deactivated);
}

#[tokio::test]
async fn upsert_batches_over_one_hundred() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, GLOBEX);
    let users: Vec<_> = (0..130)
        .map(|i| upsert(&format!("rep{i:03}@globex.example"), &format!("Rep {i}")))
        .collect();

    let ids = client.upsert_users(&users).await.unwrap();
    wait_for(&client, &ids).await;

    assert_eq!(ids.len(), 2);
    assert_eq!(emulator.users(GLOBEX).len(), 130);
}

#[tokio::test]
async fn us_tenant_search_follows_repointed_links() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, GLOBEX);
    let emails: Vec<String> = (0..100)
        .map(|i| format!("rep{i:03}@globex.example"))
        .collect();
    let users: Vec<_> = emails.iter().map(|e| upsert(e, "Rep")).collect();
    provision(&client, &users).await;

    // The link points at the global host, which fails it for a US tenant.
    let token = raw_token(&emulator).await;
    let first: serde_json::Value = crate::harness::http()
        .post(format!(
            "{}/services/data/v4.0/mtobjects/Users?limit=60",
            emulator.api_url(mindtickle_emulator::Region::Us)
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "emails": emails }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = first["nextRecordsUrl"].as_str().unwrap();
    assert!(
        next.starts_with(&emulator.api_url(mindtickle_emulator::Region::Global)),
        "{next}"
    );
    let global = crate::harness::http()
        .get(next)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(global.status(), 500);

    let mut wanted = emails.clone();
    wanted.extend((100..130).map(|i| format!("missing{i}@globex.example")));
    let found = client.find_users_by_email(&wanted).await.unwrap();
    assert_eq!(found.len(), 100);
}

async fn raw_token(emulator: &mindtickle_emulator::Emulator) -> String {
    let config = crate::harness::tenant(emulator, GLOBEX);
    let response: serde_json::Value = crate::harness::http()
        .post(format!("{}/services/data/auth_token", config.api_base))
        .json(&serde_json::json!({
            "api_key": config.api_key,
            "secret_key": secrecy::ExposeSecret::expose_secret(&config.secret_key),
            "ls_url": config.ls_url,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["token"].as_str().unwrap().to_owned()
}
