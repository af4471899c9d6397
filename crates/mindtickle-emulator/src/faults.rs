//! Faults and behaviour switches that tests turn on while the emulator runs, from the library
//! ([`crate::Emulator::inject`]) or over HTTP (`POST /__emulator/faults` on the admin host).

use std::{collections::BTreeMap, time::Duration};

use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    state::{Company, Shared},
};

/// Maximum delay of a [`Fault::Delay`] in milliseconds, so a typo cannot hang a test run.
pub const MAX_FAULT_DELAY_MS: u64 = 60_000;

/// A failure or behaviour change injected at run time.
///
/// Over HTTP the same value is the JSON body of `POST /__emulator/faults`, tagged by `kind`,
/// for example `{"kind":"status","status":503,"count":2,"retryAfter":{"seconds":7}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Fault {
    /// The next `count` requests get `status` (429, 500 or 503 are the useful ones), on any
    /// listener and before authentication, so no company is charged for them.
    Status {
        status: u16,
        count: u32,
        #[serde(default)]
        retry_after: RetryAfter,
    },
    /// The next `count` requests wait `delay_ms` milliseconds, capped at
    /// [`MAX_FAULT_DELAY_MS`], before they are served normally.
    Delay { delay_ms: u64, count: u32 },
    /// Every token of a company, issued before or after this call, expires `ttl_ms` after it
    /// was issued (or after its `iat`, for a legacy JWT). `None` restores the configured
    /// lifetime.
    TokenTtl {
        company_id: String,
        ttl_ms: Option<u64>,
    },
    /// While `stalled`, bulk processes of a company stay `IN_PROGRESS` and change nothing.
    /// Once cleared, the overdue ones finish on the next request.
    StallProcesses { company_id: String, stalled: bool },
    /// Upserts of these emails (case-insensitive) fail with a per-email error. Each call
    /// replaces the previous list, and an empty list clears it.
    FailEmails {
        company_id: String,
        emails: Vec<String>,
    },
    /// Whether the v4.0 `nextRecordsUrl` and xAPI `more` URLs of a company point at the
    /// global host, which rejects a US tenant's token there with 500, or at the host that
    /// served the page.
    /// On by default, as MindTickle does.
    GlobalContinuation { company_id: String, enabled: bool },
}

/// The `Retry-After` header sent with an injected fault.
///
/// In JSON: `{"seconds":7}`, `"httpDate"`, `"malformed"` or `"absent"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RetryAfter {
    /// Delta seconds, for example `Retry-After: 7`.
    Seconds(u64),
    /// An IMF-fixdate [`HTTP_DATE_RETRY_SECONDS`] seconds after the response is sent.
    HttpDate,
    /// A value that is neither delta seconds nor a date.
    Malformed,
    /// No header.
    #[default]
    Absent,
}

/// How far ahead [`RetryAfter::HttpDate`] points.
pub const HTTP_DATE_RETRY_SECONDS: i64 = 5;

impl RetryAfter {
    pub(crate) fn header_value(&self) -> Option<String> {
        match self {
            RetryAfter::Seconds(seconds) => Some(seconds.to_string()),
            RetryAfter::HttpDate => {
                let at = Utc::now() + chrono::Duration::seconds(HTTP_DATE_RETRY_SECONDS);
                Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            }
            RetryAfter::Malformed => Some("soon".to_owned()),
            RetryAfter::Absent => None,
        }
    }
}

/// Per-company switches set by [`Fault`]s.
#[derive(Debug, Clone)]
pub(crate) struct CompanySwitches {
    pub token_ttl: Option<Duration>,
    pub stalled: bool,
    /// Lower-cased.
    pub failing_emails: Vec<String>,
    pub global_continuation: bool,
}

impl CompanySwitches {
    pub fn new(global_continuation: bool) -> CompanySwitches {
        CompanySwitches {
            token_ttl: None,
            stalled: false,
            failing_emails: Vec::new(),
            global_continuation,
        }
    }

    pub fn fails_email(&self, email: &str) -> bool {
        self.failing_emails
            .iter()
            .any(|failing| failing.eq_ignore_ascii_case(email.trim()))
    }
}

/// Counters of one company, as `GET /__emulator/stats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStats {
    /// Requests attributed to the company after authentication, rejected ones included.
    pub request_count: u64,
    /// Requests rejected with 429 by the rate limit.
    pub rejected_count: u64,
    /// Token exchanges that named the company's learning site.
    pub token_request_count: u64,
    /// Users created by upserts, per lower-cased email. A count above 1 means the email was
    /// created twice, which the email-keyed upsert should prevent.
    pub user_creations: BTreeMap<String, u64>,
}

impl CompanyStats {
    pub(crate) fn of(company: &Company) -> CompanyStats {
        CompanyStats {
            request_count: company.request_count,
            rejected_count: company.rejected_count,
            token_request_count: company.token_request_count,
            user_creations: company.user_creations.clone(),
        }
    }
}

impl Fault {
    /// Checks the values a client sent over HTTP, so a typo is reported instead of ignored.
    pub(crate) fn check(&self, shared: &Shared) -> Result<(), String> {
        let company_id = match self {
            Fault::Status { status, .. } => {
                return if (400..=599).contains(status) {
                    Ok(())
                } else {
                    Err(format!(
                        "status {status} is not an error status; use 400 to 599"
                    ))
                };
            }
            Fault::Delay { delay_ms, .. } => {
                return if *delay_ms <= MAX_FAULT_DELAY_MS {
                    Ok(())
                } else {
                    Err(format!(
                        "delayMs {delay_ms} exceeds the maximum of {MAX_FAULT_DELAY_MS}"
                    ))
                };
            }
            Fault::TokenTtl { company_id, .. }
            | Fault::StallProcesses { company_id, .. }
            | Fault::FailEmails { company_id, .. }
            | Fault::GlobalContinuation { company_id, .. } => company_id,
        };
        if shared.lock().companies.contains_key(company_id) {
            Ok(())
        } else {
            Err(format!(
                "company {company_id:?} is not in the fixtures; see GET /__emulator/stats for the ids"
            ))
        }
    }
}

impl Shared {
    /// Applies a fault. A per-company fault that names an unknown company does nothing.
    pub fn inject(&self, fault: Fault) {
        let mut state = self.lock();
        match fault {
            Fault::Status {
                status,
                count,
                retry_after,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = match status {
                    StatusCode::TOO_MANY_REQUESTS => "API rate limit exceeded",
                    StatusCode::SERVICE_UNAVAILABLE => "Service temporarily unavailable",
                    _ => "An unexpected error occurred",
                };
                for _ in 0..count {
                    let error =
                        ApiError::new(status, message).with_retry_after(retry_after.header_value());
                    state.faults.push_back(error);
                }
            }
            Fault::Delay { delay_ms, count } => {
                let delay = Duration::from_millis(delay_ms.min(MAX_FAULT_DELAY_MS));
                state
                    .delays
                    .extend(std::iter::repeat_n(delay, count as usize));
            }
            Fault::TokenTtl { company_id, ttl_ms } => {
                if let Some(company) = state.companies.get_mut(&company_id) {
                    company.switches.token_ttl = ttl_ms.map(Duration::from_millis);
                }
            }
            Fault::StallProcesses {
                company_id,
                stalled,
            } => {
                if let Some(company) = state.companies.get_mut(&company_id) {
                    company.switches.stalled = stalled;
                }
            }
            Fault::FailEmails { company_id, emails } => {
                if let Some(company) = state.companies.get_mut(&company_id) {
                    company.switches.failing_emails = emails
                        .iter()
                        .map(|email| email.trim().to_ascii_lowercase())
                        .collect();
                }
            }
            Fault::GlobalContinuation {
                company_id,
                enabled,
            } => {
                if let Some(company) = state.companies.get_mut(&company_id) {
                    company.switches.global_continuation = enabled;
                }
            }
        }
    }

    /// Drops queued status and delay faults and resets every company's switches to the
    /// configured [`crate::Options`].
    pub fn clear_faults(&self) {
        let global_continuation = self.options.global_continuation;
        let mut state = self.lock();
        state.faults.clear();
        state.delays.clear();
        for company in state.companies.values_mut() {
            company.switches = CompanySwitches::new(global_continuation);
        }
    }

    pub fn take_fault(&self) -> Option<ApiError> {
        let mut state = self.lock();
        let mut error = state.faults.pop_front()?;
        // An HTTP date must be computed when the response is sent, not when the fault was queued.
        if error
            .retry_after
            .as_deref()
            .is_some_and(|v| v.ends_with(" GMT"))
        {
            error.retry_after = RetryAfter::HttpDate.header_value();
        }
        Some(error)
    }

    pub fn stats(&self) -> BTreeMap<String, CompanyStats> {
        self.lock()
            .companies
            .iter()
            .map(|(company_id, company)| (company_id.clone(), CompanyStats::of(company)))
            .collect()
    }

    pub fn take_delay(&self) -> Option<Duration> {
        self.lock().delays.pop_front()
    }
}
