//! Token exchange and bearer-token checks.

use std::fmt::Write as _;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    error::ApiError,
    fixtures::Region,
    routes::{legacy_jwt, parse_body},
    state::{AppState, Host, Shared, State as EmulatorState, Token},
};

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    api_key: Option<String>,
    secret_key: Option<String>,
    ls_url: Option<String>,
}

/// `POST /services/data/auth_token`: exchanges a key pair for a bearer token bound to this host.
pub(crate) async fn auth_token(State(app): State<AppState>, body: Bytes) -> Response {
    match issue_token(&app, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn issue_token(app: &AppState, body: &Bytes) -> Result<Response, ApiError> {
    let request: TokenRequest = parse_body(body)?;
    let Some(ls_url) = request.ls_url.filter(|v| !v.trim().is_empty()) else {
        // The live server answers this case with an `error` key, unlike its other errors.
        let body = Json(json!({ "error": "missing parameter ls_url" }));
        return Ok((StatusCode::BAD_REQUEST, body).into_response());
    };
    let Host::Api(region) = app.host else {
        return Err(ApiError::no_route());
    };

    let shared = &app.shared;
    let mut state = shared.lock();
    let ls_url = ls_url.trim().to_ascii_lowercase();
    let company_id = state
        .companies
        .values()
        .find(|c| c.fixture.ls_url.eq_ignore_ascii_case(&ls_url) && c.fixture.region == region)
        .map(|c| c.fixture.company_id.clone())
        .ok_or_else(|| ApiError::not_found("Learning Site not found!"))?;

    shared.admit(&mut state, &company_id)?;
    let company = state
        .companies
        .get_mut(&company_id)
        .ok_or_else(|| ApiError::not_found("Learning Site not found!"))?;
    company.token_request_count += 1;

    let api_key = request.api_key.unwrap_or_default();
    let secret_key = request.secret_key.unwrap_or_default();
    let valid = company
        .fixture
        .key_pairs
        .iter()
        .any(|pair| pair.api_key == api_key && pair.secret_key == secret_key);
    if !valid {
        return Err(ApiError::unauthorized("Invalid API key or secret"));
    }

    let ttl = company
        .switches
        .token_ttl
        .unwrap_or(shared.options.token_ttl);
    let token = random_token();
    let now = Instant::now();
    state.tokens.insert(
        token.clone(),
        Token {
            company_id,
            host: app.host,
            issued_at: now,
            expires_at: now + ttl,
        },
    );
    let body = Json(json!({ "token": token, "expires_in": ttl.as_secs() }));
    Ok((StatusCode::OK, body).into_response())
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().fold(String::with_capacity(48), |mut out, b| {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Resolves the company of a bearer token (exchanged or a legacy JWT) and counts the request
/// against its budget.
///
/// `continuation` marks a follow-up page request. MindTickle returns continuation URLs on the
/// global host even for US tenants, and the global host answers those with 500.
pub(crate) fn authenticate(
    app: &AppState,
    state: &mut EmulatorState,
    headers: &HeaderMap,
    continuation: bool,
) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "Missing Authorization header; send Bearer <token> from /services/data/auth_token",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("Malformed Authorization header"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            token.trim()
        }
        _ => {
            return Err(ApiError::unauthorized(
                "Malformed Authorization header; expected Bearer <token>",
            ));
        }
    };

    let company_id = match state.tokens.get(token) {
        Some(grant) => check_exchanged_token(app, state, grant, continuation)?,
        None if legacy_jwt::is_jwt(token) => legacy_jwt::verify(app, state, token)?,
        None => return Err(ApiError::unauthorized("Invalid token; request a new one")),
    };
    app.shared.admit(state, &company_id)?;
    Ok(company_id)
}

/// Checks host binding and expiry of a token from `/services/data/auth_token`.
fn check_exchanged_token(
    app: &AppState,
    state: &EmulatorState,
    grant: &Token,
    continuation: bool,
) -> Result<String, ApiError> {
    if grant.host != app.host {
        if continuation && app.host == Host::Api(Region::Global) {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            ));
        }
        return Err(ApiError::unauthorized(
            "Token was issued by another host; request a token from this host",
        ));
    }
    let now = Instant::now();
    let ttl_override = state
        .companies
        .get(&grant.company_id)
        .and_then(|c| c.switches.token_ttl);
    let expired =
        grant.expires_at <= now || ttl_override.is_some_and(|ttl| grant.issued_at + ttl <= now);
    if expired {
        return Err(ApiError::new(
            app.shared.expired_token_status(),
            "Token expired; request a new one",
        ));
    }
    Ok(grant.company_id.clone())
}

/// Makes every token of a company expired, as if its lifetime had passed. Legacy JWTs signed
/// until now expire too.
pub(crate) fn expire_tokens(shared: &Shared, company_id: &str) {
    let now = Instant::now();
    let mut state = shared.lock();
    for token in state.tokens.values_mut() {
        if token.company_id == company_id {
            token.expires_at = now;
        }
    }
    if let Some(company) = state.companies.get_mut(company_id) {
        company.jwt_expired_through = Some(legacy_jwt::epoch_seconds_now());
    }
}

/// Forgets every token of a company, so they are rejected as invalid. Legacy JWTs signed until
/// now are rejected too.
pub(crate) fn revoke_tokens(shared: &Shared, company_id: &str) {
    let mut state = shared.lock();
    state
        .tokens
        .retain(|_, token| token.company_id != company_id);
    if let Some(company) = state.companies.get_mut(company_id) {
        company.jwt_revoked_through = Some(legacy_jwt::epoch_seconds_now());
    }
}
