-- Audit trail (issue 5), SQLite flavour of migrations/postgres/0004_audit_trail.sql: same tables,
-- columns, keys and indexes. Triggers reject UPDATE and DELETE on audit_logs and audit_chain (SQLite
-- has no TRUNCATE; its DELETE without WHERE fires the row trigger too).

DROP TABLE audit_logs;

CREATE TABLE audit_logs (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id              TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('PATIENT','PROVIDER','ADMIN','SYSTEM')),
    actor_id        TEXT,
    actor_name      TEXT,
    action          TEXT NOT NULL CHECK (action IN ('CREATE','READ','UPDATE','DELETE','LOGIN','LOGOUT','ACCESS_DENIED','EXPORT','IMPORT','SYNC','BACKUP','RESTORE','PERMISSION_CHANGE','CONFIG_CHANGE','EMERGENCY_ACCESS')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('SUCCESS','NOT_FOUND','DENIED')),
    entity_type     TEXT NOT NULL CHECK (entity_type IN ('ORGANIZATION','PATIENT','PROVIDER','CONVERSATION','MESSAGE','HEALTH_DATA','MISSION','ONBOARDING_PROGRESS','HEALTH_POINTS','POINT_TRANSACTION','AUTHORIZATION','DOCUMENT','TASY_INTEGRATION','TASY_SYNC_LOG','AUDIT_LOG')),
    entity_id       TEXT,
    record_ids      TEXT NOT NULL CHECK (json_valid(record_ids)),
    record_count    INTEGER NOT NULL CHECK (record_count >= 0),
    patient_id      TEXT,
    patient_ids     TEXT NOT NULL CHECK (json_valid(patient_ids)),
    changed_fields  TEXT NOT NULL CHECK (json_valid(changed_fields)),
    purpose         TEXT,
    reason          BLOB,
    session_id      TEXT,
    request_id      TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    emergency       INTEGER NOT NULL CHECK (emergency IN (0,1)),
    sensitivity     TEXT NOT NULL CHECK (sensitivity IN ('OPERATIONAL','PERSONAL','HEALTH','SECRET')),
    sensitive_data  INTEGER NOT NULL CHECK (sensitive_data IN (0,1)),
    risk_level      TEXT NOT NULL CHECK (risk_level IN ('LOW','MEDIUM','HIGH','CRITICAL')),
    requires_review INTEGER NOT NULL CHECK (requires_review IN (0,1)),
    key_id          TEXT NOT NULL,
    mac             BLOB NOT NULL,
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE INDEX audit_logs_occurred_idx ON audit_logs (organization_id, occurred_at);
CREATE INDEX audit_logs_entity_idx ON audit_logs (organization_id, entity_type, entity_id);
CREATE INDEX audit_logs_patient_idx ON audit_logs (organization_id, patient_id, occurred_at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (organization_id, actor_kind, actor_id, action);

CREATE TABLE audit_pending (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    event_id        TEXT NOT NULL,
    PRIMARY KEY (organization_id, event_id)
) STRICT;

CREATE TABLE audit_chain (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    event_id        TEXT NOT NULL,
    prev_mac        BLOB NOT NULL,
    mac             BLOB NOT NULL,
    key_id          TEXT NOT NULL,
    chained_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, seq)
) STRICT;
CREATE UNIQUE INDEX audit_chain_event_key ON audit_chain (organization_id, event_id);

CREATE TABLE audit_heads (
    organization_id TEXT NOT NULL PRIMARY KEY REFERENCES organizations (id) ON DELETE RESTRICT,
    seq             INTEGER NOT NULL CHECK (seq >= 0),
    mac             BLOB NOT NULL,
    key_id          TEXT NOT NULL,
    head_mac        BLOB NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN SELECT RAISE(ABORT, 'austa: audit_logs is append-only (UPDATE refused)'); END;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN SELECT RAISE(ABORT, 'austa: audit_logs is append-only (DELETE refused)'); END;
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'austa: audit_chain is append-only (UPDATE refused)'); END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'austa: audit_chain is append-only (DELETE refused)'); END;
