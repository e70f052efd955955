//! The durability of read events (`ReadAudit`): in both modes a read records its event with the
//! read, and the chain stays whole; relaxed reads on PostgreSQL commit with `synchronous_commit = off`
//! and nothing else does; and a transaction's events are written together, in as many statements as
//! the parameter budget needs.

use austa_core::db::{DatabaseOptions, ReadAudit};
use austa_core::repo::PageRequest;
use austa_core::{Actor, Database};
use austa_sql::{begin_on, Pool, Query, TxMode};
use serde_json::json;

use crate::support::{event_count, patient, TestDb};
use austa_macros::backends;

#[test]
fn the_mode_parses_from_its_setting() {
    assert_eq!("strict".parse::<ReadAudit>().unwrap(), ReadAudit::Strict);
    assert_eq!(" Relaxed ".parse::<ReadAudit>().unwrap(), ReadAudit::Relaxed);
    assert!(matches!("eventually".parse::<ReadAudit>(), Err(austa_core::Error::Config(_))));
    assert_eq!(ReadAudit::default(), ReadAudit::Relaxed);
}

#[backends]
async fn reads_record_their_events_in_both_modes(tdb: TestDb) {
    let scope = tdb.org("Clínica Durabilidade").await;
    let ana = patient(&scope, "Ana", "+5511987650101").await;
    for mode in [ReadAudit::Strict, ReadAudit::Relaxed] {
        let db = Database::open(DatabaseOptions::new(&tdb.app_url).read_audit(mode), tdb.keys.clone()).await.unwrap();
        let reader = db.scope(scope.organization_id(), Actor::platform()).await.unwrap();
        let before = event_count(&tdb, &scope).await;
        assert_eq!(reader.patients().get(ana.id).await.unwrap().id, ana.id);
        assert_eq!(reader.patients().find_by_phone("+5511987650101").await.unwrap().map(|p| p.id), Some(ana.id));
        assert!(reader.patients().find_by_phone("+5511987650199").await.unwrap().is_none());
        reader.patients().list(PageRequest::first(10)).await.unwrap();
        assert_eq!(event_count(&tdb, &scope).await, before + 4, "{mode:?}: one event per read, misses included");
        db.close().await;
    }
    assert!(scope.audit().verify().await.unwrap().is_intact());
}

async fn commit_setting(pool: &Pool, mode: TxMode, org: uuid::Uuid) -> (String, String) {
    let mut tx = begin_on(pool, Some(org), mode).await.unwrap();
    let row = tx
        .fetch_optional(Query::new(
            "SELECT current_setting('synchronous_commit') AS sync, current_setting('austa.organization_id') AS org",
        ))
        .await
        .unwrap()
        .unwrap();
    let found = (row.text("sync").unwrap(), row.text("org").unwrap());
    tx.commit().await.unwrap();
    found
}

#[tokio::test]
async fn only_recorded_reads_skip_the_flush_postgres() {
    let Some(tdb) = crate::support::postgres().await else { return };
    let pool = Pool::open(&tdb.app_url).await.unwrap();
    let org = uuid::Uuid::now_v7();
    let relaxed = commit_setting(&pool, TxMode::RecordedRead, org).await;
    assert_eq!(relaxed, ("off".to_string(), org.to_string()), "relaxed reads: no flush wait, tenant still bound");
    for mode in [TxMode::Write, TxMode::Read] {
        let (sync, tenant) = commit_setting(&pool, mode, org).await;
        assert_eq!(sync, "on", "{mode:?} keeps the server's durable commit");
        assert_eq!(tenant, org.to_string());
    }
    // The setting is the transaction's: the connection goes back to the pool as it came.
    let (sync, _) = commit_setting(&pool, TxMode::Write, org).await;
    assert_eq!(sync, "on");
    pool.close().await;
}

#[backends]
async fn a_transaction_with_many_events_writes_them_all(tdb: TestDb) {
    // 40 new senders in one body: 40 patients, 40 conversations, 40 messages and the IMPORT event,
    // 121 events in one transaction (more than one statement's worth on SQLite).
    let scope = tdb.org("Clínica Muitos Eventos").await;
    scope.register_whatsapp_number("109876543210088").await.unwrap();
    let ts = (chrono::Utc::now().timestamp() - 60).to_string();
    let senders: Vec<String> = (0..40).map(|i| format!("55119876502{i:02}")).collect();
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA-MANY", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "551130000000", "phone_number_id": "109876543210088" },
            "contacts": senders.iter().map(|s| json!({ "profile": { "name": "Paciente" }, "wa_id": s })).collect::<Vec<_>>(),
            "messages": senders.iter().enumerate().map(|(i, s)| json!({
                "from": s, "id": format!("wamid.MANY{i}"), "timestamp": ts, "type": "text", "text": { "body": "Olá" }
            })).collect::<Vec<_>>()
        }}]}]
    }))
    .unwrap();
    let before = event_count(&tdb, &scope).await;
    let report = tdb.db.whatsapp().ingest(&body).await.unwrap();
    assert_eq!((report.messages_stored, report.patients_created, report.conversations_created), (40, 40, 40));
    assert_eq!(event_count(&tdb, &scope).await, before + 121);
    let queued = tdb
        .raw_i64(&format!("SELECT COUNT(*) FROM audit_pending WHERE organization_id = '{}'", scope.organization_id()))
        .await;
    tdb.db.flush_audit().await.unwrap();
    assert!(queued <= 121, "each event is queued once");
    let report = scope.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}
