//! Key management: the master key checked at open time, master key rotation, the bounded key
//! cache, resumable data key rotations of a patient and of an organization (with concurrent writers and
//! lookups at every step), crypto-shredding (also of a backup taken before it), misuse that must give
//! typed errors, and external key providers built on the public trait alone.

use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use austa_core::classification::{KeyOwner, ENCRYPTED_COLUMNS};
use austa_core::crypto::{
    DataKey, DualKeyProvider, KeyCacheConfig, KeyProvider, LocalKeyProvider, RotationStatus, RotationTarget,
    RunOptions, Sensitive,
};
use austa_core::model::{
    DocumentCategory, DocumentType, HealthCategory, HealthDataType, Message, MessageDirection, MessageType,
    NewConversation, NewDocument, NewHealthData, NewMessage, NewOrganization, NewPatient, NewProvider,
    OrganizationType, PatientPatch, ProviderRole, SenderKind,
};
use austa_core::repo::PageRequest;
use austa_core::{Actor, CryptoErrorKind, Database, DatabaseOptions, Error, Result, Scope};
use base64::Engine as _;
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_err, Backend, TestDb};
use austa_macros::backends;

// ---------------------------------------------------------------------------------------------------
// Fixtures and checks

/// A patient with a conversation, messages, a health record and a document, and what they read as.
struct Person {
    org: Uuid,
    id: Uuid,
    name: String,
    phone: String,
    chat: String,
    conversation: Uuid,
    /// WhatsApp message ids `wamid-{i}-{k}` of the fixture's messages.
    wamids: Vec<String>,
    messages: Vec<String>,
    health: Uuid,
    document: Uuid,
}

fn conditions(i: usize) -> serde_json::Value {
    json!({"primary": "Hipertensão Arterial", "icd10": "I10", "case": i})
}

fn text(conversation: Uuid, content: &str, wamid: Option<String>) -> NewMessage {
    NewMessage {
        content: Some(content.into()),
        whatsapp_message_id: wamid.map(Sensitive::new),
        ..NewMessage::new(conversation, MessageDirection::Inbound, MessageType::Text, SenderKind::Patient)
    }
}

async fn person(scope: &Scope, i: usize, messages: usize) -> Person {
    let (name, phone, chat) = (format!("Paciente {i}"), format!("+551198765{i:04}"), format!("wa-chat-{i}"));
    let new = NewPatient {
        first_name: name.as_str().into(),
        last_name: "Mendes".into(),
        phone: phone.as_str().into(),
        ..Default::default()
    };
    let id = scope.patients().create(new).await.unwrap().id;
    let conv = NewConversation {
        patient_id: id,
        whatsapp_chat_id: chat.as_str().into(),
        title: Some("Dúvidas sobre medicação".into()),
        ..Default::default()
    };
    let conversation = scope.conversations().create(conv).await.unwrap().id;
    let wamids: Vec<String> = (0..messages).map(|k| format!("wamid-{i}-{k}")).collect();
    let mut texts = Vec::with_capacity(messages);
    for (k, wamid) in wamids.iter().enumerate() {
        texts.push(format!("{name}: mensagem {k}"));
        scope.messages().append(text(conversation, &texts[k], Some(wamid.clone()))).await.unwrap();
    }
    let health = NewHealthData {
        conditions: Some(Sensitive::new(conditions(i))),
        ..NewHealthData::new(id, HealthDataType::Condition, HealthCategory::Cardiology)
    };
    let health = scope.health_data().create(health).await.unwrap().id;
    let document = NewDocument::new(
        id,
        format!("exame_{i}.pdf"),
        format!("Exame de Sangue - {name}.pdf"),
        "application/pdf",
        2048,
        format!("/uploads/{i}/exame.pdf"),
        DocumentType::LabResult,
        DocumentCategory::Laboratory,
    );
    let document = scope.documents().create(document).await.unwrap().id;
    let org = scope.organization_id();
    Person { org, id, name, phone, chat, conversation, wamids, messages: texts, health, document }
}

/// A concurrent writer: appends messages from its own task, reading the history after each one.
fn spawn_writer(scope: Scope, conversation: Uuid, prefix: &'static str) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut texts = Vec::new();
        for k in 0..15 {
            let content = format!("{prefix} {k}");
            scope.messages().append(text(conversation, &content, None)).await.unwrap();
            texts.push(content);
            let read = history(&scope, conversation).await;
            assert!(read.iter().all(|m| m.content.as_ref().is_some_and(|c| c.expose().is_ok())));
            tokio::task::yield_now().await;
        }
        texts
    })
}

/// The whole history of a conversation, following cursors with pages of 500.
async fn history(scope: &Scope, conversation: Uuid) -> Vec<Message> {
    let (mut all, mut req) = (Vec::new(), PageRequest::first(500));
    loop {
        let page = scope.messages().history(conversation, req).await.unwrap();
        all.extend(page.items);
        match page.next {
            Some(cursor) => req = PageRequest::after(cursor, 500),
            None => return all,
        }
    }
}

/// The message texts of a conversation, sorted; `None` for an erased one.
async fn texts(scope: &Scope, conversation: Uuid) -> Vec<Option<String>> {
    let mut v: Vec<Option<String>> =
        history(scope, conversation).await.iter().map(|m| m.content.as_ref().unwrap().expose().ok().cloned()).collect();
    v.sort();
    v
}

async fn scope_in(db: &Database, p: &Person) -> Scope {
    db.scope(p.org, Actor::platform()).await.unwrap()
}

/// Everything of `p` decrypts, through `db`, to what was written.
async fn assert_reads(db: &Database, p: &Person) {
    let scope = scope_in(db, p).await;
    let patient = scope.patients().get(p.id).await.unwrap();
    assert_eq!((patient.first_name.expose().unwrap(), patient.phone.expose().unwrap()), (&p.name, &p.phone));
    let mut expected: Vec<Option<String>> = p.messages.iter().cloned().map(Some).collect();
    expected.sort();
    assert_eq!(texts(&scope, p.conversation).await, expected);
    let conversation = scope.conversations().get(p.conversation).await.unwrap();
    assert_eq!(conversation.whatsapp_chat_id.expose().unwrap(), &p.chat);
    let health = scope.health_data().get(p.health).await.unwrap();
    assert_eq!(health.conditions.unwrap().expose().unwrap()["primary"], "Hipertensão Arterial");
    let document = scope.documents().get(p.document).await.unwrap();
    assert!(document.original_name.expose().unwrap().ends_with(&format!("{}.pdf", p.name)));
}

/// Every encrypted field of `p`, in every table, reads as erased through `db` (and nothing fails).
async fn assert_erased(db: &Database, p: &Person) {
    let scope = scope_in(db, p).await;
    let patient = scope.patients().get(p.id).await.unwrap();
    assert!(patient.first_name.is_erased() && patient.last_name.is_erased() && patient.phone.is_erased());
    let messages = history(&scope, p.conversation).await;
    assert_eq!(messages.len(), p.messages.len());
    for m in &messages {
        assert!(m.content.as_ref().unwrap().is_erased() && m.whatsapp_message_id.as_ref().unwrap().is_erased());
    }
    let conversation = scope.conversations().get(p.conversation).await.unwrap();
    assert!(conversation.whatsapp_chat_id.is_erased() && conversation.title.unwrap().is_erased());
    assert!(scope.health_data().get(p.health).await.unwrap().conditions.unwrap().is_erased());
    let document = scope.documents().get(p.document).await.unwrap();
    assert!(document.filename.is_erased() && document.original_name.is_erased() && document.storage_path.is_erased());
}

fn crypto_kind<T: Debug>(r: Result<T>) -> CryptoErrorKind {
    match r.unwrap_err() {
        Error::Crypto { kind, .. } => kind,
        other => panic!("expected a crypto error, got {other:?}"),
    }
}

fn local(key: &DataKey, origin: &str) -> LocalKeyProvider {
    LocalKeyProvider::from_key(key, origin)
}

fn new_provider() -> Arc<dyn KeyProvider> {
    Arc::new(local(&DataKey::generate(), "test-new"))
}

async fn assert_wrong_master_key(url: &str, keys: Arc<dyn KeyProvider>) {
    assert_eq!(crypto_kind(Database::connect_with(url, keys).await), CryptoErrorKind::WrongMasterKey);
}

/// Raw single-column query on the test database; `$1` is bound to `id`.
async fn raw<T>(tdb: &TestDb, sql: &str, id: Uuid) -> Vec<T>
where
    T: Send + Unpin,
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    match tdb.backend {
        Backend::Sqlite => {
            let pool = tdb.sqlite_pool().await;
            let rows = sqlx::query_scalar(sql).bind(id.to_string()).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = tdb.pg_pool().await;
            let rows = sqlx::query_scalar(sql).bind(id).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }
}

/// The key id named by each of a patient's ciphertexts (every patient-owned encrypted column, read raw),
/// with where it was found. Envelope: version 1, key kind 2 (patient), 16-byte key id.
async fn patient_key_ids(tdb: &TestDb, patient: Uuid) -> Vec<(String, Uuid)> {
    let mut ids = Vec::new();
    for c in ENCRYPTED_COLUMNS.iter() {
        let KeyOwner::Patient { column } = c.owner() else { continue };
        let sql = format!("SELECT {} FROM {} WHERE {column} = $1 ORDER BY id", c.column, c.table);
        for env in raw::<Option<Vec<u8>>>(tdb, &sql, patient).await.into_iter().flatten() {
            let at = format!("{}.{}", c.table, c.column);
            assert_eq!((env[0], env[1]), (1, 2), "{at}: envelope v1 under a patient key");
            ids.push((at, Uuid::from_slice(&env[2..18]).unwrap()));
        }
    }
    ids
}

fn distinct(ids: &[(String, Uuid)]) -> Vec<Uuid> {
    let mut v: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
    v.sort();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------------------
// Master key

#[backends]
async fn a_wrong_master_key_is_refused_at_open(tdb: TestDb) {
    assert_wrong_master_key(&tdb.url, new_provider()).await;
    Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
}

#[backends]
async fn master_key_rotation_rewraps_organization_keys_and_retires_the_old_key(tdb: TestDb) {
    let (a, b) = (tdb.org("A").await, tdb.org("B").await);
    let people = vec![person(&a, 0, 3).await, person(&a, 1, 3).await, person(&b, 2, 3).await];
    let message = history(&a, people[0].conversation).await[0].id;
    let before = tdb.raw_bytes("messages", "content", message).await;
    let new = new_provider();

    let report = tdb.db.rotate_master_key(new.clone()).await.unwrap();
    assert_eq!(report.organization_keys, 2, "one key per organization");
    assert_eq!(tdb.raw_bytes("messages", "content", message).await, before, "no data is rewritten");
    for p in &people {
        assert_reads(&tdb.db, p).await; // the rotating handle switched to the new key
    }
    assert_wrong_master_key(&tdb.url, tdb.keys.clone()).await;
    let fresh = Database::connect_with(&tdb.url, new).await.unwrap();
    for p in &people {
        assert_reads(&fresh, p).await;
    }
}

// ---------------------------------------------------------------------------------------------------
// Key cache

#[backends]
async fn reading_a_patients_messages_unwraps_their_keys_once(tdb: TestDb) {
    let scope = tdb.org("A").await;
    let started = Instant::now();
    let p = person(&scope, 0, 1000).await;
    eprintln!("{:?}: 1,000 messages appended in {:?}", tdb.backend, started.elapsed());

    let fresh = Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
    let messages = history(&scope_in(&fresh, &p).await, p.conversation).await; // two pages of 500
    assert_eq!(messages.len(), 1000);
    assert!(messages.iter().all(|m| m.content.as_ref().unwrap().expose().is_ok()));
    assert_eq!(fresh.key_stats().unwraps, 2, "the organization key and the patient key, once each");
}

#[backends]
async fn the_key_cache_is_bounded_in_size_and_time(tdb: TestDb) {
    let scope = tdb.org("A").await;
    let mut people = Vec::new();
    for i in 0..5 {
        people.push(person(&scope, i, 1).await);
    }
    let open = |max_entries, ttl| {
        Database::open(DatabaseOptions::new(&tdb.url).key_cache(KeyCacheConfig { max_entries, ttl }), tdb.keys.clone())
    };

    let small = open(2, Duration::from_secs(600)).await.unwrap();
    for p in &people {
        assert_reads(&small, p).await;
        assert!(small.cached_keys() <= 2, "{} keys cached", small.cached_keys());
    }

    // Warm cache: reading the same patient again unwraps nothing; with a zero TTL it unwraps again.
    // (With a zero TTL the exact count also depends on the audit sequencer, which loads the
    // organization key in the background after commits on PostgreSQL.)
    for ttl in [Duration::from_secs(600), Duration::ZERO] {
        let db = open(100, ttl).await.unwrap();
        assert_reads(&db, &people[0]).await;
        db.flush_audit().await.unwrap();
        let first = db.key_stats().unwraps;
        assert_reads(&db, &people[0]).await;
        db.flush_audit().await.unwrap();
        let second = db.key_stats().unwraps;
        if ttl.is_zero() {
            // The second read unwraps its keys again; how many the sequencer adds varies with load.
            assert!(second > first, "ttl 0: {first} then {second}");
        } else {
            assert_eq!(second, first, "ttl {ttl:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Data key rotation

#[backends(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_patient_key_rotation_resumes_after_a_restart_with_writers_running(tdb: TestDb) {
    let scope = tdb.org("A").await;
    let mut x = person(&scope, 0, 60).await;
    let y = person(&scope, 1, 2).await;
    let (old_x, old_y) = (patient_key_ids(&tdb, x.id).await, patient_key_ids(&tdb, y.id).await);
    let old_key = distinct(&old_x)[0];
    assert_eq!(distinct(&old_x), vec![old_key]);

    let bystander = Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
    assert_reads(&bystander, &x).await; // another process, with X's key as it was cached

    let target = RotationTarget::Patient(x.id);
    let start = scope.keys().start_rotation(target).await.unwrap();
    assert_eq!((start.rows_done, start.rows_total), (0, 64), "patient, conversation, 60 messages, 2 records");
    assert_ne!(start.new_key_id, old_key);
    assert_err(scope.keys().start_rotation(target).await, "conflict", Some("rotation"));

    // Part of the run, with a writer appending meanwhile; then the process "crashes" halfway.
    let writer = spawn_writer(scope.clone(), x.conversation, "during the run");
    let two_batches = RunOptions { batch_size: 10, max_batches: Some(2) };
    let mut status = start.clone();
    while status.rows_done * 2 < status.rows_total {
        status = scope.keys().run_rotation(start.id, two_batches, |_| {}).await.unwrap();
        assert_eq!(scope.patients().get(x.id).await.unwrap().first_name.expose().unwrap(), &x.name);
        assert!(texts(&scope, x.conversation).await.iter().all(Option::is_some), "reads keep working");
    }
    assert!(!status.completed && status.rows_done > 0 && status.remaining() > 0, "{status:?}");
    assert_eq!(status.current_step, Some("messages"));
    assert_eq!(scope.keys().rotation_status(start.id).await.unwrap(), status, "the position is persisted");
    let mut both = vec![old_key, start.new_key_id];
    both.sort();
    assert_eq!(distinct(&patient_key_ids(&tdb, x.id).await), both, "halfway: some rows old, some new");
    x.messages.extend(writer.await.unwrap());

    // A new handle resumes where the first one stopped, with another writer running.
    let restarted = Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
    let scope = scope_in(&restarted, &x).await;
    let writer = spawn_writer(scope.clone(), x.conversation, "during the resume");
    let mut reports: Vec<RotationStatus> = Vec::new();
    let done = scope.keys().run_rotation(start.id, RunOptions::default(), |s| reports.push(s.clone())).await.unwrap();
    x.messages.extend(writer.await.unwrap());
    assert!(done.completed && done.remaining() == 0 && done.completed_at.is_some() && done.current_step.is_none());
    assert_eq!(reports.last(), Some(&done), "progress is reported after every batch");
    assert!(reports.windows(2).all(|w| w[0].rows_done <= w[1].rows_done));

    // Nothing lost, every ciphertext of X under the new key, Y untouched.
    assert_reads(&Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap(), &x).await;
    let now_x = patient_key_ids(&tdb, x.id).await;
    assert_eq!(now_x.len(), old_x.len() + 30, "every ciphertext of X, including the 30 written meanwhile");
    assert!(now_x.iter().all(|(_, k)| *k == start.new_key_id), "{now_x:?}");
    assert_eq!(patient_key_ids(&tdb, y.id).await, old_y);
    assert_reads(&restarted, &y).await;
    assert_reads(&bystander, &x).await;

    // The rotation lock is released: a new rotation may start (and complete) now.
    let again = scope.keys().start_rotation(target).await.unwrap();
    assert!(scope.keys().run_rotation(again.id, RunOptions::default(), |_| {}).await.unwrap().completed);
    assert_reads(&restarted, &x).await;
}

/// Lookups through every blind index the organization key computes.
async fn assert_lookups(scope: &Scope, people: &[Person], doctor: Uuid) {
    for p in people {
        let found = scope.patients().find_by_phone(&p.phone).await.unwrap();
        assert_eq!(found.map(|f| f.id), Some(p.id), "find_by_phone({})", p.phone);
        assert_eq!(scope.conversations().open_for_chat(&p.chat).await.unwrap().map(|c| c.id), Some(p.conversation));
        let message = scope.messages().find_by_whatsapp_message_id(&p.wamids[0]).await.unwrap();
        assert_eq!(message.map(|m| m.conversation_id), Some(p.conversation));
    }
    let found = scope.providers().find_by_email("Ana.Souza@hospital.com.br").await.unwrap();
    assert_eq!(found.map(|f| f.id), Some(doctor));
}

/// The organization's settings (under the organization key) decrypt.
async fn assert_settings(db: &Database, org: Uuid) {
    let settings = db.organizations().get(org).await.unwrap().settings.unwrap();
    assert_eq!(settings.expose().unwrap()["whatsapp_phone_number_id"], "wa-business-001");
}

#[backends]
async fn organization_key_rotation_keeps_every_lookup_working_at_every_batch(tdb: TestDb) {
    let settings = json!({"whatsapp_phone_number_id": "wa-business-001"});
    let new_org = NewOrganization {
        settings: Some(Sensitive::new(settings)),
        ..NewOrganization::new("Hospital", OrganizationType::Hospital)
    };
    let org = tdb.db.organizations().create(new_org).await.unwrap();
    let scope = tdb.db.scope(org.id, Actor::platform()).await.unwrap();
    let mut people = Vec::new();
    for i in 0..7 {
        people.push(person(&scope, i, 1).await);
    }
    let doctor = NewProvider::new("Ana", "Souza", "ana.souza@hospital.com.br", ProviderRole::Doctor);
    let doctor = scope.providers().create(doctor).await.unwrap().id;
    let phone_index = "SELECT phone_bidx FROM patients WHERE organization_id = $1 ORDER BY id";
    let original: Vec<Vec<u8>> = raw(&tdb, phone_index, org.id).await;

    // Another process, whose cache holds the organization key as it was before the rotation.
    let bystander = Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
    let elsewhere = bystander.scope(org.id, Actor::platform()).await.unwrap();
    assert_lookups(&elsewhere, &people, doctor).await;

    let mut status = scope.keys().start_rotation(RotationTarget::Organization).await.unwrap();
    let (mut batches, mut saw_mixed_index) = (0, false);
    while !status.completed {
        assert_lookups(&scope, &people, doctor).await;
        assert_lookups(&elsewhere, &people, doctor).await;
        assert_settings(&tdb.db, org.id).await;
        status = scope
            .keys()
            .run_rotation(status.id, RunOptions { batch_size: 2, max_batches: Some(1) }, |_| {})
            .await
            .unwrap();
        batches += 1;
        let now: Vec<Vec<u8>> = raw(&tdb, phone_index, org.id).await;
        let rekeyed = now.iter().zip(&original).filter(|(a, b)| a != b).count();
        saw_mixed_index |= rekeyed > 0 && rekeyed < people.len();
    }
    assert_lookups(&scope, &people, doctor).await;
    assert_lookups(&elsewhere, &people, doctor).await;
    assert_settings(&bystander, org.id).await;
    assert!(batches > 10 && saw_mixed_index, "{batches} batches; lookups ran while the phone index was mixed");
    let changed: Vec<Vec<u8>> = raw(&tdb, phone_index, org.id).await;
    assert!(changed.iter().zip(&original).all(|(a, b)| a != b), "every phone re-indexed");

    // Patient keys are re-wrapped by the new organization key; a fresh handle reads everything.
    let stale = "SELECT COUNT(*) FROM patient_keys WHERE wrapping_key_id <> $1";
    assert_eq!(raw::<i64>(&tdb, stale, status.new_key_id).await, vec![0]);
    let fresh = Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap();
    for (db, p) in people.iter().flat_map(|p| [(&fresh, p), (&bystander, p)]) {
        assert_reads(db, p).await;
    }
    assert_lookups(&scope_in(&fresh, &people[0]).await, &people, doctor).await;
    assert_settings(&fresh, org.id).await;
}

#[backends]
async fn identifiers_stay_unique_while_an_organization_rotation_runs(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(person(&scope, i, 1).await);
    }
    let status = scope.keys().start_rotation(RotationTarget::Organization).await.unwrap();
    let status =
        scope.keys().run_rotation(status.id, RunOptions { batch_size: 2, max_batches: Some(3) }, |_| {}).await.unwrap();
    assert!(!status.completed, "the phone index is now half old, half new");
    for p in &people {
        let duplicate = NewPatient {
            first_name: "Outro".into(),
            last_name: "Paciente".into(),
            phone: p.phone.as_str().into(),
            ..Default::default()
        };
        assert_err(scope.patients().create(duplicate).await, "conflict", Some("phone"));
        let wamid = p.wamids[0].clone();
        assert_err(
            scope.messages().append(text(p.conversation, "de novo", Some(wamid))).await,
            "conflict",
            Some("whatsapp_message_id"),
        );
    }
    let done = scope.keys().run_rotation(status.id, RunOptions::default(), |_| {}).await.unwrap();
    assert!(done.completed);
    for p in &people {
        assert_eq!(scope.patients().find_by_phone(&p.phone).await.unwrap().unwrap().id, p.id);
    }
}

// ---------------------------------------------------------------------------------------------------
// Crypto-shredding

#[backends]
async fn shredding_a_patient_erases_them_everywhere_and_nobody_else(tdb: TestDb) {
    let scope = tdb.org("A").await;
    let org = scope.organization_id();
    let officer = Uuid::now_v7();
    let admin = tdb.db.scope(org, Actor::admin(Some(officer))).await.unwrap();
    let (x, y) = (person(&scope, 0, 3).await, person(&scope, 1, 3).await);

    // Shredding is an administrator's act (the access matrix allows it to ADMIN and platform only).
    let provider = tdb.db.scope(org, Actor::provider(tdb.provider(&scope).await)).await.unwrap();
    assert_err(provider.keys().shred_patient(x.id, "not mine to do").await, "permission_denied", None);
    let receipt = admin.keys().shred_patient(x.id, "LGPD erasure request 42").await.unwrap();
    assert_eq!((receipt.organization_id, receipt.patient_id), (org, x.id));
    assert_eq!(receipt.destroyed_key_ids, distinct(&patient_key_ids(&tdb, x.id).await));
    assert_eq!(receipt.shredded_by, format!("ADMIN:{officer}"));
    assert_eq!(receipt.reason, "LGPD erasure request 42");

    for db in [&tdb.db, &Database::connect_with(&tdb.url, tdb.keys.clone()).await.unwrap()] {
        assert_erased(db, &x).await;
        assert_reads(db, &y).await;
    }
    let erased = scope.patients().get(x.id).await.unwrap();
    assert!(erased.erased_at.is_some_and(|t| t >= receipt.shredded_at - chrono::Duration::seconds(1)));
    let listed = scope.patients().list(PageRequest::first(50)).await.unwrap().items;
    assert!(listed.iter().any(|p| p.id == x.id && p.first_name.is_erased()));
    assert!(listed.iter().any(|p| p.id == y.id && p.first_name.expose().is_ok()));

    // X's identifiers neither find nor block anyone.
    assert!(scope.patients().find_by_phone(&x.phone).await.unwrap().is_none());
    assert!(scope.conversations().open_for_chat(&x.chat).await.unwrap().is_none());
    assert!(scope.messages().find_by_whatsapp_message_id(&x.wamids[0]).await.unwrap().is_none());
    let returning = NewPatient {
        first_name: "Novo".into(),
        last_name: "Paciente".into(),
        phone: x.phone.as_str().into(),
        ..Default::default()
    };
    let newcomer = scope.patients().create(returning).await.unwrap();
    assert_eq!(scope.patients().find_by_phone(&x.phone).await.unwrap().map(|p| p.id), Some(newcomer.id));

    // Nothing can be written for X any more.
    assert_err(scope.messages().append(text(x.conversation, "olá?", None)).await, "erased", None);
    let patch = PatientPatch { is_active: Some(false), ..Default::default() };
    assert_err(scope.patients().update(x.id, patch).await, "erased", None);
    let record = NewHealthData {
        symptoms: Some(Sensitive::new(json!(["tontura"]))),
        ..NewHealthData::new(x.id, HealthDataType::Symptom, HealthCategory::General)
    };
    assert_err(scope.health_data().create(record).await, "erased", None);
    assert_err(scope.keys().start_rotation(RotationTarget::Patient(x.id)).await, "erased", None);

    let second = scope.keys().shred_patient(x.id, "LGPD erasure request 42").await.unwrap();
    assert!(second.destroyed_key_ids.is_empty());
    assert_err(scope.keys().shred_patient(Uuid::now_v7(), "no such patient").await, "not_found", None);
    assert_reads(&tdb.db, &y).await;
}

#[tokio::test]
async fn a_backup_taken_before_shredding_is_erased_too_when_opened_with_the_current_key_store_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let keys = new_provider();
    let open = |data: &str| Database::open(DatabaseOptions::new(url(data)).keystore(url("keys.db")), keys.clone());
    let db = open("data.db").await.unwrap();
    db.migrate().await.unwrap();
    let org = db.organizations().create(NewOrganization::new("Hospital", OrganizationType::Hospital)).await.unwrap();
    let scope = db.scope(org.id, Actor::platform()).await.unwrap();
    let (x, y) = (person(&scope, 0, 3).await, person(&scope, 1, 3).await);

    // The data database holds no key material: the key tables live only in keys.db.
    let data = sqlx::SqlitePool::connect(&url("data.db")).await.unwrap();
    for table in ["patient_keys", "organization_keys", "keystore_meta"] {
        let count = sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&data).await;
        assert!(count.is_err(), "{table} must not exist in data.db");
    }
    let backup_path = dir.path().join("backup.db");
    sqlx::query(&format!("VACUUM INTO '{}'", backup_path.display())).execute(&data).await.unwrap();
    data.close().await;

    scope.keys().shred_patient(x.id, "LGPD erasure request 42").await.unwrap();
    let backup = open("backup.db").await.unwrap();
    assert_erased(&backup, &x).await;
    assert_reads(&backup, &y).await;

    // X's ciphertexts are still physically in the backup; only the key is gone.
    let raw = sqlx::SqlitePool::connect(&url("backup.db")).await.unwrap();
    let first_name: Option<Vec<u8>> = sqlx::query_scalar("SELECT first_name FROM patients WHERE id = $1")
        .bind(x.id.to_string())
        .fetch_one(&raw)
        .await
        .unwrap();
    assert!(first_name.is_some_and(|b| b.len() > 18));
    raw.close().await;
}

// ---------------------------------------------------------------------------------------------------
// Misuse and providers

#[backends]
async fn unknown_keys_truncated_envelopes_and_short_keys_are_typed_errors(tdb: TestDb) {
    assert_eq!(crypto_kind(DataKey::from_slice(&[0u8; 31])), CryptoErrorKind::InvalidKey);
    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
    assert_err(LocalKeyProvider::from_base64(&short, "short key"), "config", None);
    let scope = tdb.org("A").await;
    let p = person(&scope, 0, 1).await;
    let id = history(&scope, p.conversation).await[0].id;
    let original = tdb.raw_bytes("messages", "content", id).await.unwrap();

    let mut unknown = original.clone();
    unknown[2..18].copy_from_slice(Uuid::new_v4().as_bytes());
    tdb.raw_set_bytes("messages", "content", id, Some(unknown)).await;
    assert_eq!(crypto_kind(scope.messages().get(id).await), CryptoErrorKind::UnknownKey);
    tdb.raw_set_bytes("messages", "content", id, Some(original[..20].to_vec())).await;
    assert_eq!(crypto_kind(scope.messages().get(id).await), CryptoErrorKind::MalformedEnvelope);
    tdb.raw_set_bytes("messages", "content", id, Some(original)).await;
    assert_reads(&tdb.db, &p).await;
}

/// A stand-in for an external KMS (AWS KMS, Vault transit), written against the public trait only: the
/// master key never leaves it, and it counts its calls like a KMS bill would.
struct FakeKms {
    key: Aes256Gcm,
    wraps: AtomicUsize,
    unwraps: AtomicUsize,
}

impl FakeKms {
    const PREFIX: &'static [u8] = b"kms:alias/austa:v1:";

    fn new() -> Arc<Self> {
        let key = Aes256Gcm::new(DataKey::generate().expose().into());
        Arc::new(Self { key, wraps: AtomicUsize::new(0), unwraps: AtomicUsize::new(0) })
    }
}

impl KeyProvider for FakeKms {
    fn describe(&self) -> String {
        "fake-kms:alias/austa".into()
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>> {
        self.wraps.fetch_add(1, Ordering::SeqCst);
        let nonce: [u8; 12] = rand::random();
        let sealed = self.key.encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: context });
        let sealed = sealed.map_err(|_| Error::Crypto { kind: CryptoErrorKind::KeyUnwrap, context: "kms".into() })?;
        Ok([Self::PREFIX, &nonce, &sealed].concat())
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        let fail = |kind| Error::Crypto { kind, context: "kms".into() };
        let body = wrapped.strip_prefix(Self::PREFIX).ok_or(fail(CryptoErrorKind::MalformedEnvelope))?;
        let (nonce, sealed) = body.split_at_checked(12).ok_or(fail(CryptoErrorKind::MalformedEnvelope))?;
        let plain = self.key.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: context });
        DataKey::from_slice(&plain.map_err(|_| fail(CryptoErrorKind::KeyUnwrap))?)
    }
}

/// Moves the test database to `keys` (a master key rotation), then uses it end to end from a new
/// handle: open, migrate, create an organization and a patient. Returns the patient.
async fn move_to(tdb: &TestDb, keys: Arc<dyn KeyProvider>) -> Person {
    tdb.db.rotate_master_key(keys.clone()).await.unwrap();
    let db = Database::connect_with(&tdb.url, keys).await.unwrap();
    db.migrate().await.unwrap();
    let org = db.organizations().create(NewOrganization::new("Clínica", OrganizationType::Clinic)).await.unwrap();
    person(&db.scope(org.id, Actor::platform()).await.unwrap(), 9, 2).await
}

/// Reads `p` twice through a new handle opened with `keys`.
async fn read_twice(tdb: &TestDb, keys: Arc<dyn KeyProvider>, p: &Person) {
    let db = Database::connect_with(&tdb.url, keys).await.unwrap();
    assert_reads(&db, p).await;
    assert_reads(&db, p).await;
    assert_eq!(db.key_stats().unwraps, 2, "organization and patient key unwrapped once each");
}

#[backends]
async fn external_and_dual_key_providers_work_through_the_public_trait(tdb: TestDb) {
    let kms = FakeKms::new();
    let p = move_to(&tdb, kms.clone()).await;
    assert!(kms.wraps.load(Ordering::SeqCst) >= 2, "key check and organization keys wrapped by the KMS");
    let calls = || kms.unwraps.load(Ordering::SeqCst);
    let before = calls();
    read_twice(&tdb, kms.clone(), &p).await;
    assert_eq!(calls() - before, 2, "one KMS call for the key check, one for the organization key");

    let (a, b) = (DataKey::generate(), DataKey::generate());
    let dual = |b: &DataKey| -> Arc<dyn KeyProvider> {
        Arc::new(DualKeyProvider::new(local(&a, "custodian-a"), local(b, "custodian-b")))
    };
    let p = move_to(&tdb, dual(&b)).await;
    read_twice(&tdb, dual(&b), &p).await;
    assert_wrong_master_key(&tdb.url, Arc::new(local(&a, "custodian-a"))).await;
    assert_wrong_master_key(&tdb.url, dual(&DataKey::generate())).await;
    assert_wrong_master_key(&tdb.url, kms).await;
}

/// Whether any of `files` (those that exist) holds `needle`.
fn any_file_holds(files: &[std::path::PathBuf], needle: &[u8]) -> bool {
    files.iter().filter_map(|f| std::fs::read(f).ok()).any(|bytes| crate::support::contains(&bytes, needle))
}

#[tokio::test]
async fn shredding_leaves_no_byte_of_the_old_wrapped_key_in_the_database_files_wal_included_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let url = format!("sqlite://{}", path.display());
    let db = Database::connect_with(&url, new_provider()).await.unwrap();
    db.migrate().await.unwrap();
    let org = db.organizations().create(NewOrganization::new("Hospital", OrganizationType::Hospital)).await.unwrap();
    let scope = db.scope(org.id, Actor::platform()).await.unwrap();
    let x = person(&scope, 0, 3).await;
    let storage_path = format!("s3://exames/{}/hemograma-paciente-0.pdf", x.id);
    let new = NewDocument::new(
        x.id,
        "hemograma.pdf",
        "Hemograma - Paciente 0.pdf",
        "application/pdf",
        2048,
        storage_path.as_str(),
        DocumentType::LabResult,
        DocumentCategory::Laboratory,
    );
    let document = scope.documents().register(new, &"ab".repeat(32)).await.unwrap();

    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let wrapped: Vec<Vec<u8>> = sqlx::query_scalar("SELECT wrapped_key FROM patient_keys WHERE patient_id = $1")
        .bind(x.id.to_string())
        .fetch_all(&raw)
        .await
        .unwrap();
    let phone_bidx: Vec<u8> = sqlx::query_scalar("SELECT phone_bidx FROM patients WHERE id = $1")
        .bind(x.id.to_string())
        .fetch_one(&raw)
        .await
        .unwrap();
    raw.close().await;
    let files: Vec<std::path::PathBuf> =
        ["data.db", "data.db-wal", "data.db-shm"].iter().map(|f| dir.path().join(f)).collect();
    assert!(!wrapped.is_empty() && wrapped.iter().all(|k| any_file_holds(&files, k)), "the scan finds the key before");

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "created private");
    let receipt = scope.keys().shred_patient(x.id, "LGPD erasure request 77").await.unwrap();
    assert!(receipt.storage_scrubbed, "{receipt:?}");
    for key in &wrapped {
        assert!(!any_file_holds(&files, key), "an old wrapped key survived in the files");
    }
    assert!(!any_file_holds(&files, &phone_bidx), "the old phone index survived in the files");

    // The document's file lives elsewhere: the receipt names it (read before the key went), Debug hides it.
    let listed = receipt.documents.iter().find(|d| d.document_id == document.id).expect("the document is listed");
    assert_eq!(listed.storage_path.expose().unwrap(), &storage_path);
    assert!(!format!("{receipt:?}").contains("hemograma"), "{receipt:?}");
    assert!(receipt.outstanding.iter().any(|s| s.contains("backups taken before")), "{:?}", receipt.outstanding);
    assert!(receipt.outstanding.iter().any(|s| s.contains("document file")), "{:?}", receipt.outstanding);
    db.close().await;
}
