//! SCIM writes as operations on JSON payloads, shared by the HTTP handlers, HR webhooks and
//! dead-letter replay, so every path applies the same validation.

use scim::{GroupMember, GroupResource, PatchRequest, ScimError, UserResource, apply_patch};
use serde_json::Value;
use uuid::Uuid;

use super::ScimApiError;
use crate::app::AppState;
use crate::directory::groups::{self, Group, Member};
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

fn group_not_found(id: Uuid) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!("Group {id} not found")))
}

/// A group with its members, as the SCIM representation needs it.
pub struct GroupView {
    pub group: Group,
    pub members: Vec<Member>,
}

impl GroupView {
    /// The group as a SCIM resource, without `id` and `meta`, for PATCH to apply to.
    pub fn resource(&self) -> GroupResource {
        GroupResource {
            display_name: self.group.display_name.clone(),
            external_id: self.group.external_id.clone(),
            members: self
                .members
                .iter()
                // `display` is left out: clients send their own text there, which is not kept,
                // and echoing another value back makes them see a change they did not make.
                .map(|member| GroupMember {
                    value: member.user_id.to_string(),
                    display: None,
                    kind: Some("User".to_owned()),
                })
                .collect(),
        }
    }
}

async fn view(tx: &mut TenantTx, group: Group) -> Result<GroupView, sqlx::Error> {
    let members = groups::members(tx, group.group_id).await?;
    Ok(GroupView { group, members })
}

pub async fn create_group(
    state: &AppState,
    tenant: &TenantId,
    json: &Value,
) -> Result<GroupView, ScimApiError> {
    let resource = GroupResource::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let group = groups::create_group(&mut tx, &resource).await?;
    let view = view(&mut tx, group).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, group_id = %view.group.group_id, members = view.members.len(), "SCIM group created");
    Ok(view)
}

pub async fn get_group(
    state: &AppState,
    tenant: &TenantId,
    group_id: Uuid,
) -> Result<GroupView, ScimApiError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let group = groups::get_group(&mut tx, group_id)
        .await?
        .ok_or_else(|| group_not_found(group_id))?;
    let view = view(&mut tx, group).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn replace_group(
    state: &AppState,
    tenant: &TenantId,
    group_id: Uuid,
    json: &Value,
    expected_version: Option<i64>,
) -> Result<GroupView, ScimApiError> {
    let resource = GroupResource::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let group = groups::replace_group(&mut tx, group_id, &resource, expected_version).await?;
    let view = view(&mut tx, group).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %group_id, "SCIM group replaced");
    Ok(view)
}

/// Applies a PatchOp request to a group, all operations or none.
pub async fn patch_group(
    state: &AppState,
    tenant: &TenantId,
    group_id: Uuid,
    json: &Value,
    expected_version: Option<i64>,
) -> Result<GroupView, ScimApiError> {
    let patch = PatchRequest::from_json(json)?;
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    let group = groups::get_group(&mut tx, group_id)
        .await?
        .ok_or_else(|| group_not_found(group_id))?;
    let current = view(&mut tx, group).await?;
    let placeholder = scim::Meta {
        resource_type: "Group".into(),
        created: current.group.created_at,
        last_modified: current.group.updated_at,
        location: String::new(),
        version: String::new(),
    };
    let mut representation = current
        .resource()
        .to_json(&group_id.to_string(), &placeholder);
    if let Some(object) = representation.as_object_mut() {
        object.remove("meta");
    }
    let patched = apply_patch(&representation, &patch)?;
    // Okta sends the group's own id in a no-path replace; any other id is a client error.
    if let Some(id) = patched.get("id").and_then(Value::as_str)
        && id != group_id.to_string()
    {
        return Err(ScimError::bad_request(
            scim::ScimType::Mutability,
            format!("id is immutable: {id} is not {group_id}"),
        )
        .into());
    }
    let resource = GroupResource::from_json(&patched)?;
    let group = groups::replace_group(
        &mut tx,
        group_id,
        &resource,
        Some(expected_version.unwrap_or(current.group.version)),
    )
    .await?;
    let view = view(&mut tx, group).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %group_id, members = view.members.len(), "SCIM group patched");
    Ok(view)
}

pub async fn delete_group(
    state: &AppState,
    tenant: &TenantId,
    group_id: Uuid,
    expected_version: Option<i64>,
) -> Result<(), ScimApiError> {
    let mut tx = TenantTx::begin(state.pool(), tenant).await?;
    groups::delete_group(&mut tx, group_id, expected_version).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant, %group_id, "SCIM group deleted");
    Ok(())
}
