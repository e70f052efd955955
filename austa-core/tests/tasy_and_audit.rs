//! Tasy integrations, Tasy sync runs and audit events, on every available backend: round trips,
//! updates, soft delete, pagination, the sync run lifecycle (and its single transaction), the
//! scheduler query, encryption of the API key, and isolation between organizations (audit events
//! included; the audit trail itself is tested in `audit.rs`).

use austa_core::crypto::Sensitive;
use austa_core::model::{
    AppEvent, EntityType, IntegrationStatus, NewTasyIntegration, NewTasySync, SyncDirection, SyncOutcome, SyncStatus,
    SyncType, TasyIntegration, TasyIntegrationPatch, TasySyncLog,
};
use austa_core::repo::{Model, PageRequest};
use austa_core::Scope;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_err, contains, Backend, TestDb};
use austa_macros::backends;

const API_KEY: &str = "tasy-sk-9f8e7d6c5b4a3210-hospital-sao-lucas";
const URL: &str = "https://tasy.hospitalsaolucas.com.br/api";

fn new_integration(url: &str) -> NewTasyIntegration {
    NewTasyIntegration {
        tasy_instance_url: url.into(),
        api_key: API_KEY.into(),
        client_id: Some("austa-whatsapp".into()),
        field_mapping: json!({"nm_pessoa_fisica": "first_name", "nr_telefone_celular": "phone"}),
        filters: Some(json!({"cd_estabelecimento": 1, "ie_situacao": "A"})),
        ..Default::default()
    }
}

async fn integration(scope: &Scope) -> TasyIntegration {
    scope.tasy_integrations().create(new_integration(URL)).await.unwrap()
}

fn sync(record_type: &str) -> NewTasySync {
    NewTasySync { sync_type: SyncType::Incremental, direction: SyncDirection::Import, record_type: record_type.into() }
}

/// Every row of `M` through pages of 2: each exactly once, newest first (reverse creation order).
async fn assert_paged<M: Model>(scope: &Scope, created: &[Uuid]) {
    let repo = scope.repo::<M>();
    let mut page = repo.list(PageRequest::first(2)).await.unwrap();
    let mut seen = Vec::new();
    loop {
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|m| m.id()));
        match page.next.take() {
            Some(cursor) => page = repo.list(PageRequest::after(cursor, 2)).await.unwrap(),
            None => break,
        }
    }
    let expected: Vec<Uuid> = created.iter().rev().copied().collect();
    assert_eq!(seen, expected);
}

fn ids<M: Model>(items: &[M]) -> Vec<Uuid> {
    items.iter().map(|m| m.id()).collect()
}

async fn integration_count(scope: &Scope) -> usize {
    scope.tasy_integrations().list(PageRequest::first(500)).await.unwrap().items.len()
}

#[backends]
async fn integration_round_trip_update_and_soft_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital São Lucas").await;
    let repo = scope.tasy_integrations();
    let created = repo.create(new_integration("HTTPS://Tasy.HospitalSaoLucas.COM.br/api/")).await.unwrap();
    assert_eq!(created.tasy_instance_url, URL);
    assert_eq!(created.api_key.expose().unwrap(), API_KEY);
    assert_eq!(created.api_version, "v1");
    assert_eq!(created.sync_interval_seconds, 300);
    assert!(created.is_active && created.sync_enabled);
    assert_eq!(created.status, IntegrationStatus::Active);
    assert_eq!((created.error_count, created.records_processed, created.records_failed), (0, 0, 0));
    assert_eq!((created.avg_sync_time_seconds, created.next_sync_at), (None, None));
    assert_eq!(repo.get(created.id).await.unwrap(), created);

    let auth = Utc::now();
    let updated = repo
        .update(
            created.id,
            TasyIntegrationPatch {
                api_version: Some("v2".into()),
                api_key: Some("tasy-sk-rotacionada-2024".into()),
                client_id: Some(None),
                filters: Some(None),
                last_auth_at: Some(Some(auth)),
                sync_interval_seconds: Some(900),
                status: Some(IntegrationStatus::Maintenance),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((updated.client_id.as_deref(), updated.filters.as_ref()), (None, None));
    assert_eq!(updated.api_key.expose().unwrap(), "tasy-sk-rotacionada-2024");
    assert_eq!(updated.last_auth_at, Some(austa_core::time::truncate(auth)));
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(repo.get(created.id).await.unwrap(), updated);

    // Failed validations write nothing.
    let bad_patch =
        TasyIntegrationPatch { api_version: Some("v3".into()), sync_interval_seconds: Some(0), ..Default::default() };
    assert_err(repo.update(created.id, bad_patch).await, "validation", Some("sync_interval_seconds"));
    assert_eq!(repo.get(created.id).await.unwrap(), updated);
    assert_err(
        repo.create(new_integration("ftp://tasy.hospitalsaolucas.com.br")).await,
        "validation",
        Some("tasy_instance_url"),
    );
    assert_eq!(integration_count(&scope).await, 1);

    repo.delete(created.id).await.unwrap();
    assert_err(repo.get(created.id).await, "not_found", None);
    assert_err(repo.delete(created.id).await, "not_found", None);
    assert_err(repo.update(created.id, TasyIntegrationPatch::default()).await, "not_found", None);
    assert_eq!(integration_count(&scope).await, 0);
}

#[backends]
async fn integration_validation_rules(tdb: TestDb) {
    type Case = (fn(&mut NewTasyIntegration), &'static str);
    let cases: [Case; 17] = [
        (|n| n.tasy_instance_url = "http://".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "tasy.hospital.com.br/api".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://tasy:senha-secreta@tasy.hospital.com.br".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://tasy.hospital.com.br/api?token=senha-secreta".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://tasy hospital.com.br".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://tasy.hospital.com.br:99999/api".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://-tasy.hospital.com.br".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://999.10.0.1/tasy".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = "https://[2001:db8::zz]/tasy".into(), "tasy_instance_url"),
        (|n| n.tasy_instance_url = format!("https://tasy.com.br/{}", "a".repeat(2048)), "tasy_instance_url"),
        (|n| n.api_key = Sensitive::new("   ".into()), "api_key"),
        (|n| n.api_version = Some(String::new()), "api_version"),
        (|n| n.client_id = Some(" ".into()), "client_id"),
        (|n| n.sync_interval_seconds = Some(-300), "sync_interval_seconds"),
        (|n| n.field_mapping = json!(["nm_pessoa_fisica"]), "field_mapping"),
        (|n| n.filters = Some(json!("ativos")), "filters"),
        (|n| n.field_mapping = json!({"x": "y".repeat(70_000)}), "field_mapping"),
    ];
    let scope = tdb.org("Clínica Vida").await;
    for (mutate, field) in &cases {
        let mut new = new_integration(URL);
        mutate(&mut new);
        let err = scope.tasy_integrations().create(new).await.unwrap_err();
        assert_eq!((err.code(), err.field()), ("validation", Some(*field)), "{err}");
        assert!(!err.to_string().contains("senha-secreta"), "{err}");
    }
    assert_eq!(integration_count(&scope).await, 0);
    for (input, stored) in [
        ("http://10.0.0.5:8080/tasy/", "http://10.0.0.5:8080/tasy"),
        ("https://[2001:DB8::1]:8443/", "https://[2001:db8::1]:8443"),
        ("https://tasy.hospital.com.br./ws/v1", "https://tasy.hospital.com.br/ws/v1"),
    ] {
        let created = scope.tasy_integrations().create(new_integration(input)).await.unwrap();
        assert_eq!(created.tasy_instance_url, stored);
    }
}

#[backends]
async fn integration_pagination_list_active_and_due_for_sync(tdb: TestDb) {
    let scope = tdb.org("Hospital São Lucas").await;
    let repo = scope.tasy_integrations();
    let now = Utc::now();
    let hour = TimeDelta::hours(1);
    let mut created = Vec::new();
    for patch in [
        TasyIntegrationPatch::default(), // next_sync_at unset: due
        TasyIntegrationPatch { next_sync_at: Some(Some(now - hour)), ..Default::default() }, // due
        TasyIntegrationPatch { next_sync_at: Some(Some(now + hour)), ..Default::default() },
        TasyIntegrationPatch { sync_enabled: Some(false), ..Default::default() },
        TasyIntegrationPatch { is_active: Some(false), ..Default::default() },
        TasyIntegrationPatch { status: Some(IntegrationStatus::Suspended), ..Default::default() },
        TasyIntegrationPatch {
            status: Some(IntegrationStatus::Error),
            next_sync_at: Some(Some(now - hour)),
            ..Default::default()
        }, // due: retried after an error
    ] {
        let i = integration(&scope).await;
        created.push(repo.update(i.id, patch).await.unwrap().id);
    }
    let deleted = integration(&scope).await;
    repo.delete(deleted.id).await.unwrap();

    assert_paged::<TasyIntegration>(&scope, &created).await;
    let active = repo.list_active(PageRequest::first(50)).await.unwrap().items;
    let mut expected: Vec<Uuid> = created.iter().rev().copied().filter(|id| *id != created[4]).collect();
    assert_eq!(ids(&active), expected);

    let due = repo.due_for_sync(now, PageRequest::first(50)).await.unwrap().items;
    assert_eq!(ids(&due), vec![created[6], created[1], created[0]]);
    let later = repo.due_for_sync(now + hour * 2, PageRequest::first(50)).await.unwrap().items;
    assert_eq!(ids(&later), vec![created[6], created[2], created[1], created[0]]);
    expected.clear();
    let first = repo.due_for_sync(now, PageRequest::first(2)).await.unwrap();
    let rest = repo.due_for_sync(now, PageRequest::after(first.next.unwrap(), 2)).await.unwrap();
    expected.extend(ids(&first.items).into_iter().chain(ids(&rest.items)));
    assert_eq!(expected, vec![created[6], created[1], created[0]]);
    assert!(rest.next.is_none());
}

#[backends]
async fn sync_run_lifecycle_updates_the_integration(tdb: TestDb) {
    let scope = tdb.org("Hospital São Lucas").await;
    let integrations = scope.tasy_integrations();
    let runs = scope.tasy_sync_logs();
    let integ = integration(&scope).await;
    let integ = integrations
        .update(integ.id, TasyIntegrationPatch { sync_interval_seconds: Some(600), ..Default::default() })
        .await
        .unwrap();

    // Start.
    let run1 = runs.start(integ.id, sync(" paciente ")).await.unwrap();
    assert_eq!((run1.status, run1.record_type.as_str()), (SyncStatus::Running, "paciente"));
    assert_eq!((run1.completed_at, run1.duration_seconds, run1.records_attempted), (None, None, 0));
    assert_eq!(runs.get(run1.id).await.unwrap(), run1);

    // Finish successfully.
    let outcome = SyncOutcome {
        summary: Some(json!({"novos": 80, "atualizados": 30})),
        ..SyncOutcome::completed(120, 110, 6, 4)
    };
    let done1 = runs.finish(run1.id, outcome.clone()).await.unwrap();
    let completed1 = done1.completed_at.unwrap();
    let d1 = (completed1 - done1.started_at).num_microseconds().unwrap() as f64 / 1e6;
    assert_eq!(done1.status, SyncStatus::Completed);
    assert_eq!(
        (done1.records_attempted, done1.records_succeeded, done1.records_failed, done1.records_skipped),
        (120, 110, 6, 4)
    );
    assert_eq!(done1.duration_seconds, Some(d1));
    assert_eq!(runs.get(run1.id).await.unwrap(), done1);
    let after1 = integrations.get(integ.id).await.unwrap();
    assert_eq!(after1.last_sync_at, Some(completed1));
    assert_eq!(after1.next_sync_at, Some(completed1 + TimeDelta::seconds(600)));
    assert_eq!((after1.records_processed, after1.records_failed), (120, 6));
    assert_eq!(after1.avg_sync_time_seconds, Some(d1));
    assert_eq!((after1.status, after1.error_count, after1.last_error.as_deref()), (IntegrationStatus::Active, 0, None));

    // Finishing twice is a conflict and changes nothing.
    assert_err(runs.finish(run1.id, outcome).await, "conflict", Some("status"));
    assert_err(runs.finish(run1.id, SyncOutcome::cancelled()).await, "conflict", Some("status"));
    assert_eq!(runs.get(run1.id).await.unwrap(), done1);
    assert_eq!(integrations.get(integ.id).await.unwrap(), after1);

    // A failed run.
    let run2 = runs.start(integ.id, sync("atendimento")).await.unwrap();
    let failure = SyncOutcome {
        records_attempted: 50,
        records_failed: 50,
        error_details: Some(json!({"http_status": 504})),
        ..SyncOutcome::failed("Tempo limite excedido ao consultar o Tasy")
    };
    let done2 = runs.finish(run2.id, failure).await.unwrap();
    let completed2 = done2.completed_at.unwrap();
    let d2 = done2.duration_seconds.unwrap();
    assert_eq!(done2.status, SyncStatus::Failed);
    let after2 = integrations.get(integ.id).await.unwrap();
    assert_eq!(after2.status, IntegrationStatus::Error);
    assert_eq!(after2.error_count, 1);
    assert_eq!(after2.last_error.as_deref(), Some("Tempo limite excedido ao consultar o Tasy"));
    assert_eq!(after2.last_error_at, Some(completed2));
    assert_eq!(
        (after2.last_sync_at, after2.next_sync_at),
        (Some(completed2), Some(completed2 + TimeDelta::seconds(600)))
    );
    assert_eq!((after2.records_processed, after2.records_failed), (170, 56));
    assert!((after2.avg_sync_time_seconds.unwrap() - (d1 + d2) / 2.0).abs() < 1e-9);

    // Success again: back to ACTIVE; the error history stays.
    let run3 = runs.start(integ.id, sync("paciente")).await.unwrap();
    runs.finish(run3.id, SyncOutcome::completed(10, 10, 0, 0)).await.unwrap();
    let after3 = integrations.get(integ.id).await.unwrap();
    assert_eq!((after3.status, after3.error_count), (IntegrationStatus::Active, 1));
    assert_eq!(after3.last_error_at, Some(completed2));

    // Invalid outcomes write nothing.
    let run4 = runs.start(integ.id, sync("paciente")).await.unwrap();
    assert_err(runs.finish(run4.id, SyncOutcome::completed(5, 3, 2, 1)).await, "validation", Some("records_attempted"));
    assert_err(
        runs.finish(run4.id, SyncOutcome::completed(5, -1, 0, 0)).await,
        "validation",
        Some("records_succeeded"),
    );
    let running = SyncOutcome { status: SyncStatus::Running, ..SyncOutcome::completed(0, 0, 0, 0) };
    assert_err(runs.finish(run4.id, running).await, "validation", Some("status"));
    assert_err(runs.finish(run4.id, SyncOutcome::failed("  ")).await, "validation", Some("error_message"));
    assert_eq!(runs.get(run4.id).await.unwrap(), run4);
    assert_err(runs.finish(Uuid::now_v7(), SyncOutcome::cancelled()).await, "not_found", None);

    // An operator's status is not overwritten by a run's outcome.
    integrations
        .update(integ.id, TasyIntegrationPatch { status: Some(IntegrationStatus::Maintenance), ..Default::default() })
        .await
        .unwrap();
    runs.finish(run4.id, SyncOutcome::failed("Tasy em manutenção")).await.unwrap();
    let after4 = integrations.get(integ.id).await.unwrap();
    assert_eq!((after4.status, after4.error_count), (IntegrationStatus::Maintenance, 2));

    // Starting needs a live integration of this organization and a valid record type.
    assert_err(runs.start(integ.id, sync("")).await, "validation", Some("record_type"));
    assert_err(runs.start(Uuid::now_v7(), sync("paciente")).await, "validation", Some("integration_id"));
    let gone = integration(&scope).await;
    integrations.delete(gone.id).await.unwrap();
    assert_err(runs.start(gone.id, sync("paciente")).await, "validation", Some("integration_id"));

    // Listings: by integration and through the generic repository.
    let listed = runs.for_integration(integ.id, PageRequest::first(50)).await.unwrap().items;
    assert_eq!(ids(&listed), vec![run4.id, run3.id, run2.id, run1.id]);
    assert!(runs.for_integration(gone.id, PageRequest::first(50)).await.unwrap().items.is_empty());
    let run5 = runs.start(integ.id, sync("agenda")).await.unwrap();
    assert_paged::<TasySyncLog>(&scope, &[run1.id, run2.id, run3.id, run4.id, run5.id]).await;
}

/// The run and the integration are written in one transaction: when the integration's update fails,
/// the run stays RUNNING.
#[backends]
async fn finishing_a_run_is_one_transaction(tdb: TestDb) {
    let scope = tdb.org("Hospital São Lucas").await;
    let integ = integration(&scope).await;
    let run = scope.tasy_sync_logs().start(integ.id, sync("paciente")).await.unwrap();
    block_integration_updates(&tdb, true).await;
    let err = scope.tasy_sync_logs().finish(run.id, SyncOutcome::completed(3, 3, 0, 0)).await.unwrap_err();
    assert_eq!(err.code(), "database", "{err}");
    block_integration_updates(&tdb, false).await;
    assert_eq!(scope.tasy_sync_logs().get(run.id).await.unwrap(), run);
    assert_eq!(scope.tasy_integrations().get(integ.id).await.unwrap(), integ);
    let done = scope.tasy_sync_logs().finish(run.id, SyncOutcome::completed(3, 3, 0, 0)).await.unwrap();
    assert_eq!(done.status, SyncStatus::Completed);
}

async fn block_integration_updates(tdb: &TestDb, block: bool) {
    let statements: &[&str] = match (tdb.backend, block) {
        (Backend::Sqlite, true) => &["CREATE TRIGGER block_tasy BEFORE UPDATE ON tasy_integrations \
              BEGIN SELECT RAISE(ABORT, 'bloqueado'); END"],
        (Backend::Sqlite, false) => &["DROP TRIGGER block_tasy"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION block_tasy() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'bloqueado'; END $$",
            "CREATE TRIGGER block_tasy BEFORE UPDATE ON tasy_integrations \
             FOR EACH ROW EXECUTE FUNCTION block_tasy()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER block_tasy ON tasy_integrations", "DROP FUNCTION block_tasy()"],
    };
    for sql in statements {
        tdb.raw_execute(sql).await;
    }
}

#[backends]
async fn api_key_is_ciphertext_and_never_printed(tdb: TestDb) {
    let scope = tdb.org("Hospital São Lucas").await;
    let new = new_integration(URL);
    assert!(!format!("{new:?}").contains(API_KEY));
    let integ = scope.tasy_integrations().create(new).await.unwrap();
    let raw = tdb.raw_bytes("tasy_integrations", "api_key", integ.id).await.unwrap();
    assert!(!contains(&raw, API_KEY.as_bytes()));
    assert!(!contains(&raw, b"tasy-sk-"));
    let fetched = scope.tasy_integrations().get(integ.id).await.unwrap();
    assert_eq!(fetched.api_key.expose().unwrap(), API_KEY);
    assert!(!format!("{fetched:?}").contains(API_KEY));
    assert!(!serde_json::to_string(&fetched).unwrap().contains(API_KEY));
    let patch = TasyIntegrationPatch { api_key: Some(API_KEY.into()), ..Default::default() };
    assert!(!format!("{patch:?}").contains(API_KEY));
    // A ciphertext moved to another row does not decrypt there.
    let other = integration(&scope).await;
    tdb.raw_set_bytes("tasy_integrations", "api_key", other.id, Some(raw)).await;
    assert_err(scope.tasy_integrations().get(other.id).await, "crypto", None);
}

#[backends]
async fn organizations_are_isolated(tdb: TestDb) {
    let a = tdb.org("Hospital São Lucas").await;
    let b = tdb.org("Clínica Vida").await;
    let (a_integ, b_integ) = (integration(&a).await, integration(&b).await);
    let a_run = a.tasy_sync_logs().start(a_integ.id, sync("paciente")).await.unwrap();
    let b_run = b.tasy_sync_logs().start(b_integ.id, sync("paciente")).await.unwrap();
    let b_patient = Uuid::now_v7();
    let export =
        AppEvent::Export { entity_type: EntityType::Patient, entity_id: Some(b_patient), patient_id: Some(b_patient) };
    let b_event = b.audit().record(export).await.unwrap();
    let a_event = a.audit().record(AppEvent::Login).await.unwrap();

    // B's ids are unknown to A.
    assert_err(a.tasy_integrations().get(b_integ.id).await, "not_found", None);
    let patch = TasyIntegrationPatch { is_active: Some(false), ..Default::default() };
    assert_err(a.tasy_integrations().update(b_integ.id, patch).await, "not_found", None);
    assert_err(a.tasy_integrations().delete(b_integ.id).await, "not_found", None);
    assert_err(a.tasy_sync_logs().get(b_run.id).await, "not_found", None);
    assert_err(a.tasy_sync_logs().finish(b_run.id, SyncOutcome::cancelled()).await, "not_found", None);
    assert_err(a.audit_logs().get(b_event).await, "not_found", None);
    // Referencing B's integration from A fails and writes nothing.
    assert_err(a.tasy_sync_logs().start(b_integ.id, sync("paciente")).await, "validation", Some("integration_id"));

    // A's listings and queries never show B's rows.
    let first = PageRequest::first(50);
    assert_eq!(ids(&a.tasy_integrations().list(first.clone()).await.unwrap().items), vec![a_integ.id]);
    assert_eq!(ids(&a.tasy_integrations().list_active(first.clone()).await.unwrap().items), vec![a_integ.id]);
    let due = a.tasy_integrations().due_for_sync(Utc::now(), first.clone()).await.unwrap();
    assert_eq!(ids(&due.items), vec![a_integ.id]);
    assert_eq!(ids(&a.tasy_sync_logs().list(first.clone()).await.unwrap().items), vec![a_run.id]);
    assert!(a.tasy_sync_logs().for_integration(b_integ.id, first.clone()).await.unwrap().items.is_empty());
    let a_events = a.audit_logs().list(PageRequest::first(500)).await.unwrap().items;
    assert!(a_events.iter().any(|e| e.id == a_event));
    assert!(a_events.iter().all(|e| e.organization_id == a.organization_id() && e.id != b_event));
    assert!(a.audit_logs().for_patient(b_patient, first.clone()).await.unwrap().items.is_empty());
    let by_entity = a.audit_logs().for_entity(EntityType::Patient, b_patient, first.clone()).await.unwrap();
    assert!(by_entity.items.is_empty());

    // B's rows are unchanged.
    assert_eq!(b.tasy_integrations().get(b_integ.id).await.unwrap(), b_integ);
    assert_eq!(b.tasy_sync_logs().get(b_run.id).await.unwrap(), b_run);
    assert_eq!(b.audit_logs().get(b_event).await.unwrap().patient_id, Some(b_patient));
    assert_eq!(ids(&b.tasy_sync_logs().list(first).await.unwrap().items), vec![b_run.id]);
}
