-- Transactional outbox towards the Tasy ERP (issue 6): a change that must reach Tasy (an authorization,
-- a health data record) writes an outbox row in the same transaction as the change; a worker claims
-- batches (at-least-once: a claim expires, and an expired claim is claimed again), retries failures with
-- exponential backoff and marks rows done. Rows hold ids only: the worker reads the entity itself, through
-- the library, when it delivers.

CREATE TABLE tasy_outbox (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id              UUID NOT NULL,
    entity_type     TEXT NOT NULL CHECK (entity_type IN ('AUTHORIZATION','HEALTH_DATA')),
    entity_id       UUID NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('UPSERT','DELETE')),
    status          TEXT NOT NULL CHECK (status IN ('PENDING','IN_FLIGHT','DONE','DEAD')),
    attempts        BIGINT NOT NULL CHECK (attempts >= 0),
    available_at    TIMESTAMPTZ NOT NULL,
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    PRIMARY KEY (organization_id, id),
    CHECK ((status = 'IN_FLIGHT') = (claimed_until IS NOT NULL)),
    CHECK ((status = 'DONE') = (completed_at IS NOT NULL))
);
CREATE INDEX tasy_outbox_due_idx ON tasy_outbox (organization_id, status, available_at);

ALTER TABLE tasy_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasy_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasy_outbox
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON tasy_outbox TO austa_app;
