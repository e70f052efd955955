//! The baselines' schema: the same tables and indexes for both baselines (and the same shape as the
//! library's for what the workloads touch), with each backend's native types.
//!
//! Field columns are binary in both: the plaintext baseline stores the UTF-8 bytes, the hand-secured
//! one an AES-GCM envelope. Lookup columns (`*_key`) hold the value itself in the plaintext baseline
//! and an HMAC blind index in the hand-secured one. So the only differences between the two are the
//! protections themselves.

use crate::target::Backend;

const DDL: &str = r#"
CREATE TABLE numbers (phone_number_id TEXT PRIMARY KEY, organization_id {uuid} NOT NULL);
CREATE TABLE patients (
    organization_id {uuid} NOT NULL, id {uuid} NOT NULL,
    first_name {bytes} NOT NULL, last_name {bytes} NOT NULL,
    phone {bytes} NOT NULL, phone_key {bytes} NOT NULL,
    whatsapp_id {bytes} NOT NULL, whatsapp_key {bytes} NOT NULL,
    created_at {time} NOT NULL,
    PRIMARY KEY (organization_id, id));
CREATE UNIQUE INDEX patients_phone_key ON patients (organization_id, phone_key);
CREATE UNIQUE INDEX patients_whatsapp_key ON patients (organization_id, whatsapp_key);
CREATE TABLE conversations (
    organization_id {uuid} NOT NULL, id {uuid} NOT NULL, patient_id {uuid} NOT NULL,
    chat_id {bytes} NOT NULL, chat_key {bytes} NOT NULL, status TEXT NOT NULL,
    message_count {int} NOT NULL, started_at {time} NOT NULL, last_message_at {time} NOT NULL,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, patient_id) REFERENCES patients (organization_id, id));
CREATE UNIQUE INDEX conversations_open_chat ON conversations (organization_id, chat_key) WHERE status = 'ACTIVE';
CREATE TABLE messages (
    organization_id {uuid} NOT NULL, id {uuid} NOT NULL, conversation_id {uuid} NOT NULL,
    patient_id {uuid} NOT NULL, message_key {bytes} NOT NULL, direction TEXT NOT NULL,
    content {bytes}, sent_at {time} NOT NULL,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, conversation_id) REFERENCES conversations (organization_id, id));
CREATE UNIQUE INDEX messages_message_key ON messages (organization_id, message_key);
CREATE INDEX messages_history ON messages (organization_id, conversation_id, sent_at DESC, id DESC);
CREATE TABLE health_data (
    organization_id {uuid} NOT NULL, id {uuid} NOT NULL, patient_id {uuid} NOT NULL,
    data_type TEXT NOT NULL, category TEXT NOT NULL, vital_signs {bytes}, created_at {time} NOT NULL,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, patient_id) REFERENCES patients (organization_id, id));
CREATE INDEX health_data_patient ON health_data (organization_id, patient_id);
CREATE TABLE audit_events (
    organization_id {uuid} NOT NULL, seq {int} NOT NULL, id {uuid} NOT NULL, action TEXT NOT NULL,
    entity TEXT NOT NULL, record_ids TEXT NOT NULL, occurred_at {int} NOT NULL,
    prev_mac {bytes} NOT NULL, mac {bytes} NOT NULL,
    PRIMARY KEY (organization_id, seq));
CREATE TABLE audit_heads (organization_id {uuid} PRIMARY KEY, seq {int} NOT NULL, mac {bytes} NOT NULL);
"#;

/// The DDL for `backend`.
pub fn ddl(backend: Backend) -> String {
    let (uuid, bytes, time, int) = match backend {
        Backend::Sqlite => ("BLOB", "BLOB", "TEXT", "INTEGER"),
        Backend::Postgres => ("UUID", "BYTEA", "TIMESTAMPTZ", "BIGINT"),
    };
    DDL.replace("{uuid}", uuid).replace("{bytes}", bytes).replace("{time}", time).replace("{int}", int)
}
