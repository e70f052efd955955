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
//! * `checksum_sha256` is the SHA-256 of the stored bytes (64 lower-case hex digits), required by
//!   `scope.documents().register` and plain (a digest identifies no one by itself).
//! * Retention follows the organization's policy ([`RetentionPolicy`]), read from its
//!   `data_retention_years` and the `retention` key of its (encrypted) settings.

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{AccessLevel, DocumentCategory, DocumentType, SensitivityLevel, StorageProvider};
use crate::validate;
use austa_crypto::Sensitive;
use austa_error::{Error, Result};

/// A stored document of a patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "documents", soft_delete, owner = "patient_id")]
pub struct Document {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
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
    #[record(column = "type")]
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
    /// SHA-256 of the stored bytes, 64 lower-case hex digits (`None` for documents created without
    /// `register`, e.g. before migration 0008).
    pub checksum_sha256: Option<String>,
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
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether OCR ran; required for `ocr_text` and `ocr_confidence`.
    #[serde(default)]
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
    #[serde(default)]
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
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub download_url: Option<Option<Sensitive<String>>>,
    /// New thumbnail URL (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
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
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ocr_text: Option<Option<Sensitive<String>>>,
    /// New OCR confidence (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub ocr_confidence: Option<Option<f64>>,
    /// New processing time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub processed_at: Option<Option<DateTime<Utc>>>,
    /// New extracted data (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub extracted_data: Option<Option<Sensitive<serde_json::Value>>>,
    /// New health keywords (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub health_keywords: Option<Option<Sensitive<Vec<String>>>>,
    /// Storage-level encryption flag.
    pub is_encrypted: Option<bool>,
    /// New key reference (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub storage_key_ref: Option<Option<String>>,
    /// New SHA-256 of the stored bytes (after replacing them); it cannot be cleared.
    pub checksum_sha256: Option<String>,
    /// New access level.
    pub access_level: Option<AccessLevel>,
    /// New classification.
    pub sensitivity_level: Option<SensitivityLevel>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New archive time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub archived_at: Option<Option<DateTime<Utc>>>,
    /// New retention end: it may be extended (a legal hold), never shortened nor cleared once set.
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub retention_until: Option<Option<DateTime<Utc>>>,
}

/// What an OCR run produced, for `scope.documents().record_ocr(...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcrResult {
    /// The recognized text (trimmed; up to 1,000,000 characters). A blank page's empty or
    /// whitespace-only text is recorded as no text, with `has_ocr` still set.
    pub text: Sensitive<String>,
    /// The engine's confidence, 0 to 1.
    pub confidence: f64,
    /// Structured data extracted from the text (JSON, not `null`, up to 1 MiB serialized).
    pub extracted_data: Option<Sensitive<serde_json::Value>>,
}

/// An organization's document retention policy: years to keep each [`DocumentType`], counted from the
/// document's registration (`created_at`).
///
/// Read from the organization: the per-type years of its settings' `retention` object, keyed by
/// document type name, e.g. `{"retention": {"LAB_RESULT": 5, "ID_DOCUMENT": 2}}`, falling back to its
/// `data_retention_years` (default 20) for the types not listed. Each value is a whole number of years
/// from 1 to 100 (the bounds of `data_retention_years`); an unknown type name or any other value makes
/// the whole policy invalid (a `validation` error on `settings.retention.<KEY>`), rather than being
/// silently ignored.
///
/// **Legal minimum.** Medical records (`MEDICAL_RECORD`) and discharge summaries
/// (`DISCHARGE_SUMMARY`) are parts of the prontuário, which Lei 13.787/2018 (art. 6) requires to be
/// kept at least 20 years: a per-type value below 20 for them is refused, and the fallback for them
/// is `max(data_retention_years, 20)`. Other types (lab results, imaging, ID documents) follow the
/// organization's choice.
///
/// **Start.** Retention counts from the document's registration in the platform, not from a clinical
/// date (the schema has none): a document is always registered on or after the date of its content,
/// so this never ends earlier than counting from the clinical date would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    default_years: u32,
    per_type: Vec<(DocumentType, u32)>,
}

impl RetentionPolicy {
    /// The key of the organization settings holding the per-type years.
    pub const SETTINGS_KEY: &'static str = "retention";
    /// Minimum years for the document types that are part of the medical record (Lei 13.787/2018).
    pub const MEDICAL_RECORD_MIN_YEARS: u32 = 20;
    /// Largest accepted number of years (the bound of `data_retention_years`).
    pub const MAX_YEARS: u32 = 100;

    /// The legal minimum of `document_type`, if the law sets one.
    pub fn legal_minimum(document_type: DocumentType) -> Option<u32> {
        matches!(document_type, DocumentType::MedicalRecord | DocumentType::DischargeSummary)
            .then_some(Self::MEDICAL_RECORD_MIN_YEARS)
    }

    /// Parses an organization's policy from its `data_retention_years` and its settings (`None`, or an
    /// object without `retention`, means the default for every type). Fails with `validation` naming
    /// the offending setting; use it to check settings before saving them.
    pub fn from_settings(data_retention_years: i64, settings: Option<&serde_json::Value>) -> Result<Self> {
        let default_years = u32::try_from(data_retention_years)
            .ok()
            .filter(|y| (1..=Self::MAX_YEARS).contains(y))
            .ok_or_else(|| Error::validation("data_retention_years", "must be between 1 and 100"))?;
        let mut per_type = Vec::new();
        let Some(retention) = settings.and_then(|s| s.get(Self::SETTINGS_KEY)) else {
            return Ok(Self { default_years, per_type });
        };
        let map = retention.as_object().ok_or_else(|| {
            Error::validation("settings.retention", "must be an object of document type names to years")
        })?;
        for (key, value) in map {
            let field = || format!("settings.retention.{}", printable(key));
            let document_type: DocumentType =
                key.parse().map_err(|_| Error::validation(field(), "is not a document type"))?;
            let years = value
                .as_u64()
                .and_then(|y| u32::try_from(y).ok())
                .filter(|y| (1..=Self::MAX_YEARS).contains(y))
                .ok_or_else(|| Error::validation(field(), "must be a whole number of years from 1 to 100"))?;
            if let Some(min) = Self::legal_minimum(document_type) {
                if years < min {
                    return Err(Error::validation(
                        field(),
                        format!("must be at least {min} years: part of the medical record (Lei 13.787/2018)"),
                    ));
                }
            }
            per_type.push((document_type, years));
        }
        Ok(Self { default_years, per_type })
    }

    /// Years to keep a document of `document_type`.
    pub fn years_for(&self, document_type: DocumentType) -> u32 {
        match self.per_type.iter().find(|(t, _)| *t == document_type) {
            Some((_, years)) => *years,
            None => self.default_years.max(Self::legal_minimum(document_type).unwrap_or(0)),
        }
    }

    /// The end of retention of a document of `document_type` registered at `registered_at`.
    pub fn retention_until(&self, document_type: DocumentType, registered_at: DateTime<Utc>) -> Result<DateTime<Utc>> {
        registered_at
            .checked_add_months(Months::new(self.years_for(document_type) * 12))
            .ok_or_else(|| Error::validation("retention_until", "is beyond the supported dates"))
    }
}

/// A settings key as it may appear in an error: short, printable ASCII (keys are configuration, yet a
/// typo could be anything).
fn printable(key: &str) -> String {
    let cleaned: String = key.chars().filter(|c| c.is_ascii_graphic()).take(40).collect();
    if cleaned.is_empty() {
        "?".into()
    } else {
        cleaned
    }
}

impl Document {
    /// Checks the cross-field rules on the final state (after defaults on create, after a patch on
    /// update).
    pub fn check(&self) -> Result<()> {
        if !self.has_ocr && (self.ocr_text.is_some() || self.ocr_confidence.is_some()) {
            return Err(Error::validation("has_ocr", "must be true when OCR text or confidence is present"));
        }
        if !self.is_encrypted && self.storage_key_ref.is_some() {
            return Err(Error::validation("storage_key_ref", "requires is_encrypted"));
        }
        validate::ordered("retention_until", Some(&self.uploaded_at), self.retention_until.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_type_years_default_and_legal_minimum() {
        let settings = json!({"retention": {"LAB_RESULT": 5, "ID_DOCUMENT": 2, "MEDICAL_RECORD": 25}, "other": 1});
        let p = RetentionPolicy::from_settings(10, Some(&settings)).unwrap();
        assert_eq!(p.years_for(DocumentType::LabResult), 5);
        assert_eq!(p.years_for(DocumentType::IdDocument), 2);
        assert_eq!(p.years_for(DocumentType::MedicalRecord), 25);
        assert_eq!(p.years_for(DocumentType::Prescription), 10);
        assert_eq!(p.years_for(DocumentType::DischargeSummary), 20, "the legal floor over a shorter default");
        let none = RetentionPolicy::from_settings(20, None).unwrap();
        assert!(DocumentType::ALL.iter().all(|t| none.years_for(*t) == 20));
        let t = "2024-02-29T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(p.retention_until(DocumentType::LabResult, t).unwrap().to_rfc3339(), "2029-02-28T10:00:00+00:00");
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        for (settings, field) in [
            (json!({"retention": {"LAB_RESULT": 0}}), "settings.retention.LAB_RESULT"),
            (json!({"retention": {"LAB_RESULT": 101}}), "settings.retention.LAB_RESULT"),
            (json!({"retention": {"LAB_RESULT": 2.5}}), "settings.retention.LAB_RESULT"),
            (json!({"retention": {"LAB_RESULT": "5"}}), "settings.retention.LAB_RESULT"),
            (json!({"retention": {"LAB_RESULT": -3}}), "settings.retention.LAB_RESULT"),
            (json!({"retention": {"LAB_RESULTS": 5}}), "settings.retention.LAB_RESULTS"),
            (json!({"retention": {"MEDICAL_RECORD": 19}}), "settings.retention.MEDICAL_RECORD"),
            (json!({"retention": {"DISCHARGE_SUMMARY": 7}}), "settings.retention.DISCHARGE_SUMMARY"),
            (json!({"retention": [5]}), "settings.retention"),
        ] {
            let e = RetentionPolicy::from_settings(20, Some(&settings)).unwrap_err();
            assert_eq!((e.code(), e.field()), ("validation", Some(field)), "{settings}");
        }
        assert_eq!(RetentionPolicy::from_settings(0, None).unwrap_err().field(), Some("data_retention_years"));
    }
}
