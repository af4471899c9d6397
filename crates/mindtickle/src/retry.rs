//! Retry policy of transient failures: bounds and backoff with full jitter.

use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};

/// Bounds of the client's own retries of transient failures: 5xx responses, timeouts and
/// failed connections. A 429 is never retried inside the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retries off.
    pub max_retries: u32,
    /// Upper bound of the delay before the first retry. The bound doubles for each later retry.
    pub base_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, with delays drawn below 200 ms, 400 ms and 800 ms, capped at 5 s.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Draws the delay before retry number `retry` (1 for the first) uniformly from zero to
    /// `min(max_delay, base_delay * 2^(retry - 1))`. Full jitter spreads the retries of many
    /// callers that failed together, so they do not hit MindTickle again in step.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self.base_delay.saturating_mul(doubling).min(self.max_delay);
        ceiling.mul_f64(random_fraction())
    }
}

/// Returns a number in `[0, 1)`. Each `RandomState` is seeded with fresh keys, which is random
/// enough for jitter and needs no extra dependency.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(0u8) >> 11;
    // 53 bits fill the mantissa of an f64 exactly.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_doubling_ceiling_and_cap() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            assert!(policy.backoff(1) < Duration::from_millis(200));
            assert!(policy.backoff(2) < Duration::from_millis(400));
            assert!(policy.backoff(3) < Duration::from_millis(800));
            assert!(policy.backoff(40) <= Duration::from_secs(5));
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = RetryPolicy::default();
        let delays: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| policy.backoff(3)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn zero_base_delay_never_waits() {
        let policy = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff(5), Duration::ZERO);
    }
}
