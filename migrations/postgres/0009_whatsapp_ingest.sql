-- WhatsApp Cloud API webhook ingest (issue 6, part 1).
--
-- * whatsapp_numbers: which organization owns a WhatsApp Business phone number id (Meta's
--   `metadata.phone_number_id`). The webhook learns the organization from this
--   table, before it can bind a transaction to a tenant. The id is Meta's identifier of the hospital's
--   business line, not personal data, so it is plain text (a blind index would need the organization's
--   key, unknown until the lookup succeeds). Under RLS like every table with organization_id: a
--   transaction sees its own organization's numbers, plus the one row whose number it names in the
--   transaction-local setting `austa.whatsapp_phone_number_id` (the webhook lookup, which knows the
--   number and nothing else); with neither set, nothing is visible and numbers cannot be enumerated.
--   Rows are written only for the transaction's own organization.
-- * whatsapp_pending_statuses: delivery statuses (sent, delivered, read, failed) that arrived before
--   the outbound message they name was recorded; applied and deleted when it is. The message id is
--   kept only as its blind index (a wamid embeds the patient's phone); error code and title are Meta's
--   generic error taxonomy.

CREATE TABLE whatsapp_numbers (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    phone_number_id TEXT NOT NULL CHECK (length(phone_number_id) BETWEEN 1 AND 64),
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, phone_number_id)
);
-- Platform-wide uniqueness of a number cannot be a unique index (tenant tables are distributed by
-- organization_id): the library checks it under a lock when registering, and refuses to route a number
-- that two organizations hold.
CREATE INDEX whatsapp_numbers_number_idx ON whatsapp_numbers (phone_number_id);

ALTER TABLE whatsapp_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_numbers FORCE ROW LEVEL SECURITY;
-- Reading: the own organization's numbers, or the one number the webhook routes (named in a
-- transaction-local setting). Writing and deleting: the own organization's numbers only, so a session
-- that sets the routing variable itself still cannot remove another tenant's number.
CREATE POLICY tenant_isolation ON whatsapp_numbers FOR SELECT
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid
           OR phone_number_id = NULLIF(current_setting('austa.whatsapp_phone_number_id', true), ''));
CREATE POLICY tenant_insert ON whatsapp_numbers FOR INSERT
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
CREATE POLICY tenant_delete ON whatsapp_numbers FOR DELETE
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, DELETE ON whatsapp_numbers TO austa_app;

CREATE TABLE whatsapp_pending_statuses (
    organization_id          UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    id                       UUID NOT NULL,
    whatsapp_message_id_bidx BYTEA NOT NULL,
    status                   TEXT NOT NULL CHECK (status IN ('SENT','DELIVERED','READ','FAILED')),
    occurred_at              TIMESTAMPTZ NOT NULL,
    error_code               BIGINT,
    error_title              TEXT,
    received_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX whatsapp_pending_statuses_message_key
    ON whatsapp_pending_statuses (organization_id, whatsapp_message_id_bidx, status);

ALTER TABLE whatsapp_pending_statuses ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_pending_statuses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON whatsapp_pending_statuses
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT, DELETE ON whatsapp_pending_statuses TO austa_app;
