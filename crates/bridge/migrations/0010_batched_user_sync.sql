-- Batched user pushes: which version of a user is in flight to MindTickle, and per-user retries.
ALTER TABLE users ADD COLUMN mindtickle_pushed_version bigint;
ALTER TABLE users ADD COLUMN mindtickle_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mindtickle_next_attempt_at timestamptz;
-- The batch job reads the users waiting for a push.
CREATE INDEX users_mindtickle_pending_idx ON users (tenant_id, updated_at)
    WHERE mindtickle_state = 'pending';
