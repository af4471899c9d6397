//! Client tests against the emulator on loopback ports.

mod auth;
mod errors;
mod harness;
mod progress;
mod users;
