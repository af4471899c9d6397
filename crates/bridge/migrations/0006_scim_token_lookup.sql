-- Lets tenant administration find which tenant a SCIM token belongs to, so a token presented on
-- another tenant's endpoint is recorded as a cross-tenant attempt rather than as a bad token.
-- Only the columns needed to verify the token are readable.
CREATE POLICY admin_token_lookup ON scim_tokens FOR SELECT TO bridge_admin USING (true);
GRANT SELECT (tenant_id, token_id, secret_hash, revoked_at) ON scim_tokens TO bridge_admin;
