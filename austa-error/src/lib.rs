//! # austa-error
//!
//! One error type for the whole library, shared by every layer (SQL, crypto, models, domain).
//!
//! Every variant has a stable machine code ([`Error::code`]) that the Python and Node bindings surface
//! unchanged, and, where there is one, the offending field ([`Error::field`]). Messages never contain the
//! value that caused the error: a CPF that fails its check digits is reported as "cpf: invalid check
//! digits", not echoed back, so that errors can be logged freely.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a cryptographic operation failed. Deliberately coarse: the distinction between "wrong key" and
/// "tampered ciphertext" is not observable (AES-GCM authentication fails the same way for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoErrorKind {
    /// The envelope is shorter than its header or has an unknown format version.
    MalformedEnvelope,
    /// The envelope names a key that does not exist in this organization.
    UnknownKey,
    /// Authentication failed: the ciphertext was modified, or moved to another row, column or tenant.
    AuthenticationFailed,
    /// Key material has the wrong length or encoding.
    InvalidKey,
    /// Wrapping or unwrapping a data key with the master key failed.
    KeyUnwrap,
    /// A decrypted value did not have the expected shape (e.g. invalid UTF-8 or JSON).
    InvalidPlaintext,
    /// The master key is not the one the key store was created with (key check value mismatch).
    WrongMasterKey,
}

impl fmt::Display for CryptoErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MalformedEnvelope => "malformed ciphertext envelope",
            Self::UnknownKey => "ciphertext names an unknown key",
            Self::AuthenticationFailed => "ciphertext failed authentication (tampered or moved)",
            Self::InvalidKey => "invalid key material",
            Self::KeyUnwrap => "data key could not be unwrapped with the master key",
            Self::InvalidPlaintext => "decrypted value has an unexpected shape",
            Self::WrongMasterKey => "wrong master key",
        })
    }
}

/// The library's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row does not exist in the caller's organization (or is soft-deleted). Rows of other
    /// organizations are reported exactly like missing ones.
    #[error("{entity} not found")]
    NotFound {
        /// Entity name, e.g. `patient`.
        entity: &'static str,
    },
    /// Rows of a batch (`create_many`) failed validation or permission checks; nothing of the batch
    /// was written. Each entry names the row (0-based position in the input) and its error.
    #[error("{} invalid row(s) in the batch; first: row {}: {}", .0.len(), .0.first().map(|e| e.row).unwrap_or(0), .0.first().map(|e| e.error.to_string()).unwrap_or_default())]
    Batch(Vec<RowError>),
    /// Input failed validation; nothing was written.
    #[error("invalid {field}: {reason}")]
    Validation {
        /// The offending field, e.g. `cpf`.
        field: String,
        /// What is wrong, never the value itself.
        reason: String,
    },
    /// A uniqueness rule of the caller's organization was violated, or the row's current state does
    /// not allow the change (e.g. `status` for a transition the state machine refuses); nothing was
    /// written.
    #[error("conflict on {field}: already in use in this organization, or not allowed in the row's current state")]
    Conflict {
        /// The field whose uniqueness was violated.
        field: String,
    },
    /// The scope's role may not perform the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Encryption, decryption or key handling failed.
    #[error("crypto error in {context}: {kind}")]
    Crypto {
        /// What failed.
        kind: CryptoErrorKind,
        /// Where: e.g. `patients.cpf` or `organization key`.
        context: String,
    },
    /// The data was erased (crypto-shredding): its key no longer exists.
    #[error("erased: the data's key was destroyed")]
    Erased,
    /// An operation refused to run because it would be unsafe here (resetting a database that does not
    /// look like a development one, restoring into a non-empty database); nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
    /// Configuration is missing or wrong (database URL, master key).
    #[error("configuration error: {0}")]
    Config(String),
    /// The connection to the database is not secure enough, or its TLS failed: a URL that asks for
    /// less than verified TLS to another machine (refused before connecting), a server without TLS,
    /// a certificate that does not chain to the trusted CA or does not name the host (nothing but the
    /// handshake was sent), an unreadable CA file, or a TLS error later in a session.
    #[error("transport security: {0}")]
    Transport(String),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A database error not covered by a more specific variant.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database holds a value the library cannot interpret (e.g. an unknown enum value).
    #[error("corrupt data in {0}")]
    CorruptData(String),
    /// Writing output (an export) failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Stable machine-readable code, identical in Rust, Python (`exc.code`) and Node (`err.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Validation { .. } => "validation",
            Self::Batch(_) => "invalid_batch",
            Self::Conflict { .. } => "conflict",
            Self::PermissionDenied(_) => "permission_denied",
            Self::Crypto { .. } => "crypto",
            Self::Erased => "erased",
            Self::Refused(_) => "refused",
            Self::Config(_) => "config",
            Self::Transport(_) => "transport",
            Self::Migration(_) => "migration",
            Self::Database(_) => "database",
            Self::CorruptData(_) => "corrupt_data",
            Self::Io(_) => "io",
        }
    }

    /// The offending field, for validation and conflict errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } | Self::Conflict { field } => Some(field),
            _ => None,
        }
    }

    /// A validation error on `field` (its reason never quotes the value).
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), reason: reason.into() }
    }

    /// A crypto error of `kind` at `context` (a place, never a value).
    pub fn crypto(kind: CryptoErrorKind, context: impl Into<String>) -> Self {
        Self::Crypto { kind, context: context.into() }
    }

    /// `entity` not found in the caller's organization.
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }
}

/// One failed row of a batch: its position in the input and why it failed.
#[derive(Debug)]
pub struct RowError {
    /// 0-based position of the row in the batch's input.
    pub row: usize,
    /// What is wrong with it (a `validation` or `permission_denied` error, naming the field).
    pub error: Error,
}

impl From<sqlx::Error> for Error {
    /// Unique violations become [`Error::Conflict`] naming the field (taken from the index name, never
    /// from the database's detail message, which on PostgreSQL would quote the conflicting value).
    /// A failed TLS handshake becomes [`Error::Transport`].
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Tls(tls) => return Error::Transport(format!("TLS to the database failed: {tls}")),
            // A handshake that fails (an unknown CA, a certificate for another name) surfaces as
            // the I/O error of the TLS stream, carrying rustls's error.
            sqlx::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
                return Error::Transport(format!("TLS to the database failed: {io}"));
            }
            _ => {}
        }
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return Error::Conflict { field: conflict_field(db.constraint().unwrap_or(""), db.message()) };
            }
            if db.is_foreign_key_violation() {
                // Same answer whether the referenced row is missing or belongs to another
                // organization: composite keys make the two indistinguishable.
                return Error::Validation {
                    field: reference_field(db.constraint().unwrap_or("")),
                    reason: "refers to a row that does not exist in this organization".into(),
                };
            }
        }
        Error::Database(err)
    }
}

/// Maps a PostgreSQL foreign-key constraint name (`table_column_fkey`) to the column; SQLite does not
/// name the constraint.
fn reference_field(constraint: &str) -> String {
    const COLUMNS: [&str; 14] = [
        "verified_by_provider_id",
        "requested_by_provider_id",
        "reviewed_by_provider_id",
        "approved_by_provider_id",
        "sender_provider_id",
        "prerequisite_mission_id",
        "source_mission_id",
        "source_conversation_id",
        "health_points_id",
        "conversation_id",
        "health_data_id",
        "integration_id",
        "authorization_id",
        "document_id",
    ];
    const SHORT: [&str; 4] = ["patient_id", "provider_id", "mission_id", "organization_id"];
    COLUMNS
        .iter()
        .chain(SHORT.iter())
        .find(|c| constraint.contains(*c))
        .map(|c| c.to_string())
        .unwrap_or_else(|| "reference".to_string())
}

/// Maps a unique index (PostgreSQL names it; SQLite lists `table.column, ...` in its message) to the
/// user-facing field name.
fn conflict_field(constraint: &str, message: &str) -> String {
    let source = if constraint.is_empty() { message } else { constraint };
    for (needle, field) in [
        ("phone_bidx", "phone"),
        ("cpf_bidx", "cpf"),
        ("email_bidx", "email"),
        ("whatsapp_id_bidx", "whatsapp_id"),
        ("whatsapp_chat_id_bidx", "whatsapp_chat_id"),
        ("chat", "whatsapp_chat_id"),
        ("whatsapp_message_id_bidx", "whatsapp_message_id"),
        ("whatsapp_message_id", "whatsapp_message_id"),
        ("license", "license"),
        ("tax_id", "tax_id"),
        ("patient_mission", "mission_id"),
        ("mission_id", "mission_id"),
        ("health_points_patient", "patient_id"),
        ("health_points.patient_id", "patient_id"),
        ("pkey", "id"),
        (".id", "id"),
    ] {
        if source.contains(needle) {
            return field.to_string();
        }
    }
    "unique key".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::not_found("patient").code(), "not_found");
        let v = Error::validation("cpf", "invalid check digits");
        assert_eq!(v.code(), "validation");
        assert_eq!(v.field(), Some("cpf"));
        assert_eq!(v.to_string(), "invalid cpf: invalid check digits");
    }

    #[test]
    fn conflict_field_from_index_names() {
        assert_eq!(conflict_field("patients_phone_bidx_key", ""), "phone");
        assert_eq!(conflict_field("", "UNIQUE constraint failed: patients.organization_id, patients.cpf_bidx"), "cpf");
    }
}
