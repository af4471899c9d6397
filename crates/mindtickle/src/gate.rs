//! The hook through which a caller meters the client's requests against its own budget.

use std::{future::Future, pin::Pin, time::Duration, time::SystemTime};

/// A caller's request budget for one tenant, consulted by [`Client`](crate::Client) before
/// every HTTP request it sends.
///
/// Contract:
/// - [`acquire`](RequestGate::acquire) is awaited once before each request: token exchanges,
///   continuation pages, re-authentications and each retry of a transient failure all count,
///   because MindTickle counts every one of them against the account's limit. It may wait
///   until the budget allows the request. Returning [`GateRejected`] ends the call at once
///   with [`Error::BudgetExhausted`](crate::Error::BudgetExhausted), and nothing is sent.
/// - [`on_rate_limited`](RequestGate::on_rate_limited) is called once for every 429 response,
///   with its `Retry-After` when one was readable, before the client returns
///   [`Error::RateLimited`](crate::Error::RateLimited).
/// - The client holds its token lock during a token exchange, so while the gate waits there,
///   other calls of the same client wait too. A gate must therefore never call that client.
///
/// Without a gate the client sends every request at once.
pub trait RequestGate: Send + Sync {
    /// Waits until one more request fits the budget, or rejects it.
    fn acquire(&self) -> Pin<Box<dyn Future<Output = Result<(), GateRejected>> + Send + '_>>;

    /// Records a 429 response from MindTickle, so the budget can slow down.
    fn on_rate_limited(&self, retry_after: Option<Duration>);
}

/// Rejection of a request by a [`RequestGate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateRejected {
    /// Earliest wall-clock time at which the budget expects to admit a request, if known.
    pub not_before: Option<SystemTime>,
}
