//! The document workflow: `register` validates (checksum, size, MIME type, retention) and writes nothing
//! on failure, sets `retention_until` from the organization's per-type policy or its default (with the
//! 20-year floor of Lei 13.787/2018 for medical records), and refuses an invalid policy by name;
//! `record_ocr` stores the OCR text and extracted data encrypted at rest and readable through the
//! library; retention can be extended, never shortened; each operation records exactly one audit event
//! and actors the access matrix does not allow are refused, the refusal recorded. Every test runs on
//! SQLite and PostgreSQL.

use austa_core::crypto::Sensitive;
use austa_core::model::{
    AccessLevel, AuditAction, AuditOutcome, Document, DocumentCategory, DocumentPatch, DocumentType, NewDocument,
    NewPatient, NewProvider, OcrResult, OrganizationPatch, ProviderRole, RetentionPolicy,
};
use austa_core::{Actor, Result, Scope};
use chrono::{DateTime, Datelike, Duration, Months, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_err, one_event, TestDb};
use austa_macros::backends;

// ----------------------------------------------------------------------------------------------
// helpers
// ----------------------------------------------------------------------------------------------

/// SHA-256 of the empty string.
const CHECKSUM: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An organization (platform scope) with one patient (Carlos) and one doctor.
struct Org {
    scope: Scope,
    carlos: Uuid,
    doctor: Uuid,
}

async fn org(tdb: &TestDb, name: &str) -> Org {
    let scope = tdb.org(name).await;
    let carlos = scope
        .patients()
        .create(NewPatient {
            first_name: "Carlos".into(),
            last_name: "Mendes".into(),
            phone: "+5511987654321".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let doctor = scope
        .providers()
        .create(NewProvider::new("Roberto", "Silva", "roberto.silva@austa.com.br", ProviderRole::Doctor))
        .await
        .unwrap()
        .id;
    Org { scope, carlos, doctor }
}

async fn as_actor(tdb: &TestDb, o: &Org, actor: Actor) -> Scope {
    tdb.db.scope(o.scope.organization_id(), actor).await.unwrap()
}

/// Sets the organization's default retention and settings.
async fn set_policy(tdb: &TestDb, o: &Org, years: i64, settings: serde_json::Value) {
    tdb.db
        .organizations()
        .update(
            o.scope.organization_id(),
            OrganizationPatch {
                data_retention_years: Some(years),
                settings: Some(Some(Sensitive::new(settings))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn lab_result(patient: Uuid) -> NewDocument {
    NewDocument {
        access_level: Some(AccessLevel::ProviderPatient),
        ..NewDocument::new(
            patient,
            "hemograma_carlos_mendes.pdf",
            "Hemograma - Carlos Mendes.pdf",
            "application/pdf",
            48_213,
            "s3://austa-docs/carlos-mendes/hemograma.pdf",
            DocumentType::LabResult,
            DocumentCategory::Laboratory,
        )
    }
}

fn of_type(patient: Uuid, document_type: DocumentType) -> NewDocument {
    NewDocument { document_type, ..lab_result(patient) }
}

fn ocr(text: &str, confidence: f64) -> OcrResult {
    OcrResult {
        text: text.into(),
        confidence,
        extracted_data: Some(Sensitive::new(json!({"glicemia_jejum": {"valor": 126, "unidade": "mg/dL"}}))),
    }
}

async fn count(tdb: &TestDb, table: &str, org: Uuid) -> i64 {
    tdb.raw_i64(&format!("SELECT COUNT(*) FROM {table} WHERE organization_id = '{org}'")).await
}

/// Documents, events, and documents with OCR output of organization `org`.
async fn snapshot(tdb: &TestDb, org: Uuid) -> (i64, i64, i64) {
    let processed = format!(
        "SELECT COUNT(*) FROM documents WHERE organization_id = '{org}' AND (has_ocr = TRUE OR processed_at IS NOT NULL)"
    );
    (count(tdb, "documents", org).await, count(tdb, "audit_logs", org).await, tdb.raw_i64(&processed).await)
}

/// Runs `op`, which must fail with `code` on `field`, and checks that it wrote no document and no event.
async fn writes_nothing<T: std::fmt::Debug>(
    tdb: &TestDb,
    org: Uuid,
    code: &str,
    field: Option<&str>,
    op: impl std::future::Future<Output = Result<T>>,
) {
    let before = snapshot(tdb, org).await;
    assert_err(op.await, code, field);
    assert_eq!(snapshot(tdb, org).await, before, "nothing written on {code} {field:?}");
}

fn years_after(t: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(12 * years)).unwrap()
}

// ----------------------------------------------------------------------------------------------
// register
// ----------------------------------------------------------------------------------------------

#[backends]
async fn register_validates_and_writes_nothing_on_error(tdb: TestDb) {
    let o = org(&tdb, "Hospital Validação").await;
    let id = o.scope.organization_id();
    let docs = o.scope.documents();
    let long = format!("{CHECKSUM}0");
    for bad in ["", "abc", &CHECKSUM[1..], &long, &CHECKSUM.replace('e', "g"), "sha256:e3b0c442"] {
        writes_nothing(&tdb, id, "validation", Some("checksum_sha256"), docs.register(lab_result(o.carlos), bad)).await;
    }
    let cases: Vec<(NewDocument, &str)> = vec![
        (NewDocument { size_bytes: -1, ..lab_result(o.carlos) }, "size_bytes"),
        (NewDocument { mime_type: "pdf".into(), ..lab_result(o.carlos) }, "mime_type"),
        (NewDocument { mime_type: "application/pdf; q=1".into(), ..lab_result(o.carlos) }, "mime_type"),
        (NewDocument { ocr_confidence: Some(0.5), ..lab_result(o.carlos) }, "has_ocr"),
        (NewDocument { patient_id: Uuid::now_v7(), ..lab_result(o.carlos) }, "patient_id"),
        // Shorter than the policy (20 years by default).
        (
            NewDocument { retention_until: Some(Utc::now() + Duration::days(365)), ..lab_result(o.carlos) },
            "retention_until",
        ),
    ];
    for (new, field) in cases {
        writes_nothing(&tdb, id, "validation", Some(field), docs.register(new, CHECKSUM)).await;
    }

    // An invalid policy is refused by name when the settings are written (by the platform or by
    // the organization's administrator), so it can never break a later registration.
    set_policy(&tdb, &o, 20, json!({"retention": {"LAB_RESULT": 5}})).await;
    let admin = tdb.db.scope(id, Actor::admin(None)).await.unwrap();
    for (settings, field) in [
        (json!({"retention": {"LAB_RESULT": 0}}), "settings.retention.LAB_RESULT"),
        (json!({"retention": {"LAB_RESULT": "x"}}), "settings.retention.LAB_RESULT"),
        (json!({"retention": {"LAB_RESULTS": 5}}), "settings.retention.LAB_RESULTS"),
        (json!({"retention": {"MEDICAL_RECORD": 5}}), "settings.retention.MEDICAL_RECORD"),
        (json!({"retention": "5 anos"}), "settings.retention"),
    ] {
        let patch =
            || OrganizationPatch { settings: Some(Some(Sensitive::new(settings.clone()))), ..Default::default() };
        writes_nothing(&tdb, id, "validation", Some(field), tdb.db.organizations().update(id, patch())).await;
        writes_nothing(&tdb, id, "validation", Some(field), admin.update_organization(patch())).await;
    }
    let bad_years = OrganizationPatch { data_retention_years: Some(0), ..Default::default() };
    writes_nothing(&tdb, id, "validation", Some("data_retention_years"), admin.update_organization(bad_years)).await;
    let kept = o.scope.organization().await.unwrap().settings.unwrap();
    assert_eq!(kept.expose().unwrap(), &json!({"retention": {"LAB_RESULT": 5}}), "the valid policy stands");
    assert!(docs.register(lab_result(o.carlos), CHECKSUM).await.is_ok(), "and registrations go on");

    // Valid input goes through; upper-case hex is stored in lower case.
    set_policy(&tdb, &o, 20, json!({})).await;
    let doc = docs.register(lab_result(o.carlos), &CHECKSUM.to_uppercase()).await.unwrap();
    assert_eq!(doc.checksum_sha256.as_deref(), Some(CHECKSUM));
    assert_eq!(docs.get(doc.id).await.unwrap(), doc, "{:?}", tdb.backend);

    // The database enforces the digest's shape itself (migration 0008).
    for bad in [CHECKSUM.to_uppercase(), CHECKSUM[1..].to_string(), CHECKSUM.replace('e', "g")] {
        let sql = format!("UPDATE documents SET checksum_sha256 = '{bad}' WHERE id = '{}'", doc.id);
        assert!(tdb.raw_script(&sql).await.is_err(), "{:?}: {bad} not rejected by a CHECK", tdb.backend);
    }
    let sql = format!("UPDATE documents SET checksum_sha256 = '{}' WHERE id = '{}'", "0".repeat(64), doc.id);
    tdb.raw_script(&sql).await.unwrap();
    tdb.db.close().await;
}

#[backends]
async fn retention_from_the_default_and_the_per_type_policy(tdb: TestDb) {
    let o = org(&tdb, "Hospital Retenção").await;
    let docs = o.scope.documents();

    // The default: data_retention_years (20), from the registration.
    let d = docs.register(lab_result(o.carlos), CHECKSUM).await.unwrap();
    assert_eq!(d.retention_until, Some(years_after(d.created_at, 20)));
    assert_eq!(docs.get(d.id).await.unwrap().retention_until, d.retention_until, "stored as returned");

    // Per type, falling back to the default; medical records never below 20 years.
    set_policy(&tdb, &o, 10, json!({"retention": {"LAB_RESULT": 5, "ID_DOCUMENT": 2}, "whatsapp": {"x": 1}})).await;
    for (document_type, years) in [
        (DocumentType::LabResult, 5),
        (DocumentType::IdDocument, 2),
        (DocumentType::Prescription, 10),
        (DocumentType::MedicalRecord, 20),
        (DocumentType::DischargeSummary, 20),
    ] {
        let d = docs.register(of_type(o.carlos, document_type), CHECKSUM).await.unwrap();
        assert_eq!(d.retention_until, Some(years_after(d.created_at, years)), "{document_type:?}");
        assert_eq!(docs.get(d.id).await.unwrap().retention_until, d.retention_until);
    }
    set_policy(&tdb, &o, 20, json!({"retention": {"MEDICAL_RECORD": 30}})).await;
    let d = docs.register(of_type(o.carlos, DocumentType::MedicalRecord), CHECKSUM).await.unwrap();
    assert_eq!(d.retention_until, Some(years_after(d.created_at, 30)));
    assert_eq!(RetentionPolicy::legal_minimum(DocumentType::MedicalRecord), Some(20));

    // A longer hold asked by the caller is kept.
    let hold = Utc::now() + Duration::days(365 * 40);
    let d = docs.register(NewDocument { retention_until: Some(hold), ..lab_result(o.carlos) }, CHECKSUM).await.unwrap();
    assert_eq!(d.retention_until.map(|t| t.year()), Some(hold.year()));

    // Retention can be extended, never shortened nor cleared.
    let later = d.retention_until.unwrap() + Duration::days(1);
    let extended =
        docs.update(d.id, DocumentPatch { retention_until: Some(Some(later)), ..Default::default() }).await.unwrap();
    assert_eq!(extended.retention_until, Some(later));
    let id = o.scope.organization_id();
    for shorter in [Some(later - Duration::days(2)), None] {
        writes_nothing(
            &tdb,
            id,
            "validation",
            Some("retention_until"),
            docs.update(d.id, DocumentPatch { retention_until: Some(shorter), ..Default::default() }),
        )
        .await;
    }
    tdb.db.close().await;
}

// ----------------------------------------------------------------------------------------------
// OCR
// ----------------------------------------------------------------------------------------------

#[backends]
async fn ocr_result_is_encrypted_at_rest_and_readable(tdb: TestDb) {
    let o = org(&tdb, "Hospital OCR").await;
    let docs = o.scope.documents();
    let d = docs.register(lab_result(o.carlos), CHECKSUM).await.unwrap();
    assert!(!d.has_ocr && d.ocr_text.is_none() && d.processed_at.is_none());

    let text = "Paciente Carlos Mendes. Glicemia de jejum: 126 mg/dL (alterada).";
    let done = docs.record_ocr(d.id, ocr(&format!("  {text}\n"), 0.87)).await.unwrap();
    assert!(done.has_ocr && done.processed_at.is_some());
    assert_eq!(done.ocr_text.as_ref().unwrap().expose().unwrap(), text);
    assert_eq!(done.ocr_confidence, Some(0.87));

    let read: Document = docs.get(d.id).await.unwrap();
    assert_eq!(read, done);
    assert_eq!(read.extracted_data.as_ref().unwrap().expose().unwrap()["glicemia_jejum"]["valor"], 126);
    assert!(!format!("{read:?}").contains("Glicemia"), "Debug output is redacted");

    for (column, plain) in [("ocr_text", "Glicemia"), ("ocr_text", "Carlos"), ("extracted_data", "glicemia_jejum")] {
        let raw = tdb.raw_bytes("documents", column, d.id).await.expect("a stored value");
        assert!(!raw.windows(plain.len()).any(|w| w == plain.as_bytes()), "{column} holds {plain} in clear");
    }

    // A later run replaces the earlier; a blank page is recorded as OCR with no text.
    let blank =
        docs.record_ocr(d.id, OcrResult { text: " \n\t".into(), confidence: 0.1, extracted_data: None }).await.unwrap();
    assert!(blank.has_ocr && blank.ocr_text.is_none() && blank.extracted_data.is_none());
    assert_eq!(docs.get(d.id).await.unwrap(), blank);
    assert!(tdb.raw_bytes("documents", "ocr_text", d.id).await.is_none());

    // Invalid results write nothing.
    let id = o.scope.organization_id();
    for (result, field) in [
        (ocr(text, 1.5), "ocr_confidence"),
        (ocr(text, -0.1), "ocr_confidence"),
        (ocr(text, f64::NAN), "ocr_confidence"),
        (OcrResult { extracted_data: Some(Sensitive::new(json!(null))), ..ocr(text, 0.9) }, "extracted_data"),
        (ocr(&"a".repeat(1_000_001), 0.9), "ocr_text"),
    ] {
        writes_nothing(&tdb, id, "validation", Some(field), docs.record_ocr(d.id, result)).await;
    }
    assert_eq!(docs.get(d.id).await.unwrap(), blank, "unchanged by the refused results");
    // A missing document is not_found (its attempt recorded, nothing changed).
    assert_err(docs.record_ocr(Uuid::now_v7(), ocr(text, 0.9)).await, "not_found", None);
    tdb.db.close().await;
}

// ----------------------------------------------------------------------------------------------
// audit and access
// ----------------------------------------------------------------------------------------------

#[backends]
async fn one_audit_event_per_operation(tdb: TestDb) {
    let o = org(&tdb, "Hospital Auditoria").await;
    let doctor = as_actor(&tdb, &o, Actor::provider(o.doctor)).await;

    let (d, event) = one_event(&tdb, &o.scope, doctor.documents().register(lab_result(o.carlos), CHECKSUM)).await;
    let d = d.unwrap();
    assert_eq!((event.action, event.outcome), (AuditAction::Create, AuditOutcome::Success));
    assert_eq!((event.entity_id, event.patient_id, event.actor_id), (Some(d.id), Some(o.carlos), Some(o.doctor)));
    assert_eq!(event.record_ids, vec![d.id]);
    for f in ["checksum_sha256", "retention_until", "mime_type", "size_bytes", "storage_path", "type"] {
        assert!(event.changed_fields.iter().any(|c| c == f), "{f} in {:?}", event.changed_fields);
    }

    let (done, event) =
        one_event(&tdb, &o.scope, doctor.documents().record_ocr(d.id, ocr("Hemoglobina 14 g/dL", 0.9))).await;
    done.unwrap();
    assert_eq!((event.action, event.entity_id, event.patient_id), (AuditAction::Update, Some(d.id), Some(o.carlos)));
    let mut changed = event.changed_fields.clone();
    changed.sort();
    assert_eq!(changed, ["extracted_data", "has_ocr", "ocr_confidence", "ocr_text", "processed_at"]);
    // No value enters an event.
    assert!(!format!("{event:?}").contains("Hemoglobina"));
    tdb.db.close().await;
}

#[backends]
async fn access_matrix_is_followed_and_refusals_recorded(tdb: TestDb) {
    let o = org(&tdb, "Hospital Acesso").await;
    let id = o.scope.organization_id();
    let doctor = as_actor(&tdb, &o, Actor::provider(o.doctor)).await;
    let admin = as_actor(&tdb, &o, Actor::admin(None)).await;
    let carlos = as_actor(&tdb, &o, Actor::patient(o.carlos)).await;
    let tasy = as_actor(&tdb, &o, Actor::system("tasy-sync")).await;

    // Refused outright: one ACCESS_DENIED event, no document.
    for scope in [&admin, &carlos] {
        let before = count(&tdb, "documents", id).await;
        let (r, event) = one_event(&tdb, &o.scope, scope.documents().register(lab_result(o.carlos), CHECKSUM)).await;
        assert_err(r, "permission_denied", None);
        assert_eq!((event.action, event.outcome), (AuditAction::AccessDenied, AuditOutcome::Denied));
        assert_eq!(count(&tdb, "documents", id).await, before);
    }
    // Providers create only at levels they can see (the default PATIENT_ONLY is not one of them).
    let hidden = NewDocument { access_level: None, ..lab_result(o.carlos) };
    let (r, event) = one_event(&tdb, &o.scope, doctor.documents().register(hidden.clone(), CHECKSUM)).await;
    assert_err(r, "permission_denied", None);
    assert_eq!(event.action, AuditAction::AccessDenied);

    // The Tasy integration registers but does not update; providers update what they see.
    let from_tasy = tasy.documents().register(lab_result(o.carlos), CHECKSUM).await.unwrap();
    assert_err(tasy.documents().record_ocr(from_tasy.id, ocr("texto", 0.5)).await, "permission_denied", None);
    doctor.documents().record_ocr(from_tasy.id, ocr("texto", 0.5)).await.unwrap();

    // A document above the provider's level is out of reach: not_found, unchanged.
    let patient_only = o.scope.documents().register(hidden, CHECKSUM).await.unwrap();
    assert_eq!(patient_only.access_level, AccessLevel::PatientOnly);
    assert_err(doctor.documents().record_ocr(patient_only.id, ocr("texto", 0.5)).await, "not_found", None);
    assert!(!o.scope.documents().get(patient_only.id).await.unwrap().has_ocr);
    // The patient reads their own document's OCR text.
    assert_eq!(carlos.documents().get(from_tasy.id).await.unwrap().ocr_text.unwrap().expose().unwrap(), "texto");
    tdb.db.close().await;
}
