use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use secrecy::SecretString;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::ScimApiError;
use crate::app::AppState;
use crate::tenancy::{SystemRole, SystemTx, TenantId, TenantTx};

/// A SCIM client authenticated with a bearer token of the tenant in the path.
#[derive(Debug, Clone)]
pub struct ScimCaller {
    pub tenant: TenantId,
    pub token_id: Uuid,
}

/// How long a verified token is trusted without checking the database again. Revoking a token
/// takes effect within this time.
const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Verified tokens, keyed by the SHA-256 of the whole token, so argon2 (tens of milliseconds by
/// design) runs once a minute per token rather than on every request.
/// A verified token's tenant, id and verification time, by SHA-256 of the token.
type VerifiedTokens = HashMap<[u8; 32], (TenantId, Uuid, Instant)>;

#[derive(Clone, Default)]
pub struct ScimTokenCache {
    verified: Arc<Mutex<VerifiedTokens>>,
}

impl ScimTokenCache {
    fn get(&self, digest: &[u8; 32]) -> Option<(TenantId, Uuid)> {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified
            .get(digest)
            .filter(|(_, _, at)| at.elapsed() < VERIFIED_TTL)
            .map(|(tenant, token_id, _)| (tenant.clone(), *token_id))
    }

    fn insert(&self, digest: [u8; 32], tenant: TenantId, token_id: Uuid) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() > 10_000 {
            verified.retain(|_, (_, _, at)| at.elapsed() < VERIFIED_TTL);
        }
        verified.insert(digest, (tenant, token_id, Instant::now()));
    }
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = ScimApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimApiError> {
        let Path(path) = Path::<TenantPath>::from_request_parts(parts, state)
            .await
            .map_err(|_| ScimApiError::unauthorized())?;
        // An invalid tenant id cannot have tokens: answer like a wrong token, revealing nothing.
        let tenant = TenantId::parse(&path.tenant).map_err(|_| ScimApiError::unauthorized())?;
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(ScimApiError::unauthorized)?;

        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((cached_tenant, token_id)) = state.scim_tokens().get(&digest) {
            if cached_tenant == tenant {
                tracing::Span::current().record("tenant_id", tenant.as_str());
                check_rate(state, &tenant)?;
                return Ok(ScimCaller { tenant, token_id });
            }
            record_foreign_token(state, &cached_tenant, &tenant, parts).await;
            return Err(ScimApiError::unauthorized());
        }

        let Some(token_id) = verify_token(state.pool(), &tenant, token)
            .await
            .map_err(ScimApiError::from)?
        else {
            report_foreign_token(state, &tenant, token, parts).await;
            return Err(ScimApiError::unauthorized());
        };
        state.scim_tokens().insert(digest, tenant.clone(), token_id);
        tracing::Span::current().record("tenant_id", tenant.as_str());
        check_rate(state, &tenant)?;
        Ok(ScimCaller { tenant, token_id })
    }
}

/// Applies the tenant's inbound limit.
fn check_rate(state: &AppState, tenant: &TenantId) -> Result<(), ScimApiError> {
    match state.scim_limiter().check_key(tenant) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            metrics::counter!("bridge_scim_rate_limited_total").increment(1);
            tracing::warn!(tenant_id = %tenant, retry_after_secs, "SCIM request over the tenant's inbound limit");
            Err(ScimApiError::RateLimited {
                retry_after_secs: retry_after_secs.max(1),
            })
        }
    }
}

#[derive(sqlx::FromRow)]
struct ForeignToken {
    tenant_id: String,
    secret_hash: String,
}

/// Checks whether a token rejected for `path_tenant` is a valid token of another tenant, and if
/// so records the attempt. Runs as tenant administration, the one role allowed to look a token
/// up across tenants.
async fn report_foreign_token(
    state: &AppState,
    path_tenant: &TenantId,
    token: &str,
    parts: &Parts,
) {
    let Some((id, secret)) = token.split_once('.') else {
        return;
    };
    let Ok(token_id) = Uuid::parse_str(id) else {
        return;
    };
    let lookup = async {
        let mut tx = SystemTx::begin(state.pool(), SystemRole::Admin).await?;
        let row = sqlx::query_as::<_, ForeignToken>(
            "SELECT tenant_id, secret_hash FROM scim_tokens WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    };
    let row = match lookup.await {
        Ok(Some(row)) if row.tenant_id != path_tenant.as_str() => row,
        Ok(_) => return,
        Err(error) => {
            tracing::error!(%error, tenant_id = %path_tenant, "failed to look up a rejected SCIM token");
            return;
        }
    };
    if !verify_secret(row.secret_hash, secret.to_owned()).await {
        return;
    }
    let Ok(owner) = TenantId::parse(&row.tenant_id) else {
        return;
    };
    record_foreign_token(state, &owner, path_tenant, parts).await;
}

async fn record_foreign_token(
    state: &AppState,
    owner: &TenantId,
    path_tenant: &TenantId,
    parts: &Parts,
) {
    crate::gateway::record_security_event(
        state,
        crate::gateway::SecurityEventKind::CrossTenantToken,
        crate::gateway::current_request_id().as_deref(),
        Some(owner.as_str()),
        Some(path_tenant.as_str()),
        &format!("SCIM token used on {} {}", parts.method, parts.uri.path()),
    )
    .await;
}

async fn verify_secret(hash: String, secret: String) -> bool {
    // argon2 is deliberately slow; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Looks the token up among the tenant's unrevoked tokens. Row-level security confines the
/// lookup to this tenant, so a token of another tenant is simply not found.
async fn verify_token(
    pool: &PgPool,
    tenant: &TenantId,
    token: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some((id, secret)) = token.split_once('.') else {
        return Ok(None);
    };
    let Ok(token_id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let hash: Option<String> = sqlx::query_scalar(
        "SELECT secret_hash FROM scim_tokens
         WHERE tenant_id = $1 AND token_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(token_id)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    let Some(hash) = hash else {
        return Ok(None);
    };
    let verified = verify_secret(hash, secret.to_owned()).await;
    Ok(verified.then_some(token_id))
}

/// Creates a SCIM bearer token for the tenant and returns it. Only an argon2 hash of its secret
/// part is stored, so the token cannot be shown again.
pub async fn create_scim_token(pool: &PgPool, tenant: &TenantId) -> anyhow::Result<SecretString> {
    let token_id = Uuid::now_v7();
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| anyhow::anyhow!("failed to encode the salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("failed to hash the SCIM token: {error}"))?
        .to_string();

    let mut tx = TenantTx::begin(pool, tenant).await?;
    sqlx::query("INSERT INTO scim_tokens (tenant_id, token_id, secret_hash) VALUES ($1, $2, $3)")
        .bind(tenant.as_str())
        .bind(token_id)
        .bind(hash)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(SecretString::from(format!("{token_id}.{secret}")))
}

/// A SCIM token's metadata; the secret is never stored or shown again.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ScimTokenInfo {
    pub token_id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Lists the tenant's SCIM tokens, newest first. A tenant may hold several at once, so a token
/// can be rotated without downtime.
pub async fn list_scim_tokens(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<Vec<ScimTokenInfo>, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let tokens = sqlx::query_as::<_, ScimTokenInfo>(
        "SELECT token_id, created_at, revoked_at FROM scim_tokens
         WHERE tenant_id = $1 ORDER BY created_at DESC, token_id",
    )
    .bind(tenant.as_str())
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Revokes one of the tenant's SCIM tokens. Returns false when the tenant has no such token.
/// Servers that verified the token keep accepting it for at most `VERIFIED_TTL` (60 s).
pub async fn revoke_scim_token(
    pool: &PgPool,
    tenant: &TenantId,
    token_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut tx = TenantTx::begin(pool, tenant).await?;
    let revoked = sqlx::query(
        "UPDATE scim_tokens SET revoked_at = coalesce(revoked_at, now())
         WHERE tenant_id = $1 AND token_id = $2",
    )
    .bind(tenant.as_str())
    .bind(token_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(revoked == 1)
}
