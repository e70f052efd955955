//! The transactional outbox towards Tasy, on every available backend: changes of health data and
//! authorizations queue a row in their own transaction (only with an active integration, one pending
//! row per entity), a worker claims with a lease, completes or fails with backoff, crashed workers'
//! rows are delivered again (at least once), concurrent workers never share a row, rows die after the
//! attempt limit.

use std::time::Duration;

use austa_core::crypto::Sensitive;
use austa_core::model::{
    EntityType, HealthCategory, HealthDataPatch, HealthDataType, NewHealthData, NewPatient, NewTasyIntegration,
};
use austa_core::repo::tasy_outbox::{backoff, OutboxOperation, OutboxStatus, MAX_ATTEMPTS};
use austa_core::{Actor, Scope};
use serde_json::json;
use uuid::Uuid;

use crate::support::TestDb;
use austa_macros::backends;

async fn patient(scope: &Scope, phone: &str) -> Uuid {
    let new =
        NewPatient { first_name: "Olga".into(), last_name: "Prado".into(), phone: phone.into(), ..Default::default() };
    scope.patients().create(new).await.unwrap().id
}

fn vitals(patient: Uuid) -> NewHealthData {
    NewHealthData {
        vital_signs: Some(Sensitive::new(json!({"systolic": 128, "diastolic": 82}))),
        ..NewHealthData::new(patient, HealthDataType::VitalSign, HealthCategory::Cardiology)
    }
}

async fn connect(scope: &Scope) {
    let new = NewTasyIntegration {
        tasy_instance_url: "https://tasy.hospital-exemplo.com.br/api".into(),
        api_key: "tasy-sk-outbox-test".into(),
        field_mapping: json!({}),
        ..Default::default()
    };
    scope.tasy_integrations().create(new).await.unwrap();
}

async fn outbox_rows(tdb: &TestDb, scope: &Scope) -> i64 {
    tdb.raw_i64(&format!("SELECT count(*) FROM tasy_outbox WHERE organization_id = '{}'", scope.organization_id()))
        .await
}

async fn worker(tdb: &TestDb, scope: &Scope) -> Scope {
    tdb.db.scope(scope.organization_id(), Actor::system("tasy-sync")).await.unwrap()
}

#[backends]
async fn changes_queue_in_their_transaction_only_with_an_active_integration(tdb: TestDb) {
    let scope = tdb.org("Hospital Sem Tasy").await;
    let p = patient(&scope, "+5511955550001").await;
    scope.health_data().create(vitals(p)).await.unwrap();
    assert_eq!(outbox_rows(&tdb, &scope).await, 0, "no integration, nothing queued");

    connect(&scope).await;
    let h = scope.health_data().create(vitals(p)).await.unwrap();
    assert_eq!(outbox_rows(&tdb, &scope).await, 1);
    // A second change while the first is pending collapses into it.
    let patch = HealthDataPatch {
        vital_signs: Some(Some(Sensitive::new(json!({"systolic": 131, "diastolic": 84})))),
        ..Default::default()
    };
    scope.health_data().update(h.id, patch).await.unwrap();
    assert_eq!(outbox_rows(&tdb, &scope).await, 1);
    // A failed change queues nothing.
    let long_ago = chrono::DateTime::parse_from_rfc3339("1850-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let bad = NewHealthData { recorded_at: Some(long_ago), ..vitals(p) };
    assert_eq!(scope.health_data().create(bad).await.unwrap_err().code(), "validation");
    assert_eq!(outbox_rows(&tdb, &scope).await, 1);
    // A delete is its own operation.
    scope.health_data().delete(h.id).await.unwrap();
    let pending = worker(&tdb, &scope).await.tasy_outbox().list(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|i| i.entity_type == EntityType::HealthData && i.entity_id == h.id));
    assert_eq!(pending[1].operation, OutboxOperation::Delete);
}

#[backends]
async fn a_worker_claims_completes_and_retries_with_backoff(tdb: TestDb) {
    let scope = tdb.org("Hospital Fila Tasy").await;
    connect(&scope).await;
    let p = patient(&scope, "+5511955550002").await;
    for _ in 0..3 {
        scope.health_data().create(vitals(p)).await.unwrap();
    }
    let w = worker(&tdb, &scope).await;
    let batch = w.tasy_outbox().claim("worker-1", 2, Duration::from_secs(60)).await.unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|i| i.status == OutboxStatus::InFlight && i.attempts == 1));
    let done = w.tasy_outbox().complete(batch[0].id).await.unwrap();
    assert_eq!(done.status, OutboxStatus::Done);
    assert_eq!(w.tasy_outbox().complete(batch[0].id).await.unwrap_err().code(), "conflict");
    // A failure waits for its backoff before it can be claimed again.
    let message = w.tasy_outbox().fail(batch[1].id, "paciente Fulano rejeitado").await.unwrap_err();
    assert_eq!(message.field(), Some("error"), "codes only: ERP messages echo payloads");
    let failed = w.tasy_outbox().fail(batch[1].id, "HTTP_503").await.unwrap();
    assert_eq!((failed.status, failed.last_error.as_deref()), (OutboxStatus::Pending, Some("HTTP_503")));
    assert!(failed.available_at > chrono::Utc::now() + chrono::Duration::seconds(8));
    let next = w.tasy_outbox().claim("worker-1", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(next.len(), 1, "only the third row; the failed one waits");
    assert_eq!(backoff(1), Duration::from_secs(10));
    assert_eq!(backoff(3), Duration::from_secs(40));
    assert_eq!(backoff(30), Duration::from_secs(3600));

    // After the attempt limit the row is dead.
    let id = batch[1].id;
    let org = scope.organization_id();
    for _ in 1..MAX_ATTEMPTS {
        tdb.raw_script(&format!("UPDATE tasy_outbox SET available_at = '2000-01-01T00:00:00.000000Z' WHERE organization_id = '{org}' AND id = '{id}'")).await.unwrap();
        let claimed = w.tasy_outbox().claim("worker-1", 10, Duration::from_secs(60)).await.unwrap();
        assert!(claimed.iter().any(|i| i.id == id));
        w.tasy_outbox().fail(id, "HTTP_503").await.unwrap();
    }
    let dead = w.tasy_outbox().list(OutboxStatus::Dead, 10).await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, MAX_ATTEMPTS));

    // Patients and the WhatsApp webhook may not drain the outbox; the refusal is recorded.
    let webhook = tdb.db.scope(org, Actor::system("whatsapp-webhook")).await.unwrap();
    assert_eq!(
        webhook.tasy_outbox().claim("x", 1, Duration::from_secs(5)).await.unwrap_err().code(),
        "permission_denied"
    );
}

#[backends]
async fn a_crashed_worker_s_rows_are_delivered_again_and_workers_never_share_a_row(tdb: TestDb) {
    let scope = tdb.org("Hospital Queda").await;
    connect(&scope).await;
    let p = patient(&scope, "+5511955550003").await;
    for _ in 0..40 {
        scope.health_data().create(vitals(p)).await.unwrap();
    }
    let w = worker(&tdb, &scope).await;
    // Worker A claims with a short lease and "crashes" (never completes).
    let lost = w.tasy_outbox().claim("worker-a", 5, Duration::from_secs(1)).await.unwrap();
    assert_eq!(lost.len(), 5);
    // Meanwhile two workers drain the rest concurrently: no row is claimed twice.
    let mut tasks = Vec::new();
    for name in ["worker-b", "worker-c"] {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = w.tasy_outbox().claim(name, 4, Duration::from_secs(60)).await.unwrap();
                if batch.is_empty() {
                    break got;
                }
                for item in batch {
                    w.tasy_outbox().complete(item.id).await.unwrap();
                    got.push(item.id);
                }
            }
        }));
    }
    let mut delivered = Vec::new();
    for t in tasks {
        delivered.extend(t.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = delivered.iter().collect();
    assert_eq!((delivered.len(), unique.len()), (35, 35), "every row once, none twice");
    assert!(lost.iter().all(|i| !unique.contains(&i.id)), "leased rows wait for the lease");
    // After the lease, the crashed worker's rows are claimed again: at least once.
    tdb.clock.advance(chrono::TimeDelta::seconds(2));
    let again = w.tasy_outbox().claim("worker-b", 10, Duration::from_secs(60)).await.unwrap();
    let mut again_ids: Vec<_> = again.iter().map(|i| i.id).collect();
    let mut lost_ids: Vec<_> = lost.iter().map(|i| i.id).collect();
    again_ids.sort();
    lost_ids.sort();
    assert_eq!(again_ids, lost_ids);
    assert!(again.iter().all(|i| i.attempts == 2));
}
