-- Austa key store, SQLite flavour. Wrapped keys only: no plaintext key material ever.
--
-- The key store lives in the data database by default, or in a database of its own
-- (AUSTA_KEYSTORE_URL) so that a data backup holds no key and crypto-shredding reaches backups too.
-- It has no foreign keys into the data tables for that reason.

-- One row: the key check value. A blob wrapped by the master key at creation; unwrapping it at open
-- time tells a wrong master key apart before any data is read.
CREATE TABLE keystore_meta (
    id          INT NOT NULL PRIMARY KEY CHECK (id = 1), -- INT, not INTEGER: a real key, not a rowid alias
    key_check   BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    rotated_at  TEXT
) STRICT;

-- Organization keys, wrapped by the master key. The newest ACTIVE version encrypts; every version
-- that is not DESTROYED decrypts.
CREATE TABLE organization_keys (
    organization_id TEXT NOT NULL,
    id              TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    wrapped_key     BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ACTIVE','RETIRED')),
    created_at      TEXT NOT NULL,
    retired_at      TEXT,
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE UNIQUE INDEX organization_keys_version_key ON organization_keys (organization_id, version);

-- Patient keys, wrapped by an organization key version. Destroying a patient's keys (NULL wrapped_key,
-- state DESTROYED) erases every ciphertext of that patient everywhere, backups included.
CREATE TABLE patient_keys (
    organization_id TEXT NOT NULL,
    id              TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    wrapped_key     BLOB,
    wrapping_key_id TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ACTIVE','RETIRED','DESTROYED')),
    created_at      TEXT NOT NULL,
    retired_at      TEXT,
    destroyed_at    TEXT,
    destroyed_by    TEXT,
    PRIMARY KEY (organization_id, id),
    CHECK ((state = 'DESTROYED') = (wrapped_key IS NULL)),
    CHECK ((state = 'DESTROYED') = (destroyed_at IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX patient_keys_version_key ON patient_keys (organization_id, patient_id, version);
CREATE INDEX patient_keys_wrapping_idx ON patient_keys (organization_id, wrapping_key_id);
