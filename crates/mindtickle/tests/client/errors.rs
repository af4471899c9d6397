use std::time::Duration;

use mindtickle::Error;
use mindtickle_emulator::{Fault, HTTP_DATE_RETRY_SECONDS, Options, RateLimitProfile, RetryAfter};

use crate::harness::{ACME, client, options, quick_retries, spawn};

async fn rate_limited_after(retry_after: RetryAfter) -> Option<Duration> {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    client.list_series().await.unwrap();

    emulator.inject(Fault::Status {
        status: 429,
        count: 1,
        retry_after,
    });
    let error = client.list_series().await.unwrap_err();

    assert!(error.is_retryable());
    match error {
        Error::RateLimited { retry_after } => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limited_with_delta_seconds() {
    let wait = rate_limited_after(RetryAfter::Seconds(7)).await;
    assert_eq!(wait, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn rate_limited_with_http_date() {
    let wait = rate_limited_after(RetryAfter::HttpDate).await.unwrap();
    // HTTP dates have whole-second resolution, so up to one second is lost.
    let max = Duration::from_secs(HTTP_DATE_RETRY_SECONDS as u64);
    assert!(wait <= max, "{wait:?}");
    assert!(wait >= max - Duration::from_secs(2), "{wait:?}");
}

#[tokio::test]
async fn rate_limited_with_malformed_header() {
    assert_eq!(rate_limited_after(RetryAfter::Malformed).await, None);
}

#[tokio::test]
async fn rate_limited_without_header() {
    assert_eq!(rate_limited_after(RetryAfter::Absent).await, None);
}

#[tokio::test]
async fn server_error_is_retryable_api_error() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME).with_retry_policy(quick_retries(0));
    client.list_series().await.unwrap();

    emulator.inject(Fault::Status {
        status: 500,
        count: 1,
        retry_after: RetryAfter::Absent,
    });
    let error = client.list_series().await.unwrap_err();

    let Error::Api {
        status, request_id, ..
    } = &error
    else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(*status, 500);
    assert!(request_id.is_some());
    assert!(error.is_retryable());
    client.list_series().await.unwrap();
}

#[tokio::test]
async fn strict_limit_rejects_burst_with_retry_after() {
    let emulator = spawn(Options {
        rate_limit: RateLimitProfile::Strict,
        ..options()
    })
    .await;
    let client = client(&emulator, ACME);

    // The strict budget is four requests per second, the token request included, so a
    // burst of six calls must hit it.
    let mut rejection = None;
    for _ in 0..6 {
        if let Err(error) = client.list_series().await {
            rejection = Some(error);
            break;
        }
    }

    let Some(Error::RateLimited { retry_after }) = rejection else {
        panic!("expected a rate-limit rejection, got {rejection:?}");
    };
    assert!(retry_after.is_some_and(|d| d <= Duration::from_secs(1)));
    assert_eq!(emulator.rejected_count(ACME), 1);
}
