//! The tenant's role mappings: which `userType` values and group names make a user a `manager`
//! or `admin` when the identity provider sends no SCIM `roles`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TenantPath;
use crate::app::AppState;
use crate::gateway::{ApiCaller, ApiError, Scope};
use crate::tenancy::{TenantId, TenantTx};

/// Role mappings, keyed by `userType` value or group `displayName` (compared case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMappings {
    #[serde(default)]
    pub user_types: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
}

const ROLES: [&str; 3] = ["rep", "manager", "admin"];

/// Most mappings of one kind a tenant may keep.
const MAX_MAPPINGS: usize = 1000;

fn validate(mappings: &RoleMappings) -> Result<(), ApiError> {
    for (kind, entries) in [
        ("user_types", &mappings.user_types),
        ("groups", &mappings.groups),
    ] {
        if entries.len() > MAX_MAPPINGS {
            return Err(ApiError::BadRequest(format!(
                "{kind} has {} entries; at most {MAX_MAPPINGS} are accepted",
                entries.len()
            )));
        }
        for (value, role) in entries {
            if value.trim().is_empty() {
                return Err(ApiError::BadRequest(format!("{kind} has an empty key")));
            }
            if !ROLES.contains(&role.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "{kind}[{value:?}] = {role:?} is invalid: expected rep, manager or admin"
                )));
            }
        }
    }
    Ok(())
}

pub async fn load(tx: &mut TenantTx) -> Result<RoleMappings, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT source, match_value, role FROM role_mappings WHERE tenant_id = $1 ORDER BY source, match_value",
    )
    .bind(tenant)
    .fetch_all(tx.conn())
    .await?;
    let mut mappings = RoleMappings::default();
    for (source, value, role) in rows {
        match source.as_str() {
            "user_type" => mappings.user_types.insert(value, role),
            _ => mappings.groups.insert(value, role),
        };
    }
    Ok(mappings)
}

/// Replaces all of the tenant's mappings.
pub async fn store(
    state: &AppState,
    tenant: &TenantId,
    mappings: &RoleMappings,
) -> Result<RoleMappings, ApiError> {
    validate(mappings)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    sqlx::query("DELETE FROM role_mappings WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(tx.conn())
        .await?;
    for (source, entries) in [
        ("user_type", &mappings.user_types),
        ("group", &mappings.groups),
    ] {
        for (value, role) in entries {
            sqlx::query(
                "INSERT INTO role_mappings (tenant_id, source, match_value, role) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, source, match_value) DO UPDATE SET role = EXCLUDED.role",
            )
            .bind(tenant.as_str())
            .bind(source)
            .bind(value.trim().to_lowercase())
            .bind(role)
            .execute(tx.conn())
            .await?;
        }
    }
    let stored = load(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, user_types = stored.user_types.len(), groups = stored.groups.len(), "role mappings replaced");
    Ok(stored)
}

/// Returns the tenant's role mappings.
#[utoipa::path(
    get, path = "/api/tenants/{tenant}/role-mappings", tag = "Readiness",
    params(("tenant" = String, Path)),
    responses((status = 200, body = RoleMappings)),
    security(("bearer" = ["users:read"]))
)]
pub async fn get_mappings(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
) -> Result<Json<RoleMappings>, ApiError> {
    caller.require(Scope::UsersRead)?;
    let mut tx = TenantTx::begin(state.pool(), &caller.tenant).await?;
    let mappings = load(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(mappings))
}

/// Replaces the tenant's role mappings. Keys are stored in lower case.
#[utoipa::path(
    put, path = "/api/tenants/{tenant}/role-mappings", tag = "Readiness",
    params(("tenant" = String, Path)),
    request_body = RoleMappings,
    responses((status = 200, body = RoleMappings), (status = 400, description = "Unknown role")),
    security(("bearer" = ["users:write"]))
)]
pub async fn put_mappings(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(_path): Path<TenantPath>,
    body: Result<Json<RoleMappings>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RoleMappings>, ApiError> {
    caller.require(Scope::UsersWrite)?;
    let Json(mappings) = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    Ok(Json(store(&state, &caller.tenant, &mappings).await?))
}
