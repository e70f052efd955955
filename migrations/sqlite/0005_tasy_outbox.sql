-- Transactional outbox towards the Tasy ERP, SQLite flavour of migrations/postgres/0005_tasy_outbox.sql.

CREATE TABLE tasy_outbox (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id              TEXT NOT NULL,
    entity_type     TEXT NOT NULL CHECK (entity_type IN ('AUTHORIZATION','HEALTH_DATA')),
    entity_id       TEXT NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('UPSERT','DELETE')),
    status          TEXT NOT NULL CHECK (status IN ('PENDING','IN_FLIGHT','DONE','DEAD')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    available_at    TEXT NOT NULL,
    claimed_by      TEXT,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    completed_at    TEXT,
    PRIMARY KEY (organization_id, id),
    CHECK ((status = 'IN_FLIGHT') = (claimed_until IS NOT NULL)),
    CHECK ((status = 'DONE') = (completed_at IS NOT NULL))
) STRICT;
CREATE INDEX tasy_outbox_due_idx ON tasy_outbox (organization_id, status, available_at);
