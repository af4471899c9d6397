//! The cached bearer token of one tenant, refreshed by a single request at a time.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use secrecy::SecretString;
use tokio::sync::Mutex;

/// Source of the current time, replaceable so tests can age a token without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Instant;
}

/// The monotonic system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Clients refresh this long before a token expires.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct CachedToken {
    pub value: SecretString,
    pub issued_at: Instant,
    pub lifetime: Duration,
}

impl CachedToken {
    /// True once the token is within the refresh margin of its expiry. The margin shrinks to
    /// half the lifetime for short-lived tokens, so they are still reused.
    pub fn is_due(&self, now: Instant) -> bool {
        let margin = REFRESH_MARGIN.min(self.lifetime / 2);
        now.saturating_duration_since(self.issued_at) + margin >= self.lifetime
    }

    /// True when a 403 more likely means expiry than a missing permission: the token has lived
    /// at least half its lifetime. Servers disagree on 401 or 403 for expired tokens.
    pub fn is_aged(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.issued_at) >= self.lifetime / 2
    }
}

/// The current token. Holding the lock while fetching makes concurrent callers wait for one
/// token request instead of each sending their own.
#[derive(Debug, Default)]
pub(crate) struct TokenSlot {
    pub current: Mutex<Option<Arc<CachedToken>>>,
}
