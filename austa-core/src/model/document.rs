//! Documents (the reference's `Document`): metadata of a file a patient or provider uploaded (lab
//! results, prescriptions, ID documents), its OCR output and what was extracted from it.
//!
//! Design decisions:
//! * File names, the storage path and the URLs are encrypted: they routinely carry patient names
//!   (`Exame de Sangue - Carlos Mendes.pdf`). So are the OCR text, the extracted data and the health
//!   keywords. The MIME type, size, classification and lifecycle fields stay plain.
//! * The original stored the file's encryption key in the row (`encryptionKey`). Here the row holds
//!   only `storage_key_ref`, a short reference to a wrapped storage key kept elsewhere (a KMS alias, a
//!   vault path, a key id), and validation rejects anything that looks like key material.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::enums::{AccessLevel, DocumentCategory, DocumentType, SensitivityLevel, StorageProvider};
use crate::crypto::Sensitive;

/// A stored document of a patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// The patient the document belongs to.
    pub patient_id: Uuid,
    /// Stored file name (encrypted).
    pub filename: Sensitive<String>,
    /// File name as uploaded (encrypted).
    pub original_name: Sensitive<String>,
    /// MIME type, `type/subtype` in lower case.
    pub mime_type: String,
    /// File size in bytes.
    pub size_bytes: i64,
    /// Where the bytes are stored.
    pub storage_provider: StorageProvider,
    /// Path or object key in the storage (encrypted).
    pub storage_path: Sensitive<String>,
    /// Download URL (encrypted).
    pub download_url: Option<Sensitive<String>>,
    /// Thumbnail URL (encrypted).
    pub thumbnail_url: Option<Sensitive<String>>,
    /// Kind of document (stored in column `type`).
    #[serde(rename = "type")]
    pub document_type: DocumentType,
    /// Area the document belongs to.
    pub category: DocumentCategory,
    /// Free labels.
    pub tags: Vec<String>,
    /// Whether OCR ran on the document.
    pub has_ocr: bool,
    /// Text extracted by OCR (encrypted).
    pub ocr_text: Option<Sensitive<String>>,
    /// OCR confidence, 0 to 1.
    pub ocr_confidence: Option<f64>,
    /// When processing finished.
    pub processed_at: Option<DateTime<Utc>>,
    /// Structured health data extracted from the document (encrypted JSON).
    pub extracted_data: Option<Sensitive<serde_json::Value>>,
    /// Health terms detected in the document (encrypted).
    pub health_keywords: Option<Sensitive<Vec<String>>>,
    /// Whether the stored bytes are encrypted at the storage level.
    pub is_encrypted: bool,
    /// Reference to the wrapped storage key (never the key itself); only with `is_encrypted`.
    pub storage_key_ref: Option<String>,
    /// Who may see it.
    pub access_level: AccessLevel,
    /// Data classification.
    pub sensitivity_level: SensitivityLevel,
    /// Whether the document is current.
    pub is_active: bool,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// Keep at least until then.
    pub retention_until: Option<DateTime<Utc>>,
    /// Upload time.
    pub uploaded_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.documents().create(...)`. Start from [`NewDocument::new`].
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// The patient (must exist in the scope's organization).
    pub patient_id: Uuid,
    /// Stored file name, 1 to 255 characters.
    pub filename: Sensitive<String>,
    /// File name as uploaded, 1 to 255 characters.
    pub original_name: Sensitive<String>,
    /// MIME type `type/subtype` (normalized to lower case; no parameters).
    pub mime_type: String,
    /// Size in bytes, not negative.
    pub size_bytes: i64,
    /// Storage; default `LOCAL`.
    pub storage_provider: Option<StorageProvider>,
    /// Path or object key, 1 to 1024 characters.
    pub storage_path: Sensitive<String>,
    /// Download URL, up to 2048 characters.
    pub download_url: Option<Sensitive<String>>,
    /// Thumbnail URL, up to 2048 characters.
    pub thumbnail_url: Option<Sensitive<String>>,
    /// Kind of document.
    pub document_type: DocumentType,
    /// Area.
    pub category: DocumentCategory,
    /// Labels (each 1 to 100 characters, at most 100).
    pub tags: Vec<String>,
    /// Whether OCR ran; required for `ocr_text` and `ocr_confidence`.
    pub has_ocr: bool,
    /// OCR text.
    pub ocr_text: Option<Sensitive<String>>,
    /// OCR confidence, 0 to 1.
    pub ocr_confidence: Option<f64>,
    /// Processing end.
    pub processed_at: Option<DateTime<Utc>>,
    /// Extracted structured data.
    pub extracted_data: Option<Sensitive<serde_json::Value>>,
    /// Detected health terms (each 1 to 100 characters, at most 100).
    pub health_keywords: Option<Sensitive<Vec<String>>>,
    /// Whether the stored bytes are encrypted; required for `storage_key_ref`.
    pub is_encrypted: bool,
    /// Key reference (1 to 200 characters; a UUID or a structured reference such as
    /// `kms:alias/austa-docs`); key material is rejected.
    pub storage_key_ref: Option<String>,
    /// Access; default `PATIENT_ONLY`.
    pub access_level: Option<AccessLevel>,
    /// Classification; default `NORMAL`.
    pub sensitivity_level: Option<SensitivityLevel>,
    /// Archive time; not before the upload.
    pub archived_at: Option<DateTime<Utc>>,
    /// Retention end; not before the upload.
    pub retention_until: Option<DateTime<Utc>>,
    /// Upload time; default now.
    pub uploaded_at: Option<DateTime<Utc>>,
}

impl NewDocument {
    /// A document with the required fields, every other field at its default.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        patient_id: Uuid,
        filename: impl Into<Sensitive<String>>,
        original_name: impl Into<Sensitive<String>>,
        mime_type: impl Into<String>,
        size_bytes: i64,
        storage_path: impl Into<Sensitive<String>>,
        document_type: DocumentType,
        category: DocumentCategory,
    ) -> Self {
        Self {
            patient_id,
            filename: filename.into(),
            original_name: original_name.into(),
            mime_type: mime_type.into(),
            size_bytes,
            storage_provider: None,
            storage_path: storage_path.into(),
            download_url: None,
            thumbnail_url: None,
            document_type,
            category,
            tags: Vec::new(),
            has_ocr: false,
            ocr_text: None,
            ocr_confidence: None,
            processed_at: None,
            extracted_data: None,
            health_keywords: None,
            is_encrypted: false,
            storage_key_ref: None,
            access_level: None,
            sensitivity_level: None,
            archived_at: None,
            retention_until: None,
            uploaded_at: None,
        }
    }
}

/// Input of `scope.documents().update(...)`. The patient and the upload time cannot be changed.
#[derive(Debug, Clone, Default)]
pub struct DocumentPatch {
    /// New stored file name.
    pub filename: Option<Sensitive<String>>,
    /// New original name.
    pub original_name: Option<Sensitive<String>>,
    /// New MIME type.
    pub mime_type: Option<String>,
    /// New size.
    pub size_bytes: Option<i64>,
    /// New storage.
    pub storage_provider: Option<StorageProvider>,
    /// New path.
    pub storage_path: Option<Sensitive<String>>,
    /// New download URL (`Some(None)` clears it).
    pub download_url: Option<Option<Sensitive<String>>>,
    /// New thumbnail URL (`Some(None)` clears it).
    pub thumbnail_url: Option<Option<Sensitive<String>>>,
    /// New kind.
    pub document_type: Option<DocumentType>,
    /// New area.
    pub category: Option<DocumentCategory>,
    /// New labels (replaces the list).
    pub tags: Option<Vec<String>>,
    /// Whether OCR ran.
    pub has_ocr: Option<bool>,
    /// New OCR text (`Some(None)` clears it).
    pub ocr_text: Option<Option<Sensitive<String>>>,
    /// New OCR confidence (`Some(None)` clears it).
    pub ocr_confidence: Option<Option<f64>>,
    /// New processing time (`Some(None)` clears it).
    pub processed_at: Option<Option<DateTime<Utc>>>,
    /// New extracted data (`Some(None)` clears it).
    pub extracted_data: Option<Option<Sensitive<serde_json::Value>>>,
    /// New health keywords (`Some(None)` clears them).
    pub health_keywords: Option<Option<Sensitive<Vec<String>>>>,
    /// Storage-level encryption flag.
    pub is_encrypted: Option<bool>,
    /// New key reference (`Some(None)` clears it).
    pub storage_key_ref: Option<Option<String>>,
    /// New access level.
    pub access_level: Option<AccessLevel>,
    /// New classification.
    pub sensitivity_level: Option<SensitivityLevel>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New archive time (`Some(None)` clears it).
    pub archived_at: Option<Option<DateTime<Utc>>>,
    /// New retention end (`Some(None)` clears it).
    pub retention_until: Option<Option<DateTime<Utc>>>,
}
