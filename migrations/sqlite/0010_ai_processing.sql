-- AI processing of messages, SQLite flavour of migrations/postgres/0010_ai_processing.sql: a worker
-- claims unprocessed inbound messages with a lease (who holds it, until when). Recording the AI result
-- clears it; an expired lease may be claimed again. SQLite cannot add a table constraint to an existing
-- table, so the pairing check sits on the second column (SQLite column checks may name any column).

ALTER TABLE messages ADD COLUMN ai_claimed_by TEXT
    CHECK (ai_claimed_by IS NULL OR length(ai_claimed_by) BETWEEN 1 AND 200);
ALTER TABLE messages ADD COLUMN ai_claimed_until TEXT
    CHECK ((ai_claimed_by IS NULL) = (ai_claimed_until IS NULL));
