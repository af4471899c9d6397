//! The per-tenant MindTickle request budget: at most `requests_per_second` and
//! `requests_per_minute` calls per tenant (GCRA, from the `governor` crate), and a tenant-wide
//! backoff after a 429.
//!
//! MindTickle's published limits disagree (5/s, 220/min and 3,000/h in two live integrations;
//! 4/s and 60/min in a third-party profile), so the defaults of 3/s and 55/min stay under both.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use mindtickle::{GateRejected, RequestGate};
use rand::Rng;

use crate::tenancy::TenantId;

/// Requests per second and per minute allowed for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    pub per_second: u32,
    pub per_minute: u32,
}

/// Backoff after a 429 without a usable `Retry-After`: full jitter over
/// `min(MAX_BACKOFF, BASE_BACKOFF × 2^(n-1))` for the n-th 429 in a row.
const BASE_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// A 429 this long after the previous one starts the exponential backoff over.
const BACKOFF_RESET: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    consecutive: u32,
    last: Option<Instant>,
}

/// One tenant's budget. Shared by every client of the tenant in this process.
pub struct TenantBudget {
    tenant: TenantId,
    limits: BudgetLimits,
    per_second: DefaultDirectRateLimiter,
    per_minute: DefaultDirectRateLimiter,
    backoff: Mutex<Backoff>,
    /// Longest a request waits for the budget before it is rejected, so the work can be queued
    /// for the next window instead of holding a request or a job runner.
    max_wait: Duration,
}

impl TenantBudget {
    fn new(tenant: TenantId, limits: BudgetLimits, max_wait: Duration) -> TenantBudget {
        // GCRA admits a burst on top of the steady rate, so in any window a limiter lets through
        // up to burst + rate × window. Small bursts keep every one-second window at about
        // `per_second` + 1 and every minute at about 110% of `per_minute`, under MindTickle's
        // limits when the budget is below them.
        let per_second = limits.per_second.max(1);
        let per_minute = limits.per_minute.max(1);
        let second_quota = Quota::with_period(Duration::from_secs(1) / per_second)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        let minute_burst = NonZeroU32::new((per_minute / 11).max(1)).unwrap_or(NonZeroU32::MIN);
        let minute_quota = Quota::with_period(Duration::from_secs(60) / per_minute)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(minute_burst);
        TenantBudget {
            tenant,
            limits,
            per_second: RateLimiter::direct(second_quota),
            per_minute: RateLimiter::direct(minute_quota),
            backoff: Mutex::new(Backoff::default()),
            max_wait,
        }
    }

    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// The time until the tenant's backoff ends, if it is backing off.
    fn backoff_remaining(&self) -> Option<Duration> {
        let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff
            .until
            .and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|remaining| !remaining.is_zero())
    }

    fn rejection(&self, wait: Duration) -> GateRejected {
        metrics::counter!("bridge_mindtickle_budget_deferred_total").increment(1);
        tracing::debug!(tenant_id = %self.tenant, wait_ms = wait.as_millis() as u64, "MindTickle request deferred by the tenant budget");
        GateRejected {
            not_before: Some(SystemTime::now() + wait),
        }
    }

    async fn admit(&self) -> Result<(), GateRejected> {
        // Bounded: each round either admits, rejects, or sleeps at most `max_wait`.
        for _ in 0..16 {
            if let Some(remaining) = self.backoff_remaining() {
                if remaining > self.max_wait {
                    return Err(self.rejection(remaining));
                }
                tokio::time::sleep(remaining).await;
                continue;
            }
            let clock = DefaultClock::default();
            if let Err(not_until) = self.per_second.check() {
                let wait = not_until.wait_time_from(clock.now());
                if wait > self.max_wait {
                    return Err(self.rejection(wait));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if let Err(not_until) = self.per_minute.check() {
                let wait = not_until.wait_time_from(clock.now());
                if wait > self.max_wait {
                    return Err(self.rejection(wait));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            metrics::counter!("bridge_mindtickle_requests_total").increment(1);
            return Ok(());
        }
        Err(self.rejection(self.max_wait))
    }

    fn rate_limited(&self, retry_after: Option<Duration>) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if backoff
            .last
            .is_some_and(|last| now.duration_since(last) > BACKOFF_RESET)
        {
            backoff.consecutive = 0;
        }
        backoff.consecutive = backoff.consecutive.saturating_add(1);
        backoff.last = Some(now);
        let delay = retry_after.unwrap_or_else(|| {
            let exponent = backoff.consecutive.saturating_sub(1).min(16);
            let ceiling = BASE_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
            Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64))
        });
        let until = now + delay;
        backoff.until = Some(backoff.until.map_or(until, |current| current.max(until)));
        metrics::counter!("bridge_mindtickle_rate_limited_total").increment(1);
        tracing::warn!(
            tenant_id = %self.tenant,
            delay_ms = delay.as_millis() as u64,
            consecutive = backoff.consecutive,
            "MindTickle answered 429; the tenant backs off"
        );
    }
}

/// The gate a tenant's client awaits before each request.
pub struct TenantGate(pub Arc<TenantBudget>);

impl RequestGate for TenantGate {
    fn acquire(&self) -> Pin<Box<dyn Future<Output = Result<(), GateRejected>> + Send + '_>> {
        Box::pin(self.0.admit())
    }

    fn on_rate_limited(&self, retry_after: Option<Duration>) {
        self.0.rate_limited(retry_after);
    }
}

/// The budgets of every tenant this process talks to MindTickle for.
#[derive(Clone)]
pub struct Budgets {
    budgets: Arc<Mutex<HashMap<TenantId, Arc<TenantBudget>>>>,
    defaults: BudgetLimits,
    max_wait: Duration,
}

impl Budgets {
    pub fn new(defaults: BudgetLimits, max_wait: Duration) -> Budgets {
        Budgets {
            budgets: Arc::default(),
            defaults,
            max_wait,
        }
    }

    /// Returns the tenant's budget, with its override when one is given. A changed override
    /// replaces the budget, which starts full.
    pub fn for_tenant(&self, tenant: &TenantId, limits: Option<BudgetLimits>) -> Arc<TenantBudget> {
        let limits = limits.unwrap_or(self.defaults);
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        match budgets.get(tenant) {
            Some(budget) if budget.limits == limits => budget.clone(),
            _ => {
                let budget = Arc::new(TenantBudget::new(tenant.clone(), limits, self.max_wait));
                budgets.insert(tenant.clone(), budget.clone());
                budget
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_second: u32, per_minute: u32, max_wait: Duration) -> TenantBudget {
        TenantBudget::new(
            TenantId::parse("acme").unwrap(),
            BudgetLimits {
                per_second,
                per_minute,
            },
            max_wait,
        )
    }

    #[tokio::test]
    async fn over_budget_is_rejected_with_a_time() {
        let budget = budget(2, 100, Duration::ZERO);
        assert!(budget.admit().await.is_ok());
        let rejected = budget.admit().await.unwrap_err();
        let not_before = rejected.not_before.unwrap();
        assert!(not_before > SystemTime::now());
        assert!(not_before < SystemTime::now() + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn minute_limit_applies() {
        let budget = budget(100, 3, Duration::ZERO);
        assert!(budget.admit().await.is_ok());
        // Past the per-second spacing, so only the per-minute limit can reject.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let rejected = budget.admit().await.unwrap_err();
        let wait = rejected
            .not_before
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(wait > Duration::from_secs(10), "{wait:?}");
    }

    #[tokio::test]
    async fn short_waits_are_paced() {
        let budget = budget(20, 100_000, Duration::from_secs(1));
        let started = Instant::now();
        for _ in 0..6 {
            assert!(budget.admit().await.is_ok());
        }
        // One at once, the other five paced 50 ms apart.
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn retry_after_backs_the_tenant_off() {
        let budget = budget(100, 1000, Duration::ZERO);
        budget.rate_limited(Some(Duration::from_secs(30)));
        let rejected = budget.admit().await.unwrap_err();
        let wait = rejected
            .not_before
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn missing_retry_after_uses_capped_backoff() {
        let budget = budget(100, 1000, Duration::ZERO);
        for _ in 0..20 {
            budget.rate_limited(None);
        }
        let remaining = budget.backoff_remaining().unwrap_or_default();
        assert!(remaining <= MAX_BACKOFF);
    }

    #[test]
    fn tenants_have_separate_budgets() {
        let budgets = Budgets::new(
            BudgetLimits {
                per_second: 1,
                per_minute: 10,
            },
            Duration::ZERO,
        );
        let acme = budgets.for_tenant(&TenantId::parse("acme").unwrap(), None);
        let globex = budgets.for_tenant(&TenantId::parse("globex").unwrap(), None);
        assert!(acme.per_second.check().is_ok());
        assert!(acme.per_second.check().is_err());
        assert!(globex.per_second.check().is_ok());
        assert!(globex.per_second.check().is_err());
    }
}
