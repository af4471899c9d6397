//! SCIM writes as operations on JSON payloads, shared by the HTTP handlers, HR webhooks and
//! dead-letter replay, so every path applies the same validation.

use scim::{PatchRequest, ScimError, UserResource, apply_patch};
use serde_json::Value;
use uuid::Uuid;

use super::ScimApiError;
use crate::app::AppState;
use crate::directory::{self, User};
use crate::tenancy::{TenantId, TenantTx};

/// True for errors caused by the payload itself, which are kept as dead letters.
pub fn is_payload_error(error: &ScimApiError) -> bool {
    matches!(error, ScimApiError::Scim(error) if error.status == 400)
}

fn not_found(id: Uuid) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!("User {id} not found")))
}

pub async fn create_user(
    state: &AppState,
    tenant: &TenantId,
    json: &Value,
) -> Result<User, ScimApiError> {
    let resource = UserResource::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let user = directory::create_user(&mut tx, &resource, state.config().jobs.max_attempts).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, user_id = %user.user_id, "SCIM user created");
    Ok(user)
}

/// Replaces a user (SCIM PUT). With `expected_version`, a stale version fails with 412.
pub async fn replace_user(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
    json: &Value,
    expected_version: Option<i64>,
) -> Result<User, ScimApiError> {
    let resource = UserResource::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let user = directory::replace_user(
        &mut tx,
        user_id,
        &resource,
        expected_version,
        state.config().jobs.max_attempts,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %user_id, "SCIM user replaced");
    Ok(user)
}

/// Applies a PatchOp request to a user, all operations or none.
pub async fn patch_user(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
    json: &Value,
    expected_version: Option<i64>,
) -> Result<User, ScimApiError> {
    let patch = PatchRequest::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let current = directory::get_user(&mut tx, user_id)
        .await?
        .ok_or_else(|| not_found(user_id))?;
    // The operations apply to the stored representation, and the result is validated again as a
    // whole resource. So a PATCH can never store what a POST would reject.
    let patched = apply_patch(&current.resource, &patch)?;
    let resource = UserResource::from_json(&patched)?;
    // Without If-Match, the version read above still guards the update: a concurrent writer in
    // between makes this one fail with 412 instead of overwriting silently.
    let user = directory::replace_user(
        &mut tx,
        user_id,
        &resource,
        Some(expected_version.unwrap_or(current.version)),
        state.config().jobs.max_attempts,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %user_id, active = user.active, "SCIM user patched");
    Ok(user)
}

pub async fn delete_user(
    state: &AppState,
    tenant: &TenantId,
    user_id: Uuid,
    expected_version: Option<i64>,
) -> Result<User, ScimApiError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let user = directory::delete_user(
        &mut tx,
        user_id,
        expected_version,
        state.config().jobs.max_attempts,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %user_id, "SCIM user deleted");
    Ok(user)
}
