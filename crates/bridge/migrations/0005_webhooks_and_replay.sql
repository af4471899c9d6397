-- HR webhook secrets, the ledger of processed webhook events, and dead-letter replay.

-- Signing secrets of `POST /webhooks/{tenant}/scim-events`. A tenant may hold several active
-- secrets at once, so a secret can be rotated without rejecting deliveries in between.
-- NOTE: the secret is stored as plain text because the service must compute the HMAC with it;
-- like mindtickle_accounts, only the tenant's own row-level security policy protects it, and
-- encryption at rest is not built yet.
CREATE TABLE webhook_secrets (
    tenant_id   text        NOT NULL,
    secret_id   uuid        NOT NULL,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT webhook_secrets_pkey PRIMARY KEY (tenant_id, secret_id),
    CONSTRAINT webhook_secrets_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
SELECT bridge_enable_tenant_rls('webhook_secrets');

-- One row per webhook event id, so a redelivered event returns its first outcome instead of
-- being applied again. `processing` marks a claim taken before the directory write; a claim
-- older than a few minutes was abandoned by a crashed process and may be taken again.
CREATE TABLE webhook_events (
    tenant_id       text        NOT NULL,
    event_id        text        NOT NULL,
    -- create, update or delete; NULL when the event's operation was invalid.
    operation       text,
    status          text        NOT NULL DEFAULT 'processing',
    user_id         uuid,
    error           jsonb,
    dead_letter_id  uuid,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (tenant_id, event_id),
    CONSTRAINT webhook_events_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    CONSTRAINT webhook_events_status_check CHECK (status IN ('processing', 'applied', 'rejected'))
);
SELECT bridge_enable_tenant_rls('webhook_events');

-- Replay: `replaying` is a claim held while the stored request runs again, so two operators
-- cannot apply the same letter twice; the columns below record the attempts and the outcome.
ALTER TABLE dead_letters
    DROP CONSTRAINT dead_letters_status_check,
    ADD CONSTRAINT dead_letters_status_check CHECK (status IN ('new', 'replaying', 'replayed', 'discarded')),
    ADD COLUMN replay_attempts  integer     NOT NULL DEFAULT 0,
    ADD COLUMN last_replay_at   timestamptz,
    ADD COLUMN resolved_at      timestamptz,
    ADD COLUMN resolved_by      text,
    ADD COLUMN resource_id      uuid;
CREATE INDEX dead_letters_status_idx ON dead_letters (tenant_id, status, received_at DESC);
