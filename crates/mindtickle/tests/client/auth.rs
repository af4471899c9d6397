use std::time::Duration;

use futures::future::join_all;
use mindtickle::Error;

use crate::harness::{
    ACME, GLOBEX, ManualClock, client, client_with_clock, options, spawn, tenant,
};

#[tokio::test]
async fn token_is_exchanged_once_and_reused() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);

    client.list_series().await.unwrap();
    client.list_series().await.unwrap();

    assert_eq!(emulator.token_request_count(ACME), 1);
}

#[tokio::test]
async fn expired_cached_token_refreshed_once_under_load() {
    let emulator = spawn(options()).await;
    let clock = ManualClock::new();
    let client = client_with_clock(&emulator, ACME, clock.clone());
    client.list_series().await.unwrap();

    clock.advance(Duration::from_secs(3600));
    let calls = (0..20).map(|_| client.list_series());
    let results = join_all(calls).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(emulator.token_request_count(ACME), 2);
}

#[tokio::test]
async fn token_refreshed_before_expiry_margin() {
    let emulator = spawn(options()).await;
    let clock = ManualClock::new();
    let client = client_with_clock(&emulator, ACME, clock.clone());
    client.list_series().await.unwrap();

    clock.advance(Duration::from_secs(3299));
    client.list_series().await.unwrap();
    assert_eq!(emulator.token_request_count(ACME), 1);

    clock.advance(Duration::from_secs(1));
    client.list_series().await.unwrap();
    assert_eq!(emulator.token_request_count(ACME), 2);
}

#[tokio::test]
async fn revoked_token_reauthenticates_once_under_load() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    client.list_series().await.unwrap();

    emulator.revoke_tokens(ACME);
    let results = join_all((0..20).map(|_| client.list_series())).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(emulator.token_request_count(ACME), 2);
}

#[tokio::test]
async fn aged_token_with_403_reauthenticates() {
    let emulator = spawn(options()).await;
    let clock = ManualClock::new();
    let client = client_with_clock(&emulator, ACME, clock.clone());
    client.list_series().await.unwrap();

    clock.advance(Duration::from_secs(2000));
    emulator.expire_tokens(ACME);
    client.list_series().await.unwrap();

    assert_eq!(emulator.token_request_count(ACME), 2);
}

#[tokio::test]
async fn young_token_with_403_is_unauthorized() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    client.list_series().await.unwrap();

    emulator.expire_tokens(ACME);
    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::Unauthorized { status: 403, .. }),
        "{error:?}"
    );
    assert_eq!(emulator.token_request_count(ACME), 1);
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let emulator = spawn(options()).await;
    let mut config = tenant(&emulator, ACME);
    config.secret_key = "not-the-secret".to_owned().into();
    let client = mindtickle::Client::new(crate::harness::http(), config);

    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn us_tenant_on_global_host_is_not_found() {
    let emulator = spawn(options()).await;
    let mut config = tenant(&emulator, GLOBEX);
    config.api_base = emulator.api_url(mindtickle_emulator::Region::Global);
    let client = mindtickle::Client::new(crate::harness::http(), config);

    let error = client.list_series().await.unwrap_err();

    let Error::Api {
        status, message, ..
    } = &error
    else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(*status, 404);
    assert!(message.contains("Learning Site not found!"), "{message}");
}
