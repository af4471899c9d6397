//! Row-level security: through the tenant transaction one tenant can never read, change, delete
//! or insert another tenant's rows, and no tenant at all sees nothing.

use bridge::db::isolation_self_check;
use bridge::tenancy::{SystemRole, SystemTx, TENANT_ROLE, TenantId, TenantRegistry, TenantTx};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

use crate::support::TestDatabase;

fn tenant(raw: &str) -> TenantId {
    TenantId::parse(raw).unwrap()
}

/// The tables with a `tenant_id` column, read from the catalog, so a new table is covered
/// without editing this test.
async fn tenant_tables(owner: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = 'public'
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
         ORDER BY 1",
    )
    .fetch_all(owner)
    .await
    .unwrap()
}

/// Inserts one row of `tenant` into every tenant table, through the tenant's own transaction.
async fn seed_tenant(pool: &PgPool, id: &TenantId) {
    TenantRegistry::new(pool.clone())
        .create(id, id.as_str())
        .await
        .unwrap();
    let mut tx = TenantTx::begin(pool, id).await.unwrap();
    let t = id.as_str();
    let user = Uuid::now_v7();
    let group = Uuid::now_v7();
    let result = Uuid::now_v7();
    let statements: Vec<(&str, Vec<String>)> = vec![
        (
            "INSERT INTO scim_tokens (tenant_id, token_id, secret_hash) VALUES ($1, gen_random_uuid(), 'x')",
            vec![],
        ),
        (
            "INSERT INTO mindtickle_accounts (tenant_id, api_base, admin_base, ls_url, api_key, secret_key, reporting_user, reporting_password) VALUES ($1, 'http://a', 'http://b', 'x.mindtickle.com', 'k', 's', 'u', 'p')",
            vec![],
        ),
        (
            "INSERT INTO users (tenant_id, user_id, user_name, email, resource) VALUES ($1, $2::uuid, $1 || '@example.test', $1 || '@example.test', '{}')",
            vec![user.to_string()],
        ),
        (
            "INSERT INTO groups (tenant_id, group_id, display_name) VALUES ($1, $2::uuid, 'Sales')",
            vec![group.to_string()],
        ),
        (
            "INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2::uuid, $3::uuid)",
            vec![group.to_string(), user.to_string()],
        ),
        (
            "INSERT INTO course_series (tenant_id, series_id, name) VALUES ($1, 's1', 'Onboarding')",
            vec![],
        ),
        (
            "INSERT INTO courses (tenant_id, course_id, series_id, name, kind) VALUES ($1, 'c1', 's1', 'Basics', 'course')",
            vec![],
        ),
        (
            "INSERT INTO course_progress (tenant_id, user_id, course_id, status, score, max_score, synced_at) VALUES ($1, $2::uuid, 'c1', 'completed', 8, 10, now())",
            vec![user.to_string()],
        ),
        (
            "INSERT INTO progress_syncs (tenant_id, user_id, synced_at, course_count) VALUES ($1, $2::uuid, now(), 1)",
            vec![user.to_string()],
        ),
        (
            "INSERT INTO quiz_results (tenant_id, result_id, user_id, quiz_id, score, max_score, submitted_at) VALUES ($1, $2::uuid, $3::uuid, 'q1', 9, 10, now())",
            vec![result.to_string(), user.to_string()],
        ),
        (
            "INSERT INTO quiz_answers (tenant_id, result_id, position, question_id, answer) VALUES ($1, $2::uuid, 0, 'q1-1', '\"a\"')",
            vec![result.to_string()],
        ),
        (
            "INSERT INTO readiness_reports (tenant_id, report_id, generated_at, active_users, users_with_scores, score_count, average_score, assigned_courses, completed_courses, completion_rate, users_synced, provisional) VALUES ($1, gen_random_uuid(), now(), 1, 1, 1, 90, 1, 1, 1, 1, false)",
            vec![],
        ),
        (
            "INSERT INTO outbox (tenant_id, event_id, event_type, payload) VALUES ($1, gen_random_uuid(), 'quiz.completed', '{}')",
            vec![],
        ),
        (
            "INSERT INTO jobs (tenant_id, job_id, kind, payload, max_attempts, run_at) VALUES ($1, gen_random_uuid(), 'noop', '{}', 1, now() + interval '1 day')",
            vec![],
        ),
        (
            "INSERT INTO dead_letters (tenant_id, dead_letter_id, source, raw_body, errors) VALUES ($1, gen_random_uuid(), 'scim', '{', '{}')",
            vec![],
        ),
        (
            "INSERT INTO webhook_secrets (tenant_id, secret_id, secret) VALUES ($1, gen_random_uuid(), 'x')",
            vec![],
        ),
        (
            "INSERT INTO webhook_events (tenant_id, event_id, operation, status) VALUES ($1, 'evt-1', 'create', 'applied')",
            vec![],
        ),
        (
            "INSERT INTO role_mappings (tenant_id, source, match_value, role) VALUES ($1, 'user_type', 'sales manager', 'manager')",
            vec![],
        ),
    ];
    for (sql, binds) in statements {
        let mut query = sqlx::query(sql).bind(t);
        for value in binds {
            query = query.bind(value);
        }
        query
            .execute(tx.conn())
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
    tx.commit().await.unwrap();
}

fn is_policy_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn every_tenant_table_is_isolated() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    seed_tenant(&db.runtime, &a).await;
    seed_tenant(&db.runtime, &b).await;

    let tables = tenant_tables(&db.owner).await;
    assert!(
        tables.len() >= 16,
        "expected every tenant table, found {tables:?}"
    );
    for table in &tables {
        // The seed really wrote a row of A, so the checks below test something.
        let seeded: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'tenant-a'"
        )))
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert!(seeded >= 1, "{table}: no seeded row of tenant-a");

        let mut tx = TenantTx::begin(&db.runtime, &b).await.unwrap();
        let visible: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'tenant-a'"
        )))
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(visible, 0, "{table}: tenant-b reads tenant-a rows");
        let foreign: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id <> 'tenant-b'"
        )))
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(
            foreign, 0,
            "{table}: tenant-b sees rows of another tenant without filtering"
        );
        let updated = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = 'tenant-a'"
        )))
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(updated, 0, "{table}: tenant-b updates tenant-a rows");
        let deleted = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = 'tenant-a'"
        )))
        .execute(tx.conn())
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(deleted, 0, "{table}: tenant-b deletes tenant-a rows");
        tx.commit().await.unwrap();

        // Tenant B inserting a row that claims to be tenant A's is refused by WITH CHECK.
        let row: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = 'tenant-a' LIMIT 1"
        )))
        .fetch_one(&db.owner)
        .await
        .unwrap();
        // Generated columns cannot be written, so the copy names the others.
        let columns: String = sqlx::query_scalar(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
        )
        .bind(table)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        let mut tx = TenantTx::begin(&db.runtime, &b).await.unwrap();
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_record(NULL::{table}, $1)"
        )))
        .bind(&row)
        .execute(tx.conn())
        .await;
        match inserted {
            Err(error) => assert!(
                is_policy_violation(&error),
                "{table}: unexpected error {error}"
            ),
            Ok(_) => panic!("{table}: tenant-b inserted a row of tenant-a"),
        }
        drop(tx);

        // Moving B's own row to A is refused too.
        let mut tx = TenantTx::begin(&db.runtime, &b).await.unwrap();
        let moved = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET tenant_id = 'tenant-a' WHERE tenant_id = 'tenant-b'"
        )))
        .execute(tx.conn())
        .await;
        match moved {
            Err(error) => assert!(
                is_policy_violation(&error)
                    || matches!(&error, sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") || d.code().as_deref() == Some("23505")),
                "{table}: unexpected error {error}"
            ),
            Ok(result) => assert_eq!(
                result.rows_affected(),
                0,
                "{table}: tenant-b moved a row to tenant-a"
            ),
        }
        drop(tx);

        // With no tenant set, nothing is visible.
        let mut tx = SystemTx::begin(&db.runtime, SystemRole::Anonymous)
            .await
            .unwrap();
        let unscoped: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(tx.conn())
                .await
                .unwrap();
        assert_eq!(unscoped, 0, "{table}: rows visible with no tenant set");
        drop(tx);

        // Tenant A still has its rows: the checks above changed nothing.
        let mut tx = TenantTx::begin(&db.runtime, &a).await.unwrap();
        let own: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(tx.conn())
            .await
            .unwrap();
        assert_eq!(own, seeded, "{table}: tenant-a lost rows");
        drop(tx);
    }
}

#[tokio::test]
async fn login_role_without_set_role_reads_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    seed_tenant(&db.runtime, &tenant("tenant-a")).await;
    // bridge_service is NOINHERIT: outside a tenant or system transaction it has no privileges.
    let error = sqlx::query("SELECT count(*) FROM users")
        .fetch_one(&db.runtime)
        .await
        .expect_err("bare login role must not read tenant tables");
    assert!(is_policy_violation(&error), "unexpected error {error}");
}

#[tokio::test]
async fn interleaved_transactions_on_one_connection() {
    let Some(db) = TestDatabase::create_with_pool_size(1).await else {
        return;
    };
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    seed_tenant(&db.runtime, &a).await;
    seed_tenant(&db.runtime, &b).await;

    for round in 0..200 {
        match round % 3 {
            0 | 1 => {
                let id = if round % 3 == 0 { &a } else { &b };
                let mut tx = TenantTx::begin(&db.runtime, id).await.unwrap();
                let rows = sqlx::query("SELECT tenant_id, user_name FROM users")
                    .fetch_all(tx.conn())
                    .await
                    .unwrap();
                assert_eq!(
                    rows.len(),
                    1,
                    "round {round}: expected the tenant's one user"
                );
                for row in rows {
                    let owner: String = row.get("tenant_id");
                    assert_eq!(owner, id.as_str(), "round {round}: row of another tenant");
                }
                // Alternate commit and rollback, so both ways of ending leave a clean connection.
                if round % 2 == 0 {
                    tx.commit().await.unwrap();
                } else {
                    drop(tx);
                }
            }
            _ => {
                let mut tx = SystemTx::begin(&db.runtime, SystemRole::Anonymous)
                    .await
                    .unwrap();
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                    .fetch_one(tx.conn())
                    .await
                    .unwrap();
                assert_eq!(count, 0, "round {round}: no-tenant transaction sees rows");
                let setting: Option<String> =
                    sqlx::query_scalar("SELECT nullif(current_setting('app.tenant_id', true), '')")
                        .fetch_one(tx.conn())
                        .await
                        .unwrap();
                assert_eq!(
                    setting, None,
                    "round {round}: a previous tenant leaked into the connection"
                );
                tx.commit().await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn self_check_passes_on_fresh_database() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    isolation_self_check(&db.runtime, TENANT_ROLE, true)
        .await
        .expect("fresh database passes");
}

#[tokio::test]
async fn self_check_refuses_superuser_runtime_role() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let role = format!("bridge_test_super_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE ROLE {role} SUPERUSER NOLOGIN"
    )))
    .execute(&db.owner)
    .await
    .unwrap();
    let error = isolation_self_check(&db.runtime, &role, true)
        .await
        .expect_err("a superuser runtime role must be refused");
    sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&db.owner)
        .await
        .unwrap();
    let message = error.to_string();
    assert!(message.contains(&role), "{message}");
    assert!(message.contains("superuser"), "{message}");
}

#[tokio::test]
async fn self_check_refuses_superuser_login() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // The owner pool logs in as a superuser, which a server deployment must not do.
    let error = isolation_self_check(&db.owner, TENANT_ROLE, true)
        .await
        .expect_err("a superuser login must be refused");
    assert!(error.to_string().contains("bridge_service"), "{error}");
}

#[tokio::test]
async fn self_check_refuses_unforced_rls() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    sqlx::raw_sql("ALTER TABLE quiz_results NO FORCE ROW LEVEL SECURITY")
        .execute(&db.owner)
        .await
        .unwrap();
    let error = isolation_self_check(&db.runtime, TENANT_ROLE, true)
        .await
        .expect_err("unforced RLS must be refused");
    let message = error.to_string();
    assert!(message.contains("quiz_results"), "{message}");
    assert!(message.contains("FORCE ROW LEVEL SECURITY"), "{message}");
}

#[tokio::test]
async fn self_check_refuses_table_without_rls() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    sqlx::raw_sql("CREATE TABLE notes (tenant_id text NOT NULL, body text)")
        .execute(&db.owner)
        .await
        .unwrap();
    let error = isolation_self_check(&db.runtime, TENANT_ROLE, true)
        .await
        .expect_err("a tenant table without RLS must be refused");
    let message = error.to_string();
    assert!(
        message.contains("table notes has row-level security disabled"),
        "{message}"
    );
    assert!(
        message.contains("table notes has no row-level security policy"),
        "{message}"
    );
}

#[tokio::test]
async fn tenant_delete_removes_every_row() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    seed_tenant(&db.runtime, &a).await;
    seed_tenant(&db.runtime, &b).await;
    TenantRegistry::new(db.runtime.clone())
        .delete(&a)
        .await
        .unwrap();
    for table in tenant_tables(&db.owner).await {
        let remaining: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'tenant-a'"
        )))
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert_eq!(remaining, 0, "{table}: rows of the deleted tenant remain");
        let kept: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'tenant-b'"
        )))
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert!(kept >= 1, "{table}: rows of the other tenant were deleted");
    }
}

#[tokio::test]
async fn pooled_connection_does_not_keep_tenant() {
    let Some(db) = TestDatabase::create_with_pool_size(1).await else {
        return;
    };
    let a = tenant("tenant-a");
    seed_tenant(&db.runtime, &a).await;
    let tx = TenantTx::begin(&db.runtime, &a).await.unwrap();
    tx.commit().await.unwrap();
    // The same (only) connection, outside any transaction: no role, no tenant.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.runtime_url)
        .await
        .unwrap();
    let mut tx = SystemTx::begin(&pool, SystemRole::Anonymous).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(users, 0);
    drop(tx);
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&db.runtime)
        .await
        .unwrap();
    assert_eq!(
        role, "bridge_service",
        "SET LOCAL ROLE outlived its transaction"
    );
}

#[tokio::test]
async fn deleted_tenant_id_is_never_reused() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let registry = TenantRegistry::new(db.runtime.clone());
    let id = tenant("short-lived");
    registry.create(&id, "First").await.unwrap();
    registry.delete(&id).await.unwrap();
    // Tokens of the first tenant may still be valid; a new tenant under its id would accept them.
    let error = registry.create(&id, "Second").await.unwrap_err();
    assert!(
        matches!(error, bridge::tenancy::TenantRegistryError::Retired(_)),
        "{error}"
    );
    assert!(registry.get(&id).await.unwrap().is_none());
}
