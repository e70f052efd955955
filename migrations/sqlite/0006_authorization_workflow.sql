-- Authorization workflow (issue 6), SQLite flavour of migrations/postgres/0006_authorization_workflow.sql:
-- the state machine's history, one row per transition (who, when, from which status to which, and the
-- encrypted denial or cancellation reason). Same columns, keys, indexes and CHECKs; only the types differ.

CREATE UNIQUE INDEX authorizations_patient_key ON authorizations (organization_id, id, patient_id);

CREATE TABLE authorization_transitions (
    organization_id  TEXT NOT NULL,
    id               TEXT NOT NULL,
    authorization_id TEXT NOT NULL,
    patient_id       TEXT NOT NULL,
    from_status      TEXT NOT NULL CHECK (from_status IN ('PENDING','UNDER_REVIEW','APPROVED')),
    to_status        TEXT NOT NULL CHECK (to_status IN ('UNDER_REVIEW','APPROVED','DENIED','EXPIRED','CANCELLED')),
    provider_id      TEXT,
    actor_kind       TEXT NOT NULL CHECK (actor_kind IN ('PATIENT','PROVIDER','ADMIN','SYSTEM')),
    actor_name       TEXT CHECK (actor_name IS NULL OR length(actor_name) BETWEEN 1 AND 100),
    reason           BLOB,
    occurred_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE RESTRICT,
    FOREIGN KEY (organization_id, authorization_id, patient_id) REFERENCES authorizations (organization_id, id, patient_id) ON DELETE RESTRICT,
    FOREIGN KEY (organization_id, provider_id) REFERENCES providers (organization_id, id) ON DELETE RESTRICT,
    CHECK ((from_status = 'PENDING' AND to_status IN ('UNDER_REVIEW','CANCELLED'))
        OR (from_status = 'UNDER_REVIEW' AND to_status IN ('APPROVED','DENIED','CANCELLED'))
        OR (from_status = 'APPROVED' AND to_status = 'EXPIRED')),
    CHECK (to_status NOT IN ('UNDER_REVIEW','APPROVED','DENIED') OR provider_id IS NOT NULL),
    CHECK (to_status <> 'EXPIRED' OR provider_id IS NULL),
    CHECK ((reason IS NOT NULL) = (to_status IN ('DENIED','CANCELLED')))
) STRICT;
CREATE INDEX authorization_transitions_authorization_idx ON authorization_transitions (organization_id, authorization_id, occurred_at);
CREATE INDEX authorization_transitions_patient_idx ON authorization_transitions (organization_id, patient_id);
