-- Austa key store, PostgreSQL flavour. Wrapped keys only: no plaintext key material ever.
--
-- The key store lives in the data database by default, or in a database of its own
-- (AUSTA_KEYSTORE_URL) so that a data backup holds no key and crypto-shredding reaches backups too.
-- It has no foreign keys into the data tables for that reason.

-- One row: the key check value. A blob wrapped by the master key at creation; unwrapping it at open
-- time tells a wrong master key apart before any data is read.
CREATE TABLE keystore_meta (
    id          BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    key_check   BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ
);

-- Organization keys, wrapped by the master key. The newest ACTIVE version encrypts; every version
-- that is not DESTROYED decrypts.
CREATE TABLE organization_keys (
    organization_id UUID NOT NULL,
    id              UUID NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    wrapped_key     BYTEA NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ACTIVE','RETIRED')),
    created_at      TIMESTAMPTZ NOT NULL,
    retired_at      TIMESTAMPTZ,
    PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX organization_keys_version_key ON organization_keys (organization_id, version);

-- Patient keys, wrapped by an organization key version. Destroying a patient's keys (NULL wrapped_key,
-- state DESTROYED) erases every ciphertext of that patient everywhere, backups included.
CREATE TABLE patient_keys (
    organization_id UUID NOT NULL,
    id              UUID NOT NULL,
    patient_id      UUID NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    wrapped_key     BYTEA,
    wrapping_key_id UUID NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ACTIVE','RETIRED','DESTROYED')),
    created_at      TIMESTAMPTZ NOT NULL,
    retired_at      TIMESTAMPTZ,
    destroyed_at    TIMESTAMPTZ,
    destroyed_by    TEXT,
    PRIMARY KEY (organization_id, id),
    CHECK ((state = 'DESTROYED') = (wrapped_key IS NULL)),
    CHECK ((state = 'DESTROYED') = (destroyed_at IS NOT NULL))
);
CREATE UNIQUE INDEX patient_keys_version_key ON patient_keys (organization_id, patient_id, version);
CREATE INDEX patient_keys_wrapping_idx ON patient_keys (organization_id, wrapping_key_id);
