-- Audit trail (issue 5): events recorded by the library in the same transaction as the work, a
-- tamper-evident chain per organization, append-only storage.
--
-- The minimal audit_logs table of 0001 had no chain and nothing wrote to it but callers; it is replaced
-- (a development database loses its unchained events, which nothing could have verified anyway).
--
-- * audit_logs: one row per operation. `mac` is HMAC-SHA-256 over the event's canonical content under
--   the organization's audit key (derived from organization key version `key_id`): an event cannot be
--   forged or edited without the key.
-- * audit_pending: events committed but not yet linked into the chain. The chain is built after commit
--   by a sequencer, so that writers of one organization never queue on a chain lock (see the README).
-- * audit_chain: the chain itself, one link per event in sequence order: mac = HMAC(event mac,
--   previous link's mac). Append-only like the events.
-- * audit_heads: per organization, the last link (sequence and mac) under a MAC, so that removing the
--   newest events is detected too.
--
-- audit_logs and audit_chain reject UPDATE, DELETE and TRUNCATE for everyone, owner included, by trigger;
-- the runtime role may only SELECT and INSERT them.

DROP TABLE audit_logs;

CREATE TABLE audit_logs (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id              UUID NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('PATIENT','PROVIDER','ADMIN','SYSTEM')),
    actor_id        UUID,
    actor_name      TEXT,
    action          TEXT NOT NULL CHECK (action IN ('CREATE','READ','UPDATE','DELETE','LOGIN','LOGOUT','ACCESS_DENIED','EXPORT','IMPORT','SYNC','BACKUP','RESTORE','PERMISSION_CHANGE','CONFIG_CHANGE','EMERGENCY_ACCESS')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('SUCCESS','NOT_FOUND','DENIED')),
    entity_type     TEXT NOT NULL CHECK (entity_type IN ('ORGANIZATION','PATIENT','PROVIDER','CONVERSATION','MESSAGE','HEALTH_DATA','MISSION','ONBOARDING_PROGRESS','HEALTH_POINTS','POINT_TRANSACTION','AUTHORIZATION','DOCUMENT','TASY_INTEGRATION','TASY_SYNC_LOG','AUDIT_LOG')),
    entity_id       UUID,
    record_ids      JSONB NOT NULL,
    record_count    BIGINT NOT NULL CHECK (record_count >= 0),
    patient_id      UUID,
    patient_ids     JSONB NOT NULL,
    changed_fields  JSONB NOT NULL,
    purpose         TEXT,
    reason          BYTEA,
    session_id      TEXT,
    request_id      TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    emergency       BOOLEAN NOT NULL,
    sensitivity     TEXT NOT NULL CHECK (sensitivity IN ('OPERATIONAL','PERSONAL','HEALTH','SECRET')),
    sensitive_data  BOOLEAN NOT NULL,
    risk_level      TEXT NOT NULL CHECK (risk_level IN ('LOW','MEDIUM','HIGH','CRITICAL')),
    requires_review BOOLEAN NOT NULL,
    key_id          UUID NOT NULL,
    mac             BYTEA NOT NULL,
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX audit_logs_occurred_idx ON audit_logs (organization_id, occurred_at);
CREATE INDEX audit_logs_entity_idx ON audit_logs (organization_id, entity_type, entity_id);
CREATE INDEX audit_logs_patient_idx ON audit_logs (organization_id, patient_id, occurred_at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (organization_id, actor_kind, actor_id, action);

CREATE TABLE audit_pending (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    event_id        UUID NOT NULL,
    PRIMARY KEY (organization_id, event_id)
);

CREATE TABLE audit_chain (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    event_id        UUID NOT NULL,
    prev_mac        BYTEA NOT NULL,
    mac             BYTEA NOT NULL,
    key_id          UUID NOT NULL,
    chained_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, seq)
);
CREATE UNIQUE INDEX audit_chain_event_key ON audit_chain (organization_id, event_id);

CREATE TABLE audit_heads (
    organization_id UUID NOT NULL PRIMARY KEY REFERENCES organizations (id) ON DELETE RESTRICT,
    seq             BIGINT NOT NULL CHECK (seq >= 0),
    mac             BYTEA NOT NULL,
    key_id          UUID NOT NULL,
    head_mac        BYTEA NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION austa_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'austa: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION austa_audit_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION austa_audit_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION austa_audit_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION austa_audit_append_only();

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_logs
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT ON audit_logs TO austa_app;

ALTER TABLE audit_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_pending
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, DELETE ON audit_pending TO austa_app;

ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT ON audit_chain TO austa_app;

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON audit_heads TO austa_app;
