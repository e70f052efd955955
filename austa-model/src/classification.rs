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
//! and the live schema of both backends against it, so the three cannot drift apart. Key rotation and
//! crypto-shredding are driven by it too: [`table_owner`] says whose key encrypts a table's columns.

use austa_crypto::BlindIndexKind;

/// Class of an encrypted column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Encrypted and blind-indexed (lookups and uniqueness by organization).
    Identifier,
    /// Encrypted only.
    Sensitive,
}

/// Whose key encrypts a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// The organization's key: organization-level secrets and staff data.
    Organization,
    /// The key of the patient the row belongs to (found in the named column), so that destroying that
    /// one key erases the patient everywhere.
    Patient {
        /// The column holding the patient's id (`id` on `patients`, `patient_id` elsewhere).
        column: &'static str,
    },
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

impl EncryptedColumn {
    /// Whose key encrypts this column.
    pub const fn owner(&self) -> KeyOwner {
        table_owner(self.table)
    }

    /// The blind index kind of an identifier column.
    pub fn blind_index(&self) -> Option<BlindIndexKind> {
        match (self.class, self.column) {
            (Class::Sensitive, _) => None,
            (_, "phone") => Some(BlindIndexKind::Phone),
            (_, "cpf") => Some(BlindIndexKind::Cpf),
            (_, "email") => Some(BlindIndexKind::Email),
            (_, "whatsapp_id") => Some(BlindIndexKind::WhatsappId),
            (_, "whatsapp_chat_id") => Some(BlindIndexKind::WhatsappChatId),
            (_, "whatsapp_message_id") => Some(BlindIndexKind::WhatsappMessageId),
            _ => None,
        }
    }
}

/// Whose key encrypts the sensitive columns of `table`.
pub const fn table_owner(table: &str) -> KeyOwner {
    match table.as_bytes() {
        b"patients" => KeyOwner::Patient { column: "id" },
        b"conversations"
        | b"messages"
        | b"health_data"
        | b"documents"
        | b"authorizations"
        | b"authorization_transitions" => KeyOwner::Patient { column: "patient_id" },
        _ => KeyOwner::Organization,
    }
}

/// The encrypted columns of one table.
pub fn columns_of(table: &str) -> impl Iterator<Item = &'static EncryptedColumn> + '_ {
    ENCRYPTED_COLUMNS.iter().filter(move |c| c.table == table)
}

/// The tables that have encrypted columns, in schema order.
pub fn encrypted_tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = Vec::new();
    for c in ENCRYPTED_COLUMNS {
        if !tables.contains(&c.table) {
            tables.push(c.table);
        }
    }
    tables
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
    id("messages", "whatsapp_message_id", "WhatsApp message id (its wamid embeds the sender's phone)"),
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
    s("authorization_transitions", "reason", "denial or cancellation reason"),
    s("tasy_integrations", "api_key", "Tasy API key (organization key)"),
    s("audit_logs", "reason", "an emergency grant's or a shredding's written reason (organization key)"),
];

/// The classification as the Markdown table the README carries.
pub fn markdown_table() -> String {
    let mut out = String::from("| table | column | class | key | holds |\n|---|---|---|---|---|\n");
    for c in ENCRYPTED_COLUMNS {
        let class = match c.class {
            Class::Identifier => format!("identifier (blind index `{}_bidx`)", c.column),
            Class::Sensitive => "sensitive".to_string(),
        };
        let key = match c.owner() {
            KeyOwner::Organization => "organization",
            KeyOwner::Patient { .. } => "patient",
        };
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", c.table, c.column, class, key, c.holds));
    }
    out
}
