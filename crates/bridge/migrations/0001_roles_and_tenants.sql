-- Roles, the row-level security helper and the tenant registry.
--
-- Group roles are NOLOGIN and carry the privileges. The service logs in as bridge_service,
-- which is NOINHERIT: without `SET LOCAL ROLE` it can read and write nothing, so a query
-- that forgot to open a tenant transaction fails instead of leaking rows.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['bridge_app', 'bridge_relay', 'bridge_worker', 'bridge_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', role_name);
            EXCEPTION WHEN duplicate_object THEN
                -- Another database in the same cluster created it concurrently; roles are cluster-wide.
                NULL;
            END;
        END IF;
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bridge_service') THEN
        BEGIN
            CREATE ROLE bridge_service LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
    END IF;
END
$$;

GRANT bridge_app, bridge_relay, bridge_worker, bridge_admin TO bridge_service;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO bridge_service', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO bridge_app, bridge_relay, bridge_worker, bridge_admin;

-- The tenant of the current transaction, or NULL when none is set. `current_setting(.., true)`
-- returns NULL before the first SET and '' after a transaction-local SET ends, and both must
-- match no row.
--
-- Every tenant table gets the same policy from this helper, so no table can drift from the rule.
CREATE FUNCTION bridge_enable_tenant_rls(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s TO bridge_app '
        'USING (tenant_id = (SELECT nullif(current_setting(''app.tenant_id'', true), ''''))) '
        'WITH CHECK (tenant_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')))',
        target);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO bridge_app', target);
END
$$;

CREATE TABLE tenants (
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_tenant_id_format CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$')
);
SELECT bridge_enable_tenant_rls('tenants');
-- Tenant administration is the one path that lists and creates tenants.
CREATE POLICY admin_all ON tenants TO bridge_admin USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO bridge_admin;

-- SCIM bearer tokens. The token is `<token_id>.<secret>`; only an argon2 hash of the secret is kept.
CREATE TABLE scim_tokens (
    tenant_id    text        NOT NULL,
    token_id     uuid        NOT NULL,
    secret_hash  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CONSTRAINT scim_tokens_pkey PRIMARY KEY (tenant_id, token_id),
    CONSTRAINT scim_tokens_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('scim_tokens');

-- Per-tenant MindTickle account: the regional REST host, the admin (reporting) host and the keys.
CREATE TABLE mindtickle_accounts (
    tenant_id           text NOT NULL,
    api_base            text NOT NULL,
    admin_base          text NOT NULL,
    ls_url              text NOT NULL,
    api_key             text NOT NULL,
    secret_key          text NOT NULL,
    reporting_user      text NOT NULL,
    reporting_password  text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mindtickle_accounts_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT mindtickle_accounts_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('mindtickle_accounts');
