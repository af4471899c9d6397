//! The MindTickle budget shared by replicas through a real Redis.

use std::time::{Duration, SystemTime};

use bridge::sync::budget::{BudgetLimits, Budgets, SharedBudget, TenantGate};
use bridge::tenancy::TenantId;
use mindtickle::RequestGate;

fn redis_url() -> String {
    std::env::var("ENABLEMENT_BRIDGE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Two "replicas" of one tenant's budget, or `None` after a notice when Redis is unreachable.
async fn replicas(limits: BudgetLimits) -> Option<(TenantGate, TenantGate)> {
    let url = redis_url();
    let shared = SharedBudget::new(&url).expect("valid Redis URL");
    if !shared.ping().await {
        if std::env::var("ENABLEMENT_BRIDGE_REQUIRE_SERVICES").is_ok_and(|value| value == "1") {
            panic!(
                "Redis is required (ENABLEMENT_BRIDGE_REQUIRE_SERVICES=1) but unreachable at {url}"
            );
        }
        eprintln!("skipped: Redis unreachable at {url}; set ENABLEMENT_BRIDGE_TEST_REDIS_URL");
        return None;
    }
    // A fresh tenant id per run, so no state of an earlier run is shared.
    let tenant = TenantId::parse(&format!("redis-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let first = Budgets::new(limits, Duration::ZERO, Some(shared)).for_tenant(&tenant, None);
    let second = Budgets::new(
        limits,
        Duration::ZERO,
        Some(SharedBudget::new(&url).unwrap()),
    )
    .for_tenant(&tenant, None);
    Some((TenantGate(first), TenantGate(second)))
}

#[tokio::test]
async fn replicas_share_one_budget() {
    let limits = BudgetLimits {
        per_second: 2,
        per_minute: 1000,
    };
    let Some((first, second)) = replicas(limits).await else {
        return;
    };
    assert!(first.acquire().await.is_ok());
    // The other replica sees the request the first one spent.
    let rejected = second.acquire().await.unwrap_err();
    let wait = rejected
        .not_before
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(wait <= Duration::from_millis(500), "{wait:?}");
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(second.acquire().await.is_ok());
    assert!(first.acquire().await.is_err());
}

#[tokio::test]
async fn replicas_share_backoff() {
    let limits = BudgetLimits {
        per_second: 100,
        per_minute: 10_000,
    };
    let Some((first, second)) = replicas(limits).await else {
        return;
    };
    first.on_rate_limited(Some(Duration::from_secs(30)));
    // The backoff reaches Redis from a spawned task; wait for it within a bound.
    let mut rejected = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(error) = second.acquire().await {
            rejected = Some(error);
            break;
        }
    }
    let rejected = rejected.expect("the other replica backs off too");
    let wait = rejected
        .not_before
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(wait > Duration::from_secs(25), "{wait:?}");
}
