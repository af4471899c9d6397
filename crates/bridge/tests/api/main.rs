//! Integration tests of the service against real PostgreSQL and the MindTickle emulator. They
//! skip with a one-line notice when PostgreSQL is unreachable, unless
//! ENABLEMENT_BRIDGE_REQUIRE_SERVICES=1 (set by CI) turns the skip into a failure.

// Helpers outside `#[test]` functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_auth;
mod cli;
mod dead_letters;
mod demo;
mod flow;
mod idp_replay;
mod isolation;
mod jobs;
mod mindtickle_sync;
mod redis_budget;
mod scim;
mod scim_protocol;
mod scim_security;
mod support;
mod teams;
mod webhooks;
