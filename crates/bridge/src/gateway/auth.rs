use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use super::request_context::current_request_id;
use super::security::{SecurityEventKind, record_security_event};
use crate::app::AppState;
use crate::tenancy::TenantId;

/// A permission a token can carry in its space-separated `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    UsersRead,
    UsersWrite,
    CoursesRead,
    CoursesWrite,
    AnalyticsRead,
    AnalyticsWrite,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::CoursesRead,
        Scope::CoursesWrite,
        Scope::AnalyticsRead,
        Scope::AnalyticsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::CoursesRead => "courses:read",
            Scope::CoursesWrite => "courses:write",
            Scope::AnalyticsRead => "analytics:read",
            Scope::AnalyticsWrite => "analytics:write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown scope {0:?}; expected one of: users:read users:write courses:read courses:write analytics:read analytics:write"
)]
pub struct ScopeParseError(pub String);

impl FromStr for Scope {
    type Err = ScopeParseError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == raw)
            .ok_or_else(|| ScopeParseError(raw.to_owned()))
    }
}

/// The claims of an API token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// The one tenant the token is valid for.
    pub tenant: String,
    /// Space-separated scopes, as in OAuth 2.0 (RFC 6749 §3.3).
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// HS256 keys for issuing and verifying API tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    leeway_secs: u64,
}

impl JwtKeys {
    pub fn new(
        secret: &SecretString,
        issuer: &str,
        leeway_secs: u64,
    ) -> Result<JwtKeys, TokenError> {
        let bytes = secret.expose_secret().as_bytes();
        let invalid = |error: jsonwebtoken::errors::Error| {
            TokenError::Invalid(format!("unusable signing secret: {error}"))
        };
        Ok(JwtKeys {
            encoding: EncodingKey::from_secret(bytes).map_err(invalid)?,
            decoding: DecodingKey::from_secret(bytes).map_err(invalid)?,
            issuer: issuer.to_owned(),
            leeway_secs,
        })
    }

    pub fn issue(
        &self,
        tenant: &TenantId,
        subject: &str,
        scopes: &BTreeSet<Scope>,
        issued_at: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<String, TokenError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            tenant: tenant.to_string(),
            scope: scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            iat: issued_at.timestamp(),
            exp: issued_at.timestamp().saturating_add(ttl),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| TokenError::Invalid(error.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = self.leeway_secs;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(error.to_string()),
            })
    }
}

/// A caller of `/api/tenants/{tenant}/…` whose bearer token is valid and names the tenant in the
/// path. Extracting it is the only way a handler learns its tenant.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub tenant: TenantId,
    pub subject: String,
    scopes: BTreeSet<Scope>,
}

impl ApiCaller {
    /// Fails with 403 unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the token lacks the scope {scope}, which this operation requires"
            )))
        }
    }
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let claims = state.jwt().verify(token).map_err(|error| match error {
            TokenError::Expired => ApiError::Unauthorized("the bearer token has expired".into()),
            TokenError::Invalid(_) => ApiError::Unauthorized("the bearer token is invalid".into()),
        })?;

        let Path(path) = Path::<TenantPath>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("no tenant in the request path".into()))?;
        // An id that cannot be a tenant names no tenant at all: not found, not a cross-tenant
        // attempt.
        if TenantId::parse(&path.tenant).is_err() {
            return Err(ApiError::NotFound(format!(
                "no tenant {:?}; tenant ids are lowercase letters, digits and '-'",
                path.tenant
            )));
        }
        if claims.tenant != path.tenant {
            record_security_event(
                state,
                SecurityEventKind::CrossTenantToken,
                current_request_id().as_deref(),
                Some(&claims.tenant),
                Some(&path.tenant),
                &format!("{} {}", parts.method, parts.uri.path()),
            )
            .await;
            return Err(ApiError::Forbidden(
                "the token is not valid for this tenant".into(),
            ));
        }
        let tenant =
            TenantId::parse(&path.tenant).map_err(|error| ApiError::NotFound(error.to_string()))?;
        tracing::Span::current().record("tenant_id", tenant.as_str());

        // Unknown scope names are ignored rather than rejected, so a token issued by a newer
        // version with extra scopes still works here.
        let scopes = claims
            .scope
            .split_ascii_whitespace()
            .filter_map(|raw| raw.parse().ok())
            .collect();
        Ok(ApiCaller {
            tenant,
            subject: claims.sub,
            scopes,
        })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer header".into()))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header is malformed".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "the Authorization header must use the Bearer scheme".into(),
        ));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef"),
            "enablement-bridge",
            0,
        )
        .unwrap()
    }

    #[test]
    fn issued_token_verifies() {
        let keys = keys();
        let tenant = TenantId::parse("acme").unwrap();
        let scopes = BTreeSet::from([Scope::UsersRead, Scope::AnalyticsWrite]);
        let token = keys
            .issue(
                &tenant,
                "cli",
                &scopes,
                Utc::now(),
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.tenant, "acme");
        assert_eq!(claims.scope, "users:read analytics:write");
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = keys();
        let tenant = TenantId::parse("acme").unwrap();
        let issued = Utc::now() - chrono::Duration::hours(2);
        let token = keys
            .issue(
                &tenant,
                "cli",
                &BTreeSet::new(),
                issued,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn token_from_other_secret_is_rejected() {
        let other = JwtKeys::new(
            &SecretString::from("another-secret-another-secret-xx"),
            "enablement-bridge",
            0,
        )
        .unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let token = other
            .issue(
                &tenant,
                "cli",
                &BTreeSet::new(),
                Utc::now(),
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert!(matches!(keys().verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn scope_parsing_rejects_unknown() {
        assert_eq!("users:read".parse::<Scope>().unwrap(), Scope::UsersRead);
        assert!("users:admin".parse::<Scope>().is_err());
    }
}
