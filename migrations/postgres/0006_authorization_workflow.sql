-- Authorization workflow (issue 6): the state machine's history.
--
-- An authorization moves PENDING -> UNDER_REVIEW -> APPROVED | DENIED, PENDING or UNDER_REVIEW -> CANCELLED,
-- and APPROVED -> EXPIRED once its validity has ended; only the library's transitions change its status.
-- The authorization row keeps its current state (reviewer and approver, with their times, and the approved
-- validity window); authorization_transitions keeps one row per transition: from which status to which,
-- who (the provider who reviewed, approved, denied or cancelled, a real same-organization foreign key; and
-- the actor's kind and integration name, since a cancellation or an expiry may come from an integration),
-- when, and why (the denial or cancellation reason, encrypted with the patient's key like the
-- authorization's own clinical text).
--
-- * A transition row always cites its authorization's own patient: the composite foreign key
--   (organization_id, authorization_id, patient_id) needs the unique index authorizations_patient_key
--   (the same pattern as health_data_patient_key).
-- * CHECK constraints hold the state machine itself: only the allowed (from, to) pairs, a provider for
--   every review decision and none for an expiry, a reason for every denial and cancellation and for
--   nothing else.
-- * The runtime role may read and append transitions but update only the encrypted reason (key rotation
--   re-encrypts it); it may not delete them.

CREATE UNIQUE INDEX authorizations_patient_key ON authorizations (organization_id, id, patient_id);

CREATE TABLE authorization_transitions (
    organization_id  UUID NOT NULL,
    id               UUID NOT NULL,
    authorization_id UUID NOT NULL,
    patient_id       UUID NOT NULL,
    from_status      TEXT NOT NULL CHECK (from_status IN ('PENDING','UNDER_REVIEW','APPROVED')),
    to_status        TEXT NOT NULL CHECK (to_status IN ('UNDER_REVIEW','APPROVED','DENIED','EXPIRED','CANCELLED')),
    provider_id      UUID,
    actor_kind       TEXT NOT NULL CHECK (actor_kind IN ('PATIENT','PROVIDER','ADMIN','SYSTEM')),
    actor_name       TEXT CHECK (actor_name IS NULL OR length(actor_name) BETWEEN 1 AND 100),
    reason           BYTEA,
    occurred_at      TIMESTAMPTZ NOT NULL,
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
);
CREATE INDEX authorization_transitions_authorization_idx ON authorization_transitions (organization_id, authorization_id, occurred_at);
CREATE INDEX authorization_transitions_patient_idx ON authorization_transitions (organization_id, patient_id);

ALTER TABLE authorization_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE authorization_transitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON authorization_transitions
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT ON authorization_transitions TO austa_app;
GRANT UPDATE (reason) ON authorization_transitions TO austa_app;
