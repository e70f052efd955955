//! The audit trail on every available backend: one event per repository operation in the same
//! transaction, none for a failed one, ACCESS_DENIED for refusals, no sensitive values in events, the
//! chain intact under 16 concurrent writers and each of the four tamperings named, append-only
//! storage, access reports and the FHIR export.

use std::sync::atomic::{AtomicU64, Ordering};

use austa_core::audit::TamperKind;
use austa_core::model::{
    AppEvent, AuditAction, AuditLog, AuditOutcome, EntityType, NewPatient, PatientPatch, RiskLevel, Sensitivity,
};
use austa_core::repo::PageRequest;
use austa_core::{Actor, RequestContext, Scope};
use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::support::{event_count, Backend, TestDb};
use austa_macros::backends;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A patient with a distinct phone.
fn patient(first: &str) -> NewPatient {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    NewPatient {
        first_name: first.into(),
        last_name: "Zanetti".into(),
        phone: format!("+55119{:08}", 10_000_000 + n).into(),
        ..Default::default()
    }
}

/// Runs `op`, checks it wrote exactly one event, and returns that event.
async fn one_event(tdb: &TestDb, scope: &Scope, reader: &Scope, op: impl std::future::Future<Output = ()>) -> AuditLog {
    let before = event_count(tdb, scope).await;
    op.await;
    assert_eq!(event_count(tdb, scope).await, before + 1, "exactly one event per operation");
    let id = tdb
        .raw_text(&format!(
            "SELECT CAST(id AS TEXT) FROM audit_logs WHERE organization_id = '{}' ORDER BY id DESC LIMIT 1",
            scope.organization_id()
        ))
        .await;
    reader.audit_logs().get(id.parse().unwrap()).await.unwrap()
}

/// An event's reason, decrypted.
fn reason(e: &AuditLog) -> Option<&str> {
    e.reason.as_ref().map(|r| r.expose().unwrap().as_str())
}

fn request() -> RequestContext {
    RequestContext {
        purpose: Some("tratamento".into()),
        request_id: Some("req-7f3a9c".into()),
        ip_address: Some(" 189.45.12.7 ".into()),
        user_agent: Some("Mozilla/5.0 (WhatsApp Business API)\n".into()),
        session_id: Some("sess-42".into()),
    }
}

#[backends]
async fn every_repository_operation_records_exactly_its_event(tdb: TestDb) {
    let platform = tdb.org("Hospital Auditado").await;
    let org = platform.organization_id();
    let provider_id = tdb.provider(&platform).await;
    let scope = tdb.db.scope_with(org, Actor::provider(provider_id), request()).await.unwrap();

    let mut created = None;
    let e = one_event(&tdb, &scope, &platform, async {
        created = Some(scope.patients().create(patient("Gertrudes")).await.unwrap());
    })
    .await;
    let p = created.unwrap();
    assert_eq!(
        (e.action, e.outcome, e.entity_type, e.entity_id),
        (AuditAction::Create, AuditOutcome::Success, EntityType::Patient, Some(p.id))
    );
    assert_eq!((e.patient_id, e.record_ids.clone(), e.record_count), (Some(p.id), vec![p.id], 1));
    assert!(e.changed_fields.iter().any(|f| f == "first_name") && e.changed_fields.iter().any(|f| f == "phone"));
    assert!(!e.changed_fields.iter().any(|f| f.ends_with("_bidx") || f == "id"));
    assert_eq!((e.actor_kind, e.actor_id), (austa_core::Role::Provider, Some(provider_id)));
    assert_eq!(e.purpose.as_deref(), Some("tratamento"));
    assert_eq!((e.request_id.as_deref(), e.ip_address.as_deref()), (Some("req-7f3a9c"), Some("189.45.12.7")));
    assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0 (WhatsApp Business API)"));
    assert_eq!(e.session_id.as_deref(), Some("sess-42"));
    assert_eq!((e.sensitivity, e.sensitive_data, e.risk_level), (Sensitivity::Personal, true, RiskLevel::Low));

    let e = one_event(&tdb, &scope, &platform, async {
        scope.patients().get(p.id).await.unwrap();
    })
    .await;
    assert_eq!(
        (e.action, e.entity_id, e.record_ids.clone(), e.patient_ids.clone()),
        (AuditAction::Read, Some(p.id), vec![p.id], vec![p.id])
    );

    let e = one_event(&tdb, &scope, &platform, async {
        let patch = PatientPatch {
            first_name: Some("Gertrude".into()),
            last_name: Some("Zanetti".into()),
            ..Default::default()
        };
        scope.patients().update(p.id, patch).await.unwrap();
    })
    .await;
    // Only what changed: the last name was written with its old value.
    assert_eq!((e.action, e.changed_fields.clone()), (AuditAction::Update, vec!["first_name".to_string()]));

    let e = one_event(&tdb, &scope, &platform, async {
        assert!(scope.patients().find_by_phone("+5511900000000").await.unwrap().is_none());
    })
    .await;
    assert_eq!((e.action, e.record_count, e.entity_id), (AuditAction::Read, 0, None));

    let second = scope.patients().create(patient("Heitor")).await.unwrap();
    let e = one_event(&tdb, &scope, &platform, async {
        scope.patients().list(PageRequest::first(50)).await.unwrap();
    })
    .await;
    assert_eq!(e.record_count, 2);
    assert!(e.patient_ids.contains(&p.id) && e.patient_ids.contains(&second.id));
    assert_eq!(e.patient_id, None, "a listing of several patients names no single patient");

    let admin = tdb.db.scope(org, Actor::admin(None)).await.unwrap();
    let e = one_event(&tdb, &scope, &platform, async { admin.patients().delete(second.id).await.unwrap() }).await;
    assert_eq!(
        (e.action, e.changed_fields.clone(), e.risk_level),
        (AuditAction::Delete, vec!["deleted_at".to_string()], RiskLevel::Medium)
    );
    let e = one_event(&tdb, &scope, &platform, async { admin.patients().restore(second.id).await.unwrap() }).await;
    assert_eq!((e.action, e.patient_id), (AuditAction::Update, Some(second.id)));

    // A probe for a missing row is recorded as NOT_FOUND.
    let ghost = Uuid::now_v7();
    let e = one_event(&tdb, &scope, &platform, async {
        assert_eq!(scope.patients().get(ghost).await.unwrap_err().code(), "not_found");
    })
    .await;
    assert_eq!((e.outcome, e.entity_id, e.record_count), (AuditOutcome::NotFound, Some(ghost), 0));

    // A write aimed at a row out of reach is recorded as a NOT_FOUND attempt, and changes nothing.
    let other = tdb.db.scope(org, Actor::patient(second.id)).await.unwrap();
    let e = one_event(&tdb, &scope, &platform, async {
        let patch = PatientPatch { first_name: Some("Intrusa".into()), ..Default::default() };
        assert_eq!(other.patients().update(p.id, patch).await.unwrap_err().code(), "not_found");
    })
    .await;
    assert_eq!((e.action, e.outcome, e.entity_id), (AuditAction::Update, AuditOutcome::NotFound, Some(p.id)));
    let e = one_event(&tdb, &scope, &platform, async {
        assert_eq!(admin.patients().delete(ghost).await.unwrap_err().code(), "not_found");
    })
    .await;
    assert_eq!((e.action, e.outcome), (AuditAction::Delete, AuditOutcome::NotFound));

    // Application events.
    let e =
        one_event(&tdb, &scope, &platform, async { scope.audit().record(AppEvent::Login).await.map(|_| ()).unwrap() })
            .await;
    assert_eq!((e.action, e.entity_type), (AuditAction::Login, EntityType::Organization));
}

#[backends]
async fn events_never_hold_sensitive_values(tdb: TestDb) {
    let scope = tdb.org("Clínica Sigilo").await;
    let new = NewPatient {
        first_name: "Filomena".into(),
        last_name: "Quaresma".into(),
        phone: "+5511976543210".into(),
        cpf: Some("529.982.247-25".into()),
        email: Some("filomena.quaresma@example.com".into()),
        ..Default::default()
    };
    let p = scope.patients().create(new).await.unwrap();
    scope.patients().find_by_cpf("52998224725").await.unwrap();
    let patch = PatientPatch { last_name: Some("Quintela".into()), ..Default::default() };
    scope.patients().update(p.id, patch).await.unwrap();
    let events = scope.audit_logs().list(PageRequest::first(500)).await.unwrap().items;
    assert!(events.len() >= 3);
    let dump = format!("{} {:?}", serde_json::to_string(&events).unwrap(), events);
    for secret in ["Filomena", "Quaresma", "Quintela", "976543210", "52998224725", "529.982", "filomena.quaresma"] {
        assert!(!dump.contains(secret), "{secret} leaked into an audit event");
    }
}

#[backends]
async fn failed_operations_record_nothing_and_refusals_record_access_denied(tdb: TestDb) {
    let scope = tdb.org("Hospital Falhas").await;
    let p = scope.patients().create(patient("Ivone")).await.unwrap();
    let before = event_count(&tdb, &scope).await;
    // Validation (before any I/O) and a uniqueness conflict (rolled back): no event.
    let bad = NewPatient { phone: "not a phone".into(), ..patient("Jair") };
    assert_eq!(scope.patients().create(bad).await.unwrap_err().code(), "validation");
    let dup = NewPatient { phone: p.phone.expose().unwrap().clone().into(), ..patient("Jair") };
    assert_eq!(scope.patients().create(dup).await.unwrap_err().code(), "conflict");
    assert_eq!(event_count(&tdb, &scope).await, before);

    // A patient may not list providers: refused and recorded.
    let as_patient = tdb.db.scope(scope.organization_id(), Actor::patient(p.id)).await.unwrap();
    let e = one_event(&tdb, &scope, &scope, async {
        assert_eq!(as_patient.providers().list(PageRequest::first(5)).await.unwrap_err().code(), "permission_denied");
    })
    .await;
    assert_eq!(
        (e.action, e.outcome, e.entity_type),
        (AuditAction::AccessDenied, AuditOutcome::Denied, EntityType::Provider)
    );
    assert_eq!((e.actor_kind, e.actor_id), (austa_core::Role::Patient, Some(p.id)));
    assert_eq!(reason(&e), Some("attempted read"));
    assert!(e.requires_review && e.risk_level == RiskLevel::High);

    // An admin without a stated purpose may not read messages.
    let admin = tdb.db.scope(scope.organization_id(), Actor::admin(None)).await.unwrap();
    let e = one_event(&tdb, &scope, &scope, async {
        assert_eq!(admin.messages().list(PageRequest::first(5)).await.unwrap_err().code(), "permission_denied");
    })
    .await;
    assert_eq!(
        (e.action, e.entity_type, e.sensitivity),
        (AuditAction::AccessDenied, EntityType::Message, Sensitivity::Health)
    );
}

#[backends]
async fn emergency_access_and_key_operations_are_recorded(tdb: TestDb) {
    let scope = tdb.org("Hospital Emergência").await;
    let p = scope.patients().create(patient("Kátia")).await.unwrap();
    let provider = tdb.db.scope(scope.organization_id(), Actor::provider(tdb.provider(&scope).await)).await.unwrap();
    let mut grant = None;
    let e = one_event(&tdb, &scope, &scope, async {
        grant = Some(
            provider
                .emergency_access(p.id, "paciente inconsciente no pronto-socorro", Duration::hours(1))
                .await
                .unwrap(),
        );
    })
    .await;
    assert_eq!(
        (e.action, e.patient_id, e.risk_level, e.requires_review),
        (AuditAction::EmergencyAccess, Some(p.id), RiskLevel::High, true)
    );
    assert_eq!(reason(&e), Some("paciente inconsciente no pronto-socorro"));
    let grant = grant.unwrap();
    let raw = tdb.raw_bytes("audit_logs", "reason", e.id).await.expect("an encrypted reason");
    assert!(!raw.windows(9).any(|w| w == b"paciente "), "the reason is ciphertext at rest");
    let e = one_event(&tdb, &scope, &scope, async {
        grant.patients().get(p.id).await.unwrap();
    })
    .await;
    assert!(e.emergency && e.requires_review);
    assert_eq!(reason(&e), Some("paciente inconsciente no pronto-socorro"));

    let admin = tdb.db.scope(scope.organization_id(), Actor::admin(None)).await.unwrap();
    let e = one_event(&tdb, &scope, &scope, async {
        admin.keys().shred_patient(p.id, "pedido do titular (LGPD Art. 18)").await.unwrap();
    })
    .await;
    assert_eq!((e.action, e.entity_id, e.risk_level), (AuditAction::Delete, Some(p.id), RiskLevel::Critical));
    assert!(scope.audit().verify().await.unwrap().is_intact());
}

/// An organization with a chain of `n` events (patients created).
/// The columns of an audit event that tests copy into a forged one, but its id, key and MAC.
const COPIED_COLUMNS: &str = "occurred_at, actor_kind, actor_id, actor_name, action, outcome, entity_type, entity_id, \
     record_ids, record_count, patient_id, patient_ids, changed_fields, purpose, reason, session_id, request_id, \
     ip_address, user_agent, emergency, sensitivity, sensitive_data, risk_level, requires_review";

async fn chain_of(tdb: &TestDb, name: &str, n: usize) -> Scope {
    let scope = tdb.org(name).await;
    for i in 0..n {
        scope.patients().create(patient(&format!("Elo{i}"))).await.unwrap();
    }
    let report = scope.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    scope
}

async fn event_at(tdb: &TestDb, scope: &Scope, seq: i64) -> String {
    tdb.raw_text(&format!(
        "SELECT CAST(event_id AS TEXT) FROM audit_chain WHERE organization_id = '{}' AND seq = {seq}",
        scope.organization_id()
    ))
    .await
}

#[backends]
async fn verification_names_each_kind_of_tampering(tdb: TestDb) {
    // Untouched.
    let intact = chain_of(&tdb, "Cadeia Intacta", 8).await;
    let report = intact.audit().verify().await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.head_seq as u64, report.verified);
    assert_eq!(report.head_seq, event_count(&tdb, &intact).await);
    let part = intact.audit().verify_range(3, 5).await.unwrap();
    assert!(part.is_intact() && part.verified == 3, "{part:?}");

    // Modified: one event's content edited.
    let s = chain_of(&tdb, "Cadeia Modificada", 8).await;
    let (org, victim) = (s.organization_id(), event_at(&tdb, &s, 5).await);
    tdb.tamper(&format!(
        "UPDATE audit_logs SET purpose = 'faturamento' WHERE organization_id = '{org}' AND id = '{victim}'"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("modification detected");
    assert_eq!(
        (broken.kind, broken.seq, broken.event_id.map(|u| u.to_string())),
        (TamperKind::Modified, Some(5), Some(victim))
    );

    // Deleted: an event and its link removed.
    let s = chain_of(&tdb, "Cadeia Apagada", 8).await;
    let (org, victim) = (s.organization_id(), event_at(&tdb, &s, 4).await);
    tdb.tamper(&format!(
        "DELETE FROM audit_logs WHERE organization_id = '{org}' AND id = '{victim}'; \
         DELETE FROM audit_chain WHERE organization_id = '{org}' AND seq = 4;"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("deletion detected");
    assert_eq!((broken.kind, broken.seq), (TamperKind::Deleted, Some(4)));
    // Only the event removed, its link kept: still a deletion, at the same place.
    let s = chain_of(&tdb, "Cadeia Apagada 2", 8).await;
    let (org, victim) = (s.organization_id(), event_at(&tdb, &s, 6).await);
    tdb.tamper(&format!("DELETE FROM audit_logs WHERE organization_id = '{org}' AND id = '{victim}'")).await;
    let broken = s.audit().verify().await.unwrap().broken.expect("deletion detected");
    assert_eq!((broken.kind, broken.seq), (TamperKind::Deleted, Some(6)));
    // The newest events removed, links and all: the head still names them.
    let s = chain_of(&tdb, "Cadeia Truncada", 8).await;
    let org = s.organization_id();
    tdb.tamper(&format!(
        "DELETE FROM audit_logs WHERE organization_id = '{org}' AND id IN \
         (SELECT event_id FROM audit_chain WHERE organization_id = '{org}' AND seq >= 8); \
         DELETE FROM audit_chain WHERE organization_id = '{org}' AND seq >= 8;"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("truncation detected");
    assert_eq!((broken.kind, broken.seq), (TamperKind::Deleted, Some(8)));

    // Inserted: a forged event (a copy of a real one under a new id) outside the chain...
    let s = chain_of(&tdb, "Cadeia Inserida", 8).await;
    let (org, model) = (s.organization_id(), event_at(&tdb, &s, 3).await);
    let forged = Uuid::now_v7();
    let columns = format!("{COPIED_COLUMNS}, key_id, mac");
    tdb.tamper(&format!(
        "INSERT INTO audit_logs (organization_id, id, {columns}) SELECT organization_id, '{forged}', {columns} \
         FROM audit_logs WHERE organization_id = '{org}' AND id = '{model}'"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("insertion detected");
    assert_eq!((broken.kind, broken.seq, broken.event_id), (TamperKind::Inserted, None, Some(forged)));
    // ...or spliced into it, later links renumbered to make room.
    let s = chain_of(&tdb, "Cadeia Enxertada", 8).await;
    let (org, model) = (s.organization_id(), event_at(&tdb, &s, 3).await);
    let forged = Uuid::now_v7();
    tdb.tamper(&format!(
        "INSERT INTO audit_logs (organization_id, id, {columns}) SELECT organization_id, '{forged}', {columns} \
         FROM audit_logs WHERE organization_id = '{org}' AND id = '{model}'; \
         UPDATE audit_chain SET seq = seq + 1000000 WHERE organization_id = '{org}' AND seq >= 6; \
         UPDATE audit_chain SET seq = seq - 999999 WHERE organization_id = '{org}' AND seq > 1000000; \
         INSERT INTO audit_chain (organization_id, seq, event_id, prev_mac, mac, key_id, chained_at) \
         SELECT a.organization_id, 6, '{forged}', a.mac, b.mac, a.key_id, a.chained_at \
         FROM audit_chain a, audit_chain b WHERE a.organization_id = '{org}' AND a.seq = 5 \
         AND b.organization_id = '{org}' AND b.seq = 2;"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("splice detected");
    assert_eq!((broken.kind, broken.seq, broken.event_id), (TamperKind::Inserted, Some(6), Some(forged)));

    // Reordered: two links swap places.
    let s = chain_of(&tdb, "Cadeia Reordenada", 8).await;
    let org = s.organization_id();
    tdb.tamper(&format!(
        "UPDATE audit_chain SET seq = 1000004 WHERE organization_id = '{org}' AND seq = 4; \
         UPDATE audit_chain SET seq = 4 WHERE organization_id = '{org}' AND seq = 5; \
         UPDATE audit_chain SET seq = 5 WHERE organization_id = '{org}' AND seq = 1000004;"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("reordering detected");
    assert_eq!((broken.kind, broken.seq), (TamperKind::Reordered, Some(4)));

    // The tamperings stayed in their organizations.
    assert!(intact.audit().verify().await.unwrap().is_intact());
}

/// Verification reads a page's events by their range of ids; thousands of forged events crowded
/// into that range make the page too wide, and it is read through the join instead: the walk still
/// verifies every link, and the forged events are still found outside the chain.
#[backends]
async fn a_page_crowded_with_forged_events_is_still_verified_and_the_forgeries_found(tdb: TestDb) {
    let s = chain_of(&tdb, "Cadeia Lotada", 4).await;
    let (org, model) = (s.organization_id(), event_at(&tdb, &s, 2).await);
    let low: Uuid = model.parse().unwrap();
    // Ids just above event 2's, below event 3's: inside the page's range.
    let forged: Vec<Uuid> = (1..=8_001u128).map(|k| Uuid::from_u128(low.as_u128() + k)).collect();
    let id = match tdb.backend {
        Backend::Postgres => "CAST(v.id AS uuid)",
        Backend::Sqlite => "v.id",
    };
    let values: Vec<String> = forged.iter().map(|f| format!("('{f}')")).collect();
    let columns = format!("{COPIED_COLUMNS}, key_id, mac");
    tdb.tamper(&format!(
        "WITH v(id) AS (VALUES {}) INSERT INTO audit_logs (organization_id, id, {columns}) \
         SELECT m.organization_id, {id}, {columns} FROM audit_logs m, v \
         WHERE m.organization_id = '{org}' AND m.id = '{model}'",
        values.join(", ")
    ))
    .await;
    let report = s.audit().verify().await.unwrap();
    assert_eq!(report.verified, report.head_seq as u64, "every link verified: {report:?}");
    let broken = report.broken.expect("the forged events are found");
    assert_eq!((broken.kind, broken.seq, broken.event_id), (TamperKind::Inserted, None, Some(forged[0])));
}

#[backends]
async fn sixteen_concurrent_writers_leave_a_valid_chain_without_gaps(tdb: TestDb) {
    let scope = tdb.org("Hospital Concorrente").await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..6 {
                let p = scope.patients().create(patient(&format!("W{w}x{i}"))).await.unwrap();
                scope.patients().get(p.id).await.unwrap();
            }
        }));
    }
    // Verification while the writers run sees one consistent snapshot: never a false break.
    let verifier = {
        let scope = scope.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                let report = scope.audit().verify().await.unwrap();
                assert!(report.is_intact(), "verification during writes: {report:?}");
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    verifier.await.unwrap();
    // The background sequencer links the events without being asked (SQLite links in-transaction).
    let org = scope.organization_id();
    let pending = format!("SELECT count(*) FROM audit_pending WHERE organization_id = '{org}'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tdb.raw_i64(&pending).await > 0 {
        assert!(std::time::Instant::now() < deadline, "events left unlinked");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let report = scope.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let events = event_count(&tdb, &scope).await;
    assert_eq!(report.head_seq, events, "every event linked");
    assert_eq!(report.verified as i64, events);
    let (min, max, n) = (
        tdb.raw_i64(&format!("SELECT min(seq) FROM audit_chain WHERE organization_id = '{org}'")).await,
        tdb.raw_i64(&format!("SELECT max(seq) FROM audit_chain WHERE organization_id = '{org}'")).await,
        tdb.raw_i64(&format!("SELECT count(*) FROM audit_chain WHERE organization_id = '{org}'")).await,
    );
    assert_eq!((min, max, n), (1, events, events), "sequence numbers 1..=n without gaps");
    assert_eq!(tdb.raw_i64(&format!("SELECT count(*) FROM audit_pending WHERE organization_id = '{org}'")).await, 0);
}

#[backends]
async fn audit_storage_is_append_only(tdb: TestDb) {
    let scope = chain_of(&tdb, "Hospital Imutável", 2).await;
    let org = scope.organization_id();
    for sql in [
        format!("UPDATE audit_logs SET purpose = 'x' WHERE organization_id = '{org}'"),
        format!("DELETE FROM audit_logs WHERE organization_id = '{org}'"),
        format!("UPDATE audit_chain SET seq = seq + 10 WHERE organization_id = '{org}'"),
        format!("DELETE FROM audit_chain WHERE organization_id = '{org}'"),
    ] {
        // The owner (a superuser on PostgreSQL) is stopped by the triggers.
        let err = tdb.raw_script(&sql).await.expect_err("append-only");
        assert!(err.contains("append-only"), "{err}");
    }
    if tdb.backend == Backend::Postgres {
        let err = tdb.raw_script("TRUNCATE audit_logs").await.expect_err("no truncate");
        assert!(err.contains("append-only"), "{err}");
        // The runtime role may not even try.
        let app = sqlx::PgPool::connect(&tdb.app_url).await.unwrap();
        for sql in ["UPDATE audit_logs SET purpose = 'x'", "DELETE FROM audit_logs", "DELETE FROM audit_chain"] {
            let err = sqlx::query(sql).execute(&app).await.unwrap_err().to_string();
            assert!(err.contains("permission denied"), "{err}");
        }
        app.close().await;
    }
    assert!(scope.audit().verify().await.unwrap().is_intact());
}

#[backends]
async fn access_report_shows_who_looked_and_why(tdb: TestDb) {
    let platform = tdb.org("Hospital Transparente").await;
    let org = platform.organization_id();
    let carlos = platform.patients().create(patient("Carlos")).await.unwrap();
    let ana = platform.patients().create(patient("Ana")).await.unwrap();
    let start = Utc::now() - Duration::minutes(1);
    let dr = tdb.provider(&platform).await;
    let doctor = tdb.db.scope_with(org, Actor::provider(dr), request()).await.unwrap();
    doctor.patients().get(carlos.id).await.unwrap();
    doctor.patients().list(PageRequest::first(10)).await.unwrap();
    doctor.patients().get(ana.id).await.unwrap();

    let me = tdb.db.scope(org, Actor::patient(carlos.id)).await.unwrap();
    let end = Utc::now() + Duration::minutes(1);
    let report = me.audit().access_report(carlos.id, start, end, PageRequest::first(100)).await.unwrap();
    let by_doctor: Vec<&AuditLog> = report.items.iter().filter(|e| e.actor_id == Some(dr)).collect();
    assert_eq!(by_doctor.len(), 2, "the read and the listing that included Carlos, not Ana's read");
    assert!(by_doctor.iter().all(|e| e.purpose.as_deref() == Some("tratamento") && e.action == AuditAction::Read));
    assert!(report.items.windows(2).all(|w| (w[0].occurred_at, w[0].id) <= (w[1].occurred_at, w[1].id)), "time order");

    // Running the report was recorded, and shows in the next one.
    let again = me.audit().access_report(carlos.id, start, end, PageRequest::first(100)).await.unwrap();
    let own = again.items.iter().find(|e| e.actor_id == Some(carlos.id)).expect("the first report");
    assert_eq!(
        (own.action, own.entity_type, own.patient_id),
        (AuditAction::Read, EntityType::AuditLog, Some(carlos.id))
    );

    // Pages continue where they stopped.
    let first = me.audit().access_report(carlos.id, start, end, PageRequest::first(2)).await.unwrap();
    let next = me
        .audit()
        .access_report(carlos.id, start, end, PageRequest::after(first.next.clone().unwrap(), 2))
        .await
        .unwrap();
    assert_eq!(next.items[0].id, again.items[2].id);

    // Carlos may not see Ana's report; a provider needs a purpose; the admin may.
    assert_eq!(
        me.audit().access_report(ana.id, start, end, PageRequest::first(5)).await.unwrap_err().code(),
        "permission_denied"
    );
    let bare = tdb.db.scope(org, Actor::provider(dr)).await.unwrap();
    assert_eq!(
        bare.audit().access_report(ana.id, start, end, PageRequest::first(5)).await.unwrap_err().code(),
        "permission_denied"
    );
    assert!(!doctor.audit().access_report(ana.id, start, end, PageRequest::first(5)).await.unwrap().items.is_empty());
    let admin = tdb.db.scope(org, Actor::admin(None)).await.unwrap();
    admin.audit().access_report(ana.id, start, end, PageRequest::first(5)).await.unwrap();
    // Patients and providers may not verify or export the whole trail.
    assert_eq!(me.audit().verify().await.unwrap_err().code(), "permission_denied");
    assert_eq!(doctor.audit().verify().await.unwrap_err().code(), "permission_denied");
    assert!(admin.audit().verify().await.unwrap().is_intact());
}

#[backends]
async fn fhir_export_writes_one_audit_event_per_line(tdb: TestDb) {
    let scope = chain_of(&tdb, "Hospital FHIR", 5).await;
    let dr = tdb.provider(&scope).await;
    let doctor = tdb.db.scope_with(scope.organization_id(), Actor::provider(dr), request()).await.unwrap();
    let p = scope.patients().create(patient("Lara")).await.unwrap();
    doctor.patients().get(p.id).await.unwrap();
    let (from, to) = (Utc::now() - Duration::hours(1), Utc::now() + Duration::hours(1));
    let events = event_count(&tdb, &scope).await;
    let mut out = Vec::new();
    let written = scope.audit().export_fhir(&mut out, from, to).await.unwrap();
    assert_eq!(written as i64, events + 1, "every event, plus the export's own");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, written);
    assert!(lines.iter().all(|l| l["resourceType"] == "AuditEvent" && l["recorded"].is_string()));
    let read = lines
        .iter()
        .find(|l| l["action"] == "R" && l["entity"][0]["what"]["reference"] == format!("Patient/{}", p.id))
        .expect("the provider's read");
    assert_eq!(read["agent"][0]["network"]["address"], "189.45.12.7");
    assert_eq!(read["agent"][0]["purposeOfUse"][0]["text"], "tratamento");
    assert_eq!(read["outcome"], "0");
    assert!(lines.iter().any(|l| l["type"]["code"] == "110106"), "the export recorded itself");
    let refused = doctor.audit().export_fhir(&mut Vec::new(), from, to).await.unwrap_err();
    assert_eq!(refused.code(), "permission_denied");
}

#[backends]
async fn a_handle_with_stale_keys_links_events_of_a_rotated_key(tdb: TestDb) {
    let scope = chain_of(&tdb, "Hospital Rotação", 3).await;
    let org = scope.organization_id();
    // A second handle caches the organization key before the rotation.
    let other = austa_core::Database::connect_with(&tdb.app_url, tdb.keys.clone()).await.unwrap();
    let stale = other.scope(org, Actor::platform()).await.unwrap();
    stale.patients().list(PageRequest::first(5)).await.unwrap();
    let status = scope.keys().start_rotation(austa_core::crypto::RotationTarget::Organization).await.unwrap();
    scope.keys().run_rotation(status.id, Default::default(), |_| {}).await.unwrap();
    for i in 0..4 {
        scope.patients().create(patient(&format!("Pós{i}"))).await.unwrap();
    }
    stale.patients().create(patient("Velha")).await.unwrap();
    let report = stale.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.unchained, report.head_seq), (0, event_count(&tdb, &scope).await));
    other.close().await;
    // verify_range is clamped to the head and refuses a start beyond it.
    assert_eq!(
        scope.audit().verify_range(report.head_seq + 5, report.head_seq + 9).await.unwrap_err().code(),
        "validation"
    );
    assert!(scope.audit().verify_range(2, i64::MAX).await.unwrap().is_intact());
}

#[backends]
async fn a_forged_event_is_found_even_with_a_queue_entry_to_hide_it(tdb: TestDb) {
    let s = chain_of(&tdb, "Hospital Fila", 4).await;
    let (org, model) = (s.organization_id(), event_at(&tdb, &s, 2).await);
    let (forged, stray) = (Uuid::now_v7(), Uuid::now_v7());
    let columns = format!("{COPIED_COLUMNS}, key_id, mac");
    tdb.tamper(&format!(
        "INSERT INTO audit_logs (organization_id, id, {columns}) SELECT organization_id, '{forged}', {columns} \
         FROM audit_logs WHERE organization_id = '{org}' AND id = '{model}'; \
         INSERT INTO audit_pending (organization_id, event_id) VALUES ('{org}', '{stray}');"
    ))
    .await;
    let broken = s.audit().verify().await.unwrap().broken.expect("forgery found");
    assert_eq!((broken.kind, broken.event_id), (TamperKind::Inserted, Some(forged)));
}

#[backends]
async fn a_forged_event_under_a_key_version_nobody_has_is_named_and_does_not_stall_the_chain(tdb: TestDb) {
    let s = chain_of(&tdb, "Hospital Chave Falsa", 3).await;
    let (org, model) = (s.organization_id(), event_at(&tdb, &s, 2).await);
    let (forged, unknown_key) = (Uuid::now_v7(), Uuid::new_v4());
    let columns = format!("{COPIED_COLUMNS}, mac");
    // Queued like a genuine event, under a key version the key store has never held.
    tdb.tamper(&format!(
        "INSERT INTO audit_logs (organization_id, id, key_id, {columns}) SELECT organization_id, '{forged}', \
         '{unknown_key}', {columns} FROM audit_logs WHERE organization_id = '{org}' AND id = '{model}'; \
         INSERT INTO audit_pending (organization_id, event_id) VALUES ('{org}', '{forged}');"
    ))
    .await;
    // Genuine events recorded after it, by this handle and by a fresh one.
    for i in 0..3 {
        s.patients().create(patient(&format!("Depois{i}"))).await.unwrap();
    }
    let other = austa_core::Database::connect_with(&tdb.app_url, tdb.keys.clone()).await.unwrap();
    other.scope(org, Actor::platform()).await.unwrap().patients().create(patient("Outra")).await.unwrap();
    other.close().await;
    // Linked already, before any verification: SQLite writers reload the keys inside their
    // transaction when they meet the forgery, PostgreSQL's sequencer when it does.
    tdb.db.flush_audit().await.unwrap();
    let pending = format!("SELECT count(*) FROM audit_pending WHERE organization_id = '{org}'");
    assert_eq!(tdb.raw_i64(&pending).await, 0, "nothing waits behind the forgery");
    let report = s.audit().verify().await.unwrap();
    let broken = report.broken.clone().expect("the forgery is found");
    assert_eq!((broken.kind, broken.event_id), (TamperKind::Inserted, Some(forged)), "{report:?}");
    // Every genuine event was linked past it: nothing waits behind the forgery.
    assert_eq!(report.unchained, 0, "{report:?}");
    assert_eq!(report.head_seq, event_count(&tdb, &s).await - 1, "{report:?}");
    assert_eq!(tdb.raw_i64(&format!("SELECT count(*) FROM audit_pending WHERE organization_id = '{org}'")).await, 0);
}

#[backends]
async fn a_queue_entry_for_an_event_already_linked_is_dropped_and_blocks_nothing(tdb: TestDb) {
    let s = chain_of(&tdb, "Hospital Fila Dupla", 3).await;
    let (org, linked) = (s.organization_id(), event_at(&tdb, &s, 2).await);
    tdb.tamper(&format!("INSERT INTO audit_pending (organization_id, event_id) VALUES ('{org}', '{linked}');")).await;
    // Writes go on (on SQLite they link inside their transaction, through the queue).
    s.patients().create(patient("Depois")).await.unwrap();
    let report = s.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.unchained, report.head_seq), (0, event_count(&tdb, &s).await));
    assert_eq!(tdb.raw_i64(&format!("SELECT count(*) FROM audit_pending WHERE organization_id = '{org}'")).await, 0);
}
