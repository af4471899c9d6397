//! Groups and their members. Members are users of the same tenant: the composite foreign keys
//! on `group_members` make a member of another tenant impossible to store, and the explicit
//! check below turns such an id into a clear error first.

use chrono::{DateTime, Utc};
use scim::GroupResource;
use serde_json::json;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::DirectoryError;
use crate::events::{self, EventType};
use crate::tenancy::TenantTx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Group {
    pub group_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A member as listed in a group's representation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub user_id: Uuid,
    pub user_name: String,
    pub display_name: Option<String>,
}

const GROUP_COLUMNS: &str = "group_id, display_name, external_id, version, created_at, updated_at";

fn map_unique(error: sqlx::Error, display_name: &str) -> DirectoryError {
    if let sqlx::Error::Database(database) = &error
        && database.constraint() == Some("groups_display_name_key")
    {
        return DirectoryError::DisplayNameTaken(display_name.to_owned());
    }
    DirectoryError::Database(error)
}

/// Resolves member values to user ids of this tenant, failing on the first that is not one.
async fn resolve_members(
    tx: &mut TenantTx,
    resource: &GroupResource,
) -> Result<Vec<Uuid>, DirectoryError> {
    let mut ids = Vec::with_capacity(resource.members.len());
    for member in &resource.members {
        if member
            .kind
            .as_deref()
            .is_some_and(|kind| !kind.eq_ignore_ascii_case("user"))
        {
            return Err(DirectoryError::UnknownMember(member.value.clone()));
        }
        let id = Uuid::parse_str(&member.value)
            .map_err(|_| DirectoryError::UnknownMember(member.value.clone()))?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Ok(ids);
    }
    let tenant = tx.tenant().as_str().to_owned();
    let found: Vec<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE tenant_id = $1 AND user_id = ANY($2)")
            .bind(&tenant)
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(DirectoryError::UnknownMember(missing.to_string()));
    }
    Ok(ids)
}

/// Makes the group's members exactly `members`; returns true when anything changed.
async fn set_members(
    tx: &mut TenantTx,
    group_id: Uuid,
    members: &[Uuid],
) -> Result<bool, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let removed = sqlx::query(
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND NOT (user_id = ANY($3))",
    )
    .bind(&tenant)
    .bind(group_id)
    .bind(members)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let added = sqlx::query(
        "INSERT INTO group_members (tenant_id, group_id, user_id)
         SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(&tenant)
    .bind(group_id)
    .bind(members)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(removed > 0 || added > 0)
}

async fn record(tx: &mut TenantTx, group: &Group, operation: &str) -> Result<(), sqlx::Error> {
    events::record(
        tx,
        EventType::GroupChanged,
        json!({ "operation": operation, "group_id": group.group_id, "version": group.version }),
    )
    .await?;
    Ok(())
}

pub async fn create_group(
    tx: &mut TenantTx,
    resource: &GroupResource,
) -> Result<Group, DirectoryError> {
    let members = resolve_members(tx, resource).await?;
    let tenant = tx.tenant().as_str().to_owned();
    let group = sqlx::query_as::<_, Group>(AssertSqlSafe(format!(
        "INSERT INTO groups (tenant_id, group_id, display_name, external_id)
         VALUES ($1, $2, $3, $4) RETURNING {GROUP_COLUMNS}"
    )))
    .bind(&tenant)
    .bind(Uuid::now_v7())
    .bind(&resource.display_name)
    .bind(&resource.external_id)
    .fetch_one(tx.conn())
    .await
    .map_err(|error| map_unique(error, &resource.display_name))?;
    set_members(tx, group.group_id, &members).await?;
    record(tx, &group, "created").await?;
    Ok(group)
}

async fn lock_group(tx: &mut TenantTx, group_id: Uuid) -> Result<Group, DirectoryError> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, Group>(AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE tenant_id = $1 AND group_id = $2 FOR UPDATE"
    )))
    .bind(tenant)
    .bind(group_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DirectoryError::GroupNotFound(group_id))
}

fn check_version(group: &Group, expected: Option<i64>) -> Result<(), DirectoryError> {
    match expected {
        Some(expected) if expected != group.version => Err(DirectoryError::VersionMismatch {
            id: group.group_id,
            current: group.version,
            expected,
        }),
        _ => Ok(()),
    }
}

/// Replaces a group's name, external id and members (SCIM PUT, or the result of a PATCH).
pub async fn replace_group(
    tx: &mut TenantTx,
    group_id: Uuid,
    resource: &GroupResource,
    expected_version: Option<i64>,
) -> Result<Group, DirectoryError> {
    let current = lock_group(tx, group_id).await?;
    check_version(&current, expected_version)?;
    let members = resolve_members(tx, resource).await?;
    let tenant = tx.tenant().as_str().to_owned();
    let group = sqlx::query_as::<_, Group>(AssertSqlSafe(format!(
        "UPDATE groups SET display_name = $3, external_id = $4, version = version + 1, updated_at = now()
         WHERE tenant_id = $1 AND group_id = $2 RETURNING {GROUP_COLUMNS}"
    )))
    .bind(&tenant)
    .bind(group_id)
    .bind(&resource.display_name)
    .bind(&resource.external_id)
    .fetch_one(tx.conn())
    .await
    .map_err(|error| map_unique(error, &resource.display_name))?;
    let members_changed = set_members(tx, group_id, &members).await?;
    let renamed =
        current.display_name != group.display_name || current.external_id != group.external_id;
    let operation = match (renamed, members_changed) {
        (false, true) => "members_changed",
        _ => "updated",
    };
    record(tx, &group, operation).await?;
    Ok(group)
}

pub async fn delete_group(
    tx: &mut TenantTx,
    group_id: Uuid,
    expected_version: Option<i64>,
) -> Result<Group, DirectoryError> {
    let current = lock_group(tx, group_id).await?;
    check_version(&current, expected_version)?;
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query("DELETE FROM groups WHERE tenant_id = $1 AND group_id = $2")
        .bind(tenant)
        .bind(group_id)
        .execute(tx.conn())
        .await?;
    record(tx, &current, "deleted").await?;
    Ok(current)
}

pub async fn get_group(tx: &mut TenantTx, group_id: Uuid) -> Result<Option<Group>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, Group>(AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE tenant_id = $1 AND group_id = $2"
    )))
    .bind(tenant)
    .bind(group_id)
    .fetch_optional(tx.conn())
    .await
}

pub async fn members(tx: &mut TenantTx, group_id: Uuid) -> Result<Vec<Member>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, Member>(
        "SELECT u.user_id, u.user_name, u.display_name FROM group_members m
         JOIN users u ON u.tenant_id = m.tenant_id AND u.user_id = m.user_id
         WHERE m.tenant_id = $1 AND m.group_id = $2
         ORDER BY u.user_id",
    )
    .bind(tenant)
    .bind(group_id)
    .fetch_all(tx.conn())
    .await
}

/// Returns one page of the groups matching an SQL filter over `groups r` (bind `$1` is the
/// tenant), and the number of matches.
pub async fn search_groups(
    tx: &mut TenantTx,
    filter: Option<&crate::scim_api::query::SqlFilter>,
    order_by: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Group>, i64), sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let condition = filter.map_or_else(|| "true".to_owned(), |filter| filter.clause.clone());
    let binds: &[String] = filter.map_or(&[], |filter| filter.binds.as_slice());

    let count_sql = format!("SELECT count(*) FROM groups r WHERE r.tenant_id = $1 AND {condition}");
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql)).bind(&tenant);
    for value in binds {
        count = count.bind(value);
    }
    let total = count.fetch_one(tx.conn()).await?;
    if limit == 0 {
        return Ok((Vec::new(), total));
    }
    let columns = GROUP_COLUMNS
        .split(',')
        .map(|column| format!("r.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let page_sql = format!(
        "SELECT {columns} FROM groups r WHERE r.tenant_id = $1 AND {condition}
         ORDER BY {order_by}, r.group_id OFFSET {offset} LIMIT {limit}"
    );
    let mut page = sqlx::query_as::<_, Group>(AssertSqlSafe(page_sql)).bind(&tenant);
    for value in binds {
        page = page.bind(value);
    }
    let groups = page.fetch_all(tx.conn()).await?;
    Ok((groups, total))
}
