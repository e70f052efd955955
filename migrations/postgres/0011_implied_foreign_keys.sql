-- Foreign keys that another foreign key of the same row already implies, dropped because each costs
-- an index probe of its parent (and a row lock on it) per inserted row, on the hottest inserts
-- (messages, health data), for nothing.
--
-- A child row's `organization_id -> organizations(id)` is implied when the row also references a
-- parent by `(organization_id, parent_id)` with every column NOT NULL: that parent row exists in the
-- same organization, and the parent's own foreign keys lead to the organization (patients, providers,
-- missions and tasy_integrations keep theirs: they are the roots). ON DELETE RESTRICT still holds:
-- an organization with a patient cannot be deleted, and every dropped key's table hangs off a root.
--
-- A message's `(organization_id, patient_id) -> patients` is implied by its
-- `(organization_id, conversation_id, patient_id) -> conversations (organization_id, id, patient_id)`:
-- the conversation belongs to that patient, and conversations reference patients.
--
-- `validate` (the foreign-key check of austa-core's ops) reads the catalog, so it checks what is left.
-- SQLite keeps its keys: dropping one there rebuilds the table, and its checks are cheaper.

ALTER TABLE authorization_attachments DROP CONSTRAINT authorization_attachments_organization_id_fkey;
ALTER TABLE authorization_transitions DROP CONSTRAINT authorization_transitions_organization_id_fkey;
ALTER TABLE authorizations DROP CONSTRAINT authorizations_organization_id_fkey;
ALTER TABLE conversations DROP CONSTRAINT conversations_organization_id_fkey;
ALTER TABLE documents DROP CONSTRAINT documents_organization_id_fkey;
ALTER TABLE health_data DROP CONSTRAINT health_data_organization_id_fkey;
ALTER TABLE health_points DROP CONSTRAINT health_points_organization_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_organization_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_organization_id_patient_id_fkey;
ALTER TABLE mission_prerequisites DROP CONSTRAINT mission_prerequisites_organization_id_fkey;
ALTER TABLE onboarding_progress DROP CONSTRAINT onboarding_progress_organization_id_fkey;
ALTER TABLE point_transactions DROP CONSTRAINT point_transactions_organization_id_fkey;
ALTER TABLE tasy_sync_logs DROP CONSTRAINT tasy_sync_logs_organization_id_fkey;
