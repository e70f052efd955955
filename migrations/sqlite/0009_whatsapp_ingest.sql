-- WhatsApp Cloud API webhook ingest (issue 6, part 1). Same shape as the PostgreSQL migration (see its
-- comments); SQLite has no row-level security.

CREATE TABLE whatsapp_numbers (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    phone_number_id TEXT NOT NULL CHECK (length(phone_number_id) BETWEEN 1 AND 64),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, phone_number_id)
) STRICT;
-- Platform-wide uniqueness of a number cannot be a unique index (tenant tables are distributed by
-- organization_id): the library checks it under a lock when registering, and refuses to route a number
-- that two organizations hold.
CREATE INDEX whatsapp_numbers_number_idx ON whatsapp_numbers (phone_number_id);

CREATE TABLE whatsapp_pending_statuses (
    organization_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id                       TEXT NOT NULL,
    whatsapp_message_id_bidx BLOB NOT NULL,
    status                   TEXT NOT NULL CHECK (status IN ('SENT','DELIVERED','READ','FAILED')),
    occurred_at              TEXT NOT NULL,
    error_code               INTEGER,
    error_title              TEXT,
    received_at              TEXT NOT NULL,
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE UNIQUE INDEX whatsapp_pending_statuses_message_key
    ON whatsapp_pending_statuses (organization_id, whatsapp_message_id_bidx, status);
