//! Typed client of the MindTickle API for one tenant: token exchange, bulk user writes,
//! user search, the content catalog, xAPI progress and OData scores.
//!
//! The user write routes (`Users/upsert`, `Users/deactivate`, `process/status`) are not public
//! and follow a proposed contract; they stay behind [`Client`] so they can change in one place.
//!
//! The client retries 5xx responses, timeouts and failed connections itself, by a
//! [`RetryPolicy`], and re-authenticates once when a token is rejected. It never retries a
//! 429: that returns [`Error::RateLimited`] at once, so the caller's per-tenant budget, plugged
//! in as a [`RequestGate`], decides when to try again. Callers retry later with
//! [`Error::is_retryable`].

mod client;
mod config;
mod error;
mod gate;
mod model;
mod paging;
mod progress;
mod retry;
mod token;

pub use crate::{
    client::Client,
    config::TenantConfig,
    error::Error,
    gate::{GateRejected, RequestGate},
    model::{
        CourseKind, CourseProgress, CourseStatus, LearnerModulePerformance, Module, ProcessError,
        ProcessId, ProcessState, ProcessStatusReport, Series, Statement, StatementVerb, User,
        UserState, UserUpsert,
    },
    retry::RetryPolicy,
    token::{Clock, SystemClock},
};
