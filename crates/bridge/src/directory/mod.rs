//! The tenant's roster: users and groups provisioned over SCIM. Every change writes a
//! `user_changed` or `group_changed` event, and user changes a MindTickle push job, in the same
//! tenant transaction.

pub mod groups;

use chrono::{DateTime, Utc};
use scim::UserResource;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::events::{self, EventType};
use crate::jobs::{self, JobSpec};
use crate::sync::{PUSH_PENDING_JOB, REMOVE_USER_JOB};
use crate::tenancy::TenantTx;

/// A user of the tenant's directory.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub user_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The role sent in SCIM `roles`, if any. The effective role also considers the tenant's
    /// role mappings: see [`EFFECTIVE_ROLE_SQL`].
    pub role: Option<String>,
    /// The manager's SCIM id from the enterprise extension, as sent.
    pub manager_ref: Option<String>,
    /// The SCIM representation as last written, without `id`, `meta` and `password`.
    pub resource: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub mindtickle_state: String,
    pub mindtickle_pushed_at: Option<DateTime<Utc>>,
    pub mindtickle_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("userName {0:?} is already taken in this tenant")]
    UserNameTaken(String),
    #[error("user {0} not found")]
    NotFound(Uuid),
    #[error("resource {id} has version {current}, not the expected {expected}")]
    VersionMismatch {
        id: Uuid,
        current: i64,
        expected: i64,
    },
    #[error("group displayName {0:?} is already taken in this tenant")]
    DisplayNameTaken(String),
    #[error("group {0} not found")]
    GroupNotFound(Uuid),
    #[error("member {0:?} is not a user of this tenant")]
    UnknownMember(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const USER_COLUMNS: &str =
    "user_id, user_name, external_id, active, display_name, email, role, manager_ref, resource, version,
     created_at, updated_at, mindtickle_state, mindtickle_pushed_at, mindtickle_error";

/// A user's effective role, as SQL over `users u`: the SCIM role, else the highest role mapped
/// from one of the user's groups, else the role mapped from `userType`, else `rep`.
pub const EFFECTIVE_ROLE_SQL: &str = "coalesce(u.role,
    (SELECT rm.role FROM group_members gm
     JOIN groups g ON g.tenant_id = gm.tenant_id AND g.group_id = gm.group_id
     JOIN role_mappings rm ON rm.tenant_id = g.tenant_id AND rm.source = 'group'
                          AND rm.match_value = lower(g.display_name)
     WHERE gm.tenant_id = u.tenant_id AND gm.user_id = u.user_id
     ORDER BY CASE rm.role WHEN 'admin' THEN 0 WHEN 'manager' THEN 1 ELSE 2 END
     LIMIT 1),
    (SELECT rm.role FROM role_mappings rm
     WHERE rm.tenant_id = u.tenant_id AND rm.source = 'user_type'
       AND rm.match_value = lower(u.resource ->> 'userType')),
    'rep')";

/// The role sent in SCIM `roles` (primary first), if it is one of `rep`, `manager` or `admin`.
fn role_of(resource: &UserResource) -> Option<&'static str> {
    let mut roles: Vec<_> = resource.roles.iter().collect();
    roles.sort_by_key(|role| !role.primary);
    for role in roles {
        match role.value.to_ascii_lowercase().as_str() {
            "admin" => return Some("admin"),
            "manager" => return Some("manager"),
            "rep" => return Some("rep"),
            _ => {}
        }
    }
    None
}

fn manager_of(resource: &UserResource) -> Option<&str> {
    resource
        .enterprise
        .as_ref()
        .and_then(|enterprise| enterprise.manager.as_ref())
        .and_then(|manager| manager.value.as_deref())
}

/// The stored form of a resource: its SCIM JSON without server-assigned attributes.
fn stored_resource(resource: &UserResource) -> Value {
    let placeholder = scim::Meta {
        resource_type: "User".into(),
        created: DateTime::<Utc>::UNIX_EPOCH,
        last_modified: DateTime::<Utc>::UNIX_EPOCH,
        location: String::new(),
        version: String::new(),
    };
    let mut value = resource.to_json("", &placeholder);
    if let Some(object) = value.as_object_mut() {
        object.remove("id");
        object.remove("meta");
        object.remove("password");
    }
    value
}

fn map_unique(error: sqlx::Error, user_name: &str) -> DirectoryError {
    if let sqlx::Error::Database(database) = &error
        && database.constraint() == Some("users_user_name_key")
    {
        return DirectoryError::UserNameTaken(user_name.to_owned());
    }
    DirectoryError::Database(error)
}

/// The key of a tenant's one pending batch-push job: any number of changes before it runs share it.
pub const PUSH_BATCH_KEY: &str = "batch";

async fn after_change(
    tx: &mut TenantTx,
    user: &User,
    operation: &str,
    max_attempts: i32,
) -> Result<(), sqlx::Error> {
    events::record(
        tx,
        EventType::UserChanged,
        json!({
            "operation": operation,
            "user_id": user.user_id,
            "version": user.version,
            "active": user.active,
        }),
    )
    .await?;
    jobs::enqueue(
        tx,
        JobSpec {
            kind: PUSH_PENDING_JOB,
            payload: json!({}),
            key: Some(PUSH_BATCH_KEY.to_owned()),
            run_at: None,
        },
        max_attempts,
    )
    .await?;
    Ok(())
}

pub async fn create_user(
    tx: &mut TenantTx,
    resource: &UserResource,
    max_attempts: i32,
) -> Result<User, DirectoryError> {
    let tenant = tx.tenant().as_str().to_owned();
    // One statement writes the user, its `user_changed` event and its push job, so a create
    // costs one round trip besides BEGIN and COMMIT. The payloads match `after_change`.
    let user = sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "WITH created AS (
             INSERT INTO users (tenant_id, user_id, user_name, external_id, active, display_name, email,
                                role, resource, manager_ref)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING {USER_COLUMNS}
         ), event AS (
             INSERT INTO outbox (tenant_id, event_id, event_type, payload)
             SELECT $1, $11, $12, jsonb_build_object('operation', 'created', 'user_id', user_id,
                                                     'version', version, 'active', active)
             FROM created
         ), job AS (
             INSERT INTO jobs (tenant_id, job_id, kind, job_key, payload, max_attempts)
             SELECT $1, $13, $14, $16, '{{}}'::jsonb, $15
             FROM created
             ON CONFLICT (tenant_id, kind, job_key) WHERE job_key IS NOT NULL AND status = 'pending'
             DO NOTHING
         )
         SELECT {USER_COLUMNS} FROM created"
    )))
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(&resource.user_name)
    .bind(&resource.external_id)
    .bind(resource.is_active())
    .bind(&resource.display_name)
    .bind(resource.primary_email())
    .bind(role_of(resource))
    .bind(stored_resource(resource))
    .bind(manager_of(resource))
    .bind(Uuid::now_v7())
    .bind(EventType::UserChanged.as_str())
    .bind(Uuid::now_v7())
    .bind(PUSH_PENDING_JOB)
    .bind(max_attempts)
    .bind(PUSH_BATCH_KEY)
    .fetch_one(tx.conn())
    .await
    .map_err(|error| map_unique(error, &resource.user_name))?;
    Ok(user)
}

/// Replaces a user's attributes (SCIM PUT, or the result of a PATCH). With `expected_version`,
/// fails unless the stored version still matches, so concurrent writers cannot lose an update.
pub async fn replace_user(
    tx: &mut TenantTx,
    user_id: Uuid,
    resource: &UserResource,
    expected_version: Option<i64>,
    max_attempts: i32,
) -> Result<User, DirectoryError> {
    let current = lock_user(tx, user_id).await?;
    if let Some(expected) = expected_version
        && expected != current.version
    {
        return Err(DirectoryError::VersionMismatch {
            id: user_id,
            current: current.version,
            expected,
        });
    }
    let tenant = tx.tenant().as_str().to_owned();
    let user = sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "UPDATE users SET user_name = $3, external_id = $4, active = $5, display_name = $6, email = $7,
                role = $8, resource = $9, manager_ref = $10, version = version + 1, updated_at = now(),
                mindtickle_state = 'pending', mindtickle_attempts = 0, mindtickle_next_attempt_at = NULL
         WHERE tenant_id = $1 AND user_id = $2
         RETURNING {USER_COLUMNS}"
    )))
    .bind(tenant)
    .bind(user_id)
    .bind(&resource.user_name)
    .bind(&resource.external_id)
    .bind(resource.is_active())
    .bind(&resource.display_name)
    .bind(resource.primary_email())
    .bind(role_of(resource))
    .bind(stored_resource(resource))
    .bind(manager_of(resource))
    .fetch_one(tx.conn())
    .await
    .map_err(|error| map_unique(error, &resource.user_name))?;
    let operation = match (current.active, user.active) {
        (true, false) => "deactivated",
        (false, true) => "reactivated",
        _ => "updated",
    };
    after_change(tx, &user, operation, max_attempts).await?;
    Ok(user)
}

async fn lock_user(tx: &mut TenantTx, user_id: Uuid) -> Result<User, DirectoryError> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE"
    )))
    .bind(tenant)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DirectoryError::NotFound(user_id))
}

pub async fn get_user(tx: &mut TenantTx, user_id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2"
    )))
    .bind(tenant)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await
}

/// Finds a user by `userName`, compared case-insensitively as RFC 7643 §4.1.1 requires.
pub async fn find_by_user_name(
    tx: &mut TenantTx,
    user_name: &str,
) -> Result<Option<User>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_name_lower = lower($2)"
    )))
    .bind(tenant)
    .bind(user_name)
    .fetch_optional(tx.conn())
    .await
}

/// Finds a user by `externalId`, which is compared exactly (RFC 7643 §3.1, caseExact true).
pub async fn find_by_external_id(
    tx: &mut TenantTx,
    external_id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND external_id = $2
         ORDER BY user_id LIMIT 1"
    )))
    .bind(tenant)
    .bind(external_id)
    .fetch_optional(tx.conn())
    .await
}

/// Returns one page of the users matching an SQL filter over `users r` (bind `$1` is the tenant),
/// in the given order, and the number of matches.
pub async fn search_users(
    tx: &mut TenantTx,
    filter: Option<&crate::scim_api::query::SqlFilter>,
    order_by: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let condition = filter.map_or_else(|| "true".to_owned(), |filter| filter.clause.clone());
    let binds: &[String] = filter.map_or(&[], |filter| filter.binds.as_slice());

    let columns = USER_COLUMNS
        .split(',')
        .map(|column| format!("r.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    // One round trip for a page and its total; a separate count only when the page is empty.
    if limit > 0 {
        let page_sql = format!(
            "SELECT {columns}, count(*) OVER () AS total_matches
             FROM users r WHERE r.tenant_id = $1 AND {condition}
             ORDER BY {order_by}, r.user_id OFFSET {offset} LIMIT {limit}"
        );
        let mut page = sqlx::query(AssertSqlSafe(page_sql)).bind(&tenant);
        for value in binds {
            page = page.bind(value);
        }
        let rows = page.fetch_all(tx.conn()).await?;
        if let Some(first) = rows.first() {
            let total: i64 = sqlx::Row::try_get(first, "total_matches")?;
            let users = rows
                .iter()
                .map(<User as sqlx::FromRow<_>>::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            return Ok((users, total));
        }
    }
    let count_sql = format!("SELECT count(*) FROM users r WHERE r.tenant_id = $1 AND {condition}");
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql)).bind(&tenant);
    for value in binds {
        count = count.bind(value);
    }
    let total = count.fetch_one(tx.conn()).await?;
    Ok((Vec::new(), total))
}

/// Returns one page of users in a stable order (creation order, as ids are UUIDv7) and the total.
pub async fn list_users(
    tx: &mut TenantTx,
    offset: i64,
    limit: i64,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_one(tx.conn())
        .await?;
    let users = sqlx::query_as::<_, User>(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY user_id OFFSET $2 LIMIT $3"
    )))
    .bind(&tenant)
    .bind(offset)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    Ok((users, total))
}

/// Deletes a user. The user is removed from MindTickle by a job that carries the email, since the
/// row it could read is gone.
pub async fn delete_user(
    tx: &mut TenantTx,
    user_id: Uuid,
    expected_version: Option<i64>,
    max_attempts: i32,
) -> Result<User, DirectoryError> {
    let current = lock_user(tx, user_id).await?;
    if let Some(expected) = expected_version
        && expected != current.version
    {
        return Err(DirectoryError::VersionMismatch {
            id: user_id,
            current: current.version,
            expected,
        });
    }
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    events::record(
        tx,
        EventType::UserChanged,
        json!({ "operation": "deleted", "user_id": user_id, "version": current.version }),
    )
    .await?;
    if let Some(email) = &current.email {
        jobs::enqueue(
            tx,
            JobSpec {
                kind: REMOVE_USER_JOB,
                payload: json!({ "email": email, "user_id": user_id }),
                key: Some(user_id.to_string()),
                run_at: None,
            },
            max_attempts,
        )
        .await?;
    }
    Ok(current)
}

/// Records the outcome of a MindTickle push on the user row. With `version`, only a row still at
/// that version is updated.
pub async fn set_mindtickle_state(
    tx: &mut TenantTx,
    user_id: Uuid,
    state: &str,
    error: Option<&str>,
    version: Option<i64>,
) -> Result<(), sqlx::Error> {
    let tenant = tx.tenant().as_str().to_owned();
    sqlx::query(
        "UPDATE users SET mindtickle_state = $3, mindtickle_error = $4,
                mindtickle_pushed_at = CASE WHEN $3 = 'synced' THEN now() ELSE mindtickle_pushed_at END
         WHERE tenant_id = $1 AND user_id = $2 AND ($5::bigint IS NULL OR version = $5)",
    )
    .bind(tenant)
    .bind(user_id)
    .bind(state)
    .bind(error)
    .bind(version)
    .execute(tx.conn())
    .await?;
    Ok(())
}
