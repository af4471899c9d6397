//! The per-tenant MindTickle request budget: at most `requests_per_second` and
//! `requests_per_minute` calls per tenant (GCRA, from the `governor` crate), and a tenant-wide
//! backoff after a 429.
//!
//! With Redis configured, the limits and the backoff live in Redis (one GCRA script run per
//! request, on Redis's clock), so every replica spends from the same budget. Without it, or
//! while Redis cannot be reached, each process keeps them in memory.
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
    shared: Option<SharedBudget>,
    limits: BudgetLimits,
    per_second: DefaultDirectRateLimiter,
    per_minute: DefaultDirectRateLimiter,
    backoff: Mutex<Backoff>,
    /// Maximum time a request waits for the budget before it is rejected, so the work can be queued
    /// for the next window instead of holding a request or a job runner.
    max_wait: Duration,
}

impl TenantBudget {
    fn new(
        tenant: TenantId,
        limits: BudgetLimits,
        max_wait: Duration,
        shared: Option<SharedBudget>,
    ) -> TenantBudget {
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
            shared,
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

    /// Returns the time until the tenant's backoff ends, if it is backing off.
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
        if let Some(shared) = &self.shared {
            match shared.admit(&self.tenant, self.limits, self.max_wait).await {
                Ok(result) => return result.map_err(|wait| self.rejection(wait)),
                Err(error) => {
                    // The in-process limits still hold this replica to the budget.
                    metrics::counter!("bridge_redis_errors_total").increment(1);
                    tracing::warn!(tenant_id = %self.tenant, %error, "shared MindTickle budget unavailable; using this process's budget");
                }
            }
        }
        self.admit_locally().await
    }

    async fn admit_locally(&self) -> Result<(), GateRejected> {
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
        if let Some(shared) = self.shared.clone() {
            let tenant = self.tenant.clone();
            tokio::spawn(async move {
                if let Err(error) = shared.back_off(&tenant, delay).await {
                    tracing::warn!(tenant_id = %tenant, %error, "failed to share a MindTickle backoff through Redis");
                }
            });
        }
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

/// GCRA over two windows plus the tenant's backoff, atomically, on Redis's clock.
/// KEYS: per-second state, per-minute state, backoff marker. ARGV: emission interval and burst
/// tolerance in ms for each window. Returns 0 when admitted, or the ms to wait.
const GCRA_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local backoff = redis.call('PTTL', KEYS[3])
if backoff > 0 then return backoff end
local function state(key, interval, tolerance)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  return tat, tat - tolerance - now
end
local second_interval, second_tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local minute_interval, minute_tolerance = tonumber(ARGV[3]), tonumber(ARGV[4])
local second_tat, second_wait = state(KEYS[1], second_interval, second_tolerance)
local minute_tat, minute_wait = state(KEYS[2], minute_interval, minute_tolerance)
local wait = math.max(second_wait, minute_wait)
if wait > 0 then return wait end
redis.call('SET', KEYS[1], second_tat + second_interval, 'PX', second_tat + second_interval - now + 1000)
redis.call('SET', KEYS[2], minute_tat + minute_interval, 'PX', minute_tat + minute_interval - now + 1000)
return 0
";

/// A budget shared by every replica through Redis. Connects on first use.
#[derive(Clone)]
pub struct SharedBudget {
    client: redis::Client,
    connection: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    script: Arc<redis::Script>,
}

impl SharedBudget {
    pub fn new(url: &str) -> Result<SharedBudget, redis::RedisError> {
        Ok(SharedBudget {
            client: redis::Client::open(url)?,
            connection: Arc::default(),
            script: Arc::new(redis::Script::new(GCRA_SCRIPT)),
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
        self.connection
            .get_or_try_init(|| redis::aio::ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
    }

    /// Keys share the tenant's hash tag, so a Redis Cluster keeps them in one slot.
    fn key(tenant: &TenantId, name: &str) -> String {
        format!("tenant:{{{tenant}}}:mindtickle:{name}")
    }

    /// Returns `Ok(Ok(()))` when admitted, `Ok(Err(wait))` when over the budget for longer than
    /// `max_wait`, and `Err` when Redis cannot be asked.
    async fn admit(
        &self,
        tenant: &TenantId,
        limits: BudgetLimits,
        max_wait: Duration,
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        let mut connection = self.connection().await?;
        let second_interval = 1000 / u64::from(limits.per_second.max(1));
        let minute_interval = 60_000 / u64::from(limits.per_minute.max(1));
        // The same bursts as the in-process limiters: 1 per second, a tenth of a minute.
        let minute_tolerance = minute_interval * u64::from((limits.per_minute / 11).max(1) - 1);
        for _ in 0..16 {
            let wait_ms: i64 = self
                .script
                .key(Self::key(tenant, "budget:second"))
                .key(Self::key(tenant, "budget:minute"))
                .key(Self::key(tenant, "backoff"))
                .arg(second_interval)
                .arg(0)
                .arg(minute_interval)
                .arg(minute_tolerance)
                .invoke_async(&mut connection)
                .await?;
            if wait_ms <= 0 {
                metrics::counter!("bridge_mindtickle_requests_total").increment(1);
                return Ok(Ok(()));
            }
            let wait = Duration::from_millis(wait_ms.unsigned_abs());
            if wait > max_wait {
                return Ok(Err(wait));
            }
            tokio::time::sleep(wait).await;
        }
        Ok(Err(max_wait))
    }

    async fn back_off(&self, tenant: &TenantId, delay: Duration) -> Result<(), redis::RedisError> {
        let mut connection = self.connection().await?;
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(Self::key(tenant, "backoff"))
            .arg(1)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut connection)
            .await
    }

    /// Returns true when Redis responds to PING.
    pub async fn ping(&self) -> bool {
        match self.connection().await {
            Ok(mut connection) => redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// The budgets of every tenant this process talks to MindTickle for.
#[derive(Clone)]
pub struct Budgets {
    budgets: Arc<Mutex<HashMap<TenantId, Arc<TenantBudget>>>>,
    defaults: BudgetLimits,
    max_wait: Duration,
    shared: Option<SharedBudget>,
}

impl Budgets {
    pub fn new(
        defaults: BudgetLimits,
        max_wait: Duration,
        shared: Option<SharedBudget>,
    ) -> Budgets {
        Budgets {
            budgets: Arc::default(),
            defaults,
            max_wait,
            shared,
        }
    }

    pub fn shared(&self) -> Option<&SharedBudget> {
        self.shared.as_ref()
    }

    /// Returns the tenant's budget, with its override when one is given. A changed override
    /// replaces the budget, which starts full.
    pub fn for_tenant(&self, tenant: &TenantId, limits: Option<BudgetLimits>) -> Arc<TenantBudget> {
        let limits = limits.unwrap_or(self.defaults);
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        match budgets.get(tenant) {
            Some(budget) if budget.limits == limits => budget.clone(),
            _ => {
                let budget = Arc::new(TenantBudget::new(
                    tenant.clone(),
                    limits,
                    self.max_wait,
                    self.shared.clone(),
                ));
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
            None,
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
            None,
        );
        let acme = budgets.for_tenant(&TenantId::parse("acme").unwrap(), None);
        let globex = budgets.for_tenant(&TenantId::parse("globex").unwrap(), None);
        assert!(acme.per_second.check().is_ok());
        assert!(acme.per_second.check().is_err());
        assert!(globex.per_second.check().is_ok());
        assert!(globex.per_second.check().is_err());
    }
}
