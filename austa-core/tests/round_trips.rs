//! Round trips per operation: the statements (`BEGIN` and `COMMIT` included) that the hot paths send
//! to the database, counted with `austa_core::db::count_round_trips` and held to a budget, so that a
//! change that adds a round trip fails here rather than in a benchmark. The budgets are the counts of
//! the code as it is, per backend: lowering one is performance work, raising one needs a reason in its
//! comment. (The background sequencer's statements belong to its own task and are not counted.)

use austa_core::db::count_round_trips;
use austa_core::repo::PageRequest;
use austa_core::Scope;
use serde_json::json;

use crate::support::{patient, Backend, TestDb};
use austa_macros::backends;

const NUMBER: &str = "109876543210077";

/// Round trips allowed per operation on one backend.
struct Budget {
    /// Ingest of one text message from a new contact: the routing read (number, organization), then
    /// one transaction that finds no patient, creates the patient's key (the key store shares the
    /// database), the patient, the conversation and the message with their events.
    ingest_new_contact: u64,
    /// Ingest of one text message from a known patient into their open conversation (the steady
    /// state, the number's route remembered): one transaction that checks the route again (number
    /// and organization), then the duplicate check, the conversation locked, the message, the
    /// counter, kept statuses under the message id's lock, the events.
    ingest_known: u64,
    /// Ingest of one text message from a known patient whose keys the handle has not cached, on a
    /// remembered route: one transaction that meets the patient, reads the patient's keys from the
    /// key store (the same database) with one more statement, opens the conversation and stores the
    /// message (no routing read, no second attempt).
    ingest_known_cold: u64,
    /// A patient looked up by phone through the blind index, with its READ event.
    lookup: u64,
    /// The latest 50 messages of a conversation, with their READ event.
    history: u64,
}

/// PostgreSQL: a transaction is `BEGIN` with the tenant setting (one simple query), its statements,
/// `COMMIT`; a transaction's events are one statement; chaining runs after commit, in the background.
const POSTGRES: Budget =
    Budget { ingest_new_contact: 20, ingest_known: 11, ingest_known_cold: 15, lookup: 4, history: 4 };
/// SQLite: no tenant setting and no data-modifying `WITH`; events are chained inside the transaction,
/// from memory when the queue is empty (the head with the queue check, the links, the new head: three).
const SQLITE: Budget =
    Budget { ingest_new_contact: 20, ingest_known: 12, ingest_known_cold: 16, lookup: 7, history: 7 };

fn budget(tdb: &TestDb) -> Budget {
    match tdb.backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

fn webhook(from: &str, wamid: &str) -> Vec<u8> {
    let ts = (chrono::Utc::now().timestamp() - 60).to_string();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA-RT", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "551130000000", "phone_number_id": NUMBER },
            "contacts": [{ "profile": { "name": "Ana" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": ts, "type": "text", "text": { "body": "Olá" } }]
        }}]}]
    }))
    .unwrap()
}

async fn setup(tdb: &TestDb) -> Scope {
    let scope = tdb.org("Clínica Round Trips").await;
    scope.register_whatsapp_number(NUMBER).await.unwrap();
    scope
}

#[backends]
async fn ingest_stays_within_its_round_trip_budget(tdb: TestDb) {
    let _scope = setup(&tdb).await;
    let whatsapp = tdb.db.whatsapp();
    let (report, first) = count_round_trips(whatsapp.ingest(&webhook("5511987650001", "wamid.RT1"))).await;
    assert_eq!(report.unwrap().messages_stored, 1);
    let (report, known) = count_round_trips(whatsapp.ingest(&webhook("5511987650001", "wamid.RT2"))).await;
    assert_eq!(report.unwrap().messages_stored, 1);
    let b = budget(&tdb);
    eprintln!("round trips on {:?}: ingest new contact {first}, known {known}", tdb.backend);
    assert!(first <= b.ingest_new_contact, "ingest, new contact: {first} round trips, budget {}", b.ingest_new_contact);
    assert!(known <= b.ingest_known, "ingest, known patient: {known} round trips, budget {}", b.ingest_known);
}

#[backends]
async fn lookup_and_history_stay_within_their_round_trip_budgets(tdb: TestDb) {
    let scope = setup(&tdb).await;
    let ana = patient(&scope, "Ana", "+5511987650002").await;
    tdb.db.whatsapp().ingest(&webhook("5511987650002", "wamid.RT3")).await.unwrap();
    let conversation = scope.conversations().list_for_patient(ana.id, PageRequest::first(1)).await.unwrap();
    let conversation = conversation.items[0].id;

    let (found, lookup) = count_round_trips(scope.patients().find_by_phone("+5511987650002")).await;
    assert_eq!(found.unwrap().map(|p| p.id), Some(ana.id));
    let (page, history) = count_round_trips(scope.messages().history(conversation, PageRequest::first(50))).await;
    assert_eq!(page.unwrap().items.len(), 1);
    let b = budget(&tdb);
    eprintln!("round trips on {:?}: lookup {lookup}, history {history}", tdb.backend);
    assert!(lookup <= b.lookup, "lookup by phone: {lookup} round trips, budget {}", b.lookup);
    assert!(history <= b.history, "history: {history} round trips, budget {}", b.history);
}

#[backends]
async fn ingest_of_a_known_patient_with_cold_keys_stays_on_its_route(tdb: TestDb) {
    let scope = setup(&tdb).await;
    let bia = patient(&scope, "Bia", "+5511987650004").await;
    // A handle that has routed the number (for another sender) but never loaded Bia's keys.
    let fresh = austa_core::Database::connect_with(&tdb.app_url, tdb.keys.clone()).await.unwrap();
    fresh.whatsapp().ingest(&webhook("5511987650003", "wamid.RT4")).await.unwrap();
    let (report, cold) = count_round_trips(fresh.whatsapp().ingest(&webhook("5511987650004", "wamid.RT5"))).await;
    let report = report.unwrap();
    assert_eq!((report.messages_stored, report.patients_created, report.conversations_created), (1, 0, 1));
    let conversation = scope.conversations().list_for_patient(bia.id, PageRequest::first(1)).await.unwrap();
    assert_eq!(conversation.items.len(), 1, "the message went to the known patient");
    let b = budget(&tdb);
    eprintln!("round trips on {:?}: ingest known patient, cold keys {cold}", tdb.backend);
    assert!(cold <= b.ingest_known_cold, "ingest, cold keys: {cold} round trips, budget {}", b.ingest_known_cold);
    fresh.close().await;
}

/// With a key store of its own, a data transaction can neither read nor create keys: a new contact's
/// key is created before the ingest transaction, and the ingest of a known patient whose keys are not
/// cached gives up its first attempt, loads the keys from the key store and runs again on its route
/// (the paths the shared key store saves); the messages still reach their patients.
#[tokio::test]
async fn with_a_key_store_of_its_own_cold_keys_are_loaded_outside_the_ingest_transaction_sqlite() {
    use austa_core::{Database, DatabaseOptions};
    let dir = tempfile::tempdir().unwrap();
    let url = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let keys: std::sync::Arc<dyn austa_core::crypto::KeyProvider> = std::sync::Arc::new(
        austa_core::crypto::LocalKeyProvider::from_key(&austa_core::crypto::DataKey::generate(), "round-trips"),
    );
    let options = || DatabaseOptions::new(url("data.db")).keystore(url("keys.db"));
    let db = Database::open(options(), keys.clone()).await.unwrap();
    db.migrate().await.unwrap();
    let org = db
        .organizations()
        .create(austa_core::model::NewOrganization::new("Clínica", austa_core::model::OrganizationType::Clinic))
        .await
        .unwrap();
    let scope = db.scope(org.id, austa_core::Actor::platform()).await.unwrap();
    scope.register_whatsapp_number(NUMBER).await.unwrap();
    let bia = patient(&scope, "Bia", "+5511987650006").await;

    let fresh = Database::open(options(), keys).await.unwrap();
    // A new contact: its key is created by the read-only pass, in the key store.
    let new_contact = fresh.whatsapp().ingest(&webhook("5511987650005", "wamid.RT6")).await.unwrap();
    assert_eq!(new_contact.patients_created, 1);
    let (report, cold) = count_round_trips(fresh.whatsapp().ingest(&webhook("5511987650006", "wamid.RT7"))).await;
    let report = report.unwrap();
    assert_eq!((report.messages_stored, report.patients_created, report.conversations_created), (1, 0, 1));
    let conversation = scope.conversations().list_for_patient(bia.id, PageRequest::first(1)).await.unwrap();
    assert_eq!(conversation.items.len(), 1, "the message went to the known patient");
    assert!(cold > SQLITE.ingest_known_cold, "{cold} round trips: the keys cannot have been read in the transaction");
    fresh.close().await;
    db.close().await;
}
