//! Documents: the generic operations, the document workflow (`register`, `record_ocr`) and a patient's
//! documents.
//!
//! **Workflow.** [`Documents::register`] is the way to add a document: it validates like `create`,
//! requires the SHA-256 of the stored bytes, and sets `retention_until` from the organization's
//! [`RetentionPolicy`] (read inside the same transaction as the insert). [`Documents::record_ocr`]
//! stores an OCR run's text, confidence and extracted data (all but the confidence encrypted under the
//! patient's key), sets `has_ocr` and `processed_at`, and may be repeated (a later run replaces the
//! earlier one). Each records exactly one audit event (`CREATE`, `UPDATE`) in its transaction; a
//! validation failure writes nothing and records nothing; a refusal records `ACCESS_DENIED`.
//!
//! **Retention.** Once set, `retention_until` may be extended by `update` (a legal hold) but never
//! shortened nor cleared. The generic `create` leaves it to the caller (it predates the policy and the
//! development seed uses it); `register` accepts a caller's date only when it ends no earlier than the
//! policy's.
//!
//! Validation runs on the final state of a document (after defaults on create, after the patch on
//! update), so the cross-field rules hold whichever fields a caller touched: OCR output requires
//! `has_ocr`, a storage key reference requires `is_encrypted`, retention does not end before the upload.
//!
//! `storage_key_ref` must be a reference, never key material (the original kept the key in the row).
//! It is accepted when it is 1 to 200 characters of `A-Z a-z 0-9 : / . _ - # @` and either a UUID or a
//! structured reference (containing `:` or `/`, e.g. `kms:alias/austa-docs`,
//! `vault:transit/keys/documentos#3`) whose segments are at most 40 characters. This rejects PEM
//! blocks, standard base64 (`+`, `=`), and raw 256-bit keys in hex or base64url (64 and 43 characters
//! without a separator); it is a guard against mistakes, not a proof that a string holds no secret.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::health_data::json_payload;
use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::Filter;
use crate::error::{Error, Result};
use crate::kernel::outbox::OutboxOperation;
use crate::kernel::AuditTx;
use crate::kernel::Sealed;
use crate::model::{
    AccessLevel, Document, DocumentPatch, NewDocument, OcrResult, RetentionPolicy, SensitivityLevel, StorageProvider,
};
use crate::scope::Scope;
use crate::time::truncate;
use crate::validate;
use austa_crypto::Sensitive;

/// Repository of documents.
pub type Documents<'s> = Repo<'s, Document>;

impl Scope {
    /// Documents of this scope's organization.
    pub fn documents(&self) -> Documents<'_> {
        Repo::new(self)
    }
}

/// Largest OCR text, in characters.
const MAX_OCR_CHARS: usize = 1_000_000;
/// Largest serialized extracted data.
const MAX_EXTRACTED_BYTES: usize = 1024 * 1024;
/// Longest segment of a storage key reference.
const MAX_KEY_REF_SEGMENT: usize = 40;

fn secret_text(field: &str, v: &Sensitive<String>, min: usize, max: usize) -> Result<Sensitive<String>> {
    validate::text(field, v.expose()?, min, max).map(Sensitive::new)
}

fn opt_secret_text(field: &str, v: Option<&Sensitive<String>>, max: usize) -> Result<Option<Sensitive<String>>> {
    v.map(|s| secret_text(field, s, 1, max)).transpose()
}

/// OCR output is free text (any line endings, form feeds): only trimmed and bounded.
fn ocr_text(v: Option<Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|s| {
        let trimmed = s.expose()?.trim();
        let n = trimmed.chars().count();
        if n == 0 || n > MAX_OCR_CHARS {
            return Err(Error::validation("ocr_text", format!("must be 1 to {MAX_OCR_CHARS} characters")));
        }
        Ok(Sensitive::new(trimmed.to_string()))
    })
    .transpose()
}

/// A MIME type `type/subtype` (RFC 6838 restricted names), lower case, without parameters.
fn mime_type(v: &str) -> Result<String> {
    let normalized = v.trim().to_ascii_lowercase();
    let name_ok = |part: &str| {
        (1..=127).contains(&part.len())
            && part.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match normalized.split_once('/') {
        Some((t, s)) if name_ok(t) && name_ok(s) => Ok(normalized),
        _ => Err(Error::validation("mime_type", "must be a MIME type like application/pdf")),
    }
}

fn health_keywords(v: Option<Sensitive<Vec<String>>>) -> Result<Option<Sensitive<Vec<String>>>> {
    v.map(|k| validate::labels("health_keywords", k.expose()?).map(Sensitive::new)).transpose()
}

/// A SHA-256 digest as 64 hexadecimal digits (either case; stored in lower case).
fn checksum_sha256(v: &str) -> Result<String> {
    let d = v.trim();
    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::validation("checksum_sha256", "must be a SHA-256 digest: 64 hexadecimal digits"));
    }
    Ok(d.to_ascii_lowercase())
}

/// A reference to a wrapped storage key; see the module documentation for the accepted shape.
fn storage_key_ref(v: Option<&str>) -> Result<Option<String>> {
    let Some(v) = v else {
        return Ok(None);
    };
    const SHAPE: &str = "must be a key reference (a UUID or e.g. kms:alias/name), never key material";
    let r = validate::text("storage_key_ref", v, 1, 200)?;
    let separators = [':', '/', '.', '#', '@'];
    if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || separators.contains(&c)) {
        return Err(Error::validation("storage_key_ref", SHAPE));
    }
    if Uuid::parse_str(&r).is_ok() {
        return Ok(Some(r));
    }
    let structured = r.contains(':') || r.contains('/');
    let short_segments = r.split(&separators[..]).all(|s| s.len() <= MAX_KEY_REF_SEGMENT);
    if !structured || !short_segments {
        return Err(Error::validation("storage_key_ref", SHAPE));
    }
    Ok(Some(r))
}

impl Sealed for Document {}

impl Model for Document {
    type New = NewDocument;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewDocument) -> Result<Self> {
        let model = Document {
            id,
            organization_id: organization,
            patient_id: new.patient_id,
            filename: secret_text("filename", &new.filename, 1, 255)?,
            original_name: secret_text("original_name", &new.original_name, 1, 255)?,
            mime_type: mime_type(&new.mime_type)?,
            size_bytes: validate::non_negative("size_bytes", new.size_bytes)?,
            storage_provider: new.storage_provider.unwrap_or(StorageProvider::Local),
            storage_path: secret_text("storage_path", &new.storage_path, 1, 1024)?,
            download_url: opt_secret_text("download_url", new.download_url.as_ref(), 2048)?,
            thumbnail_url: opt_secret_text("thumbnail_url", new.thumbnail_url.as_ref(), 2048)?,
            document_type: new.document_type,
            category: new.category,
            tags: validate::labels("tags", &new.tags)?,
            has_ocr: new.has_ocr,
            ocr_text: ocr_text(new.ocr_text)?,
            ocr_confidence: validate::opt_range("ocr_confidence", new.ocr_confidence, 0.0, 1.0)?,
            processed_at: new.processed_at.map(truncate),
            extracted_data: json_payload("extracted_data", new.extracted_data, MAX_EXTRACTED_BYTES)?,
            health_keywords: health_keywords(new.health_keywords)?,
            is_encrypted: new.is_encrypted,
            storage_key_ref: storage_key_ref(new.storage_key_ref.as_deref())?,
            checksum_sha256: None,
            access_level: new.access_level.unwrap_or(AccessLevel::PatientOnly),
            sensitivity_level: new.sensitivity_level.unwrap_or(SensitivityLevel::Normal),
            is_active: true,
            archived_at: new.archived_at.map(truncate),
            retention_until: new.retention_until.map(truncate),
            uploaded_at: new.uploaded_at.map(truncate).unwrap_or(now),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        model.check()?;
        Ok(model)
    }

    /// A document's access level must be one the actor could see itself (see
    /// [`Scope::authorize_access_level`]).
    fn authorize_fields(&self, scope: &Scope, action: Action, _before: Option<&Self>) -> Result<()> {
        scope.authorize_access_level(Resource::Document, action, self.patient_id, self.access_level)
    }
}

impl Updatable for Document {
    type Patch = DocumentPatch;

    fn apply(&mut self, p: DocumentPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.filename, p.filename, |v| secret_text("filename", &v, 1, 255)?);
        patch!(self.original_name, p.original_name, |v| secret_text("original_name", &v, 1, 255)?);
        patch!(self.mime_type, p.mime_type, |v| mime_type(&v)?);
        patch!(self.size_bytes, p.size_bytes, |v| validate::non_negative("size_bytes", v)?);
        patch!(self.storage_provider, p.storage_provider);
        patch!(self.storage_path, p.storage_path, |v| secret_text("storage_path", &v, 1, 1024)?);
        patch!(self.download_url, p.download_url, |v| opt_secret_text("download_url", v.as_ref(), 2048)?);
        patch!(self.thumbnail_url, p.thumbnail_url, |v| opt_secret_text("thumbnail_url", v.as_ref(), 2048)?);
        patch!(self.document_type, p.document_type);
        patch!(self.category, p.category);
        patch!(self.tags, p.tags, |v| validate::labels("tags", &v)?);
        patch!(self.has_ocr, p.has_ocr);
        patch!(self.ocr_text, p.ocr_text, |v| ocr_text(v)?);
        patch!(self.ocr_confidence, p.ocr_confidence, |v| validate::opt_range("ocr_confidence", v, 0.0, 1.0)?);
        patch!(self.processed_at, p.processed_at, |v| v.map(truncate));
        patch!(self.extracted_data, p.extracted_data, |v| json_payload("extracted_data", v, MAX_EXTRACTED_BYTES)?);
        patch!(self.health_keywords, p.health_keywords, |v| health_keywords(v)?);
        patch!(self.is_encrypted, p.is_encrypted);
        patch!(self.storage_key_ref, p.storage_key_ref, |v| storage_key_ref(v.as_deref())?);
        patch!(self.checksum_sha256, p.checksum_sha256, |v| Some(checksum_sha256(&v)?));
        patch!(self.access_level, p.access_level);
        patch!(self.sensitivity_level, p.sensitivity_level);
        patch!(self.is_active, p.is_active);
        patch!(self.archived_at, p.archived_at, |v| v.map(truncate));
        if let Some(v) = p.retention_until {
            let v = v.map(truncate);
            if let Some(current) = self.retention_until {
                if v.is_none_or(|t| t < current) {
                    return Err(Error::validation("retention_until", "may be extended, never shortened nor cleared"));
                }
            }
            self.retention_until = v;
        }
        self.check()?;
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Document {}

/// The organization's retention policy, read inside `tx` (no event of its own: the operation's event
/// covers it). Its settings decrypt under the organization key, which `keys` holds.
async fn retention_policy(tx: &mut AuditTx<'_>, keys: &austa_crypto::KeySet, org: Uuid) -> Result<RetentionPolicy> {
    let row = tx
        .fetch_optional(
            crate::db::Query::new(
                "SELECT id, data_retention_years, settings FROM organizations WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(org),
        )
        .await?
        .ok_or_else(|| Error::not_found("organization"))?;
    let settings = keys.row("organizations", org, None)?.open_opt_json(&row, "settings")?;
    let settings = settings.as_ref().map(|s| s.expose()).transpose()?;
    RetentionPolicy::from_settings(row.int("data_retention_years")?, settings)
}

impl Documents<'_> {
    /// Registers a new document: validates it like `create` (MIME type, size, names, classification,
    /// ...), requires `checksum`, the SHA-256 of the stored bytes (64 hexadecimal digits, either case;
    /// stored in lower case as `checksum_sha256`), and
    /// sets `retention_until` to the registration time plus the organization's [`RetentionPolicy`] years
    /// for its type. A `retention_until` given in `new` is kept only when it ends no earlier than that
    /// (a longer hold); an earlier one is a `validation` error. An invalid policy in the organization's
    /// settings fails with `validation` on `settings.retention.<TYPE>`.
    ///
    /// Access: the matrix's document create (providers only at access levels they can see, i.e. not
    /// the default `PATIENT_ONLY`; the `tasy-sync` integration; the platform). One `CREATE` event;
    /// nothing is written on any error.
    pub async fn register(&self, new: NewDocument, checksum: &str) -> Result<Document> {
        let scope = self.scope();
        let org = scope.organization_id();
        let mut model = Document::build(org, Uuid::now_v7(), self.scope().now(), new)?;
        model.checksum_sha256 = Some(checksum_sha256(checksum)?);
        rows::check_create(scope, &model).await?;
        let mut keys = rows::keys_for(scope, &model).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let policy = match retention_policy(&mut tx, &keys, org).await {
            Err(e) if rows::is_unknown_key(&e) => {
                drop(tx); // never wait for the key store while holding a transaction
                keys = scope.db().refresh_key_set(&keys).await?.ok_or(e)?;
                tx = AuditTx::begin(scope).await?;
                retention_policy(&mut tx, &keys, org).await?
            }
            policy => policy?,
        };
        let required = policy.retention_until(model.document_type, model.created_at)?;
        model.retention_until = match model.retention_until {
            Some(asked) if asked < required => {
                return Err(Error::validation(
                    "retention_until",
                    "must not end before the organization's retention policy for this document type",
                ))
            }
            Some(asked) => Some(asked),
            None => Some(required),
        };
        model.check()?;
        let event = rows::insert_in(&mut tx, &keys, org, &model).await?;
        rows::to_tasy::<Document>(&mut tx, org, model.id, OutboxOperation::Upsert).await?;
        tx.record(event).await?;
        tx.commit().await?;
        Ok(model)
    }

    /// Records an OCR run on document `id`: its text and extracted data (encrypted under the patient's
    /// key) and confidence (0 to 1); sets `has_ocr` and `processed_at` (now). Replaces an earlier run's
    /// output (an earlier run's extracted data is cleared when this one has none). Validation runs
    /// before anything is read; a failure writes nothing.
    ///
    /// Access: the matrix's document update (providers on documents they can see; the platform). A
    /// document out of the actor's reach is `not_found`. One `UPDATE` event naming the changed fields.
    pub async fn record_ocr(&self, id: Uuid, ocr: OcrResult) -> Result<Document> {
        let text = ocr.text.expose()?;
        let text = if text.trim().is_empty() { None } else { ocr_text(Some(ocr.text))? };
        let confidence = validate::range("ocr_confidence", ocr.confidence, 0.0, 1.0)?;
        let extracted = json_payload("extracted_data", ocr.extracted_data, MAX_EXTRACTED_BYTES)?;
        let patch = DocumentPatch {
            has_ocr: Some(true),
            ocr_text: Some(text),
            ocr_confidence: Some(Some(confidence)),
            extracted_data: Some(extracted),
            processed_at: Some(Some(self.scope().now())),
            ..Default::default()
        };
        rows::update(self.scope(), id, patch).await
    }

    /// A page of the patient's active documents, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<Document>> {
        rows::list_where(self.scope(), Filter::new().and_eq("patient_id", patient_id).and_eq("is_active", true), &page)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_accepted_and_key_material_rejected() {
        for good in [
            "kms:alias/austa-documentos",
            "arn:aws:kms:sa-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "vault:transit/keys/documentos#3",
            "https://austa.vault.azure.net/keys/docs/0123456789abcdef0123456789abcdef",
            "0190f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6",
        ] {
            assert_eq!(storage_key_ref(Some(good)).unwrap().as_deref(), Some(good), "{good}");
        }
        for bad in [
            "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "kms:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "kms:q3J_5kZ2bWx4c1p0Y2F0ZWxsYW5vLWNoYXZlLXNlY3JldGE",
            "-----BEGIN PRIVATE KEY-----",
            "documentos",
            "",
        ] {
            let e = storage_key_ref(Some(bad)).unwrap_err();
            assert_eq!(e.field(), Some("storage_key_ref"));
            assert!(bad.is_empty() || !e.to_string().contains(bad));
        }
        assert_eq!(storage_key_ref(Some(&format!("kms:{}", "a/".repeat(100)))).unwrap_err().code(), "validation");
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type(" Application/PDF ").unwrap(), "application/pdf");
        assert_eq!(mime_type("image/svg+xml").unwrap(), "image/svg+xml");
        for bad in ["pdf", "application/", "/pdf", "text/plain; charset=utf-8", "a/b/c", "imagem/jpeg é"] {
            assert_eq!(mime_type(bad).unwrap_err().field(), Some("mime_type"), "{bad}");
        }
    }
}
