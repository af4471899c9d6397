use sqlx::PgPool;

use crate::tenancy::SystemRole;

/// Why the service refused to start: every isolation rule that does not hold, each with its fix.
#[derive(Debug, thiserror::Error)]
#[error("tenant isolation self-check failed:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct SelfCheckError {
    pub problems: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    rolname: String,
    rolsuper: bool,
    rolbypassrls: bool,
}

#[derive(sqlx::FromRow)]
struct TableRow {
    table_name: String,
    rls_enabled: bool,
    rls_forced: bool,
    policy_count: i64,
    owned_by_runtime: bool,
}

/// Checks that row-level security really applies to the service, and returns every problem
/// found.
///
/// The rules: the roles the service's transactions run as are not superusers, cannot bypass
/// RLS and own no tenant table (an owner is exempt from unforced RLS), and every table with a
/// `tenant_id` column has RLS enabled, forced and at least one policy. When
/// `login_must_be_unprivileged` is true the login role itself is held to the same rule; the
/// embedded database logs in as its superuser, and is only safe because every transaction sets
/// `LOCAL ROLE`.
pub async fn isolation_self_check(
    pool: &PgPool,
    runtime_role: &str,
    login_must_be_unprivileged: bool,
) -> Result<(), SelfCheckError> {
    let mut problems = Vec::new();
    let database_error = |error: sqlx::Error| SelfCheckError {
        problems: vec![format!("could not read the catalog: {error}")],
    };

    let mut roles: Vec<String> = vec![runtime_role.to_owned()];
    for role in [SystemRole::Relay, SystemRole::Worker, SystemRole::Admin] {
        roles.push(role.role_name().to_owned());
    }
    let found = sqlx::query_as::<_, RoleRow>(
        "SELECT rolname::text AS rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY($1)",
    )
    .bind(&roles)
    .fetch_all(pool)
    .await
    .map_err(database_error)?;
    for role in &roles {
        match found.iter().find(|row| &row.rolname == role) {
            None => problems.push(format!(
                "role {role} does not exist; run `enablement-bridge migrate` as the schema owner"
            )),
            Some(row) if row.rolsuper => problems.push(format!(
                "role {role} is a superuser, so row-level security does not apply to it; run `ALTER ROLE {role} NOSUPERUSER`"
            )),
            Some(row) if row.rolbypassrls => problems.push(format!(
                "role {role} has BYPASSRLS; run `ALTER ROLE {role} NOBYPASSRLS`"
            )),
            Some(_) => {}
        }
    }

    if login_must_be_unprivileged {
        let login = sqlx::query_as::<_, RoleRow>(
            "SELECT rolname::text AS rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = session_user",
        )
        .fetch_one(pool)
        .await
        .map_err(database_error)?;
        if login.rolsuper || login.rolbypassrls {
            problems.push(format!(
                "the service logs in as {}, which is a superuser or has BYPASSRLS; connect as bridge_service (created by `migrate`) in database.url and keep the owner role for database.owner_url",
                login.rolname
            ));
        }
    }

    let tables = sqlx::query_as::<_, TableRow>(
        "SELECT c.relname::text AS table_name,
                c.relrowsecurity AS rls_enabled,
                c.relforcerowsecurity AS rls_forced,
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policy_count,
                pg_has_role($1, c.relowner, 'USAGE') AS owned_by_runtime
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p')
           AND n.nspname = current_schema()
           AND EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
         ORDER BY c.relname",
    )
    .bind(runtime_role)
    .fetch_all(pool)
    .await
    .map_err(database_error)?;
    if tables.is_empty() {
        problems.push(
            "no table with a tenant_id column was found; run `enablement-bridge migrate`".into(),
        );
    }
    for table in &tables {
        let name = &table.table_name;
        if !table.rls_enabled {
            problems.push(format!(
                "table {name} has row-level security disabled; run `ALTER TABLE {name} ENABLE ROW LEVEL SECURITY`"
            ));
        }
        if !table.rls_forced {
            problems.push(format!(
                "table {name} does not force row-level security; run `ALTER TABLE {name} FORCE ROW LEVEL SECURITY`"
            ));
        }
        if table.policy_count == 0 {
            problems.push(format!(
                "table {name} has no row-level security policy, so it hides every row; create its tenant_isolation policy"
            ));
        }
        if table.owned_by_runtime {
            problems.push(format!(
                "table {name} is owned by {runtime_role} (or a role it belongs to); give it to the schema owner with `ALTER TABLE {name} OWNER TO <owner>`"
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(SelfCheckError { problems })
    }
}
