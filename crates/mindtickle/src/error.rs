//! Errors of MindTickle calls and the parsing of `Retry-After`.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, header::HeaderMap};

/// A failed MindTickle call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Too many requests (429). `retry_after` comes from `Retry-After` (delta seconds or an
    /// HTTP date). It is `None` when the header is missing or malformed, so the caller picks its own backoff.
    ///
    /// The client never retries a 429 itself: it returns this error on the first one, so the
    /// caller's per-tenant budget decides when to try again.
    #[error("MindTickle rate limit exceeded (429); retry after {retry_after:?} or back off")]
    RateLimited { retry_after: Option<Duration> },

    /// 401 or 403 that survived one re-authentication, or a rejected key pair or reporting
    /// login.
    #[error(
        "MindTickle rejected the tenant's credentials ({status}: {message}); check the API key \
         pair, learning-site host and reporting login in the tenant configuration"
    )]
    Unauthorized { status: u16, message: String },

    /// Any other non-success status.
    #[error("MindTickle returned {status}: {message} (request id {request_id:?})")]
    Api {
        status: u16,
        message: String,
        request_id: Option<String>,
    },

    /// The request did not finish within its timeout.
    #[error("MindTickle request timed out")]
    Timeout,

    /// The request could not be sent or its response could not be read.
    #[error("MindTickle request failed: {0}")]
    Transport(#[source] reqwest::Error),

    /// A response body did not have the expected shape.
    #[error("decoding the MindTickle {what} response failed: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A listing kept returning continuation links past the page limit.
    #[error("MindTickle {what} listing still had more pages after {pages}; stopped reading")]
    TooManyPages { what: &'static str, pages: usize },

    /// The client's [`RequestGate`](crate::RequestGate) rejected a request, so it was not
    /// sent. `not_before` is the gate's estimate of when the budget admits requests again.
    #[error(
        "the tenant's MindTickle request budget is exhausted; request not sent, retry after \
         {not_before:?}"
    )]
    BudgetExhausted { not_before: Option<SystemTime> },
}

impl Error {
    /// Returns true for failures that may pass on their own: 429, an exhausted request
    /// budget, 5xx, timeouts and failed connections. The client has already retried 5xx,
    /// timeouts and failed connections by its [`RetryPolicy`](crate::RetryPolicy), so a caller
    /// that retries these should wait longer than the policy does.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::BudgetExhausted { .. } => true,
            _ => self.is_transient(),
        }
    }

    /// True for the failures the client retries itself: 5xx, timeouts and failed connections.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Timeout => true,
            Error::Api { status, .. } => *status >= 500,
            Error::Transport(error) => error.is_connect() || error.is_timeout(),
            Error::RateLimited { .. }
            | Error::BudgetExhausted { .. }
            | Error::Unauthorized { .. }
            | Error::Decode { .. }
            | Error::TooManyPages { .. } => false,
        }
    }

    /// Wraps a reqwest error without its URL, because query strings carry learner emails
    /// and errors end up in logs and job records.
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Error {
        if error.is_timeout() {
            Error::Timeout
        } else {
            Error::Transport(error.without_url())
        }
    }

    pub(crate) fn decode(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Decode {
            what,
            source: source.into(),
        }
    }

    /// Builds the error for a non-success response from its status, headers and body.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Error::RateLimited {
                retry_after: retry_after(headers, Utc::now()),
            };
        }
        let message = error_message(body);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Error::Unauthorized {
                status: status.as_u16(),
                message,
            };
        }
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Error::Api {
            status: status.as_u16(),
            message,
            request_id,
        }
    }
}

/// Reads the message of an error body: `{"message"}` from the gateway, `{"error"}` from the
/// token endpoint, or else the start of the raw text.
fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "error"] {
            if let Some(message) = value.get(key).and_then(|m| m.as_str()) {
                return message.to_owned();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    text.chars().take(200).collect()
}

/// Parses `Retry-After` as delta seconds or an HTTP date; a date in the past means zero.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // RFC 9110 dates end in "GMT", which chrono's RFC 2822 parser accepts as an obsolete zone.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_garbage() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Mon, 02 Mar 2026 10:00:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Mon, 02 Mar 2026 09:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-3"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn error_message_prefers_message_then_error_key() {
        assert_eq!(error_message(br#"{"message":"m","request_id":"r"}"#), "m");
        assert_eq!(
            error_message(br#"{"error":"missing parameter ls_url"}"#),
            "missing parameter ls_url"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(error_message(b""), "(empty body)");
    }
}
