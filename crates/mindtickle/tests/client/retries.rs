use std::{sync::atomic::Ordering, time::Duration};

use mindtickle::{Client, Error};
use mindtickle_emulator::{Fault, Region, RetryAfter};

use crate::{
    harness::{
        ACME, GLOBEX, gated_client, http, options, quick_retries, spawn, tenant, upsert, wait_for,
    },
    net::{lossy_proxy, silent_server},
};

fn server_errors(status: u16, count: u32) -> Fault {
    Fault::Status {
        status,
        count,
        retry_after: RetryAfter::Absent,
    }
}

#[tokio::test]
async fn server_errors_then_success() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    client.list_series().await.unwrap();
    let before = emulator.request_count(ACME);

    emulator.inject(server_errors(503, 2));
    let series = client.list_series().await.unwrap();

    assert!(!series.is_empty());
    // One token exchange and one call for the warm-up, then two failed attempts and a success.
    assert_eq!(gate.acquired(), 2 + 3);
    // Injected faults are served before authentication, so only the last attempt is counted
    // against the company.
    assert_eq!(emulator.request_count(ACME), before + 1);
}

#[tokio::test]
async fn exhausted_retries_return_server_error() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 2);
    client.list_series().await.unwrap();

    emulator.inject(server_errors(500, 3));
    let error = client.list_series().await.unwrap_err();

    let Error::Api { status, .. } = &error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(*status, 500);
    assert!(error.is_retryable());
    assert_eq!(gate.acquired(), 2 + 3);
    // All three faults were used up, so the next call needs no retry.
    client.list_series().await.unwrap();
    assert_eq!(gate.acquired(), 2 + 3 + 1);
}

#[tokio::test]
async fn rate_limit_is_not_retried() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    client.list_series().await.unwrap();

    emulator.inject(Fault::Status {
        status: 429,
        count: 2,
        retry_after: RetryAfter::Seconds(7),
    });
    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::RateLimited { retry_after: Some(wait) } if wait == Duration::from_secs(7)),
        "{error:?}"
    );
    assert_eq!(gate.acquired(), 2 + 1);
    // The second fault is still queued, which shows only one request was sent.
    let error = client.list_series().await.unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
}

#[tokio::test]
async fn timeout_then_success() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    let client = client.with_request_timeout(Duration::from_millis(200));
    client.list_series().await.unwrap();

    emulator.inject(Fault::Delay {
        delay_ms: 1000,
        count: 1,
    });
    let series = client.list_series().await.unwrap();

    assert!(!series.is_empty());
    assert_eq!(gate.acquired(), 2 + 2);
}

#[tokio::test]
async fn silent_server_times_out_after_retries() {
    let (url, accepted) = silent_server().await;
    let emulator = spawn(options()).await;
    let mut config = tenant(&emulator, ACME);
    config.api_base = url;
    let client = Client::new(http(), config)
        .with_retry_policy(quick_retries(2))
        .with_request_timeout(Duration::from_millis(100));

    let error = client.list_series().await.unwrap_err();

    assert!(matches!(error, Error::Timeout), "{error:?}");
    assert!(error.is_retryable());
    // The token exchange is the first request, and it gets no response on any of three
    // connections.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn refused_connection_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let emulator = spawn(options()).await;
    let mut config = tenant(&emulator, ACME);
    config.api_base = format!("http://{address}");
    let gate = crate::harness::RecordingGate::admitting();
    let client = Client::new(http(), config)
        .with_retry_policy(quick_retries(2))
        .with_request_gate(gate.clone());

    let error = client.list_series().await.unwrap_err();

    let Error::Transport(source) = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert!(source.is_connect(), "{source:?}");
    assert!(error.is_retryable());
    assert_eq!(gate.acquired(), 3);
}

#[tokio::test]
async fn upsert_retried_after_timeout_creates_one_user() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    let client = client.with_request_timeout(Duration::from_millis(200));
    client.list_series().await.unwrap();
    let email = "retried.hire@acme.example";

    emulator.inject(Fault::Delay {
        delay_ms: 600,
        count: 1,
    });
    let ids = client
        .upsert_users(&[upsert(email, "Retried Hire")])
        .await
        .unwrap();
    assert_eq!(gate.acquired(), 2 + 2);
    // Let the delayed first attempt finish too, in case the emulator still applies it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    wait_for(&client, &ids).await;

    let matching = emulator
        .users(ACME)
        .into_iter()
        .filter(|user| user.email.eq_ignore_ascii_case(email))
        .count();
    assert_eq!(matching, 1);
    assert_eq!(emulator.creation_count(ACME, email), 1);
}

#[tokio::test]
async fn upsert_resent_after_lost_response_creates_one_user() {
    let emulator = spawn(options()).await;
    let upstream = emulator.api_url(Region::Us);
    let proxy = lossy_proxy(
        &upstream,
        "POST /services/data/v2.0/mtobjects/Users/upsert",
        1,
    )
    .await;
    let mut config = tenant(&emulator, GLOBEX);
    config.api_base = proxy;
    let unpooled = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let client = Client::new(unpooled, config)
        .with_retry_policy(quick_retries(3))
        .with_request_timeout(Duration::from_millis(500));
    let email = "lost.response@globex.example";

    let ids = client
        .upsert_users(&[upsert(email, "Lost Response")])
        .await
        .unwrap();
    // The token exchange, the upsert whose response was lost, and the resent upsert all
    // reached the emulator.
    assert_eq!(emulator.request_count(GLOBEX), 3);
    let report = wait_for(&client, &ids).await;

    assert!(report.errors.is_empty(), "{report:?}");
    let matching = emulator
        .users(GLOBEX)
        .into_iter()
        .filter(|user| user.email.eq_ignore_ascii_case(email))
        .count();
    assert_eq!(matching, 1);
    assert_eq!(emulator.creation_count(GLOBEX, email), 1);
    assert_eq!(emulator.user(GLOBEX, email).unwrap().name, "Lost Response");
}
