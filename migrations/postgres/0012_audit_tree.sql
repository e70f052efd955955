-- A Merkle tree over each organization's audit chain (RFC 9162), for signed checkpoints and
-- inclusion and consistency proofs that need no key to check.
--
-- * audit_heads.frontier: the tree's right edge (the roots of its complete subtrees, largest first,
--   one per set bit of seq), from which the root follows and to which the linker appends. NULL for a
--   chain linked before this migration: the linker builds it from the chain on first use.
-- * audit_tree: the complete subtrees at levels 4, 8, 12, ... (16, 256, 4096 ... leaves), which a
--   proof is assembled from; the levels between are computed from at most 8 stored nodes, the
--   leaves from the chain. Append-only like the chain: a complete subtree never changes.

ALTER TABLE audit_heads ADD COLUMN frontier BYTEA;

CREATE TABLE audit_tree (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    level           BIGINT NOT NULL CHECK (level > 0 AND level % 4 = 0),
    idx             BIGINT NOT NULL CHECK (idx >= 0),
    hash            BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, idx)
);

CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION austa_audit_append_only();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION austa_audit_append_only();

ALTER TABLE audit_tree ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_tree FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_tree
    USING (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid)
    WITH CHECK (organization_id = NULLIF(current_setting('austa.organization_id', true), '')::uuid);
GRANT SELECT, INSERT ON audit_tree TO austa_app;
