-- Ids of deleted tenants. A tenant id is never given to a new tenant: tokens issued for the old
-- one may still be valid somewhere (API tokens until they expire, SCIM tokens in a server's
-- verification cache), and they must not open the new tenant's data.
CREATE TABLE retired_tenants (
    id          text        NOT NULL,
    retired_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT retired_tenants_pkey PRIMARY KEY (id)
);
GRANT SELECT, INSERT ON retired_tenants TO bridge_admin;
