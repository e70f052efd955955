-- AI processing of messages (issue 6, part 2): a worker claims unprocessed inbound messages with a lease
-- (`scope.messages().claim_for_ai`). The claim is bookkeeping, not message content: who holds it and
-- until when. Recording the AI result clears it; an expired lease may be claimed again (a crashed
-- worker). The queue itself is served by messages_ai_pending_idx (organization_id, ai_processed,
-- created_at) from migration 0001.

ALTER TABLE messages ADD COLUMN ai_claimed_by TEXT
    CHECK (ai_claimed_by IS NULL OR length(ai_claimed_by) BETWEEN 1 AND 200);
ALTER TABLE messages ADD COLUMN ai_claimed_until TIMESTAMPTZ;
ALTER TABLE messages ADD CONSTRAINT messages_ai_claim_pair_check
    CHECK ((ai_claimed_by IS NULL) = (ai_claimed_until IS NULL));
