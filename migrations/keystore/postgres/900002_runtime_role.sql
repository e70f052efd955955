-- The runtime role `austa_app` (see migrations/postgres/0003_row_level_security.sql) reads and writes
-- wrapped keys; it never deletes them (destroying a patient's key overwrites it). The role is created
-- here too, for a key store kept in a database of its own.
DO $$
BEGIN
    CREATE ROLE austa_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO austa_app;
GRANT SELECT, INSERT, UPDATE ON keystore_meta, organization_keys, patient_keys TO austa_app;
