//! Client tests against the emulator on loopback ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod errors;
mod harness;
mod progress;
mod users;
