//! `documents.*`: uploaded documents and their OCR results.

use austa_core::model::{Document, DocumentPatch, NewDocument, OcrResult};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("documents", Document, NewDocument, DocumentPatch: get, list, create, create_many, update, delete, restore);

/// Registers an uploaded document with the SHA-256 checksum of its content.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The document.
    pub data: NewDocument,
    /// SHA-256 of the content, 64 hex digits.
    pub checksum: String,
}

impl ScopeOperation for Register {
    const NAME: &'static str = "documents.register";
    type Output = Document;
    async fn run(self, scope: &Scope) -> Result<Document> {
        scope.documents().register(self.data, &self.checksum).await
    }
}

/// Stores an OCR result (its text encrypted).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordOcr {
    /// The document.
    pub id: Uuid,
    /// The result.
    pub ocr: OcrResult,
}

impl ScopeOperation for RecordOcr {
    const NAME: &'static str = "documents.record_ocr";
    type Output = Document;
    async fn run(self, scope: &Scope) -> Result<Document> {
        scope.documents().record_ocr(self.id, self.ocr).await
    }
}

/// The patient's documents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "documents.for_patient";
    type Output = Page<Document>;
    async fn run(self, scope: &Scope) -> Result<Page<Document>> {
        scope.documents().for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}
