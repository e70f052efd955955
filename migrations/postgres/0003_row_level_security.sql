-- Row-level security (PostgreSQL only): the database's own wall between tenants, behind the library's
-- organization filter.
--
-- Every tenant table has RLS enabled and FORCED (the table owner is subject to it too; only superusers
-- and BYPASSRLS roles are not). The policy admits a row when its organization_id equals the
-- transaction-local setting `austa.organization_id`, which the library sets with
-- set_config(..., true) at the start of every transaction it opens. With no organization set, the
-- setting is empty and no row is visible or writable.
--
-- The runtime role `austa_app` is created here without LOGIN; it owns nothing, has no BYPASSRLS, and may
-- only SELECT, INSERT and UPDATE (rows are soft-deleted), plus DELETE on the two link tables
-- (mission_prerequisites, authorization_attachments), whose rows are links, not records. The
-- one-time setup that lets it log in is documented in the README:
--   ALTER ROLE austa_app LOGIN PASSWORD '...';
-- Migrations run as the database owner. `organizations` (the platform-level reference table) and the
-- key store's tables are not under RLS: they are read across organizations by platform operations
-- (listing tenants, master key rotation), and the key store usually lives in a database of its own.

DO $$
BEGIN
    CREATE ROLE austa_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO austa_app;
GRANT SELECT, INSERT, UPDATE ON organizations TO austa_app;

ALTER TABLE patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE patients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON patients
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON patients TO austa_app;

ALTER TABLE providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE providers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON providers
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON providers TO austa_app;

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON conversations TO austa_app;

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON messages TO austa_app;

ALTER TABLE health_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE health_data FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON health_data
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON health_data TO austa_app;

ALTER TABLE missions ENABLE ROW LEVEL SECURITY;
ALTER TABLE missions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON missions
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON missions TO austa_app;

ALTER TABLE mission_prerequisites ENABLE ROW LEVEL SECURITY;
ALTER TABLE mission_prerequisites FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mission_prerequisites
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON mission_prerequisites TO austa_app;

ALTER TABLE onboarding_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE onboarding_progress FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON onboarding_progress
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON onboarding_progress TO austa_app;

ALTER TABLE health_points ENABLE ROW LEVEL SECURITY;
ALTER TABLE health_points FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON health_points
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON health_points TO austa_app;

ALTER TABLE point_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE point_transactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON point_transactions
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON point_transactions TO austa_app;

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON documents TO austa_app;

ALTER TABLE authorizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE authorizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authorizations
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON authorizations TO austa_app;

ALTER TABLE authorization_attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE authorization_attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authorization_attachments
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON authorization_attachments TO austa_app;

ALTER TABLE tasy_integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasy_integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasy_integrations
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON tasy_integrations TO austa_app;

ALTER TABLE tasy_sync_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasy_sync_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasy_sync_logs
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON tasy_sync_logs TO austa_app;

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_logs
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON audit_logs TO austa_app;

ALTER TABLE key_rotations ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_rotations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON key_rotations
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON key_rotations TO austa_app;
