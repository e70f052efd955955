//! WhatsApp Cloud API webhook ingest on every backend: real-shaped bodies of every message type and
//! status kind, retries and concurrent deliveries, status ordering, statuses before their message,
//! unknown numbers, malformed bodies (nothing stored), conversation counters and audit events.
//! Synthetic data only.

use austa_core::model::{
    AuditAction, ConversationPatch, ConversationStatus, Message, MessageDirection, MessageStatus, MessageType,
    NewConversation, NewMessage, NewPatient, SenderKind,
};
use austa_core::repo::PageRequest;
use austa_core::whatsapp::IngestReport;
use austa_core::Scope;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{assert_validation, TestDb};
use austa_macros::backends;

const NUMBER: &str = "109876543210001";
/// Message times of the tests: an hour ago, in Unix seconds (the ingest refuses times far from the
/// number's registration and from now, as WhatsApp's are).
static BASE_TS: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| chrono::Utc::now().timestamp() - 3600);

fn body(changes: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA-1", "changes": changes }]
    }))
    .unwrap()
}

fn value(number: &str, contacts: Value, messages: Value, statuses: Value) -> Value {
    json!({
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "551130000000", "phone_number_id": number },
            "contacts": contacts,
            "messages": messages,
            "statuses": statuses
        }
    })
}

fn contact(wa_id: &str, name: &str) -> Value {
    json!([{ "profile": { "name": name }, "wa_id": wa_id }])
}

fn msg(id: &str, from: &str, ts: i64, kind: &str, part: Value) -> Value {
    let mut m = json!({ "from": from, "id": id, "timestamp": ts.to_string(), "type": kind });
    m[kind] = part;
    m
}

fn text(id: &str, from: &str, ts: i64, body: &str) -> Value {
    msg(id, from, ts, "text", json!({ "body": body }))
}

fn status(id: &str, status: &str, ts: i64) -> Value {
    json!({ "id": id, "status": status, "timestamp": ts.to_string(), "recipient_id": "5511900000000" })
}

async fn setup(tdb: &TestDb, name: &str) -> Scope {
    let scope = tdb.org(name).await;
    scope.register_whatsapp_number(NUMBER).await.expect("register number");
    scope
}

async fn count(tdb: &TestDb, sql: &str) -> i64 {
    tdb.raw_i64(sql).await
}

/// Rows of every table the ingest writes, to prove that a failed body stored nothing.
async fn footprint(tdb: &TestDb) -> Vec<i64> {
    let mut v = Vec::new();
    for t in ["messages", "patients", "conversations", "whatsapp_pending_statuses", "audit_logs"] {
        v.push(count(tdb, &format!("SELECT COUNT(*) FROM {t}")).await);
    }
    v
}

async fn message(scope: &Scope, wamid: &str) -> Message {
    scope.messages().find_by_whatsapp_message_id(wamid).await.unwrap().unwrap_or_else(|| panic!("{wamid} stored"))
}

fn meta(m: &Message) -> Value {
    m.metadata.as_ref().expect("metadata").expose().unwrap().clone()
}

fn content(m: &Message) -> Option<String> {
    m.content.as_ref().map(|c| c.expose().unwrap().clone())
}

/// Every conversation's counters equal its messages.
async fn assert_counters(tdb: &TestDb, scope: &Scope) {
    let convs = scope.conversations().list(PageRequest::first(100)).await.unwrap().items;
    for c in convs {
        let n = count(tdb, &format!("SELECT COUNT(*) FROM messages WHERE conversation_id = '{}'", c.id)).await;
        assert_eq!(c.message_count, n, "message_count of {}", c.id);
        let page = scope.messages().history(c.id, PageRequest::first(1)).await.unwrap();
        if let Some(latest) = page.items.first() {
            assert_eq!(c.last_message_at, latest.sent_at, "last_message_at of {}", c.id);
        }
    }
}

#[backends]
async fn every_message_type_is_stored_faithfully(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Tipos").await;
    let wa = "5511987650001";
    let t = *BASE_TS;
    let messages = json!([
        text("wamid.T1", wa, t, "Olá, preciso remarcar minha consulta"),
        msg("wamid.I1", wa, t + 1, "image", json!({"id": "MEDIA-IMG", "mime_type": "image/jpeg", "sha256": "abc123", "caption": "Receita"})),
        msg("wamid.A1", wa, t + 2, "audio", json!({"id": "MEDIA-AUD", "mime_type": "audio/ogg; codecs=opus", "sha256": "def", "voice": true})),
        msg("wamid.V1", wa, t + 3, "video", json!({"id": "MEDIA-VID", "mime_type": "video/mp4", "sha256": "ghi"})),
        msg("wamid.D1", wa, t + 4, "document", json!({"id": "MEDIA-DOC", "mime_type": "application/pdf", "sha256": "jkl", "filename": "exame.pdf", "caption": "Meu exame"})),
        msg("wamid.S1", wa, t + 5, "sticker", json!({"id": "MEDIA-STK", "mime_type": "image/webp", "sha256": "mno", "animated": false})),
        msg("wamid.L1", wa, t + 6, "location", json!({"latitude": -23.55, "longitude": -46.63, "name": "Clínica", "address": "Av. Paulista"})),
        {"from": wa, "id": "wamid.C1", "timestamp": (t + 7).to_string(), "type": "contacts",
         "contacts": [{"name": {"formatted_name": "Ana Teste", "first_name": "Ana"}, "phones": [{"phone": "+5511911112222", "type": "CELL"}]}]},
        msg("wamid.B1", wa, t + 8, "interactive", json!({"type": "button_reply", "button_reply": {"id": "confirm", "title": "Confirmar"}})),
        msg("wamid.LR1", wa, t + 9, "interactive", json!({"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Terça 14h", "description": "Dr. Silva"}})),
        {"from": wa, "id": "wamid.BT1", "timestamp": (t + 10).to_string(), "type": "button",
         "button": {"payload": "YES", "text": "Sim"}, "context": {"from": "551130000000", "id": "wamid.OUT-TEMPLATE"}},
        msg("wamid.R1", wa, t + 11, "reaction", json!({"message_id": "wamid.T1", "emoji": "👍"})),
        msg("wamid.O1", wa, t + 12, "order", json!({"catalog_id": "CAT", "product_items": []})),
        {"from": wa, "id": "wamid.U1", "timestamp": (t + 13).to_string(), "type": "unsupported",
         "errors": [{"code": 131051, "title": "Message type unknown"}]},
    ]);
    let report = tdb
        .db
        .whatsapp()
        .ingest(&body(vec![value(NUMBER, contact(wa, "Maria da Silva Teste"), messages, json!([]))]))
        .await
        .unwrap();
    assert_eq!(report.organization_id, Some(scope.organization_id()));
    assert_eq!(report.messages_stored, 14);
    assert_eq!(report.message_ids.len(), 14);
    assert_eq!(report.unsupported_stored, 2);
    assert_eq!(report.patients_created, 1);
    assert_eq!(report.conversations_created, 1);
    assert_eq!(report.duplicates_skipped, 0);

    let patient = scope.patients().find_by_whatsapp_id(wa).await.unwrap().expect("patient created");
    assert_eq!(patient.first_name.expose().unwrap(), "Maria");
    assert_eq!(patient.last_name.expose().unwrap(), "da Silva Teste");
    assert_eq!(patient.phone.expose().unwrap(), "+5511987650001");
    assert!(!patient.is_verified);
    assert_eq!(scope.patients().find_by_phone("+5511987650001").await.unwrap().map(|p| p.id), Some(patient.id));

    let m = message(&scope, "wamid.T1").await;
    assert_eq!(
        (m.message_type, m.direction, m.sender_kind),
        (MessageType::Text, MessageDirection::Inbound, SenderKind::Patient)
    );
    assert_eq!(content(&m).as_deref(), Some("Olá, preciso remarcar minha consulta"));
    assert_eq!(m.sent_at.timestamp(), t);
    assert_eq!(m.patient_id, patient.id);
    assert_eq!(meta(&m)["whatsapp_type"], "text");
    support_ciphertext(&tdb, m.id, "remarcar").await;

    let m = message(&scope, "wamid.I1").await;
    assert_eq!(m.message_type, MessageType::Image);
    assert_eq!(content(&m).as_deref(), Some("Receita"));
    assert_eq!(m.media_type.as_deref(), Some("image/jpeg"));
    assert_eq!(meta(&m)["image"]["id"], "MEDIA-IMG");
    assert_eq!(meta(&m)["image"]["sha256"], "abc123");

    let m = message(&scope, "wamid.A1").await;
    assert_eq!(m.message_type, MessageType::Audio);
    assert_eq!(m.media_type.as_deref(), Some("audio/ogg"));
    assert_eq!(meta(&m)["audio"]["mime_type"], "audio/ogg; codecs=opus");
    assert_eq!(content(&m), None);

    let m = message(&scope, "wamid.V1").await;
    assert_eq!((m.message_type, m.media_type.as_deref()), (MessageType::Video, Some("video/mp4")));

    let m = message(&scope, "wamid.D1").await;
    assert_eq!(m.message_type, MessageType::Document);
    assert_eq!(content(&m).as_deref(), Some("Meu exame"));
    assert_eq!(meta(&m)["document"]["filename"], "exame.pdf");

    let m = message(&scope, "wamid.S1").await;
    assert_eq!((m.message_type, m.media_type.as_deref()), (MessageType::Sticker, Some("image/webp")));

    let m = message(&scope, "wamid.L1").await;
    assert_eq!(m.message_type, MessageType::Location);
    assert_eq!(meta(&m)["location"]["latitude"], -23.55);

    let m = message(&scope, "wamid.C1").await;
    assert_eq!(m.message_type, MessageType::Contact);
    assert_eq!(meta(&m)["contacts"][0]["phones"][0]["phone"], "+5511911112222");

    let m = message(&scope, "wamid.B1").await;
    assert_eq!((m.message_type, content(&m).as_deref()), (MessageType::Interactive, Some("Confirmar")));
    assert_eq!(meta(&m)["interactive"]["button_reply"]["id"], "confirm");

    let m = message(&scope, "wamid.LR1").await;
    assert_eq!((m.message_type, content(&m).as_deref()), (MessageType::Interactive, Some("Terça 14h")));
    assert_eq!(meta(&m)["interactive"]["list_reply"]["description"], "Dr. Silva");

    let m = message(&scope, "wamid.BT1").await;
    assert_eq!((m.message_type, content(&m).as_deref()), (MessageType::Interactive, Some("Sim")));
    assert_eq!(meta(&m)["whatsapp_type"], "button");
    assert_eq!(meta(&m)["context"]["id"], "wamid.OUT-TEMPLATE");

    let m = message(&scope, "wamid.R1").await;
    assert_eq!((m.message_type, content(&m).as_deref()), (MessageType::Interactive, Some("👍")));
    assert_eq!(meta(&m)["reaction"]["message_id"], "wamid.T1");
    assert!(meta(&m).get("unsupported").is_none());

    for id in ["wamid.O1", "wamid.U1"] {
        let m = message(&scope, id).await;
        assert_eq!(m.message_type, MessageType::Interactive);
        assert_eq!(meta(&m)["unsupported"], true, "{id}");
    }
    assert_eq!(meta(&message(&scope, "wamid.O1").await)["order"]["catalog_id"], "CAT");
    assert_eq!(meta(&message(&scope, "wamid.U1").await)["errors"][0]["code"], 131051);

    assert_counters(&tdb, &scope).await;
}

async fn support_ciphertext(tdb: &TestDb, id: Uuid, plaintext: &str) {
    for column in ["content", "metadata", "whatsapp_message_id"] {
        let raw = tdb.raw_bytes("messages", column, id).await.expect("column set");
        assert!(!raw.windows(plaintext.len()).any(|w| w == plaintext.as_bytes()), "messages.{column} holds plaintext");
    }
}

#[backends]
async fn retries_and_concurrent_deliveries_store_once(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Retry").await;
    let wa = "5511987650002";
    let b = body(vec![value(
        NUMBER,
        contact(wa, "João"),
        json!([text("wamid.R-1", wa, *BASE_TS, "Oi"), text("wamid.R-2", wa, *BASE_TS + 5, "Tudo bem?")]),
        json!([]),
    )]);
    let first = tdb.db.whatsapp().ingest(&b).await.unwrap();
    assert_eq!((first.messages_stored, first.patients_created), (2, 1));
    let again = tdb.db.whatsapp().ingest(&b).await.unwrap();
    assert_eq!((again.messages_stored, again.duplicates_skipped, again.patients_created), (0, 2, 0));
    let p = scope.patients().find_by_whatsapp_id(wa).await.unwrap().unwrap();
    assert_eq!(p.first_name.expose().unwrap(), "João");
    assert_eq!(p.last_name.expose().unwrap(), "WhatsApp");

    // The same wamid twice in one body is stored once.
    let dup = body(vec![value(
        NUMBER,
        json!([]),
        json!([text("wamid.R-3", wa, *BASE_TS + 9, "a"), text("wamid.R-3", wa, *BASE_TS + 9, "a")]),
        json!([]),
    )]);
    let r = tdb.db.whatsapp().ingest(&dup).await.unwrap();
    assert_eq!((r.messages_stored, r.duplicates_skipped), (1, 1));

    // Two concurrent deliveries of a body from a new sender: one patient, one conversation, each
    // message once.
    let wa2 = "5511987650003";
    let msgs: Vec<Value> = (0..5).map(|i| text(&format!("wamid.CC-{i}"), wa2, *BASE_TS + i, "oi")).collect();
    let b2 = body(vec![value(NUMBER, contact(wa2, "Paula Concorrente"), json!(msgs), json!([]))]);
    let (d1, d2) = (tdb.db.clone(), tdb.db.clone());
    let (b2a, b2b) = (b2.clone(), b2.clone());
    let h1 = tokio::spawn(async move { d1.whatsapp().ingest(&b2a).await });
    let h2 = tokio::spawn(async move { d2.whatsapp().ingest(&b2b).await });
    let (r1, r2) = (h1.await.unwrap().unwrap(), h2.await.unwrap().unwrap());
    assert_eq!(r1.messages_stored + r2.messages_stored, 5);
    assert_eq!(r1.duplicates_skipped + r2.duplicates_skipped, 5);
    assert_eq!(r1.patients_created + r2.patients_created, 1);
    let p2 = scope.patients().find_by_whatsapp_id(wa2).await.unwrap().unwrap();
    assert_eq!(count(&tdb, &format!("SELECT COUNT(*) FROM messages WHERE patient_id = '{}'", p2.id)).await, 5);
    assert_eq!(count(&tdb, &format!("SELECT COUNT(*) FROM conversations WHERE patient_id = '{}'", p2.id)).await, 1);
    // The loser's patient key was created in its transaction and rolled back with it: every key
    // belongs to a patient.
    let orphans = format!(
        "SELECT COUNT(*) FROM patient_keys k WHERE k.organization_id = '{}' AND NOT EXISTS \
         (SELECT 1 FROM patients p WHERE p.organization_id = k.organization_id AND p.id = k.patient_id)",
        scope.organization_id()
    );
    assert_eq!(count(&tdb, &orphans).await, 0);
    assert_counters(&tdb, &scope).await;
}

/// A patient with a conversation and one outbound message per wamid, as the outbound recorder would
/// store them.
async fn outbound(scope: &Scope, wa: &str, wamids: &[&str]) -> Uuid {
    let patient = scope
        .patients()
        .create(NewPatient {
            first_name: "Carla".into(),
            last_name: "Teste".into(),
            phone: format!("+{wa}").into(),
            whatsapp_id: Some(wa.to_string().into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let conv = scope
        .conversations()
        .create(NewConversation {
            patient_id: patient.id,
            whatsapp_chat_id: wa.to_string().into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for w in wamids {
        let mut m = NewMessage::new(conv.id, MessageDirection::Outbound, MessageType::Text, SenderKind::Bot);
        m.content = Some("Sua consulta está confirmada".to_string().into());
        m.whatsapp_message_id = Some(w.to_string().into());
        m.status = Some(MessageStatus::Pending);
        scope.messages().append(m).await.unwrap();
    }
    conv.id
}

#[backends]
async fn statuses_move_forward_only_and_wait_for_their_message(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Status").await;
    let wa = "5511987650004";
    outbound(&scope, wa, &["wamid.OUT-1", "wamid.OUT-2", "wamid.OUT-3"]).await;
    let ingest = |statuses: Value| {
        let b = body(vec![value(NUMBER, json!([]), json!([]), statuses)]);
        let db = tdb.db.clone();
        async move { db.whatsapp().ingest(&b).await.unwrap() }
    };

    let r = ingest(json!([status("wamid.OUT-1", "sent", *BASE_TS), status("wamid.OUT-1", "delivered", *BASE_TS + 1)]))
        .await;
    assert_eq!((r.statuses_applied, r.statuses_stale), (2, 0));
    assert_eq!(message(&scope, "wamid.OUT-1").await.status, MessageStatus::Delivered);

    // Out of order: read arrives before delivered; delivered must not move it back.
    let r =
        ingest(json!([status("wamid.OUT-2", "read", *BASE_TS + 10), status("wamid.OUT-2", "delivered", *BASE_TS + 5)]))
            .await;
    assert_eq!((r.statuses_applied, r.statuses_stale), (1, 1));
    let m = message(&scope, "wamid.OUT-2").await;
    assert_eq!(m.status, MessageStatus::Read);
    assert_eq!(m.read_at.map(|t| t.timestamp()), Some(*BASE_TS + 10));
    // Sent and failed after read are stale too; a repeated read changes nothing.
    let r = ingest(json!([status("wamid.OUT-2", "sent", *BASE_TS + 11), status("wamid.OUT-2", "read", *BASE_TS + 12)]))
        .await;
    assert_eq!((r.statuses_applied, r.statuses_stale), (0, 2));
    assert_eq!(message(&scope, "wamid.OUT-2").await.read_at.map(|t| t.timestamp()), Some(*BASE_TS + 10));

    // Failed with errors: final, and the errors are kept in the encrypted metadata.
    let mut failed = status("wamid.OUT-3", "failed", *BASE_TS + 20);
    failed["errors"] = json!([{ "code": 131047, "title": "Re-engagement message", "error_data": {"details": "x"} }]);
    let r = ingest(json!([status("wamid.OUT-3", "sent", *BASE_TS + 19), failed])).await;
    assert_eq!(r.statuses_applied, 2);
    let m = message(&scope, "wamid.OUT-3").await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert_eq!(meta(&m)["whatsapp_errors"][0]["code"], 131047);
    assert_eq!(meta(&m)["whatsapp_errors"][0]["title"], "Re-engagement message");
    let r = ingest(json!([
        status("wamid.OUT-3", "delivered", *BASE_TS + 21),
        status("wamid.OUT-3", "read", *BASE_TS + 22)
    ]))
    .await;
    assert_eq!((r.statuses_applied, r.statuses_stale), (0, 2));
    assert_eq!(message(&scope, "wamid.OUT-3").await.status, MessageStatus::Failed);

    // Unknown status values are skipped, not failing the body.
    let r = ingest(json!([status("wamid.OUT-1", "deleted", *BASE_TS + 30)])).await;
    assert_eq!(r.statuses_ignored, 1);

    // A status before its message is kept (once, even when delivered twice), then applied when the
    // outbound message with that wamid is recorded.
    use austa_core::repo::outbound::{NewOutboundMessage, OutboundSender};
    let conv = outbound(&scope, "5511987650014", &[]).await;
    let record = |wamid: &str| {
        let mut out = NewOutboundMessage::text(conv, OutboundSender::Bot, "Seu exame está pronto");
        out.whatsapp_message_id = Some(wamid.to_string().into());
        let scope = scope.clone();
        async move { scope.messages().record_outbound(out).await.unwrap() }
    };
    let early =
        json!([status("wamid.LATE-1", "read", *BASE_TS + 40), status("wamid.LATE-1", "delivered", *BASE_TS + 39)]);
    let r = ingest(early.clone()).await;
    assert_eq!((r.statuses_pending, r.statuses_applied), (2, 0));
    ingest(early).await;
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM whatsapp_pending_statuses").await, 2);
    let m = record("wamid.LATE-1").await;
    assert_eq!(m.status, MessageStatus::Read);
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM whatsapp_pending_statuses").await, 0);
    // A kept FAILED status brings its errors along.
    let mut failed = status("wamid.LATE-2", "failed", *BASE_TS + 50);
    failed["errors"] = json!([{ "code": 131026, "title": "Message undeliverable" }]);
    assert_eq!(ingest(json!([failed])).await.statuses_pending, 1);
    record("wamid.LATE-2").await;
    let m = message(&scope, "wamid.LATE-2").await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert_eq!(meta(&m)["whatsapp_errors"][0]["code"], 131026);
    assert_counters(&tdb, &scope).await;
}

#[backends]
async fn bad_bodies_store_nothing(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Erros").await;
    let wa = "5511987650005";
    let before = footprint(&tdb).await;
    let w = tdb.db.whatsapp();

    // Unknown business number.
    let b = body(vec![value("999000111", contact(wa, "X"), json!([text("wamid.E1", wa, *BASE_TS, "oi")]), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.metadata.phone_number_id");
    // Malformed JSON.
    assert_validation(w.ingest(b"{\"object\": \"whatsapp_business_account\", \"entry\": [").await, "body");
    assert_validation(w.ingest(b"").await, "body");
    // Wrong shapes, named by JSON path.
    assert_validation(w.ingest(br#"{"object":"page","entry":[]}"#).await, "object");
    assert_validation(w.ingest(br#"{"object":"whatsapp_business_account"}"#).await, "entry");
    assert_validation(w.ingest(br#"{"object":"whatsapp_business_account","entry":{}}"#).await, "entry");
    assert_validation(w.ingest(br#"[1,2]"#).await, "body");
    let no_meta = serde_json::to_vec(&json!({"object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": {"messages": []}}]}]}))
    .unwrap();
    assert_validation(w.ingest(&no_meta).await, "entry[0].changes[0].value.metadata");
    // A valid message followed by a broken one: the whole body fails, the valid one is not stored.
    let mut broken = text("wamid.E3", wa, *BASE_TS, "oi");
    broken["timestamp"] = json!("yesterday");
    let b =
        body(vec![value(NUMBER, contact(wa, "X"), json!([text("wamid.E2", wa, *BASE_TS, "oi"), broken]), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages[1].timestamp");
    let b = body(vec![value(NUMBER, json!([]), json!([text("wamid.E7", wa, -3_000_000_000, "oi")]), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages[0].timestamp");
    let mut no_id = text("wamid.E4", wa, *BASE_TS, "oi");
    no_id.as_object_mut().unwrap().remove("id");
    let b = body(vec![value(NUMBER, json!([]), json!([no_id]), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages[0].id");
    let b = body(vec![value(NUMBER, json!([]), json!([]), json!([{"id": "wamid.X", "timestamp": "1"}]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.statuses[0].status");
    let b = body(vec![value(NUMBER, json!([]), json!("not a list"), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages");
    // A body mixing two organizations' numbers.
    let other = tdb.org("Clínica Outra").await;
    other.register_whatsapp_number("209876543210002").await.unwrap();
    let b = body(vec![
        value(NUMBER, json!([]), json!([text("wamid.E5", wa, *BASE_TS, "oi")]), json!([])),
        value("209876543210002", json!([]), json!([text("wamid.E6", wa, *BASE_TS, "oi")]), json!([])),
    ]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[1].value.metadata.phone_number_id");

    let mut after = footprint(&tdb).await;
    // Creating the second organization and registering its number are audited in its own chain.
    let other_events =
        count(&tdb, &format!("SELECT COUNT(*) FROM audit_logs WHERE organization_id = '{}'", other.organization_id()))
            .await;
    after[4] -= other_events;
    assert_eq!(before, after, "nothing stored by failed bodies");
    assert!(scope.messages().find_by_whatsapp_message_id("wamid.E2").await.unwrap().is_none());

    // Non-message notifications are accepted and store nothing.
    let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]}))
    .unwrap();
    assert_eq!(w.ingest(&b).await.unwrap(), IngestReport::default());
}

#[backends]
async fn numbers_register_once_per_platform(tdb: TestDb) {
    let a = setup(&tdb, "Hospital A").await;
    a.register_whatsapp_number(NUMBER).await.unwrap(); // idempotent
    assert_eq!(tdb.db.whatsapp().organization_for(NUMBER).await.unwrap(), Some(a.organization_id()));
    let b = tdb.org("Hospital B").await;
    let e = b.register_whatsapp_number(NUMBER).await.unwrap_err();
    assert_eq!((e.code(), e.field()), ("conflict", Some("phone_number_id")));
    assert_eq!(b.register_whatsapp_number("with space").await.unwrap_err().code(), "validation");
    // The webhook's own actor may not register numbers.
    let webhook = tdb.db.scope(b.organization_id(), austa_core::Actor::system("whatsapp-webhook")).await.unwrap();
    assert_eq!(webhook.register_whatsapp_number("309876543210003").await.unwrap_err().code(), "permission_denied");
    a.unregister_whatsapp_number(NUMBER).await.unwrap();
    assert_eq!(a.unregister_whatsapp_number(NUMBER).await.unwrap_err().code(), "not_found");
    assert_eq!(tdb.db.whatsapp().organization_for(NUMBER).await.unwrap(), None);
    b.register_whatsapp_number(NUMBER).await.unwrap();
    assert_eq!(tdb.db.whatsapp().organization_for(NUMBER).await.unwrap(), Some(b.organization_id()));
}

#[backends]
async fn known_patients_closed_conversations_counters_and_audit(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Fluxo").await;
    // A patient registered by phone only (no WhatsApp id) is found by phone.
    let known = scope
        .patients()
        .create(NewPatient {
            first_name: "Rita".into(),
            last_name: "Conhecida".into(),
            phone: "(11) 98765-0006".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let wa = "5511987650006";
    let b = body(vec![value(
        NUMBER,
        contact(wa, "Outro Nome"),
        json!([text("wamid.K1", wa, *BASE_TS, "Bom dia")]),
        json!([]),
    )]);
    let r = tdb.db.whatsapp().ingest(&b).await.unwrap();
    assert_eq!((r.patients_created, r.conversations_created, r.messages_stored), (0, 1, 1));
    let m = message(&scope, "wamid.K1").await;
    assert_eq!(m.patient_id, known.id);
    let first_conv = m.conversation_id;

    // The same chat reuses the open conversation; after it is completed, a new one opens.
    let b = body(vec![value(NUMBER, json!([]), json!([text("wamid.K2", wa, *BASE_TS + 60, "Ainda aí?")]), json!([]))]);
    let r = tdb.db.whatsapp().ingest(&b).await.unwrap();
    assert_eq!(r.conversations_created, 0);
    assert_eq!(message(&scope, "wamid.K2").await.conversation_id, first_conv);
    scope
        .conversations()
        .update(first_conv, ConversationPatch { status: Some(ConversationStatus::Completed), ..Default::default() })
        .await
        .unwrap();
    let b =
        body(vec![value(NUMBER, json!([]), json!([text("wamid.K3", wa, *BASE_TS + 120, "Outra dúvida")]), json!([]))]);
    let r = tdb.db.whatsapp().ingest(&b).await.unwrap();
    assert_eq!(r.conversations_created, 1);
    let m3 = message(&scope, "wamid.K3").await;
    assert_ne!(m3.conversation_id, first_conv);
    assert_eq!(m3.patient_id, known.id);
    let first = scope.conversations().get(first_conv).await.unwrap();
    assert_eq!(first.message_count, 2);
    assert_eq!(first.last_message_at.timestamp(), *BASE_TS + 60);
    let second = scope.conversations().get(m3.conversation_id).await.unwrap();
    assert_eq!((second.message_count, second.last_message_at.timestamp()), (1, *BASE_TS + 120));
    assert_counters(&tdb, &scope).await;

    // Audit: a CREATE event per message, one IMPORT event per body, all by the webhook actor.
    let logs = scope.audit_logs().list(PageRequest::first(200)).await.unwrap().items;
    let by_webhook: Vec<_> = logs.iter().filter(|l| l.actor_name.as_deref() == Some("whatsapp-webhook")).collect();
    let imports: Vec<_> = by_webhook.iter().filter(|l| l.action == AuditAction::Import).collect();
    assert_eq!(imports.len(), 3);
    assert!(imports.iter().any(|l| l.record_ids == vec![m3.id]));
    for wamid in ["wamid.K1", "wamid.K2", "wamid.K3"] {
        let id = message(&scope, wamid).await.id;
        assert!(
            by_webhook.iter().any(|l| l.action == AuditAction::Create && l.entity_id == Some(id)),
            "CREATE event of {wamid}"
        );
    }
    assert!(by_webhook.iter().any(|l| l.action == AuditAction::Create && l.entity_id == Some(m3.conversation_id)));
}

#[backends]
async fn one_sender_in_two_organizations_is_two_patients(tdb: TestDb) {
    let a = setup(&tdb, "Hospital Um").await;
    let b = tdb.org("Hospital Dois").await;
    b.register_whatsapp_number("209876543210009").await.unwrap();
    let wa = "5511987650010";
    for (number, wamid) in [(NUMBER, "wamid.TWO-A"), ("209876543210009", "wamid.TWO-B")] {
        let body =
            body(vec![value(number, contact(wa, "Bia Dupla"), json!([text(wamid, wa, *BASE_TS, "oi")]), json!([]))]);
        let r = tdb.db.whatsapp().ingest(&body).await.unwrap();
        assert_eq!((r.patients_created, r.messages_stored), (1, 1));
    }
    let pa = a.patients().find_by_whatsapp_id(wa).await.unwrap().unwrap();
    let pb = b.patients().find_by_whatsapp_id(wa).await.unwrap().unwrap();
    assert_ne!(pa.id, pb.id);
    assert!(a.messages().find_by_whatsapp_message_id("wamid.TWO-B").await.unwrap().is_none());
    assert!(b.messages().find_by_whatsapp_message_id("wamid.TWO-A").await.unwrap().is_none());
    assert_eq!(message(&b, "wamid.TWO-B").await.patient_id, pb.id);
}

#[backends]
async fn a_status_kept_for_later_reaches_the_outbound_recorder(tdb: TestDb) {
    use austa_core::repo::outbound::{NewOutboundMessage, OutboundSender};
    let scope = setup(&tdb, "Hospital Status Antecipado").await;
    let conv = outbound(&scope, "5511988887777", &[]).await;
    // WhatsApp reports "delivered" before the bot's send is recorded.
    let early = body(vec![value(NUMBER, json!([]), json!([]), json!([status("wamid.EARLY", "delivered", *BASE_TS)]))]);
    let report = tdb.db.whatsapp().ingest(&early).await.unwrap();
    assert_eq!(report.statuses_pending, 1);
    let mut out = NewOutboundMessage::text(conv, OutboundSender::Bot, "Lembrete: consulta amanhã às 9h");
    out.whatsapp_message_id = Some("wamid.EARLY".to_string().into());
    let m = scope.messages().record_outbound(out).await.unwrap();
    assert_eq!(m.status, MessageStatus::Delivered, "the kept status applied when the message was recorded");
    let left = count(
        &tdb,
        &format!(
            "SELECT count(*) FROM whatsapp_pending_statuses WHERE organization_id = '{}'",
            scope.organization_id()
        ),
    )
    .await;
    assert_eq!(left, 0);
}

#[backends]
async fn a_status_never_changes_an_inbound_message(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Direção").await;
    let wa = "5511987650021";
    let w = tdb.db.whatsapp();
    let inbound =
        body(vec![value(NUMBER, contact(wa, "Iara"), json!([text("wamid.IN-1", wa, *BASE_TS, "oi")]), json!([]))]);
    w.ingest(&inbound).await.unwrap();
    let stored = message(&scope, "wamid.IN-1").await;
    assert_eq!((stored.direction, stored.status), (MessageDirection::Inbound, MessageStatus::Delivered));

    // A status naming the patient's own wamid (forged, or Meta's mistake) is ignored and counted.
    let mut failed = status("wamid.IN-1", "failed", *BASE_TS + 5);
    failed["errors"] = json!([{"code": 131051, "title": "Unsupported message type"}]);
    let statuses = json!([failed, status("wamid.IN-1", "read", *BASE_TS + 6)]);
    let events = count(&tdb, "SELECT COUNT(*) FROM audit_logs WHERE action = 'UPDATE'").await;
    let r = w.ingest(&body(vec![value(NUMBER, json!([]), json!([]), statuses)])).await.unwrap();
    assert_eq!((r.statuses_not_outbound, r.statuses_applied, r.statuses_pending), (2, 0, 0), "{r:?}");
    assert_eq!(message(&scope, "wamid.IN-1").await, stored, "status, read_at and metadata unchanged");
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM audit_logs WHERE action = 'UPDATE'").await, events);

    // A status kept before its wamid arrives as an inbound message is dropped, not applied.
    let early = json!([status("wamid.IN-2", "failed", *BASE_TS + 7)]);
    assert_eq!(w.ingest(&body(vec![value(NUMBER, json!([]), json!([]), early)])).await.unwrap().statuses_pending, 1);
    let later =
        body(vec![value(NUMBER, json!([]), json!([text("wamid.IN-2", wa, *BASE_TS + 8, "de novo")]), json!([]))]);
    let r = w.ingest(&later).await.unwrap();
    assert_eq!((r.messages_stored, r.pending_statuses_applied), (1, 0));
    assert_eq!(message(&scope, "wamid.IN-2").await.status, MessageStatus::Delivered);
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM whatsapp_pending_statuses").await, 0);
    assert!(scope.audit().verify().await.unwrap().is_intact());
}

#[backends]
async fn message_times_must_be_near_now_and_after_the_number_was_registered(tdb: TestDb) {
    let scope = setup(&tdb, "Hospital Relógio").await;
    let wa = "5511987650022";
    let w = tdb.db.whatsapp();
    let now = chrono::Utc::now().timestamp();
    let before = footprint(&tdb).await;
    let (in_2100, eight_days_ago) = (4_102_444_800, now - 8 * 86_400);
    for ts in [0, -5, 1, in_2100, now + 600, eight_days_ago] {
        let m = text("wamid.T-1", wa, ts, "oi");
        let b = body(vec![value(NUMBER, contact(wa, "Téo"), json!([m]), json!([]))]);
        assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages[0].timestamp");
        let s = status("wamid.T-S", "delivered", ts);
        let b = body(vec![value(NUMBER, json!([]), json!([]), json!([s]))]);
        assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.statuses[0].timestamp");
    }
    // The string form Meta sends is bounded the same way.
    let mut m = text("wamid.T-2", wa, now, "oi");
    m["timestamp"] = json!("0");
    let b = body(vec![value(NUMBER, contact(wa, "Téo"), json!([text("wamid.T-3", wa, now, "a"), m]), json!([]))]);
    assert_validation(w.ingest(&b).await, "entry[0].changes[0].value.messages[1].timestamp");
    assert_eq!(footprint(&tdb).await, before, "nothing stored");

    // A little clock skew ahead, and a retried delivery of a message sent days before the number
    // was registered here, are real and accepted.
    let (skewed, retried) = (now + 120, now - 6 * 86_400);
    let b = body(vec![value(
        NUMBER,
        contact(wa, "Téo"),
        json!([text("wamid.T-4", wa, skewed, "a"), text("wamid.T-5", wa, retried, "b")]),
        json!([]),
    )]);
    assert_eq!(w.ingest(&b).await.unwrap().messages_stored, 2);
    assert_eq!(message(&scope, "wamid.T-5").await.sent_at.timestamp(), retried);
}

#[backends]
async fn a_remembered_route_is_checked_again_in_every_ingest(tdb: TestDb) {
    // The handle remembers where a number's bodies went; every ingest checks that again in its own
    // transaction, so a moved number, a deleted organization or a late message never follow the
    // memory.
    let first = setup(&tdb, "Clínica Primeira").await;
    let whatsapp = tdb.db.whatsapp();
    let one = |wamid: &str, ts: i64| {
        body(vec![value(
            NUMBER,
            contact("5511987654400", "Ana"),
            json!([text(wamid, "5511987654400", ts, "Oi")]),
            json!([]),
        )])
    };
    whatsapp.ingest(&one("wamid.ROUTE1", *BASE_TS)).await.unwrap();
    let report = whatsapp.ingest(&one("wamid.ROUTE2", *BASE_TS + 1)).await.unwrap();
    assert_eq!(report.organization_id, Some(first.organization_id()));

    // A time before the registration's window fails on the remembered route as on a fresh one.
    let old = *BASE_TS - 30 * 86_400;
    let late = whatsapp.ingest(&one("wamid.ROUTE3", old)).await;
    assert_validation(late, "entry[0].changes[0].value.messages[0].timestamp");

    // The number moves to another organization: the next body goes there.
    first.unregister_whatsapp_number(NUMBER).await.unwrap();
    let second = setup(&tdb, "Clínica Segunda").await;
    let report = whatsapp.ingest(&one("wamid.ROUTE4", *BASE_TS + 2)).await.unwrap();
    assert_eq!(report.organization_id, Some(second.organization_id()));
    let in_first =
        count(&tdb, &format!("SELECT COUNT(*) FROM messages WHERE organization_id = '{}'", first.organization_id()))
            .await;
    assert_eq!(in_first, 2, "nothing more reached the number's former organization");

    // Its organization is deleted: the body is refused, nothing is stored.
    tdb.db.organizations().delete(second.organization_id()).await.unwrap();
    let before = count(&tdb, "SELECT COUNT(*) FROM messages").await;
    let gone = whatsapp.ingest(&one("wamid.ROUTE5", *BASE_TS + 3)).await;
    assert!(matches!(gone, Err(austa_core::Error::NotFound { .. })), "{gone:?}");
    assert_eq!(count(&tdb, "SELECT COUNT(*) FROM messages").await, before);
}
