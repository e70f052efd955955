//! Providers, conversations and messages on every backend: round trips, updates, soft deletes, cursor
//! pagination, domain queries, the message counters kept by `append`, tenant isolation and encryption
//! at rest.

use std::future::Future;

use austa_core::model::{
    Conversation, ConversationPatch, ConversationStatus, ConversationType, MessageDirection, MessagePatch,
    MessageStatus, MessageType, NewConversation, NewMessage, NewProvider, Priority, Provider, ProviderPatch,
    ProviderRole, SenderKind, UrgencyLevel,
};
use austa_core::repo::{Cursor, Page, PageRequest};
use austa_core::time::truncate;
use austa_core::{Result, Scope};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_ciphertext, assert_code, assert_err, patient, TestDb};
use austa_macros::backends;

// ---------- helpers ----------

fn assert_redacted(debug: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!debug.contains(s), "Debug output leaks {s:?}");
    }
}

/// Every item of a listing, following cursors with pages of `limit`.
async fn all_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut req = PageRequest::first(limit);
    loop {
        let page = fetch(req).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        items.extend(page.items);
        match page.next {
            Some(c) => req = PageRequest::after(c, limit),
            None => return items,
        }
    }
}

fn ids_newest_first(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids.reverse();
    ids
}

fn new_provider(email: &str, license: &str) -> NewProvider {
    NewProvider {
        title: Some("Dra.".into()),
        phone: Some("+55 11 99999-1111".into()),
        license: Some(license.into()),
        specialty: vec!["CARDIOLOGY".into(), "GENERAL".into()],
        ..NewProvider::new("Ana", "Silva", email, ProviderRole::Doctor)
    }
}

fn started() -> DateTime<Utc> {
    truncate(Utc::now() - Duration::days(2))
}

fn new_conversation(patient_id: Uuid, chat: &str) -> NewConversation {
    NewConversation {
        patient_id,
        whatsapp_chat_id: chat.into(),
        title: Some("Dúvidas sobre medicação".into()),
        summary: Some("Paciente pergunta se pode tomar Losartana após o almoço.".into()),
        tags: vec!["medicacao".into(), "whatsapp".into()],
        priority: Some(Priority::High),
        ai_context: Some(json!({"ultima_intencao": "duvida_medicacao", "idioma": "pt-BR"}).into()),
        health_topics: Some(vec!["hipertensão".to_string()].into()),
        medications_mentioned: Some(vec!["Losartana 50mg".to_string()].into()),
        symptoms_reported: Some(vec!["tontura matinal".to_string()].into()),
        avg_response_time_minutes: Some(3.5),
        satisfaction_score: Some(4.5),
        started_at: Some(started()),
        ..Default::default()
    }
}

fn inbound_text(conversation_id: Uuid, content: &str, sent_at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        content: Some(content.into()),
        sent_at: Some(sent_at),
        ..NewMessage::new(conversation_id, MessageDirection::Inbound, MessageType::Text, SenderKind::Patient)
    }
}

fn rich_message(conversation_id: Uuid, wamid: &str) -> NewMessage {
    NewMessage {
        whatsapp_message_id: Some(wamid.into()),
        media_url: Some("https://midia.exemplo.com.br/receita-carlos.jpg".into()),
        media_type: Some("image/jpeg".into()),
        metadata: Some(json!({"perfil": "Carlos Mendes", "wa_timestamp": 1717000000}).into()),
        ai_processed: true,
        ai_confidence: Some(0.92),
        ai_intent: Some("duvida_administracao_medicamento".into()),
        ai_entities: Some(json!({"medicamentos": ["Losartana"], "dosagem": ["50mg"]}).into()),
        health_keywords: Some(vec!["Losartana".to_string(), "estômago cheio".to_string()].into()),
        urgency_level: Some(UrgencyLevel::Medium),
        requires_response: true,
        ..inbound_text(conversation_id, "É Losartana 50mg, posso tomar de estômago cheio?", Utc::now())
    }
}

async fn conversation(scope: &Scope, chat: &str) -> Conversation {
    let p = patient(scope, "Carlos", "+5511987654321").await;
    scope.conversations().create(new_conversation(p.id, chat)).await.unwrap()
}

// ---------- providers ----------

#[backends]
async fn provider_round_trip_update_and_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let providers = scope.providers();
    let created = providers.create(new_provider(" Ana.Silva@HospitalSaoPaulo.com.br ", "CRM-SP 123456")).await.unwrap();
    assert_eq!(created.email.expose().unwrap(), "ana.silva@hospitalsaopaulo.com.br");
    assert_eq!(created.phone.as_ref().unwrap().expose().unwrap(), "+5511999991111");
    assert_eq!((created.title.as_deref(), created.first_name.as_str()), (Some("Dra."), "Ana"));
    assert!(created.is_active);
    assert_eq!(providers.get(created.id).await.unwrap(), created);

    // Update, clearing nullable fields.
    let patch = ProviderPatch {
        title: Some(None),
        phone: Some(None),
        license: Some(None),
        specialty: Some(vec!["PEDIATRICS".into()]),
        role: Some(ProviderRole::Coordinator),
        ..Default::default()
    };
    let updated = providers.update(created.id, patch).await.unwrap();
    assert_eq!((updated.title.clone(), updated.phone.clone(), updated.license.clone()), (None, None, None));
    assert_eq!(updated.role, ProviderRole::Coordinator);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(providers.get(created.id).await.unwrap(), updated);

    // A failed update writes nothing.
    let bad =
        ProviderPatch {
            first_name: Some("Beatriz".into()), email: Some("não é e-mail".into()), ..Default::default()
        };
    assert_err(providers.update(created.id, bad).await, "validation", Some("email"));
    assert_eq!(providers.get(created.id).await.unwrap(), updated);

    // Validation on create names the field and writes nothing.
    let cases: [(NewProvider, &str); 5] = [
        (NewProvider { first_name: "  ".into(), ..new_provider("a@b.com.br", "X") }, "first_name"),
        (
            NewProvider { title: Some("Doutora em Cardiologia Clínica".into()), ..new_provider("a@b.com.br", "X") },
            "title",
        ),
        (NewProvider { phone: Some("12".into()), ..new_provider("a@b.com.br", "X") }, "phone"),
        (NewProvider { specialty: vec!["".into()], ..new_provider("a@b.com.br", "X") }, "specialty"),
        (new_provider("a@b.com.br", &"9".repeat(51)), "license"),
    ];
    for (input, field) in cases {
        assert_err(providers.create(input).await, "validation", Some(field));
    }
    assert_eq!(providers.list(PageRequest::default()).await.unwrap().items.len(), 1);

    // Uniqueness per organization.
    let other =
        providers.create(new_provider("maria.santos@hospitalsaopaulo.com.br", "COREN-SP 654321")).await.unwrap();
    assert_err(
        providers.create(new_provider("ANA.SILVA@hospitalsaopaulo.com.br", "CRM-SP 1")).await,
        "conflict",
        Some("email"),
    );
    assert_err(
        providers.create(new_provider("joao@hospitalsaopaulo.com.br", "COREN-SP 654321")).await,
        "conflict",
        Some("license"),
    );

    // Soft delete.
    providers.delete(other.id).await.unwrap();
    assert_code(providers.get(other.id).await, "not_found");
    assert_code(providers.delete(other.id).await, "not_found");
    let listed = providers.list(PageRequest::default()).await.unwrap().items;
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), vec![created.id]);
    assert!(providers.find_by_license("COREN-SP 654321").await.unwrap().is_none());
}

#[backends]
async fn provider_queries_and_pagination(tdb: TestDb) {
    let scope = tdb.org("Clínica Vida Saudável").await;
    let providers = scope.providers();
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = providers
            .create(new_provider(&format!("medico{i}@vidasaudavel.com.br"), &format!("CRM-SP 78901{i}")))
            .await
            .unwrap();
        ids.push(p.id);
    }
    let all: Vec<Uuid> = all_pages(2, |p| providers.list(p)).await.iter().map(|p| p.id).collect();
    assert_eq!(all, ids_newest_first(ids.clone()));

    let inactive = ProviderPatch { is_active: Some(false), ..Default::default() };
    providers.update(ids[1], inactive).await.unwrap();
    let active: Vec<Uuid> = all_pages(2, |p| providers.list_active(p)).await.iter().map(|p| p.id).collect();
    let expected: Vec<Uuid> = ids_newest_first(ids.clone()).into_iter().filter(|id| *id != ids[1]).collect();
    assert_eq!(active, expected);

    let by_email = providers.find_by_email(" MEDICO3@VidaSaudavel.com.br").await.unwrap().unwrap();
    assert_eq!(by_email.id, ids[3]);
    assert_eq!(providers.find_by_license(" CRM-SP 789012 ").await.unwrap().unwrap().id, ids[2]);
    assert!(providers.find_by_email("ninguem@vidasaudavel.com.br").await.unwrap().is_none());
    assert_err(providers.find_by_email("sem-arroba").await, "validation", Some("email"));
}

// ---------- conversations ----------

#[backends]
async fn conversation_round_trip_update_and_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conversations = scope.conversations();
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let input = new_conversation(carlos.id, " wa-chat-001 ");
    let created = conversations.create(input.clone()).await.unwrap();
    assert_eq!(created.whatsapp_chat_id.expose().unwrap(), "wa-chat-001");
    assert_eq!(created.title, input.title);
    assert_eq!(created.ai_context, input.ai_context);
    assert_eq!(created.medications_mentioned, input.medications_mentioned);
    assert_eq!((created.status, created.conversation_type), (ConversationStatus::Active, ConversationType::Support));
    assert!(created.bot_enabled);
    assert_eq!(created.message_count, 0);
    assert_eq!(created.last_message_at, created.started_at);
    assert_eq!(conversations.get(created.id).await.unwrap(), created);

    let ended = truncate(Utc::now());
    let patch = ConversationPatch {
        status: Some(ConversationStatus::Completed),
        title: Some(None),
        symptoms_reported: Some(None),
        satisfaction_score: Some(Some(5.0)),
        ended_at: Some(Some(ended)),
        ..Default::default()
    };
    let updated = conversations.update(created.id, patch).await.unwrap();
    assert_eq!((updated.title.clone(), updated.symptoms_reported.clone()), (None, None));
    assert_eq!((updated.status, updated.ended_at), (ConversationStatus::Completed, Some(ended)));
    assert_eq!(updated.summary, created.summary);
    assert_eq!(conversations.get(created.id).await.unwrap(), updated);

    // Failed updates write nothing.
    let bad: [(ConversationPatch, &str); 3] = [
        (ConversationPatch { satisfaction_score: Some(Some(7.0)), ..Default::default() }, "satisfaction_score"),
        (
            ConversationPatch { ended_at: Some(Some(created.started_at - Duration::hours(1))), ..Default::default() },
            "ended_at",
        ),
        (
            ConversationPatch {
                tags: Some(vec!["ok".into(), " ".into()]),
                priority: Some(Priority::Low),
                ..Default::default()
            },
            "tags",
        ),
    ];
    for (patch, field) in bad {
        assert_err(conversations.update(created.id, patch).await, "validation", Some(field));
    }
    assert_eq!(conversations.get(created.id).await.unwrap(), updated);

    // Failed creates write nothing.
    let base = || new_conversation(carlos.id, "wa-chat-002");
    let cases: [(NewConversation, &str); 7] = [
        (NewConversation { whatsapp_chat_id: "wa chat".into(), ..base() }, "whatsapp_chat_id"),
        (NewConversation { satisfaction_score: Some(0.5), ..base() }, "satisfaction_score"),
        (NewConversation { avg_response_time_minutes: Some(-1.0), ..base() }, "avg_response_time_minutes"),
        (NewConversation { health_topics: Some(vec![String::new()].into()), ..base() }, "health_topics"),
        (NewConversation { title: Some("".into()), ..base() }, "title"),
        (NewConversation { ended_at: Some(started() - Duration::days(1)), ..base() }, "ended_at"),
        (NewConversation { patient_id: Uuid::nil(), ..base() }, "patient_id"),
    ];
    for (input, field) in cases {
        assert_err(conversations.create(input).await, "validation", Some(field));
    }
    assert_eq!(conversations.list(PageRequest::default()).await.unwrap().items.len(), 1);

    conversations.delete(created.id).await.unwrap();
    assert_code(conversations.get(created.id).await, "not_found");
    assert_code(conversations.update(created.id, ConversationPatch::default()).await, "not_found");
    assert!(conversations.list(PageRequest::default()).await.unwrap().items.is_empty());
    assert!(conversations.list_for_patient(carlos.id, PageRequest::default()).await.unwrap().items.is_empty());
}

#[backends]
async fn conversation_open_chat_rule_and_queries(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conversations = scope.conversations();
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let ana = patient(&scope, "Ana", "+5511876543210").await;

    let first = conversations.create(new_conversation(carlos.id, "wa-chat-001")).await.unwrap();
    assert_err(
        conversations.create(new_conversation(carlos.id, "wa-chat-001")).await,
        "conflict",
        Some("whatsapp_chat_id"),
    );
    assert_eq!(conversations.open_for_chat(" wa-chat-001").await.unwrap().unwrap().id, first.id);

    // Closing frees the chat; the closed one stays as history and cannot be reopened while another is open.
    let close = || ConversationPatch { status: Some(ConversationStatus::Completed), ..Default::default() };
    conversations.update(first.id, close()).await.unwrap();
    assert!(conversations.open_for_chat("wa-chat-001").await.unwrap().is_none());
    let second = conversations
        .create(NewConversation {
            status: Some(ConversationStatus::Escalated),
            ..new_conversation(carlos.id, "wa-chat-001")
        })
        .await
        .unwrap();
    assert_eq!(conversations.open_for_chat("wa-chat-001").await.unwrap().unwrap().id, second.id);
    let reopen = ConversationPatch { status: Some(ConversationStatus::Active), ..Default::default() };
    assert_err(conversations.update(first.id, reopen).await, "conflict", Some("whatsapp_chat_id"));
    assert_eq!(conversations.get(first.id).await.unwrap().status, ConversationStatus::Completed);

    let mut active_ids = Vec::new();
    for chat in ["wa-chat-101", "wa-chat-102", "wa-chat-103"] {
        active_ids.push(conversations.create(new_conversation(carlos.id, chat)).await.unwrap().id);
    }
    let anas = conversations.create(new_conversation(ana.id, "wa-chat-201")).await.unwrap();

    let active: Vec<Uuid> =
        all_pages(2, |p| conversations.active_for_patient(carlos.id, p)).await.iter().map(|c| c.id).collect();
    assert_eq!(active, ids_newest_first(active_ids.clone()));
    let mut all_carlos = active_ids.clone();
    all_carlos.extend([first.id, second.id]);
    let listed: Vec<Uuid> =
        all_pages(2, |p| conversations.list_for_patient(carlos.id, p)).await.iter().map(|c| c.id).collect();
    assert_eq!(listed, ids_newest_first(all_carlos));
    let for_ana = conversations.active_for_patient(ana.id, PageRequest::default()).await.unwrap();
    assert_eq!(for_ana.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![anas.id]);
    assert!(conversations.open_for_chat("wa-chat-999").await.unwrap().is_none());
    assert_err(conversations.open_for_chat("wa chat").await, "validation", Some("whatsapp_chat_id"));
}

#[backends]
async fn conversation_pagination(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conversations = scope.conversations();
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(conversations.create(new_conversation(carlos.id, &format!("wa-chat-{i}"))).await.unwrap().id);
    }
    let all: Vec<Uuid> = all_pages(2, |p| conversations.list(p)).await.iter().map(|c| c.id).collect();
    assert_eq!(all, ids_newest_first(ids));
}

// ---------- messages ----------

#[backends]
async fn append_keeps_counters_and_history_pages_newest_first(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conv = conversation(&scope, "wa-chat-001").await;
    let messages = scope.messages();
    let base = conv.started_at + Duration::hours(1);
    // Out of order, with two messages sharing a sent_at (the id breaks the tie).
    let offsets = [30, 10, 50, 20, 50, 40, 5];
    let mut appended = Vec::new();
    for (i, minutes) in offsets.iter().enumerate() {
        let m = messages
            .append(inbound_text(conv.id, &format!("Mensagem {i} sobre a pressão"), base + Duration::minutes(*minutes)))
            .await
            .unwrap();
        assert_eq!(m.patient_id, conv.patient_id);
        assert!(!m.is_bot);
        appended.push(m);
    }
    let after = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!(after.message_count, offsets.len() as i64);
    assert_eq!(after.last_message_at, base + Duration::minutes(50));
    assert!(after.updated_at >= conv.updated_at);

    let mut expected = appended.clone();
    expected.sort_by_key(|m| std::cmp::Reverse((m.sent_at, m.id)));
    for limit in [1, 3, 7, 50] {
        let history = all_pages(limit, |p| messages.history(conv.id, p)).await;
        assert_eq!(history, expected, "page size {limit}");
    }

    // A bot reply is derived as a bot message, and a later sent_at moves last_message_at.
    let reply_at = truncate(Utc::now());
    let reply = messages
        .append(NewMessage {
            content: Some("Olá Carlos! Qual medicamento você toma?".into()),
            bot_response_time_seconds: Some(2.5),
            sent_at: Some(reply_at),
            ..NewMessage::new(conv.id, MessageDirection::Outbound, MessageType::Text, SenderKind::Bot)
        })
        .await
        .unwrap();
    assert!(reply.is_bot);
    assert_eq!(reply.status, MessageStatus::Delivered);
    let after = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!((after.message_count, after.last_message_at), (8, reply_at));

    assert_err(messages.history(conv.id, PageRequest::first(0)).await, "validation", Some("limit"));
    let bogus: Cursor = "bm90LWEtY3Vyc29y".parse().unwrap();
    assert_err(messages.history(conv.id, PageRequest::after(bogus, 2)).await, "validation", Some("cursor"));
    let other = scope.conversations().create(new_conversation(conv.patient_id, "wa-chat-002")).await.unwrap();
    assert!(messages.history(other.id, PageRequest::default()).await.unwrap().items.is_empty());
}

/// Concurrent appends and a concurrent conversation update: no append is lost (the update rewrites the
/// counters it read under the row lock, never stale ones).
#[backends(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_counted(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conv = conversation(&scope, "wa-chat-001").await;
    let base = conv.started_at + Duration::hours(1);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = scope.clone();
        tasks.push(tokio::spawn(async move {
            let text = format!("Mensagem concorrente {i}");
            s.messages().append(inbound_text(conv.id, &text, base + Duration::minutes(i))).await.map(|_| ())
        }));
    }
    let s = scope.clone();
    tasks.push(tokio::spawn(async move {
        let patch = ConversationPatch { priority: Some(Priority::Urgent), ..Default::default() };
        s.conversations().update(conv.id, patch).await.map(|_| ())
    }));
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let after = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!((after.message_count, after.priority), (8, Priority::Urgent));
    assert_eq!(after.last_message_at, base + Duration::minutes(7));
    let messages = scope.messages();
    let history = all_pages(3, |p| messages.history(conv.id, p)).await;
    assert_eq!(history.len(), 8);
}

#[backends]
async fn message_round_trip_update_and_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conv = conversation(&scope, "wa-chat-001").await;
    let messages = scope.messages();
    let input = rich_message(conv.id, "wamid.HBgNNTUxMTk4NzY1NDMyMQ");
    let created = messages.append(input.clone()).await.unwrap();
    assert_eq!((created.content.clone(), created.metadata.clone()), (input.content.clone(), input.metadata.clone()));
    assert_eq!((created.ai_intent.clone(), created.health_keywords.clone()), (input.ai_intent, input.health_keywords));
    assert_eq!(created.sent_at, truncate(input.sent_at.unwrap()));
    assert_eq!(messages.get(created.id).await.unwrap(), created);
    let found = messages.find_by_whatsapp_message_id(" wamid.HBgNNTUxMTk4NzY1NDMyMQ ").await.unwrap();
    assert_eq!(found, Some(created.clone()));

    let read_at = truncate(Utc::now());
    let patch = MessagePatch {
        status: Some(MessageStatus::Read),
        read_at: Some(Some(read_at)),
        ai_intent: Some(None),
        ai_entities: Some(None),
        urgency_level: Some(UrgencyLevel::High),
        ..Default::default()
    };
    let updated = messages.update(created.id, patch).await.unwrap();
    assert_eq!((updated.status, updated.read_at), (MessageStatus::Read, Some(read_at)));
    assert_eq!((updated.ai_intent.clone(), updated.ai_entities.clone()), (None, None));
    assert_eq!(updated.content, created.content);
    assert_eq!(messages.get(created.id).await.unwrap(), updated);
    let bad =
        MessagePatch { status: Some(MessageStatus::Failed), ai_confidence: Some(Some(1.5)), ..Default::default() };
    assert_err(messages.update(created.id, bad).await, "validation", Some("ai_confidence"));
    assert_eq!(messages.get(created.id).await.unwrap(), updated);

    // Failed appends (validation, duplicate id) write nothing and leave the counters alone.
    let provider =
        scope.providers().create(new_provider("ana.silva@hospitalsaopaulo.com.br", "CRM-SP 123456")).await.unwrap();
    let outbound = |kind| NewMessage {
        content: Some("Pode tomar após o café.".into()),
        ..NewMessage::new(conv.id, MessageDirection::Outbound, MessageType::Text, kind)
    };
    let now = Utc::now();
    let cases: [(NewMessage, &str, &str); 9] = [
        (outbound(SenderKind::Provider), "validation", "sender_provider_id"),
        (
            NewMessage { sender_provider_id: Some(provider.id), ..outbound(SenderKind::Bot) },
            "validation",
            "sender_provider_id",
        ),
        (NewMessage { direction: MessageDirection::Inbound, ..outbound(SenderKind::Bot) }, "validation", "direction"),
        (NewMessage { content: None, ..inbound_text(conv.id, "x", now) }, "validation", "content"),
        (inbound_text(conv.id, " \n ", now), "validation", "content"),
        (NewMessage { ai_confidence: Some(-0.1), ..inbound_text(conv.id, "Oi", now) }, "validation", "ai_confidence"),
        (
            NewMessage { media_type: Some("jpeg".into()), ..inbound_text(conv.id, "Oi", now) },
            "validation",
            "media_type",
        ),
        (
            NewMessage { bot_response_time_seconds: Some(-2.0), ..outbound(SenderKind::Bot) },
            "validation",
            "bot_response_time_seconds",
        ),
        (rich_message(conv.id, "wamid.HBgNNTUxMTk4NzY1NDMyMQ"), "conflict", "whatsapp_message_id"),
    ];
    for (input, code, field) in cases {
        assert_err(messages.append(input).await, code, Some(field));
    }
    let after = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!(after.message_count, 1);
    assert_eq!(messages.history(conv.id, PageRequest::default()).await.unwrap().items, vec![updated.clone()]);

    // A provider's message names the provider; it is not a bot message.
    let from_provider = messages
        .append(NewMessage { sender_provider_id: Some(provider.id), ..outbound(SenderKind::Provider) })
        .await
        .unwrap();
    assert_eq!((from_provider.sender_provider_id, from_provider.is_bot), (Some(provider.id), false));

    // Soft delete hides the message; the counter keeps counting it (it was sent).
    messages.delete(created.id).await.unwrap();
    assert_code(messages.get(created.id).await, "not_found");
    assert!(messages.find_by_whatsapp_message_id("wamid.HBgNNTUxMTk4NzY1NDMyMQ").await.unwrap().is_none());
    let history = messages.history(conv.id, PageRequest::default()).await.unwrap().items;
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), vec![from_provider.id]);
    assert!(messages.list(PageRequest::default()).await.unwrap().items.iter().all(|m| m.id != created.id));
    assert_eq!(scope.conversations().get(conv.id).await.unwrap().message_count, 2);

    // A deleted conversation takes no more messages.
    scope.conversations().delete(conv.id).await.unwrap();
    assert_code(messages.append(inbound_text(conv.id, "Alô?", now)).await, "not_found");
}

// ---------- tenancy ----------

#[backends]
async fn organizations_are_isolated(tdb: TestDb) {
    let a = tdb.org("Hospital São Paulo").await;
    let b = tdb.org("Clínica Vida Saudável").await;

    // B's rows. The same e-mail, license and chat id are allowed in A: uniqueness is per organization.
    let b_provider =
        b.providers().create(new_provider("joao.oliveira@vidasaudavel.com.br", "CRM-SP 789012")).await.unwrap();
    let b_conv = conversation(&b, "wa-chat-001").await;
    let b_msg = b.messages().append(rich_message(b_conv.id, "wamid.B-001")).await.unwrap();
    let b_conv = b.conversations().get(b_conv.id).await.unwrap();
    let a_provider =
        a.providers().create(new_provider("joao.oliveira@vidasaudavel.com.br", "CRM-SP 789012")).await.unwrap();
    let a_conv = conversation(&a, "wa-chat-001").await;

    // Get, update and delete of B's ids from A: not_found.
    assert_code(a.providers().get(b_provider.id).await, "not_found");
    assert_code(
        a.providers().update(b_provider.id, ProviderPatch { is_active: Some(false), ..Default::default() }).await,
        "not_found",
    );
    assert_code(a.providers().delete(b_provider.id).await, "not_found");
    assert_code(a.conversations().get(b_conv.id).await, "not_found");
    let close = ConversationPatch { status: Some(ConversationStatus::Archived), ..Default::default() };
    assert_code(a.conversations().update(b_conv.id, close).await, "not_found");
    assert_code(a.conversations().delete(b_conv.id).await, "not_found");
    assert_code(a.messages().get(b_msg.id).await, "not_found");
    let read = MessagePatch { status: Some(MessageStatus::Read), ..Default::default() };
    assert_code(a.messages().update(b_msg.id, read).await, "not_found");
    assert_code(a.messages().delete(b_msg.id).await, "not_found");

    // Appending to B's conversation from A: not_found, nothing written.
    assert_code(a.messages().append(inbound_text(b_conv.id, "Olá", Utc::now())).await, "not_found");

    // References to B's rows from A: validation, nothing written.
    assert_code(a.conversations().create(new_conversation(b_conv.patient_id, "wa-chat-777")).await, "validation");
    let via_b_provider = NewMessage {
        content: Some("Resultado disponível.".into()),
        sender_provider_id: Some(b_provider.id),
        ..NewMessage::new(a_conv.id, MessageDirection::Outbound, MessageType::Text, SenderKind::Provider)
    };
    assert_code(a.messages().append(via_b_provider).await, "validation");
    assert_eq!(a.conversations().get(a_conv.id).await.unwrap(), a_conv);
    assert!(a.messages().history(a_conv.id, PageRequest::default()).await.unwrap().items.is_empty());

    // B's rows never appear in A's listings or queries.
    let a_providers = a.providers().list(PageRequest::default()).await.unwrap().items;
    assert_eq!(a_providers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a_provider.id]);
    assert!(a
        .providers()
        .list_active(PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .all(|p| p.id != b_provider.id));
    assert_eq!(
        a.providers().find_by_email("joao.oliveira@vidasaudavel.com.br").await.unwrap().unwrap().id,
        a_provider.id
    );
    assert_eq!(a.providers().find_by_license("CRM-SP 789012").await.unwrap().unwrap().id, a_provider.id);
    let a_convs = a.conversations().list(PageRequest::default()).await.unwrap().items;
    assert_eq!(a_convs.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a_conv.id]);
    assert_eq!(a.conversations().open_for_chat("wa-chat-001").await.unwrap().unwrap().id, a_conv.id);
    assert!(a
        .conversations()
        .active_for_patient(b_conv.patient_id, PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(a
        .conversations()
        .list_for_patient(b_conv.patient_id, PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(a.messages().history(b_conv.id, PageRequest::default()).await.unwrap().items.is_empty());
    assert!(a.messages().list(PageRequest::default()).await.unwrap().items.is_empty());
    assert!(a.messages().find_by_whatsapp_message_id("wamid.B-001").await.unwrap().is_none());

    // B's rows are unchanged.
    assert_eq!(b.providers().get(b_provider.id).await.unwrap(), b_provider);
    assert_eq!(b.conversations().get(b_conv.id).await.unwrap(), b_conv);
    assert_eq!(b_conv.message_count, 1);
    assert_eq!(b.messages().get(b_msg.id).await.unwrap(), b_msg);
    assert_eq!(b.messages().history(b_conv.id, PageRequest::default()).await.unwrap().items, vec![b_msg]);
}

// ---------- encryption ----------

#[backends]
async fn sensitive_columns_are_encrypted_and_redacted(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let provider: Provider =
        scope.providers().create(new_provider("ana.silva@hospitalsaopaulo.com.br", "CRM-SP 123456")).await.unwrap();
    for (column, plain) in
        [("email", "ana.silva@hospitalsaopaulo.com.br"), ("email_bidx", "ana.silva"), ("phone", "+5511999991111")]
    {
        assert_ciphertext(&tdb, "providers", column, provider.id, plain).await;
    }
    assert_redacted(&format!("{provider:?}"), &["ana.silva", "+5511999991111"]);

    let conv = conversation(&scope, "wa-chat-sigiloso-001").await;
    let conv_secrets = [
        ("whatsapp_chat_id", "wa-chat-sigiloso-001"),
        ("whatsapp_chat_id_bidx", "wa-chat-sigiloso-001"),
        ("title", "Dúvidas sobre medicação"),
        ("summary", "Losartana após o almoço"),
        ("ai_context", "duvida_medicacao"),
        ("health_topics", "hipertensão"),
        ("medications_mentioned", "Losartana 50mg"),
        ("symptoms_reported", "tontura matinal"),
    ];
    for (column, plain) in conv_secrets {
        assert_ciphertext(&tdb, "conversations", column, conv.id, plain).await;
    }
    assert_redacted(&format!("{conv:?}"), &conv_secrets.map(|(_, p)| p));

    let msg = scope.messages().append(rich_message(conv.id, "wamid.SIGILO-1")).await.unwrap();
    let msg_secrets = [
        ("content", "Losartana 50mg"),
        ("media_url", "receita-carlos"),
        ("metadata", "Carlos Mendes"),
        ("ai_intent", "duvida_administracao_medicamento"),
        ("ai_entities", "Losartana"),
        ("health_keywords", "estômago cheio"),
    ];
    for (column, plain) in msg_secrets {
        assert_ciphertext(&tdb, "messages", column, msg.id, plain).await;
    }
    assert_redacted(&format!("{msg:?}"), &msg_secrets.map(|(_, p)| p));
    // Errors never echo the rejected value.
    let err = scope.providers().find_by_email("carlos sem arroba").await.unwrap_err();
    assert_redacted(&err.to_string(), &["carlos sem arroba"]);
}
