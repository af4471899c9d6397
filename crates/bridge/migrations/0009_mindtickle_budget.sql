-- Per-tenant overrides of the MindTickle request budget; NULL uses the configured default.
ALTER TABLE mindtickle_accounts ADD COLUMN requests_per_second integer
    CONSTRAINT mindtickle_accounts_requests_per_second_check CHECK (requests_per_second > 0);
ALTER TABLE mindtickle_accounts ADD COLUMN requests_per_minute integer
    CONSTRAINT mindtickle_accounts_requests_per_minute_check CHECK (requests_per_minute > 0);
