-- Users, groups and memberships provisioned over SCIM.
CREATE TABLE users (
    tenant_id        text        NOT NULL,
    user_id          uuid        NOT NULL,
    user_name        text        NOT NULL,
    external_id      text,
    active           boolean     NOT NULL DEFAULT true,
    display_name     text,
    email            text,
    role             text        NOT NULL DEFAULT 'rep',
    manager_user_id  uuid,
    -- The SCIM representation as last written, without password and meta.
    resource         jsonb       NOT NULL,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- MindTickle push state: pending until the sync job confirms the bulk process.
    mindtickle_state      text        NOT NULL DEFAULT 'pending',
    mindtickle_pushed_at  timestamptz,
    mindtickle_error      text,
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT users_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT users_role_check CHECK (role IN ('rep', 'manager', 'admin')),
    CONSTRAINT users_mindtickle_state_check CHECK (mindtickle_state IN ('pending', 'synced', 'failed'))
);
-- userName is unique per tenant and compared case-insensitively (RFC 7643 §4.1.1, caseExact false).
CREATE UNIQUE INDEX users_user_name_key ON users (tenant_id, lower(user_name));
CREATE INDEX users_external_id_idx ON users (tenant_id, external_id);
CREATE INDEX users_email_idx ON users (tenant_id, lower(email));
SELECT bridge_enable_tenant_rls('users');

CREATE TABLE groups (
    tenant_id     text        NOT NULL,
    group_id      uuid        NOT NULL,
    display_name  text        NOT NULL,
    external_id   text,
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_pkey PRIMARY KEY (tenant_id, group_id),
    CONSTRAINT groups_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (tenant_id, lower(display_name));
SELECT bridge_enable_tenant_rls('groups');

CREATE TABLE group_members (
    tenant_id  text NOT NULL,
    group_id   uuid NOT NULL,
    user_id    uuid NOT NULL,
    CONSTRAINT group_members_pkey PRIMARY KEY (tenant_id, group_id, user_id),
    CONSTRAINT group_members_group_fkey FOREIGN KEY (tenant_id, group_id)
        REFERENCES groups (tenant_id, group_id) ON DELETE CASCADE,
    CONSTRAINT group_members_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX group_members_user_idx ON group_members (tenant_id, user_id);
SELECT bridge_enable_tenant_rls('group_members');
