//! Typed client of the MindTickle API for one tenant: token exchange, bulk user writes,
//! user search, the content catalog, xAPI progress and OData scores.
//!
//! The user write routes (`Users/upsert`, `Users/deactivate`, `process/status`) are not public
//! and follow a proposed contract; they stay behind [`Client`] so they can change in one place.
//! The client does not retry except for one re-authentication; callers decide on backoff with
//! [`Error::is_retryable`] and [`Error::RateLimited`].

mod client;
mod config;
mod error;
mod model;
mod progress;
mod token;

pub use crate::{
    client::Client,
    config::TenantConfig,
    error::Error,
    model::{
        CourseKind, CourseProgress, CourseStatus, LearnerModulePerformance, Module, ProcessError,
        ProcessId, ProcessState, ProcessStatusReport, Series, Statement, StatementVerb, User,
        UserState, UserUpsert,
    },
    token::{Clock, SystemClock},
};
