-- A Merkle tree over each organization's audit chain (RFC 9162); see the PostgreSQL migration of the
-- same number for what each part is.

ALTER TABLE audit_heads ADD COLUMN frontier BLOB;

CREATE TABLE audit_tree (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    level           INTEGER NOT NULL CHECK (level > 0 AND level % 4 = 0),
    idx             INTEGER NOT NULL CHECK (idx >= 0),
    hash            BLOB NOT NULL,
    PRIMARY KEY (organization_id, level, idx)
) STRICT;

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'austa: audit_tree is append-only (UPDATE refused)'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'austa: audit_tree is append-only (DELETE refused)'); END;
