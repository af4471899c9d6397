-- Roles and managers for team breakdowns.
--
-- users.role now holds only the role the identity provider sent in SCIM `roles` (NULL when it
-- sent none). The effective role is resolved when a report is computed: SCIM role, else a
-- group mapping, else a userType mapping, else 'rep'. Resolving late means a changed mapping or
-- membership applies to the next report without rewriting users.
ALTER TABLE users ALTER COLUMN role DROP NOT NULL;
ALTER TABLE users ALTER COLUMN role DROP DEFAULT;
UPDATE users SET role = NULL WHERE role = 'rep';

-- The manager's SCIM id from the enterprise extension, as sent. It may name a user that is
-- provisioned later, so it is not a foreign key.
ALTER TABLE users ADD COLUMN manager_ref text;
ALTER TABLE users DROP COLUMN manager_user_id;
CREATE INDEX users_manager_ref_idx ON users (tenant_id, manager_ref);

CREATE TABLE role_mappings (
    tenant_id    text NOT NULL,
    source       text NOT NULL,
    -- userType value or group displayName, compared case-insensitively.
    match_value  text NOT NULL,
    role         text NOT NULL,
    CONSTRAINT role_mappings_pkey PRIMARY KEY (tenant_id, source, match_value),
    CONSTRAINT role_mappings_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT role_mappings_source_check CHECK (source IN ('user_type', 'group')),
    CONSTRAINT role_mappings_role_check CHECK (role IN ('rep', 'manager', 'admin')),
    CONSTRAINT role_mappings_match_value_check CHECK (match_value = lower(match_value))
);
SELECT bridge_enable_tenant_rls('role_mappings');

-- Team and role breakdowns of a report, as computed.
ALTER TABLE readiness_reports ADD COLUMN teams jsonb NOT NULL DEFAULT '[]';
ALTER TABLE readiness_reports ADD COLUMN roles jsonb NOT NULL DEFAULT '[]';
