use std::time::{Duration, SystemTime};

use mindtickle::{Error, GateRejected};
use mindtickle_emulator::{Fault, RetryAfter};

use crate::harness::{ACME, RecordingGate, client, gated_client, options, spawn};

#[tokio::test]
async fn rejecting_gate_sends_nothing() {
    let emulator = spawn(options()).await;
    let warm = client(&emulator, ACME);
    warm.list_series().await.unwrap();
    let requests = emulator.request_count(ACME);
    let tokens = emulator.token_request_count(ACME);
    let not_before = SystemTime::now() + Duration::from_secs(30);
    let gate = RecordingGate::rejecting(GateRejected {
        not_before: Some(not_before),
    });
    let client = warm.clone().with_request_gate(gate.clone());

    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::BudgetExhausted { not_before: Some(at) } if at == not_before),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(gate.acquired(), 1);
    assert_eq!(emulator.request_count(ACME), requests);
    assert_eq!(emulator.token_request_count(ACME), tokens);
}

#[tokio::test]
async fn rejecting_gate_blocks_token_exchange() {
    let emulator = spawn(options()).await;
    let gate = RecordingGate::rejecting(GateRejected::default());
    let client = client(&emulator, ACME).with_request_gate(gate.clone());

    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::BudgetExhausted { not_before: None }),
        "{error:?}"
    );
    assert_eq!(emulator.token_request_count(ACME), 0);
    assert_eq!(emulator.request_count(ACME), 0);
}

#[tokio::test]
async fn gate_counts_token_exchange() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 0);

    client.list_series().await.unwrap();

    assert_eq!(gate.acquired(), 2);
    assert_eq!(emulator.request_count(ACME), 2);
}

#[tokio::test]
async fn gate_sees_rate_limit() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    client.list_series().await.unwrap();

    emulator.inject(Fault::Status {
        status: 429,
        count: 1,
        retry_after: RetryAfter::Seconds(7),
    });
    let error = client.list_series().await.unwrap_err();

    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert_eq!(gate.rate_limits(), vec![Some(Duration::from_secs(7))]);
}

#[tokio::test]
async fn gate_sees_rate_limit_without_header() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 3);
    client.list_series().await.unwrap();

    emulator.inject(Fault::Status {
        status: 429,
        count: 1,
        retry_after: RetryAfter::Absent,
    });
    let error = client.list_series().await.unwrap_err();

    assert!(
        matches!(error, Error::RateLimited { retry_after: None }),
        "{error:?}"
    );
    assert_eq!(gate.rate_limits(), vec![None]);
}
