//! The legacy bearer scheme: an HS256 JWT the caller signs with its secret key, with
//! `iss` = API key, `aud` = company id and at most one hour between `iat` and `exp`.

use jsonwebtoken::{Algorithm, DecodingKey, crypto, dangerous::insecure_decode_claims};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::ApiError,
    state::{AppState, Host, State},
};

/// Maximum lifetime (`exp - iat`) of a legacy JWT, in seconds.
const MAX_LIFETIME_SECONDS: f64 = 3600.0;

/// How far `iat` may lie in the future, for clock skew between caller and emulator.
// NOTE: proposed; MindTickle's tolerance is not public.
const CLOCK_SKEW_SECONDS: f64 = 60.0;

#[derive(Debug, Deserialize)]
struct LegacyClaims {
    iss: Option<String>,
    /// A string, or an array of strings as RFC 7519 allows.
    aud: Option<Value>,
    /// Epoch seconds; the script MindTickle integrators used sends floats.
    iat: Option<f64>,
    exp: Option<f64>,
}

pub(crate) fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

pub(crate) fn epoch_seconds_now() -> f64 {
    // Millisecond precision is plenty for comparing against caller-supplied `iat` values.
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Checks a legacy JWT and returns the company it was signed for.
pub(crate) fn verify(app: &AppState, state: &State, token: &str) -> Result<String, ApiError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| ApiError::unauthorized("Invalid token; request a new one"))?;
    if header.alg != Algorithm::HS256 {
        return Err(ApiError::unauthorized(format!(
            "Unsupported JWT algorithm {:?}; sign legacy tokens with HS256",
            header.alg
        )));
    }
    let claims: LegacyClaims = insecure_decode_claims(token)
        .map_err(|e| ApiError::unauthorized(format!("Malformed JWT claims: {e}")))?;
    let api_key = claims
        .iss
        .ok_or_else(|| ApiError::unauthorized("JWT has no iss claim; set it to the API key"))?;
    let company_id = audience(claims.aud.as_ref())?;
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err(ApiError::unauthorized(
            "JWT needs iat and exp claims in epoch seconds",
        ));
    };

    let company = state.companies.get(&company_id).ok_or_else(|| {
        ApiError::unauthorized(format!("JWT aud {company_id:?} is not a known company id"))
    })?;
    if app.host != Host::Api(company.fixture.region) {
        return Err(ApiError::unauthorized(
            "JWT is for a company in another region; call that region's API host",
        ));
    }
    let secrets: Vec<&str> = company
        .fixture
        .key_pairs
        .iter()
        .filter(|pair| pair.api_key == api_key)
        .map(|pair| pair.secret_key.as_str())
        .collect();
    if secrets.is_empty() {
        return Err(ApiError::unauthorized(format!(
            "JWT iss is not an API key of company {company_id:?}"
        )));
    }
    let Some((message, signature)) = token.rsplit_once('.') else {
        return Err(ApiError::unauthorized("Invalid token; request a new one"));
    };
    let signed_by_company = secrets.iter().any(|secret| {
        DecodingKey::from_secret(secret.as_bytes())
            .and_then(|key| crypto::verify(signature, message.as_bytes(), &key, Algorithm::HS256))
            .unwrap_or(false)
    });
    if !signed_by_company {
        return Err(ApiError::unauthorized(
            "Invalid JWT signature; sign with the secret key of the API key in iss",
        ));
    }

    check_lifetime(app, company, iat, exp)?;
    Ok(company_id)
}

fn audience(aud: Option<&Value>) -> Result<String, ApiError> {
    let missing = || ApiError::unauthorized("JWT has no aud claim; set it to the company id");
    match aud.ok_or_else(missing)? {
        Value::String(company_id) => Ok(company_id.clone()),
        Value::Array(values) => match values.as_slice() {
            [Value::String(company_id)] => Ok(company_id.clone()),
            _ => Err(ApiError::unauthorized(
                "JWT aud must name exactly one company id",
            )),
        },
        _ => Err(missing()),
    }
}

fn check_lifetime(
    app: &AppState,
    company: &crate::state::Company,
    iat: f64,
    exp: f64,
) -> Result<(), ApiError> {
    let lifetime = exp - iat;
    if lifetime <= 0.0 {
        return Err(ApiError::unauthorized("JWT exp must be later than iat"));
    }
    if lifetime > MAX_LIFETIME_SECONDS {
        return Err(ApiError::unauthorized(format!(
            "JWT lifetime of {lifetime} s exceeds the maximum of {MAX_LIFETIME_SECONDS} s; set exp - iat to 3600 or less"
        )));
    }
    let now = epoch_seconds_now();
    if iat > now + CLOCK_SKEW_SECONDS {
        return Err(ApiError::unauthorized(
            "JWT iat is in the future; check the clock of the signing host",
        ));
    }
    if company.jwt_revoked_through.is_some_and(|at| iat <= at) {
        return Err(ApiError::unauthorized("Invalid token; request a new one"));
    }
    let ttl_expired = company
        .switches
        .token_ttl
        .is_some_and(|ttl| iat + ttl.as_secs_f64() <= now);
    let expired =
        exp <= now || ttl_expired || company.jwt_expired_through.is_some_and(|at| iat <= at);
    if expired {
        return Err(ApiError::new(
            app.shared.expired_token_status(),
            "Token expired; request a new one",
        ));
    }
    Ok(())
}
