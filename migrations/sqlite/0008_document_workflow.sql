-- Document workflow, SQLite flavour of migrations/postgres/0008_document_workflow.sql (see there for
-- the reasons): the SHA-256 of a document's stored bytes, 64 lower-case hexadecimal digits.

ALTER TABLE documents ADD COLUMN checksum_sha256 TEXT
    CHECK (checksum_sha256 IS NULL OR (length(checksum_sha256) = 64 AND checksum_sha256 NOT GLOB '*[^0-9a-f]*'));
