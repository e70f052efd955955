-- Document workflow (issue 6, part 5): registration with a content checksum, OCR results, retention.
--
-- * `documents.checksum_sha256`: SHA-256 of the stored bytes, 64 lower-case hexadecimal digits, written
--   by `scope.documents().register` (which requires it) so that a file fetched back from storage can be
--   checked. Nullable: documents created before this migration (or through the generic `create`) have
--   none. Stored plain: a digest identifies no one by itself (someone who already holds a copy of the
--   file could confirm that the platform stores it, nothing more); the library compares it, never
--   searches by it (hence no index).
-- * Retention needs no new column: `register` sets the existing `retention_until` from the
--   organization's policy (see austa-core/src/repo/documents.rs).
--
-- No new table: documents are already under row-level security (0003), and austa_app's table grants
-- cover the new column.

ALTER TABLE documents ADD COLUMN checksum_sha256 TEXT
    CHECK (checksum_sha256 IS NULL OR checksum_sha256 ~ '^[0-9a-f]{64}$');
