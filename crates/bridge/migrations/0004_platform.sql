-- Outbox, durable jobs, dead letters and security events.

-- Events written in the same transaction as the change they describe; the relay publishes them.
CREATE TABLE outbox (
    tenant_id     text        NOT NULL,
    event_id      uuid        NOT NULL,
    event_type    text        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (tenant_id, event_id),
    CONSTRAINT outbox_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
CREATE INDEX outbox_unpublished_idx ON outbox (tenant_id, created_at) WHERE published_at IS NULL;
SELECT bridge_enable_tenant_rls('outbox');
-- The relay reads every tenant's unpublished rows and marks them sent; it can do nothing else.
CREATE POLICY relay_all ON outbox TO bridge_relay USING (true) WITH CHECK (true);
GRANT SELECT, UPDATE (published_at) ON outbox TO bridge_relay;

CREATE TABLE jobs (
    tenant_id     text        NOT NULL,
    job_id        uuid        NOT NULL,
    kind          text        NOT NULL,
    -- Deduplication key: at most one pending job per (tenant, kind, key). A running job does
    -- not block a new one, because it may have read the state before the change that enqueued it.
    job_key       text,
    payload       jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'pending',
    attempts      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL,
    run_at        timestamptz NOT NULL DEFAULT now(),
    locked_at     timestamptz,
    locked_by     text,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_pkey PRIMARY KEY (tenant_id, job_id),
    CONSTRAINT jobs_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT jobs_status_check CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
    CONSTRAINT jobs_max_attempts_check CHECK (max_attempts > 0)
);
CREATE UNIQUE INDEX jobs_pending_key ON jobs (tenant_id, kind, job_key)
    WHERE job_key IS NOT NULL AND status = 'pending';
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE status = 'pending';
SELECT bridge_enable_tenant_rls('jobs');
-- The job runner claims due jobs across tenants and records their outcome.
CREATE POLICY worker_all ON jobs TO bridge_worker USING (true) WITH CHECK (true);
GRANT SELECT, UPDATE (status, attempts, run_at, locked_at, locked_by, last_error, updated_at) ON jobs TO bridge_worker;

-- Requests the service could not accept (malformed SCIM payloads), kept for review and replay.
CREATE TABLE dead_letters (
    tenant_id       text        NOT NULL,
    dead_letter_id  uuid        NOT NULL,
    source          text        NOT NULL,
    request_id      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    method          text,
    path            text,
    raw_body        text        NOT NULL,
    body_truncated  boolean     NOT NULL DEFAULT false,
    errors          jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'new',
    CONSTRAINT dead_letters_pkey PRIMARY KEY (tenant_id, dead_letter_id),
    CONSTRAINT dead_letters_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT dead_letters_status_check CHECK (status IN ('new', 'replayed', 'discarded'))
);
SELECT bridge_enable_tenant_rls('dead_letters');

-- The audit trail of refused cross-tenant attempts. It belongs to operators, not to either
-- tenant, so it has no tenant_id column: the service may append to it and never read it.
CREATE TABLE security_events (
    event_id          uuid        NOT NULL,
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    kind              text        NOT NULL,
    request_id        text,
    principal_tenant  text,
    target_tenant     text,
    detail            text        NOT NULL,
    CONSTRAINT security_events_pkey PRIMARY KEY (event_id)
);
GRANT INSERT ON security_events TO bridge_app, bridge_admin;
GRANT SELECT ON security_events TO bridge_admin;
