//! Client tests against the emulator on loopback ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod errors;
mod gate;
mod harness;
mod net;
mod progress;
mod retries;
mod streams;
mod users;
