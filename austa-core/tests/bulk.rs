//! The bulk path (`Repo::create_many`): a batch is validated whole, written in one transaction with one
//! audit event, and reported row by row when any row fails, with nothing written. Every test runs on
//! SQLite and PostgreSQL.

use austa_core::model::{
    AuditAction, EntityType, HealthCategory, HealthData, HealthDataType, NewHealthData, NewPatient, NewTasyIntegration,
    Patient,
};
use austa_core::{input, Actor, Error};
use serde_json::json;

use crate::support::TestDb;
use austa_macros::backends;

fn patient(i: usize) -> NewPatient {
    NewPatient {
        first_name: format!("Paciente{i}").into(),
        last_name: "Bulk".into(),
        phone: format!("+55119{:08}", 70_000_000 + i).into(),
        ..Default::default()
    }
}

fn lab(patient: uuid::Uuid, i: i64) -> NewHealthData {
    NewHealthData {
        lab_results: Some(json!({"glucose": {"value": 80 + i, "unit": "mg/dL"}}).into()),
        ..NewHealthData::new(patient, HealthDataType::LabResult, HealthCategory::Diabetes)
    }
}

async fn counts(tdb: &TestDb, table: &str) -> (i64, i64) {
    let rows = tdb.raw_i64(&format!("SELECT COUNT(*) FROM {table}")).await;
    let events = tdb.raw_i64("SELECT COUNT(*) FROM audit_logs").await;
    (rows, events)
}

#[backends]
async fn a_batch_is_written_in_one_transaction_with_one_event(tdb: TestDb) {
    let scope = tdb.org("Bulk").await;
    let org = scope.organization_id();
    let integration = NewTasyIntegration {
        tasy_instance_url: "https://tasy.hospital.example".into(),
        api_key: "tasy-api-key-1234".into(),
        field_mapping: json!({"health_data": "EXAME_LAB"}),
        ..Default::default()
    };
    scope.tasy_integrations().create(integration).await.unwrap();
    let patients = scope.repo::<Patient>().create_many((0..120).map(patient)).await.unwrap();
    assert_eq!(patients.len(), 120);
    let found = scope.patients().find_by_phone("+5511970000007").await.unwrap().unwrap();
    assert_eq!(found.id, patients[7].id);
    assert_eq!(found.first_name.expose().unwrap(), "Paciente7");

    let (rows_before, events_before) = counts(&tdb, "health_data").await;
    let news = (0..1200).map(|i| lab(patients[i % 120].id, i as i64));
    let stored = scope.repo::<HealthData>().create_many(news).await.unwrap();
    assert_eq!(stored.len(), 1200);
    let (rows, events) = counts(&tdb, "health_data").await;
    assert_eq!((rows - rows_before, events - events_before), (1200, 1), "{:?}", tdb.backend);
    let event = scope.audit_logs().list(austa_core::repo::PageRequest::first(1)).await.unwrap();
    let event = &event.items[0];
    assert_eq!(event.action, AuditAction::Create);
    assert_eq!(event.record_count, 1200);
    assert_eq!(event.record_ids.len(), 1000, "ids listed up to 1,000");
    assert_eq!(event.patient_ids.len(), 120);
    assert!(scope.audit().verify().await.unwrap().is_intact());
    let back = scope.health_data().get(stored[1199].id).await.unwrap();
    assert_eq!(back.lab_results.unwrap().expose().unwrap()["glucose"]["value"], json!(80 + 1199));
    let outbox = tdb
        .raw_i64(&format!(
            "SELECT COUNT(DISTINCT entity_id) FROM tasy_outbox WHERE organization_id = '{org}' \
             AND entity_type = 'HEALTH_DATA' AND status = 'PENDING'"
        ))
        .await;
    assert_eq!(outbox, 1200, "every health data row is queued for Tasy");
    assert!(scope.repo::<HealthData>().create_many(Vec::new()).await.unwrap().is_empty());
}

#[backends]
async fn failed_rows_are_reported_by_position_and_nothing_is_written(tdb: TestDb) {
    let scope = tdb.org("Bulk errors").await;
    let ana = scope.patients().create(patient(1)).await.unwrap().id;
    let (rows_before, events_before) = counts(&tdb, "health_data").await;

    // Row 1: no payload at all; row 3: a patient of no organization.
    let news = vec![
        lab(ana, 1),
        NewHealthData::new(ana, HealthDataType::LabResult, HealthCategory::General),
        lab(ana, 2),
        lab(uuid::Uuid::now_v7(), 3),
    ];
    let Err(Error::Batch(errors)) = scope.repo::<HealthData>().create_many(news).await else {
        panic!("expected a batch error")
    };
    let rows: Vec<usize> = errors.iter().map(|e| e.row).collect();
    assert_eq!(rows, vec![1], "validation errors are reported before any I/O");
    assert_eq!(errors[0].error.code(), "validation");

    let news = vec![lab(ana, 1), lab(uuid::Uuid::now_v7(), 3), lab(ana, 2), lab(uuid::Uuid::now_v7(), 4)];
    let Err(Error::Batch(errors)) = scope.repo::<HealthData>().create_many(news).await else {
        panic!("expected a batch error")
    };
    let found: Vec<(usize, Option<&str>)> = errors.iter().map(|e| (e.row, e.error.field())).collect();
    assert_eq!(found, vec![(1, Some("patient_id")), (3, Some("patient_id"))]);
    assert_eq!(counts(&tdb, "health_data").await, (rows_before, events_before), "{:?}", tdb.backend);

    // Data input: the row and field of a shape error come from the input layer.
    let e = input::from_json::<NewHealthData>(json!({"patient_id": ana.to_string(), "data_type": "LAB"}));
    assert_eq!(e.unwrap_err().field(), Some("data_type"));
}

#[backends]
async fn a_duplicate_identifier_fails_the_whole_batch(tdb: TestDb) {
    let scope = tdb.org("Bulk conflict").await;
    scope.patients().create(patient(5)).await.unwrap();
    let before = counts(&tdb, "patients").await;
    let Err(Error::Batch(rows)) = scope.repo::<Patient>().create_many([patient(4), patient(5), patient(6)]).await
    else {
        panic!("a taken phone is reported by row")
    };
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].row, rows[0].error.code(), rows[0].error.field()), (1, "conflict", Some("phone")));
    let Err(Error::Batch(rows)) = scope.repo::<Patient>().create_many([patient(7), patient(8), patient(7)]).await
    else {
        panic!("a phone repeated in the batch is reported by row")
    };
    assert_eq!((rows.len(), rows[0].row, rows[0].error.field()), (1, 2, Some("phone")));
    assert_eq!(counts(&tdb, "patients").await, before);
    assert!(scope.patients().find_by_phone("+5511970000004").await.unwrap().is_none());
}

#[backends]
async fn a_refused_batch_is_recorded_once_and_writes_nothing(tdb: TestDb) {
    let scope = tdb.org("Bulk refusal").await;
    let (ana, bia) =
        (scope.patients().create(patient(1)).await.unwrap().id, scope.patients().create(patient(2)).await.unwrap().id);
    let as_ana = tdb.db.scope(scope.organization_id(), Actor::patient(ana)).await.unwrap();
    let denied_before = tdb.raw_i64("SELECT COUNT(*) FROM audit_logs WHERE action = 'ACCESS_DENIED'").await;
    let before = counts(&tdb, "health_data").await;
    let Err(Error::Batch(errors)) = as_ana.repo::<HealthData>().create_many([lab(ana, 1), lab(bia, 2)]).await else {
        panic!("expected a batch error")
    };
    // Patients may not create health data at all: both rows are refused, the refusal recorded once.
    let refused: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.error.code())).collect();
    assert_eq!(refused, vec![(0, "permission_denied"), (1, "permission_denied")]);
    let denied = tdb.raw_i64("SELECT COUNT(*) FROM audit_logs WHERE action = 'ACCESS_DENIED'").await;
    assert_eq!(denied - denied_before, 1);
    assert_eq!(counts(&tdb, "health_data").await.0, before.0);
}

#[backends]
async fn a_batch_of_more_patients_than_an_event_lists_is_in_every_patients_access_report(tdb: TestDb) {
    let scope = tdb.org("Bulk Grande").await;
    let events_before = tdb.raw_i64("SELECT COUNT(*) FROM audit_logs").await;
    // 1,010: the second part lists 10 patients, fewer than make an event a bulk one by itself.
    let patients = scope.repo::<Patient>().create_many((0..1010).map(patient)).await.unwrap();
    assert_eq!(tdb.raw_i64("SELECT COUNT(*) FROM audit_logs").await - events_before, 2, "one event per 1,000 patients");
    let parts = scope.audit_logs().list(austa_core::repo::PageRequest::first(5)).await.unwrap();
    let parts: Vec<_> = parts
        .items
        .iter()
        .filter(|e| e.action == AuditAction::Create && e.entity_type == EntityType::Patient)
        .collect();
    assert_eq!(parts.len(), 2);
    let listed: usize = parts.iter().map(|e| e.patient_ids.len()).sum();
    assert_eq!(listed, 1010, "the parts list every patient once");
    for part in &parts {
        assert_eq!(part.record_count, 1010, "each part counts the operation");
        assert!(part.record_ids.is_empty() && part.patient_id.is_none(), "no part shows one patient others' rows");
        assert_eq!(part.risk_level, parts[0].risk_level, "each part has the operation's risk");
    }
    let (start, end) =
        (chrono::Utc::now() - chrono::Duration::minutes(5), chrono::Utc::now() + chrono::Duration::minutes(5));
    for p in [&patients[0], &patients[999], &patients[1009]] {
        let report =
            scope.audit().access_report(p.id, start, end, austa_core::repo::PageRequest::first(10)).await.unwrap();
        assert!(report.items.iter().any(|e| e.action == AuditAction::Create), "patient {} is in the report", p.id);
    }
    assert!(scope.audit().verify().await.unwrap().is_intact());
}
