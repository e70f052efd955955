//! The data classification: which columns are encrypted, and which of those have a blind index.
//!
//! Every column of the schema is one of three classes:
//! * **identifier**: encrypted, plus a `<column>_bidx` blind index used for equality lookups and
//!   per-organization uniqueness;
//! * **sensitive**: encrypted, never searchable;
//! * **operational**: plain (ids, enums, timestamps, counters, flags, organization-level content),
//!   because the platform must filter, sort or aggregate on it and it identifies nobody by itself.
//!
//! [`ENCRYPTED_COLUMNS`] lists the first two classes; every other column is operational. The README's
//! classification table is generated from it ([`markdown_table`]), and a test checks both the README
//! and the live schema of both backends against it, so the three cannot drift apart.

/// Class of an encrypted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Encrypted and blind-indexed (lookups and uniqueness by organization).
    Identifier,
    /// Encrypted only.
    Sensitive,
}

/// One encrypted column: table, column, class, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedColumn {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// Identifier or sensitive.
    pub class: Class,
    /// What the column holds, for the README.
    pub holds: &'static str,
}

const fn id(table: &'static str, column: &'static str, holds: &'static str) -> EncryptedColumn {
    EncryptedColumn { table, column, class: Class::Identifier, holds }
}

const fn s(table: &'static str, column: &'static str, holds: &'static str) -> EncryptedColumn {
    EncryptedColumn { table, column, class: Class::Sensitive, holds }
}

/// Every encrypted column of the schema.
pub const ENCRYPTED_COLUMNS: &[EncryptedColumn] = &[
    s("organizations", "settings", "configuration, integration identifiers"),
    s("patients", "first_name", "given name"),
    s("patients", "last_name", "family name"),
    id("patients", "email", "e-mail (lower case)"),
    id("patients", "phone", "WhatsApp phone (E.164)"),
    id("patients", "cpf", "CPF (11 digits)"),
    s("patients", "date_of_birth", "date of birth"),
    s("patients", "gender", "gender"),
    id("patients", "whatsapp_id", "WhatsApp user id"),
    s("patients", "emergency_contact", "name, phone, relationship"),
    id("providers", "email", "professional e-mail"),
    s("providers", "phone", "phone"),
    id("conversations", "whatsapp_chat_id", "WhatsApp chat id (a phone number)"),
    s("conversations", "title", "title (often names a condition)"),
    s("conversations", "summary", "AI summary"),
    s("conversations", "ai_context", "AI conversation context"),
    s("conversations", "health_topics", "conditions discussed"),
    s("conversations", "medications_mentioned", "medications mentioned"),
    s("conversations", "symptoms_reported", "symptoms reported"),
    s("messages", "content", "message text"),
    s("messages", "media_url", "media location"),
    s("messages", "metadata", "WhatsApp metadata (contacts, locations)"),
    s("messages", "ai_intent", "detected intent"),
    s("messages", "ai_entities", "extracted entities"),
    s("messages", "health_keywords", "detected health terms"),
    s("health_data", "conditions", "conditions"),
    s("health_data", "medications", "medications and dosages"),
    s("health_data", "allergies", "allergies"),
    s("health_data", "symptoms", "symptoms"),
    s("health_data", "vital_signs", "vital signs"),
    s("health_data", "lab_results", "laboratory results"),
    s("documents", "filename", "stored file name (carries the patient's name)"),
    s("documents", "original_name", "uploaded file name"),
    s("documents", "storage_path", "storage location"),
    s("documents", "download_url", "download link"),
    s("documents", "thumbnail_url", "thumbnail link"),
    s("documents", "ocr_text", "OCR text"),
    s("documents", "extracted_data", "structured data from the document"),
    s("documents", "health_keywords", "detected health terms"),
    s("authorizations", "procedure_name", "procedure"),
    s("authorizations", "procedure_code", "procedure code (reveals the procedure)"),
    s("authorizations", "description", "description"),
    s("authorizations", "related_conditions", "related conditions"),
    s("authorizations", "justification", "clinical justification"),
    s("authorizations", "clinical_notes", "clinical notes"),
    s("tasy_integrations", "api_key", "Tasy API key (organization key)"),
];

/// The classification as the Markdown table the README carries.
pub fn markdown_table() -> String {
    let mut out = String::from("| table | column | class | holds |\n|---|---|---|---|\n");
    for c in ENCRYPTED_COLUMNS {
        let class = match c.class {
            Class::Identifier => format!("identifier (blind index `{}_bidx`)", c.column),
            Class::Sensitive => "sensitive".to_string(),
        };
        out.push_str(&format!("| {} | {} | {} | {} |\n", c.table, c.column, class, c.holds));
    }
    out
}
