//! Test-control endpoints on the admin host: fault injection and per-company counters.
//!
//! They take no credentials and bypass injected faults and delays, so a test can always reach
//! them. They exist only in the emulator.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    error::ApiError,
    faults::{CompanyStats, Fault},
    state::AppState,
};

/// Path prefix shared by every control endpoint.
pub(crate) const CONTROL_PREFIX: &str = "/__emulator/";
pub(crate) const FAULTS_PATH: &str = "/__emulator/faults";
pub(crate) const STATS_PATH: &str = "/__emulator/stats";

/// `POST /__emulator/faults`: applies one [`Fault`], given as JSON tagged by `kind`; 204 on
/// success.
pub(crate) async fn inject_fault(State(app): State<AppState>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(error) => {
            return ApiError::bad_request(format!("Invalid fault: {error}")).into_response();
        }
    };
    if let Err(message) = fault.check(&app.shared) {
        return ApiError::bad_request(format!("Invalid fault: {message}")).into_response();
    }
    tracing::info!(?fault, "fault injected over HTTP");
    app.shared.inject(fault);
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /__emulator/faults`: drops queued faults and resets every switch; 204.
pub(crate) async fn clear_faults(State(app): State<AppState>) -> StatusCode {
    app.shared.clear_faults();
    tracing::info!("faults cleared over HTTP");
    StatusCode::NO_CONTENT
}

/// `GET /__emulator/stats`: `{"companies": {"<companyId>": CompanyStats}}`.
pub(crate) async fn stats(State(app): State<AppState>) -> Json<serde_json::Value> {
    let companies: BTreeMap<String, CompanyStats> = app.shared.stats();
    Json(json!({ "companies": companies }))
}
