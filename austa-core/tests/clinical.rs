//! Clinical records: health data, documents and authorizations (with their document attachments).
//! Round trips, updates and validation that writes nothing, soft delete, cursor pagination, the domain
//! queries, tenant isolation (including references to another organization's patients, providers and
//! documents), ciphertext at rest and redacted Debug output. Every test runs on SQLite and, when
//! configured, PostgreSQL.

use std::fmt::Debug;

use austa_core::crypto::Sensitive;
use austa_core::model::{
    AccessLevel, Authorization, AuthorizationPatch, AuthorizationStatus, AuthorizationType, DataSource, Document,
    DocumentCategory, DocumentPatch, DocumentType, HealthCategory, HealthData, HealthDataPatch, HealthDataType,
    NewAuthorization, NewDocument, NewHealthData, NewPatient, NewProvider, Priority, ProviderRole, ReliabilityLevel,
    SensitivityLevel, UrgencyLevel,
};
use austa_core::repo::{Model, PageRequest, Repo};
use austa_core::{Error, Scope};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_err, count, Backend, TestDb};
use austa_macros::backends;

// ---------------------------------------------------------------------------------------------------
// Fixtures

/// An organization with two patients (Carlos, Ana) and one doctor.
struct Org {
    scope: Scope,
    carlos: Uuid,
    ana: Uuid,
    doctor: Uuid,
}

async fn org(tdb: &TestDb, name: &str) -> Org {
    let scope = tdb.org(name).await;
    let patient = |first: &str, last: &str, phone: &str| NewPatient {
        first_name: first.into(),
        last_name: last.into(),
        phone: phone.into(),
        ..Default::default()
    };
    let carlos = scope.patients().create(patient("Carlos", "Mendes", "+5511987654321")).await.unwrap().id;
    let ana = scope.patients().create(patient("Ana", "Costa", "+5511976543210")).await.unwrap().id;
    let doctor = scope
        .providers()
        .create(NewProvider::new("Roberto", "Silva", "roberto.silva@austa.com.br", ProviderRole::Doctor))
        .await
        .unwrap()
        .id;
    Org { scope, carlos, ana, doctor }
}

fn hypertension() -> serde_json::Value {
    json!({"primary": "Hipertensão Arterial", "icd10": "I10", "severity": "moderate", "diagnosedAt": "2023-01-15", "status": "active"})
}

fn losartana() -> serde_json::Value {
    json!({"name": "Losartana", "dosage": "50mg", "frequency": "once_daily", "startDate": "2023-01-15",
           "instructions": "Tomar pela manhã em jejum"})
}

/// Carlos's hypertension (seed health data #1, without the verification).
fn condition(patient: Uuid) -> NewHealthData {
    NewHealthData {
        conditions: Some(Sensitive::new(hypertension())),
        source: Some(DataSource::ProviderEntered),
        sensitivity_level: Some(SensitivityLevel::Sensitive),
        access_level: Some(AccessLevel::ProviderPatient),
        ..NewHealthData::new(patient, HealthDataType::Condition, HealthCategory::Cardiology)
    }
}

/// Seed health data #2: verified by a provider, with no verification time given.
fn medication(patient: Uuid, verifier: Uuid) -> NewHealthData {
    NewHealthData {
        medications: Some(Sensitive::new(losartana())),
        source: Some(DataSource::ProviderEntered),
        reliability: Some(ReliabilityLevel::Verified),
        is_verified: true,
        verified_by_provider_id: Some(verifier),
        sensitivity_level: Some(SensitivityLevel::Sensitive),
        ..NewHealthData::new(patient, HealthDataType::Medication, HealthCategory::Cardiology)
    }
}

fn allergy(patient: Uuid) -> NewHealthData {
    NewHealthData {
        allergies: Some(Sensitive::new(
            json!({"allergen": "Penicilina", "severity": "severe", "reaction": "Urticária generalizada"}),
        )),
        reliability: Some(ReliabilityLevel::High),
        sensitivity_level: Some(SensitivityLevel::HighlySensitive),
        ..NewHealthData::new(patient, HealthDataType::Allergy, HealthCategory::General)
    }
}

/// Every clinical payload filled, for the encryption checks.
fn full_health_data(patient: Uuid) -> NewHealthData {
    NewHealthData {
        medications: Some(Sensitive::new(losartana())),
        allergies: Some(Sensitive::new(json!({"allergen": "Penicilina"}))),
        symptoms: Some(Sensitive::new(json!(["Cefaleia occipital", "Tontura ao levantar"]))),
        vital_signs: Some(Sensitive::new(json!({"pressaoArterial": "160/100 mmHg", "pesoKg": 82.5}))),
        lab_results: Some(Sensitive::new(json!({"exame": "Creatinina sérica", "valor": 1.1, "unidade": "mg/dL"}))),
        ..condition(patient)
    }
}

/// Seed document: Carlos's blood test.
fn blood_test(patient: Uuid) -> NewDocument {
    NewDocument {
        download_url: Some("https://arquivos.austa.com.br/d/exame-sangue-carlos-mendes.pdf".into()),
        thumbnail_url: Some("https://arquivos.austa.com.br/t/exame-sangue-carlos-mendes.png".into()),
        tags: vec!["exame".into(), "sangue".into()],
        has_ocr: true,
        ocr_text: Some(
            "Hemograma completo de Carlos Mendes: glicose 95 mg/dL, colesterol total 180 mg/dL, \
             triglicerídeos 120 mg/dL, todos normais"
                .into(),
        ),
        ocr_confidence: Some(0.95),
        processed_at: Some(Utc::now()),
        extracted_data: Some(Sensitive::new(json!([
            {"name": "Glicose", "value": 95, "unit": "mg/dL", "status": "normal"},
            {"name": "Colesterol total", "value": 180, "unit": "mg/dL", "status": "normal"},
            {"name": "Triglicerídeos", "value": 120, "unit": "mg/dL", "status": "normal"}
        ]))),
        health_keywords: Some(Sensitive::new(vec!["hemograma".into(), "glicose".into(), "colesterol".into()])),
        is_encrypted: true,
        storage_key_ref: Some("kms:alias/austa-documentos".into()),
        access_level: Some(AccessLevel::ProviderPatient),
        sensitivity_level: Some(SensitivityLevel::Sensitive),
        retention_until: Some(Utc::now() + Duration::days(7 * 365)),
        ..NewDocument::new(
            patient,
            "exame_sangue_carlos_20240115.pdf",
            "Exame de Sangue - Carlos Mendes.pdf",
            "Application/PDF",
            2_048_576,
            "/uploads/documents/carlos-mendes/exame_sangue_carlos_20240115.pdf",
            DocumentType::LabResult,
            DocumentCategory::Laboratory,
        )
    }
}

fn prescription(patient: Uuid, name: &str) -> NewDocument {
    NewDocument::new(
        patient,
        format!("receita_{name}.jpg"),
        format!("Receita {name}.jpg"),
        "image/jpeg",
        524_288,
        format!("/uploads/documents/receita_{name}.jpg"),
        DocumentType::Prescription,
        DocumentCategory::Medical,
    )
}

/// A cardiac catheterization request.
fn catheterization(patient: Uuid, requester: Uuid) -> NewAuthorization {
    let from = Utc::now();
    NewAuthorization {
        procedure_code: Some("30911052".into()),
        description: Some("Cateterismo cardíaco esquerdo para investigação de dor torácica".into()),
        provider_id: Some(requester),
        related_conditions: Some(Sensitive::new(vec![
            "I10 Hipertensão essencial".into(),
            "I20.0 Angina instável".into(),
        ])),
        priority: Some(Priority::High),
        urgency_level: Some(UrgencyLevel::High),
        valid_from: Some(from),
        valid_until: Some(from + Duration::days(30)),
        justification: Some("Paciente hipertenso com angina instável e teste ergométrico positivo".into()),
        clinical_notes: Some("PA 160/100 mmHg\r\nECG com infradesnivelamento de ST em V4-V6".into()),
        tasy_reference_id: Some("TASY-2024-000123".into()),
        insurance_claim_id: Some("GUIA-2024-7788".into()),
        ..NewAuthorization::new(AuthorizationType::Procedure, "Cateterismo cardíaco", patient, requester)
    }
}

// ---------------------------------------------------------------------------------------------------
// Assertions

/// A rejected reference to another organization's row: `validation` on both backends, naming the
/// field on PostgreSQL (SQLite does not name the violated foreign key).
#[track_caller]
fn assert_reference_err<T: Debug>(tdb: &TestDb, r: Result<T, Error>, field: &str) {
    let e = r.expect_err("expected a reference error");
    assert_eq!(e.code(), "validation", "{e}");
    if tdb.backend == Backend::Postgres {
        assert_eq!(e.field(), Some(field), "{e}");
    }
}

/// Runs raw SQL that must be rejected by the database.
async fn assert_raw_rejected(tdb: &TestDb, sql: &str) {
    let result = match tdb.backend {
        Backend::Sqlite => {
            let p = tdb.sqlite_pool().await;
            let r = sqlx::query(sql).execute(&p).await.map(|_| ());
            p.close().await;
            r
        }
        Backend::Postgres => {
            let p = tdb.pg_pool().await;
            let r = sqlx::query(sql).execute(&p).await.map(|_| ());
            p.close().await;
            r
        }
    };
    let err = result.expect_err("the database accepted a cross-organization reference");
    assert!(err.as_database_error().is_some_and(|d| d.is_foreign_key_violation()), "{err}");
}

/// The stored column is ciphertext: present, and without the plaintext's bytes.
async fn assert_sealed(tdb: &TestDb, table: &str, column: &str, id: Uuid, plaintext: &str) {
    let raw = tdb.raw_bytes(table, column, id).await.unwrap_or_else(|| panic!("{table}.{column} is NULL"));
    let needle = plaintext.as_bytes();
    assert!(!raw.windows(needle.len()).any(|w| w == needle), "{table}.{column} holds plaintext {plaintext:?}");
}

#[track_caller]
fn assert_redacted(model: &impl Debug, secrets: &[&str]) {
    let debug = format!("{model:?}");
    for s in secrets {
        assert!(!debug.contains(s), "Debug output leaks {s:?}");
    }
}

/// Every row of a listing, paging by 2.
async fn paged_ids<M: Model>(repo: Repo<'_, M>, id: fn(&M) -> Uuid) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = repo.list(page).await.unwrap();
        assert!(p.items.len() <= 2);
        ids.extend(p.items.iter().map(id));
        match p.next {
            Some(cursor) => page = PageRequest::after(cursor, 2),
            None => return ids,
        }
    }
}

fn ids<M>(items: &[M], id: fn(&M) -> Uuid) -> Vec<Uuid> {
    items.iter().map(id).collect()
}

fn within(t: Option<DateTime<Utc>>, from: DateTime<Utc>) -> bool {
    t.is_some_and(|t| t >= from - Duration::seconds(1) && t <= Utc::now())
}

// ---------------------------------------------------------------------------------------------------
// Health data

#[backends]
async fn health_data_round_trip_update_and_soft_delete(tdb: TestDb) {
    let o = org(&tdb, "Hospital São Lucas").await;
    let repo = o.scope.health_data();
    let before = Utc::now();
    let created = repo.create(medication(o.carlos, o.doctor)).await.unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), created, "{:?}", tdb.backend);
    assert_eq!(created.medications.as_ref().unwrap().expose().unwrap(), &losartana());
    assert!(created.conditions.is_none());
    assert_eq!((created.data_type, created.access_level), (HealthDataType::Medication, AccessLevel::PatientOnly));
    assert_eq!(created.verified_by_provider_id, Some(o.doctor));
    assert!(within(created.verified_at, before), "verified without a time gets now");
    assert!(created.is_active && created.recorded_at == created.created_at);

    let expires = created.recorded_at + Duration::days(90);
    let updated = repo
        .update(
            created.id,
            HealthDataPatch {
                category: Some(HealthCategory::Hypertension),
                conditions: Some(Some(Sensitive::new(hypertension()))),
                medications: Some(None),
                expires_at: Some(Some(expires)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), updated);
    assert!(updated.medications.is_none(), "cleared");
    assert_eq!(updated.conditions.as_ref().unwrap().expose().unwrap(), &hypertension());
    assert_eq!((updated.category, updated.expires_at), (HealthCategory::Hypertension, Some(expires)));
    assert_eq!(updated.verified_at, created.verified_at, "same verifier keeps its time");

    // Failed validation in update writes nothing.
    let no_payload = HealthDataPatch { conditions: Some(None), ..Default::default() };
    assert_err(repo.update(created.id, no_payload).await, "validation", Some("payload"));
    let early =
        HealthDataPatch { expires_at: Some(Some(updated.recorded_at - Duration::days(1))), ..Default::default() };
    assert_err(repo.update(created.id, early).await, "validation", Some("expires_at"));
    assert_eq!(repo.get(created.id).await.unwrap(), updated);

    // Unverifying drops the verifier and its time.
    let unverified =
        repo.update(created.id, HealthDataPatch { is_verified: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!((unverified.verified_by_provider_id, unverified.verified_at), (None, None));

    repo.delete(created.id).await.unwrap();
    assert_err(repo.get(created.id).await, "not_found", None);
    assert_err(repo.delete(created.id).await, "not_found", None);
    assert!(repo.list(PageRequest::default()).await.unwrap().items.is_empty());
    assert_eq!(count(&tdb, "health_data").await, 1, "soft delete keeps the row");
}

#[backends]
async fn health_data_validation_names_the_field_and_writes_nothing(tdb: TestDb) {
    let o = org(&tdb, "Clínica Vida").await;
    let repo = o.scope.health_data();
    let base = || NewHealthData::new(o.carlos, HealthDataType::Symptom, HealthCategory::General);
    assert_err(repo.create(base()).await, "validation", Some("payload"));
    let null = NewHealthData { symptoms: Some(Sensitive::new(serde_json::Value::Null)), ..base() };
    assert_err(repo.create(null).await, "validation", Some("symptoms"));
    let no_verifier = NewHealthData { is_verified: true, ..condition(o.carlos) };
    assert_err(repo.create(no_verifier).await, "validation", Some("verified_by_provider_id"));
    let not_verified = NewHealthData { verified_by_provider_id: Some(o.doctor), ..condition(o.carlos) };
    assert_err(repo.create(not_verified).await, "validation", Some("verified_by_provider_id"));
    let now = Utc::now();
    let expired =
        NewHealthData { recorded_at: Some(now), expires_at: Some(now - Duration::hours(1)), ..condition(o.carlos) };
    assert_err(repo.create(expired).await, "validation", Some("expires_at"));
    let huge = NewHealthData { symptoms: Some(Sensitive::new(json!("x".repeat(300_000)))), ..base() };
    assert_err(repo.create(huge).await, "validation", Some("symptoms"));
    assert_eq!(count(&tdb, "health_data").await, 0);
}

#[backends]
async fn health_data_for_patient_by_type_and_verify(tdb: TestDb) {
    let o = org(&tdb, "Hospital Santa Cruz").await;
    let repo = o.scope.health_data();
    let cond = repo.create(condition(o.carlos)).await.unwrap();
    let med = repo.create(medication(o.carlos, o.doctor)).await.unwrap();
    let old = repo.create(allergy(o.carlos)).await.unwrap();
    repo.update(old.id, HealthDataPatch { is_active: Some(false), ..Default::default() }).await.unwrap();
    let anas = repo.create(allergy(o.ana)).await.unwrap();
    let gone = repo.create(condition(o.carlos)).await.unwrap();
    repo.delete(gone.id).await.unwrap();

    let id = |h: &HealthData| h.id;
    let all = repo.for_patient(o.carlos, None, PageRequest::default()).await.unwrap();
    assert_eq!(ids(&all.items, id), vec![med.id, cond.id], "active, not deleted, newest first");
    let meds = repo.for_patient(o.carlos, Some(HealthDataType::Medication), PageRequest::default()).await.unwrap();
    assert_eq!(ids(&meds.items, id), vec![med.id]);
    let none = repo.for_patient(o.carlos, Some(HealthDataType::Allergy), PageRequest::default()).await.unwrap();
    assert!(none.items.is_empty(), "inactive records are left out");
    let first = repo.for_patient(o.ana, None, PageRequest::first(1)).await.unwrap();
    assert_eq!((ids(&first.items, id), first.next), (vec![anas.id], None));
    let page1 = repo.for_patient(o.carlos, None, PageRequest::first(1)).await.unwrap();
    let page2 = repo.for_patient(o.carlos, None, PageRequest::after(page1.next.unwrap(), 1)).await.unwrap();
    assert_eq!((ids(&page1.items, id), ids(&page2.items, id)), (vec![med.id], vec![cond.id]));

    let before = Utc::now();
    let verified = repo.verify(cond.id, o.doctor).await.unwrap();
    assert!(verified.is_verified && verified.verified_by_provider_id == Some(o.doctor));
    assert!(within(verified.verified_at, before));
    assert_eq!(repo.get(cond.id).await.unwrap(), verified);
    assert_err(repo.verify(gone.id, o.doctor).await, "not_found", None);
    assert_err(repo.verify(Uuid::now_v7(), o.doctor).await, "not_found", None);
}

// ---------------------------------------------------------------------------------------------------
// Documents

#[backends]
async fn document_round_trip_update_and_soft_delete(tdb: TestDb) {
    let o = org(&tdb, "Hospital Albert Sabin").await;
    let repo = o.scope.documents();
    let created = repo.create(blood_test(o.carlos)).await.unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), created, "{:?}", tdb.backend);
    assert_eq!(created.mime_type, "application/pdf", "normalized");
    assert_eq!(created.original_name.expose().unwrap(), "Exame de Sangue - Carlos Mendes.pdf");
    assert_eq!(created.health_keywords.as_ref().unwrap().expose().unwrap(), &["hemograma", "glicose", "colesterol"]);
    assert_eq!(created.extracted_data.as_ref().unwrap().expose().unwrap()[0]["name"], "Glicose");
    assert_eq!(created.storage_key_ref.as_deref(), Some("kms:alias/austa-documentos"));
    assert!(created.is_active && created.uploaded_at == created.created_at);

    let updated = repo
        .update(
            created.id,
            DocumentPatch {
                download_url: Some(None),
                tags: Some(vec!["exame".into(), "laboratório".into()]),
                ocr_confidence: Some(None),
                storage_key_ref: Some(Some("vault:transit/keys/documentos#2".into())),
                archived_at: Some(Some(Utc::now())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), updated);
    assert!(updated.download_url.is_none() && updated.ocr_confidence.is_none(), "cleared");
    assert_eq!(updated.tags, vec!["exame", "laboratório"]);
    assert!(updated.updated_at >= created.updated_at);

    // Failed validation in update writes nothing: a raw 256-bit key instead of a reference, OCR text
    // without OCR, an encrypted file losing its flag while keeping its key reference.
    let key = format!("kms:{}", "9f".repeat(32));
    let patches = [
        (DocumentPatch { storage_key_ref: Some(Some(key)), ..Default::default() }, "storage_key_ref"),
        (DocumentPatch { has_ocr: Some(false), ..Default::default() }, "has_ocr"),
        (DocumentPatch { is_encrypted: Some(false), ..Default::default() }, "storage_key_ref"),
        (DocumentPatch { mime_type: Some("pdf".into()), ..Default::default() }, "mime_type"),
    ];
    for (patch, field) in patches {
        assert_err(repo.update(created.id, patch).await, "validation", Some(field));
    }
    assert_eq!(repo.get(created.id).await.unwrap(), updated);

    repo.delete(created.id).await.unwrap();
    assert_err(repo.get(created.id).await, "not_found", None);
    assert!(repo.list(PageRequest::default()).await.unwrap().items.is_empty());
    assert!(repo.for_patient(o.carlos, PageRequest::default()).await.unwrap().items.is_empty());
}

#[backends]
async fn document_validation_names_the_field_and_writes_nothing(tdb: TestDb) {
    let o = org(&tdb, "Laboratório Central").await;
    let repo = o.scope.documents();
    let base = || blood_test(o.carlos);
    let cases: Vec<(NewDocument, &str)> = vec![
        (NewDocument { mime_type: "application pdf".into(), ..base() }, "mime_type"),
        (NewDocument { mime_type: "text/plain; charset=utf-8".into(), ..base() }, "mime_type"),
        (NewDocument { size_bytes: -1, ..base() }, "size_bytes"),
        (NewDocument { filename: "  ".into(), ..base() }, "filename"),
        (NewDocument { ocr_confidence: Some(1.5), ..base() }, "ocr_confidence"),
        (NewDocument { has_ocr: false, ..base() }, "has_ocr"),
        (NewDocument { tags: vec![String::new()], ..base() }, "tags"),
        (NewDocument { health_keywords: Some(Sensitive::new(vec!["".into()])), ..base() }, "health_keywords"),
        (
            NewDocument { storage_key_ref: Some("3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()), ..base() },
            "storage_key_ref",
        ),
        (NewDocument { storage_key_ref: Some("x".repeat(201)), ..base() }, "storage_key_ref"),
        (NewDocument { is_encrypted: false, ..base() }, "storage_key_ref"),
        (NewDocument { retention_until: Some(Utc::now() - Duration::days(1)), ..base() }, "retention_until"),
        (NewDocument { extracted_data: Some(Sensitive::new(serde_json::Value::Null)), ..base() }, "extracted_data"),
    ];
    for (new, field) in cases {
        assert_err(repo.create(new).await, "validation", Some(field));
    }
    assert_eq!(count(&tdb, "documents").await, 0);
}

#[backends]
async fn documents_for_patient(tdb: TestDb) {
    let o = org(&tdb, "Hospital Alemão Oswaldo Cruz").await;
    let repo = o.scope.documents();
    let exam = repo.create(blood_test(o.carlos)).await.unwrap();
    let rx = repo.create(prescription(o.carlos, "carlos")).await.unwrap();
    let anas = repo.create(prescription(o.ana, "ana")).await.unwrap();
    let inactive = repo.create(prescription(o.carlos, "antiga")).await.unwrap();
    repo.update(inactive.id, DocumentPatch { is_active: Some(false), ..Default::default() }).await.unwrap();
    let id = |d: &Document| d.id;
    let carlos = repo.for_patient(o.carlos, PageRequest::default()).await.unwrap();
    assert_eq!(ids(&carlos.items, id), vec![rx.id, exam.id]);
    let ana = repo.for_patient(o.ana, PageRequest::default()).await.unwrap();
    assert_eq!(ids(&ana.items, id), vec![anas.id]);
}

// ---------------------------------------------------------------------------------------------------
// Authorizations

#[backends]
async fn authorization_round_trip_update_and_soft_delete(tdb: TestDb) {
    let o = org(&tdb, "Hospital do Coração").await;
    let repo = o.scope.authorizations();
    let hd = o.scope.health_data().create(condition(o.carlos)).await.unwrap();
    let created = repo
        .create(NewAuthorization { health_data_id: Some(hd.id), ..catheterization(o.carlos, o.doctor) })
        .await
        .unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), created, "{:?}", tdb.backend);
    assert_eq!(created.status, AuthorizationStatus::Pending, "new authorizations are pending");
    // An authorization cites its own patient's health data, never another patient's.
    let anas = o.scope.health_data().create(condition(o.ana)).await.unwrap();
    let wrong = NewAuthorization { health_data_id: Some(anas.id), ..catheterization(o.carlos, o.doctor) };
    assert_reference_err(&tdb, repo.create(wrong).await, "health_data_id");
    assert_eq!(created.procedure_name.expose().unwrap(), "Cateterismo cardíaco");
    assert_eq!(
        created.clinical_notes.as_ref().unwrap().expose().unwrap(),
        "PA 160/100 mmHg\nECG com infradesnivelamento de ST em V4-V6",
        "CRLF normalized"
    );
    assert_eq!(created.related_conditions.as_ref().unwrap().expose().unwrap().len(), 2);
    assert_eq!((created.requested_by_provider_id, created.health_data_id), (o.doctor, Some(hd.id)));
    assert_eq!((created.reviewed_by_provider_id, created.approved_at), (None, None));
    assert!(created.requested_at == created.created_at);

    let defaults = repo
        .create(NewAuthorization::new(AuthorizationType::Diagnostic, "Ecocardiograma", o.ana, o.doctor))
        .await
        .unwrap();
    assert_eq!((defaults.priority, defaults.urgency_level), (Priority::Normal, UrgencyLevel::Low));

    let until = created.valid_from.unwrap() + Duration::days(60);
    let updated = repo
        .update(
            created.id,
            AuthorizationPatch {
                description: Some(None),
                health_data_id: Some(None),
                priority: Some(Priority::Urgent),
                valid_until: Some(Some(until)),
                clinical_notes: Some(Some("Dor torácica em repouso há 2 dias".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(repo.get(created.id).await.unwrap(), updated);
    assert!(updated.description.is_none() && updated.health_data_id.is_none(), "cleared");
    assert_eq!((updated.priority, updated.valid_until), (Priority::Urgent, Some(until)));
    assert_eq!(updated.status, AuthorizationStatus::Pending, "a patch never changes the status");

    let backwards = AuthorizationPatch {
        valid_until: Some(Some(created.valid_from.unwrap() - Duration::days(1))),
        ..Default::default()
    };
    assert_err(repo.update(created.id, backwards).await, "validation", Some("valid_until"));
    let blank = AuthorizationPatch { procedure_name: Some(" ".into()), ..Default::default() };
    assert_err(repo.update(created.id, blank).await, "validation", Some("procedure_name"));
    assert_eq!(repo.get(created.id).await.unwrap(), updated);

    repo.delete(created.id).await.unwrap();
    assert_err(repo.get(created.id).await, "not_found", None);
    let left = repo.list(PageRequest::default()).await.unwrap();
    assert_eq!(ids(&left.items, |a: &Authorization| a.id), vec![defaults.id]);
}

#[backends]
async fn authorization_validation_names_the_field_and_writes_nothing(tdb: TestDb) {
    let o = org(&tdb, "Hospital Sírio-Libanês").await;
    let repo = o.scope.authorizations();
    let base = || catheterization(o.carlos, o.doctor);
    let now = Utc::now();
    let cases: Vec<(NewAuthorization, &str)> = vec![
        (NewAuthorization { procedure_name: "".into(), ..base() }, "procedure_name"),
        (NewAuthorization { procedure_code: Some("x".repeat(51).into()), ..base() }, "procedure_code"),
        (
            NewAuthorization { valid_from: Some(now), valid_until: Some(now - Duration::days(1)), ..base() },
            "valid_until",
        ),
        (
            NewAuthorization { related_conditions: Some(Sensitive::new(vec![" ".into()])), ..base() },
            "related_conditions",
        ),
        (NewAuthorization { justification: Some("a\u{0}b".into()), ..base() }, "justification"),
        (NewAuthorization { tasy_reference_id: Some(String::new()), ..base() }, "tasy_reference_id"),
    ];
    for (new, field) in cases {
        assert_err(repo.create(new).await, "validation", Some(field));
    }
    // Missing references are validation errors too (the database's foreign keys).
    let unknown_requester = NewAuthorization { provider_id: None, ..catheterization(o.carlos, Uuid::now_v7()) };
    assert_reference_err(&tdb, repo.create(unknown_requester).await, "requested_by_provider_id");
    assert_reference_err(&tdb, repo.create(catheterization(Uuid::now_v7(), o.doctor)).await, "patient_id");
    assert_eq!(count(&tdb, "authorizations").await, 0);
}

#[backends]
async fn authorizations_for_patient_by_status(tdb: TestDb) {
    let o = org(&tdb, "Hospital Israelita").await;
    let repo = o.scope.authorizations();
    let first = repo.create(catheterization(o.carlos, o.doctor)).await.unwrap();
    let second = repo
        .create(NewAuthorization::new(AuthorizationType::Diagnostic, "Holter 24h", o.carlos, o.doctor))
        .await
        .unwrap();
    let anas =
        repo.create(NewAuthorization::new(AuthorizationType::Therapy, "Fisioterapia", o.ana, o.doctor)).await.unwrap();
    // Transitions are a later feature: approve one directly in the database.
    tdb.raw_execute(&format!("UPDATE authorizations SET status = 'APPROVED' WHERE id = '{}'", first.id)).await;

    let id = |a: &Authorization| a.id;
    let q = |patient, status| repo.for_patient(patient, status, PageRequest::default());
    assert_eq!(ids(&q(o.carlos, None).await.unwrap().items, id), vec![second.id, first.id]);
    assert_eq!(ids(&q(o.carlos, Some(AuthorizationStatus::Pending)).await.unwrap().items, id), vec![second.id]);
    let approved = q(o.carlos, Some(AuthorizationStatus::Approved)).await.unwrap();
    assert_eq!(ids(&approved.items, id), vec![first.id]);
    assert_eq!(approved.items[0].status, AuthorizationStatus::Approved);
    assert!(q(o.carlos, Some(AuthorizationStatus::Denied)).await.unwrap().items.is_empty());
    assert_eq!(ids(&q(o.ana, None).await.unwrap().items, id), vec![anas.id]);
}

#[backends]
async fn authorization_attachments_reference_documents(tdb: TestDb) {
    let o = org(&tdb, "Hospital Beneficência").await;
    let auths = o.scope.authorizations();
    let docs = o.scope.documents();
    let auth = auths.create(catheterization(o.carlos, o.doctor)).await.unwrap();
    let exam = docs.create(blood_test(o.carlos)).await.unwrap();
    let rx = docs.create(prescription(o.carlos, "carlos")).await.unwrap();
    let anas = docs.create(prescription(o.ana, "ana")).await.unwrap();

    assert!(auths.attachments(auth.id).await.unwrap().is_empty());
    auths.attach_document(auth.id, exam.id).await.unwrap();
    auths.attach_document(auth.id, rx.id).await.unwrap();
    auths.attach_document(auth.id, exam.id).await.unwrap(); // idempotent
    assert_eq!(auths.attachments(auth.id).await.unwrap(), vec![exam.id, rx.id]);
    assert!(auths.get(auth.id).await.unwrap().updated_at > auth.updated_at, "attaching touches the authorization");

    assert_err(auths.attach_document(auth.id, anas.id).await, "validation", Some("document_id"));
    assert_err(auths.attach_document(auth.id, Uuid::now_v7()).await, "validation", Some("document_id"));
    assert_err(auths.attach_document(Uuid::now_v7(), exam.id).await, "not_found", None);
    assert_err(auths.attachments(Uuid::now_v7()).await, "not_found", None);

    auths.detach_document(auth.id, exam.id).await.unwrap();
    assert_eq!(auths.attachments(auth.id).await.unwrap(), vec![rx.id]);
    assert_err(auths.detach_document(auth.id, exam.id).await, "not_found", None);
    docs.delete(rx.id).await.unwrap();
    assert!(auths.attachments(auth.id).await.unwrap().is_empty(), "deleted documents are left out");
    assert_err(auths.attach_document(auth.id, rx.id).await, "validation", Some("document_id"));
    auths.delete(auth.id).await.unwrap();
    assert_err(auths.attachments(auth.id).await, "not_found", None);
    assert_eq!(count(&tdb, "authorization_attachments").await, 1);
}

// ---------------------------------------------------------------------------------------------------
// All three

#[backends]
async fn lists_paginate_newest_first(tdb: TestDb) {
    let o = org(&tdb, "Hospital Municipal").await;
    let (mut hd, mut docs, mut auths) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        hd.push(o.scope.health_data().create(condition(o.carlos)).await.unwrap().id);
        docs.push(o.scope.documents().create(prescription(o.carlos, &format!("n{i}"))).await.unwrap().id);
        auths.push(o.scope.authorizations().create(catheterization(o.ana, o.doctor)).await.unwrap().id);
    }
    for v in [&mut hd, &mut docs, &mut auths] {
        v.reverse();
    }
    assert_eq!(paged_ids(o.scope.health_data(), |m: &HealthData| m.id).await, hd);
    assert_eq!(paged_ids(o.scope.documents(), |m: &Document| m.id).await, docs);
    assert_eq!(paged_ids(o.scope.authorizations(), |m: &Authorization| m.id).await, auths);
}

#[backends]
async fn cross_organization_rows_and_references_are_invisible(tdb: TestDb) {
    let a = org(&tdb, "Hospital A").await;
    let b = org(&tdb, "Clínica B").await;
    let b_hd = b.scope.health_data().create(medication(b.carlos, b.doctor)).await.unwrap();
    let b_doc = b.scope.documents().create(blood_test(b.carlos)).await.unwrap();
    let b_auth = b.scope.authorizations().create(catheterization(b.carlos, b.doctor)).await.unwrap();
    b.scope.authorizations().attach_document(b_auth.id, b_doc.id).await.unwrap();
    let b_auth = b.scope.authorizations().get(b_auth.id).await.unwrap();
    let a_hd = a.scope.health_data().create(condition(a.carlos)).await.unwrap();
    let a_doc = a.scope.documents().create(blood_test(a.carlos)).await.unwrap();
    let a_auth = a.scope.authorizations().create(catheterization(a.carlos, a.doctor)).await.unwrap();

    // A's scope handed B's ids: not found, for every operation.
    let (hd, docs, auths) = (a.scope.health_data(), a.scope.documents(), a.scope.authorizations());
    assert_err(hd.get(b_hd.id).await, "not_found", None);
    assert_err(
        hd.update(b_hd.id, HealthDataPatch { is_active: Some(false), ..Default::default() }).await,
        "not_found",
        None,
    );
    assert_err(hd.verify(b_hd.id, a.doctor).await, "not_found", None);
    assert_err(hd.delete(b_hd.id).await, "not_found", None);
    assert_err(docs.get(b_doc.id).await, "not_found", None);
    assert_err(
        docs.update(b_doc.id, DocumentPatch { is_active: Some(false), ..Default::default() }).await,
        "not_found",
        None,
    );
    assert_err(docs.delete(b_doc.id).await, "not_found", None);
    assert_err(auths.get(b_auth.id).await, "not_found", None);
    assert_err(
        auths.update(b_auth.id, AuthorizationPatch { priority: Some(Priority::Low), ..Default::default() }).await,
        "not_found",
        None,
    );
    assert_err(auths.delete(b_auth.id).await, "not_found", None);
    assert_err(auths.attachments(b_auth.id).await, "not_found", None);
    assert_err(auths.attach_document(b_auth.id, a_doc.id).await, "not_found", None);
    assert_err(auths.detach_document(b_auth.id, b_doc.id).await, "not_found", None);

    // B's rows never appear in A's listings or domain queries.
    let all = PageRequest::default;
    assert_eq!(ids(&hd.list(all()).await.unwrap().items, |m: &HealthData| m.id), vec![a_hd.id]);
    assert_eq!(ids(&docs.list(all()).await.unwrap().items, |m: &Document| m.id), vec![a_doc.id]);
    assert_eq!(ids(&auths.list(all()).await.unwrap().items, |m: &Authorization| m.id), vec![a_auth.id]);
    assert!(hd.for_patient(b.carlos, None, all()).await.unwrap().items.is_empty());
    assert!(docs.for_patient(b.carlos, all()).await.unwrap().items.is_empty());
    assert!(auths.for_patient(b.carlos, None, all()).await.unwrap().items.is_empty());

    // References from A to B's patient, providers, health data and documents: validation, nothing written.
    let counts =
        [count(&tdb, "health_data").await, count(&tdb, "documents").await, count(&tdb, "authorizations").await];
    assert_reference_err(&tdb, hd.create(condition(b.carlos)).await, "patient_id");
    assert_reference_err(&tdb, hd.create(medication(a.carlos, b.doctor)).await, "verified_by_provider_id");
    assert_reference_err(&tdb, docs.create(blood_test(b.carlos)).await, "patient_id");
    assert_reference_err(&tdb, auths.create(catheterization(b.carlos, a.doctor)).await, "patient_id");
    let b_requester = NewAuthorization { provider_id: None, ..catheterization(a.carlos, b.doctor) };
    assert_reference_err(&tdb, auths.create(b_requester).await, "requested_by_provider_id");
    let b_record = NewAuthorization { health_data_id: Some(b_hd.id), ..catheterization(a.carlos, a.doctor) };
    assert_reference_err(&tdb, auths.create(b_record).await, "health_data_id");
    let after = [count(&tdb, "health_data").await, count(&tdb, "documents").await, count(&tdb, "authorizations").await];
    assert_eq!(after, counts, "nothing written");

    // ... and through updates: the row stays as it was.
    assert_reference_err(&tdb, hd.verify(a_hd.id, b.doctor).await, "verified_by_provider_id");
    assert_eq!(hd.get(a_hd.id).await.unwrap(), a_hd);
    let b_performer = AuthorizationPatch { provider_id: Some(Some(b.doctor)), ..Default::default() };
    assert_reference_err(&tdb, auths.update(a_auth.id, b_performer).await, "provider_id");
    assert_eq!(auths.get(a_auth.id).await.unwrap(), a_auth);

    // Attaching B's document to A's authorization fails, and the composite foreign key refuses it
    // even to raw SQL.
    assert_err(auths.attach_document(a_auth.id, b_doc.id).await, "validation", Some("document_id"));
    assert!(auths.attachments(a_auth.id).await.unwrap().is_empty());
    assert_raw_rejected(
        &tdb,
        &format!(
            "INSERT INTO authorization_attachments (organization_id, authorization_id, document_id, created_at) \
             VALUES ('{}', '{}', '{}', '2024-01-15T10:00:00.000000Z')",
            a.scope.organization_id(),
            a_auth.id,
            b_doc.id
        ),
    )
    .await;

    // B's rows are unchanged.
    assert_eq!(b.scope.health_data().get(b_hd.id).await.unwrap(), b_hd);
    assert_eq!(b.scope.documents().get(b_doc.id).await.unwrap(), b_doc);
    assert_eq!(b.scope.authorizations().get(b_auth.id).await.unwrap(), b_auth);
    assert_eq!(b.scope.authorizations().attachments(b_auth.id).await.unwrap(), vec![b_doc.id]);
}

#[backends]
async fn encrypted_columns_hold_ciphertext_and_debug_is_redacted(tdb: TestDb) {
    let o = org(&tdb, "Hospital Universitário").await;
    let hd = o.scope.health_data().create(full_health_data(o.carlos)).await.unwrap();
    for (column, secret) in [
        ("conditions", "Hipertens"),
        ("medications", "Losartana"),
        ("allergies", "Penicilina"),
        ("symptoms", "Cefaleia"),
        ("vital_signs", "160/100"),
        ("lab_results", "Creatinina"),
    ] {
        assert_sealed(&tdb, "health_data", column, hd.id, secret).await;
    }
    assert_redacted(&hd, &["Hipertens", "I10", "Losartana", "Penicilina", "Cefaleia", "160/100", "Creatinina"]);

    let doc = o.scope.documents().create(blood_test(o.carlos)).await.unwrap();
    let doc_secrets = [
        ("filename", "exame_sangue_carlos"),
        ("original_name", "Carlos Mendes"),
        ("storage_path", "carlos-mendes"),
        ("download_url", "carlos-mendes"),
        ("thumbnail_url", "carlos-mendes"),
        ("ocr_text", "Hemograma completo"),
        ("extracted_data", "Glicose"),
        ("health_keywords", "hemograma"),
    ];
    for (column, secret) in doc_secrets {
        assert_sealed(&tdb, "documents", column, doc.id, secret).await;
    }
    assert_redacted(&doc, &doc_secrets.map(|(_, s)| s));

    let auth = o.scope.authorizations().create(catheterization(o.carlos, o.doctor)).await.unwrap();
    let auth_secrets = [
        ("procedure_name", "Cateterismo"),
        ("procedure_code", "30911052"),
        ("description", "dor torácica"),
        ("related_conditions", "Angina"),
        ("justification", "teste ergométrico"),
        ("clinical_notes", "infradesnivelamento"),
    ];
    for (column, secret) in auth_secrets {
        assert_sealed(&tdb, "authorizations", column, auth.id, secret).await;
    }
    assert_redacted(&auth, &auth_secrets.map(|(_, s)| s));
    // The new-input types are redacted too.
    assert_redacted(&catheterization(o.carlos, o.doctor), &auth_secrets.map(|(_, s)| s));
    assert_redacted(&blood_test(o.carlos), &doc_secrets.map(|(_, s)| s));
}
