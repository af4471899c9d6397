-- Case-insensitive userName lookups that can use an index under row-level security.
--
-- With RLS on, PostgreSQL uses a condition as an index condition only if every function in it
-- is leakproof, and lower() is not. A stored lower-cased copy compared with `= lower($1)` needs
-- no function on the column side, so the unique index serves the lookup.
ALTER TABLE users ADD COLUMN user_name_lower text GENERATED ALWAYS AS (lower(user_name)) STORED;
DROP INDEX users_user_name_key;
CREATE UNIQUE INDEX users_user_name_key ON users (tenant_id, user_name_lower);
-- No query filters on the lower-cased email; the index only cost every write.
DROP INDEX users_email_idx;
