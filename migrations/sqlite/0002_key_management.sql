-- Key management (issue 3): crypto-shredding marks and resumable data key rotations.

-- When a patient's keys were destroyed; their encrypted fields read as erased from then on.
ALTER TABLE patients ADD COLUMN erased_at TEXT;

-- A data key rotation: a new key version, and the re-encryption of the rows it covers in batches whose
-- position is persisted, so an interrupted run continues where it stopped. `subject_id` is the
-- organization (target ORGANIZATION) or the patient (target PATIENT); one running rotation per subject.
CREATE TABLE key_rotations (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id              TEXT NOT NULL,
    target          TEXT NOT NULL CHECK (target IN ('ORGANIZATION','PATIENT')),
    subject_id      TEXT NOT NULL,
    new_key_id      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('RUNNING','COMPLETED')),
    table_position  INTEGER NOT NULL CHECK (table_position >= 0),
    last_id         TEXT,
    rows_done       INTEGER NOT NULL CHECK (rows_done >= 0),
    rows_total      INTEGER NOT NULL CHECK (rows_total >= 0),
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    completed_at    TEXT,
    PRIMARY KEY (organization_id, id),
    CHECK (target <> 'ORGANIZATION' OR subject_id = organization_id)
) STRICT;
CREATE UNIQUE INDEX key_rotations_running_key ON key_rotations (organization_id, subject_id) WHERE status = 'RUNNING';
