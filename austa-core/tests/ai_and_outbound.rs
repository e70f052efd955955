//! Outbound messages and AI annotations on every backend: bot and provider messages with their counters
//! and response times, AI results encrypted at rest on messages and conversations, the AI worker queue
//! (oldest first, concurrent claims, expired leases, processed messages leaving it), access and audit.

use std::time::Duration as StdDuration;

use austa_core::model::{
    AuditAction, Conversation, MessageDirection, MessageStatus, MessageType, NewConversation, NewMessage, NewProvider,
    Provider, ProviderPatch, ProviderRole, SenderKind, UrgencyLevel,
};
use austa_core::repo::ai_work::{ConversationAnalysis, MessageAnalysis};
use austa_core::repo::outbound::{NewOutboundMessage, OutboundSender};
use austa_core::time::truncate;
use austa_core::{Actor, Scope};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_ciphertext, assert_code, assert_err, one_event, patient, TestDb};
use austa_macros::backends;

// ---------- helpers ----------

async fn provider(scope: &Scope, email: &str) -> Provider {
    scope.providers().create(NewProvider::new("Ana", "Silva", email, ProviderRole::Doctor)).await.unwrap()
}

/// Two days ago, fixed for the whole test process (so that `at(10)` is the same instant every time).
fn started() -> DateTime<Utc> {
    static START: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *START.get_or_init(|| truncate(Utc::now() - Duration::days(2)))
}

async fn conversation(scope: &Scope, phone: &str) -> Conversation {
    let p = patient(scope, "Carlos", phone).await;
    scope
        .conversations()
        .create(NewConversation {
            patient_id: p.id,
            whatsapp_chat_id: phone.into(),
            started_at: Some(started()),
            ..Default::default()
        })
        .await
        .unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    started() + Duration::minutes(minutes)
}

async fn inbound(scope: &Scope, conversation_id: Uuid, content: &str, sent_at: DateTime<Utc>) -> Uuid {
    scope
        .messages()
        .append(NewMessage {
            content: Some(content.into()),
            sent_at: Some(sent_at),
            ..NewMessage::new(conversation_id, MessageDirection::Inbound, MessageType::Text, SenderKind::Patient)
        })
        .await
        .unwrap()
        .id
}

fn bot_reply(conversation_id: Uuid, content: &str, sent_at: DateTime<Utc>) -> NewOutboundMessage {
    NewOutboundMessage {
        sent_at: Some(sent_at),
        ..NewOutboundMessage::text(conversation_id, OutboundSender::Bot, content)
    }
}

async fn annotator(tdb: &TestDb, org: Uuid) -> Scope {
    tdb.db.scope(org, Actor::system("ai-annotator")).await.unwrap()
}

fn analysis() -> MessageAnalysis {
    MessageAnalysis {
        intent: Some("duvida_medicacao_losartana".into()),
        entities: Some(json!({"medicamentos": ["Losartana 50mg"], "sintomas": ["tontura"]}).into()),
        confidence: Some(0.87),
        health_keywords: Some(vec!["hipertensão".to_string(), "Losartana".to_string()].into()),
        urgency: Some(UrgencyLevel::Medium),
        requires_response: Some(true),
        processed_at: None,
    }
}

// ---------- outbound messages ----------

#[backends]
async fn outbound_bot_and_provider_messages_keep_counters_and_response_times(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let conv = conversation(&scope, "+5511987654321").await;
    let ana = provider(&scope, "ana.silva@hsp.com.br").await;
    let messages = scope.messages();

    // The patient writes at +10 min; the bot answers at +10 min 30 s.
    inbound(&scope, conv.id, "Posso tomar Losartana depois do almoço?", at(10)).await;
    let bot_at = at(10) + Duration::seconds(30);
    let (bot, event) = one_event(&tdb, &scope, messages.record_outbound(bot_reply(conv.id, "Olá!", bot_at))).await;
    let bot = bot.unwrap();
    assert_eq!((bot.direction, bot.sender_kind, bot.is_bot), (MessageDirection::Outbound, SenderKind::Bot, true));
    assert_eq!(bot.sender_provider_id, None);
    assert_eq!(bot.status, MessageStatus::Pending, "no WhatsApp id yet: PENDING");
    assert_eq!(bot.bot_response_time_seconds, Some(30.0));
    assert!(!bot.ai_processed);
    assert_eq!(bot.patient_id, conv.patient_id);
    assert_eq!((event.action, event.entity_id), (AuditAction::Create, Some(bot.id)));
    assert_eq!(event.patient_id, Some(conv.patient_id));
    assert_eq!(messages.get(bot.id).await.unwrap(), bot);
    assert_ciphertext(&tdb, "messages", "content", bot.id, "Olá!").await;

    // A follow-up by the bot answers nothing new: no response time.
    let follow = messages.record_outbound(bot_reply(conv.id, "Mais alguma dúvida?", at(12))).await.unwrap();
    assert_eq!(follow.bot_response_time_seconds, None);

    // The patient writes again at +20; a provider answers at +25 with a WhatsApp id: SENT, 300 s.
    inbound(&scope, conv.id, "Ainda estou com tontura", at(20)).await;
    let reply = NewOutboundMessage {
        whatsapp_message_id: Some("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA5".into()),
        sent_at: Some(at(25)),
        requires_response: true,
        ..NewOutboundMessage::text(conv.id, OutboundSender::Provider(ana.id), "Vamos agendar uma consulta.")
    };
    let reply = messages.record_outbound(reply).await.unwrap();
    assert_eq!((reply.sender_kind, reply.sender_provider_id), (SenderKind::Provider, Some(ana.id)));
    assert!(!reply.is_bot);
    assert_eq!(reply.status, MessageStatus::Sent);
    assert_eq!(reply.bot_response_time_seconds, Some(300.0));
    assert!(reply.requires_response);
    let found = messages.find_by_whatsapp_message_id("wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjA5").await.unwrap();
    assert_eq!(found.map(|m| m.id), Some(reply.id));

    // A caller's response time wins; a message with no inbound before it has none.
    let given = NewOutboundMessage {
        response_time_seconds: Some(4.25),
        ..bot_reply(conv.id, "Lembrete: consulta amanhã.", at(40))
    };
    assert_eq!(messages.record_outbound(given).await.unwrap().bot_response_time_seconds, Some(4.25));
    let other = conversation(&scope, "+5511912345678").await;
    let first = messages.record_outbound(bot_reply(other.id, "Bem-vindo!", at(1))).await.unwrap();
    assert_eq!(first.bot_response_time_seconds, None);

    // Counters: 2 inbound + 4 outbound; the latest message time; the bot's last answer.
    let conv = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!(conv.message_count, 6);
    assert_eq!(conv.last_message_at, at(40));
    assert_eq!(conv.last_bot_response_at, Some(at(40)));
    let other = scope.conversations().get(other.id).await.unwrap();
    assert_eq!((other.message_count, other.last_bot_response_at), (1, Some(at(1))));
}

#[backends]
async fn outbound_validation_and_access_write_nothing(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let org = scope.organization_id();
    let conv = conversation(&scope, "+5511987654321").await;
    let ana = provider(&scope, "ana.silva@hsp.com.br").await;
    let bia = provider(&scope, "bia.souza@hsp.com.br").await;
    let messages = scope.messages();

    let cases: Vec<(NewOutboundMessage, &str, &str)> = vec![
        (
            NewOutboundMessage { status: Some(MessageStatus::Read), ..bot_reply(conv.id, "Oi", at(1)) },
            "validation",
            "status",
        ),
        (
            NewOutboundMessage { response_time_seconds: Some(-1.0), ..bot_reply(conv.id, "Oi", at(1)) },
            "validation",
            "bot_response_time_seconds",
        ),
        (NewOutboundMessage { content: None, ..bot_reply(conv.id, "Oi", at(1)) }, "validation", "content"),
        (
            NewOutboundMessage::text(conv.id, OutboundSender::Provider(Uuid::now_v7()), "Oi"),
            "validation",
            "sender_provider_id",
        ),
        (bot_reply(Uuid::now_v7(), "Oi", at(1)), "not_found", ""),
    ];
    for (new, code, field) in cases {
        let r = messages.record_outbound(new).await;
        if field.is_empty() {
            assert_code(r, code);
        } else {
            assert_err(r, code, Some(field));
        }
    }
    // An inactive provider may not send.
    scope.providers().update(bia.id, ProviderPatch { is_active: Some(false), ..Default::default() }).await.unwrap();
    let r = messages.record_outbound(NewOutboundMessage::text(conv.id, OutboundSender::Provider(bia.id), "Oi")).await;
    assert_err(r, "validation", Some("sender_provider_id"));

    // A repeated WhatsApp id is a conflict.
    let with_id = |c: &str| NewOutboundMessage {
        whatsapp_message_id: Some("wamid.repetido".into()),
        ..bot_reply(conv.id, c, at(2))
    };
    messages.record_outbound(with_id("primeira")).await.unwrap();
    assert_err(messages.record_outbound(with_id("segunda")).await, "conflict", Some("whatsapp_message_id"));

    // Access: a provider sends as themself only; a patient, an admin and the annotator may not send;
    // the webhook may. Refusals are recorded as ACCESS_DENIED.
    let as_ana = tdb.db.scope(org, Actor::provider(ana.id)).await.unwrap();
    as_ana
        .messages()
        .record_outbound(NewOutboundMessage::text(conv.id, OutboundSender::Provider(ana.id), "Sou a Ana"))
        .await
        .unwrap();
    let (r, event) = one_event(
        &tdb,
        &scope,
        as_ana.messages().record_outbound(NewOutboundMessage::text(
            conv.id,
            OutboundSender::Provider(bia.id),
            "Sou a Bia",
        )),
    )
    .await;
    assert_code(r, "permission_denied");
    assert_eq!(event.action, AuditAction::AccessDenied);
    for actor in [Actor::patient(conv.patient_id), Actor::admin(None), Actor::system("ai-annotator")] {
        let s = tdb.db.scope(org, actor).await.unwrap();
        assert_code(s.messages().record_outbound(bot_reply(conv.id, "Oi", at(3))).await, "permission_denied");
    }
    let webhook = tdb.db.scope(org, Actor::system("whatsapp-webhook")).await.unwrap();
    webhook.messages().record_outbound(bot_reply(conv.id, "Recebido", at(4))).await.unwrap();

    // Only the three successful messages (plus none of the failures) were written.
    let conv = scope.conversations().get(conv.id).await.unwrap();
    assert_eq!(conv.message_count, 3);
    let stored = tdb.raw_i64(&format!("SELECT count(*) FROM messages WHERE organization_id = '{org}'")).await;
    assert_eq!(stored, 3);
}

// ---------- AI results ----------

#[backends]
async fn ai_results_are_encrypted_at_rest_and_read_back(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let org = scope.organization_id();
    let ai = annotator(&tdb, org).await;
    let conv = conversation(&scope, "+5511987654321").await;
    let id = inbound(&scope, conv.id, "Tomo Losartana e estou com tontura", at(5)).await;

    let (m, event) = one_event(&tdb, &scope, ai.messages().record_ai_result(id, analysis())).await;
    let m = m.unwrap();
    assert!(m.ai_processed);
    assert!(m.processed_at.is_some());
    assert_eq!(m.ai_intent.as_ref().unwrap().expose().unwrap(), "duvida_medicacao_losartana");
    assert_eq!(m.ai_confidence, Some(0.87));
    assert_eq!((m.urgency_level, m.requires_response), (UrgencyLevel::Medium, true));
    assert_eq!((event.action, event.entity_id, event.patient_id), (AuditAction::Update, Some(id), Some(m.patient_id)));
    for field in ["ai_intent", "ai_entities", "ai_confidence", "health_keywords", "ai_processed", "processed_at"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }
    assert_eq!(scope.messages().get(id).await.unwrap(), m);

    assert_ciphertext(&tdb, "messages", "ai_intent", id, "duvida_medicacao_losartana").await;
    assert_ciphertext(&tdb, "messages", "ai_entities", id, "Losartana").await;
    assert_ciphertext(&tdb, "messages", "health_keywords", id, "hipertens").await;
    assert_ciphertext(&tdb, "messages", "health_keywords", id, "Losartana").await;

    // A new result replaces the old one; None clears.
    let again = MessageAnalysis { intent: Some("agendamento".into()), ..Default::default() };
    let m2 = ai.messages().record_ai_result(id, again).await.unwrap();
    assert_eq!(m2.ai_intent.as_ref().unwrap().expose().unwrap(), "agendamento");
    assert_eq!((m2.ai_entities.clone(), m2.ai_confidence), (None, None));
    assert_eq!(m2.urgency_level, UrgencyLevel::Medium, "urgency left None keeps its value");

    // Validation writes nothing; out-of-reach rows are not_found; a patient may not annotate.
    let bad = MessageAnalysis { confidence: Some(1.5), ..analysis() };
    assert_err(ai.messages().record_ai_result(id, bad).await, "validation", Some("ai_confidence"));
    assert_eq!(scope.messages().get(id).await.unwrap(), m2);
    assert_code(ai.messages().record_ai_result(Uuid::now_v7(), analysis()).await, "not_found");
    let other = tdb.org("Clínica Outra").await;
    let other_ai = annotator(&tdb, other.organization_id()).await;
    assert_code(other_ai.messages().record_ai_result(id, analysis()).await, "not_found");
    let as_patient = tdb.db.scope(org, Actor::patient(conv.patient_id)).await.unwrap();
    let (r, event) = one_event(&tdb, &scope, as_patient.messages().record_ai_result(id, analysis())).await;
    assert_code(r, "permission_denied");
    assert_eq!(event.action, AuditAction::AccessDenied);

    // Conversations: topics, medications, symptoms, context, summary; encrypted; one UPDATE.
    let result = ConversationAnalysis {
        health_topics: Some(vec!["hipertensão".to_string()].into()),
        medications_mentioned: Some(vec!["Losartana 50mg".to_string()].into()),
        symptoms_reported: Some(vec!["tontura matinal".to_string()].into()),
        ai_context: Some(json!({"ultima_intencao": "duvida_medicacao"}).into()),
        summary: Some("Paciente hipertenso relata tontura.".into()),
    };
    let (c, event) = one_event(&tdb, &scope, ai.conversations().record_ai_result(conv.id, result)).await;
    let c = c.unwrap();
    assert_eq!(c.medications_mentioned.as_ref().unwrap().expose().unwrap(), &vec!["Losartana 50mg".to_string()]);
    assert_eq!((event.action, event.entity_id), (AuditAction::Update, Some(conv.id)));
    for field in ["health_topics", "medications_mentioned", "symptoms_reported", "ai_context", "summary"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }
    assert_eq!(scope.conversations().get(conv.id).await.unwrap(), c);
    assert_ciphertext(&tdb, "conversations", "health_topics", conv.id, "hipertens").await;
    assert_ciphertext(&tdb, "conversations", "medications_mentioned", conv.id, "Losartana").await;
    assert_ciphertext(&tdb, "conversations", "symptoms_reported", conv.id, "tontura").await;
    assert_ciphertext(&tdb, "conversations", "ai_context", conv.id, "duvida_medicacao").await;
    assert_ciphertext(&tdb, "conversations", "summary", conv.id, "tontura").await;
    // Fields left None keep their value.
    let partial =
        ConversationAnalysis { symptoms_reported: Some(vec!["febre".to_string()].into()), ..Default::default() };
    let c2 = ai.conversations().record_ai_result(conv.id, partial).await.unwrap();
    assert_eq!(c2.health_topics, c.health_topics);
    assert_eq!(c2.symptoms_reported.as_ref().unwrap().expose().unwrap(), &vec!["febre".to_string()]);
    let bad = ConversationAnalysis { health_topics: Some(vec!["  ".to_string()].into()), ..Default::default() };
    assert_err(ai.conversations().record_ai_result(conv.id, bad).await, "validation", Some("health_topics"));
    assert_code(
        as_patient.conversations().record_ai_result(conv.id, ConversationAnalysis::default()).await,
        "permission_denied",
    );
}

// ---------- the AI queue ----------

#[backends]
async fn pending_list_is_oldest_first_and_processed_messages_leave_it(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let ai = annotator(&tdb, scope.organization_id()).await;
    let conv = conversation(&scope, "+5511987654321").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        // sent_at goes backwards: the queue follows arrival (created_at), not the sender's clock.
        ids.push(inbound(&scope, conv.id, &format!("mensagem {i}"), at(30 - i)).await);
    }
    // Outbound messages and already-processed or deleted inbound ones are never queued.
    scope.messages().record_outbound(bot_reply(conv.id, "Olá", at(31))).await.unwrap();
    let done = scope
        .messages()
        .append(NewMessage {
            ai_processed: true,
            ..NewMessage {
                content: Some("já processada".into()),
                ..NewMessage::new(conv.id, MessageDirection::Inbound, MessageType::Text, SenderKind::Patient)
            }
        })
        .await
        .unwrap();
    let deleted = inbound(&scope, conv.id, "apagada", at(32)).await;
    scope.messages().delete(deleted).await.unwrap();

    let (pending, event) = one_event(&tdb, &scope, ai.messages().pending_for_ai(100)).await;
    let pending: Vec<Uuid> = pending.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(pending, ids);
    assert!(!pending.contains(&done.id));
    assert_eq!((event.action, event.record_ids.clone()), (AuditAction::Read, ids.clone()));
    assert_eq!(ai.messages().pending_for_ai(2).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2]);

    // Claim two, oldest first; the claim is one READ event listing them.
    let (claimed, event) =
        one_event(&tdb, &scope, ai.messages().claim_for_ai("worker-a", 2, StdDuration::from_secs(60))).await;
    let claimed: Vec<Uuid> = claimed.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(claimed, ids[..2]);
    assert_eq!((event.action, event.record_ids.clone()), (AuditAction::Read, claimed.clone()));
    assert_eq!(event.patient_ids, vec![conv.patient_id]);
    assert_eq!(tdb.raw_text(&format!("SELECT ai_claimed_by FROM messages WHERE id = '{}'", ids[0])).await, "worker-a");
    // Still pending (not processed) but held: the next claim takes the others.
    let next: Vec<Uuid> = ai
        .messages()
        .claim_for_ai("worker-b", 10, StdDuration::from_secs(60))
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(next, ids[2..]);
    assert!(ai.messages().claim_for_ai("worker-c", 10, StdDuration::from_secs(60)).await.unwrap().is_empty());

    // Recording a result releases the claim and takes the message out of the queue for good.
    let (_, event) = one_event(&tdb, &scope, ai.messages().record_ai_result(ids[0], analysis())).await;
    assert!(event.changed_fields.iter().any(|f| f == "ai_claimed_by"), "{:?}", event.changed_fields);
    let claim = tdb
        .raw_i64(&format!(
            "SELECT count(*) FROM messages WHERE id = '{}' AND ai_claimed_by IS NULL AND ai_claimed_until IS NULL",
            ids[0]
        ))
        .await;
    assert_eq!(claim, 1);
    let pending: Vec<Uuid> = ai.messages().pending_for_ai(100).await.unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(pending, ids[1..]);

    // Arguments are checked before anything happens.
    let m = ai.messages();
    assert_err(m.claim_for_ai(" ", 1, StdDuration::from_secs(60)).await, "validation", Some("worker"));
    assert_err(m.claim_for_ai("w", 0, StdDuration::from_secs(60)).await, "validation", Some("limit"));
    assert_err(m.claim_for_ai("w", 501, StdDuration::from_secs(60)).await, "validation", Some("limit"));
    assert_err(m.claim_for_ai("w", 1, StdDuration::ZERO).await, "validation", Some("lease"));
    assert_err(m.claim_for_ai("w", 1, StdDuration::from_secs(7200)).await, "validation", Some("lease"));
    assert_err(m.pending_for_ai(0).await, "validation", Some("limit"));

    // Access: a patient and an admin may not claim; the refusal is recorded.
    let as_patient = tdb.db.scope(scope.organization_id(), Actor::patient(conv.patient_id)).await.unwrap();
    let (r, event) =
        one_event(&tdb, &scope, as_patient.messages().claim_for_ai("w", 1, StdDuration::from_secs(60))).await;
    assert_code(r, "permission_denied");
    assert_eq!(event.action, AuditAction::AccessDenied);
    let admin = tdb.db.scope(scope.organization_id(), Actor::admin(None)).await.unwrap();
    assert_code(admin.messages().claim_for_ai("w", 1, StdDuration::from_secs(60)).await, "permission_denied");

    // Another organization's queue is its own.
    let other = tdb.org("Clínica Outra").await;
    let other_ai = annotator(&tdb, other.organization_id()).await;
    assert!(other_ai.messages().pending_for_ai(100).await.unwrap().is_empty());
    assert!(other_ai.messages().claim_for_ai("w", 100, StdDuration::from_secs(60)).await.unwrap().is_empty());
}

#[backends]
async fn an_expired_lease_is_claimed_again(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let ai = annotator(&tdb, scope.organization_id()).await;
    let conv = conversation(&scope, "+5511987654321").await;
    let id = inbound(&scope, conv.id, "Estou com febre", at(1)).await;

    let first = ai.messages().claim_for_ai("worker-a", 10, StdDuration::from_secs(1)).await.unwrap();
    assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    assert!(ai.messages().claim_for_ai("worker-b", 10, StdDuration::from_secs(60)).await.unwrap().is_empty());
    // worker-a crashes; its lease runs out.
    tdb.clock.advance(chrono::TimeDelta::seconds(2));
    let again = ai.messages().claim_for_ai("worker-b", 10, StdDuration::from_secs(60)).await.unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(tdb.raw_text(&format!("SELECT ai_claimed_by FROM messages WHERE id = '{id}'")).await, "worker-b");
    ai.messages().record_ai_result(id, analysis()).await.unwrap();
    // Processed: never handed out again, even once every lease is over.
    tdb.clock.advance(chrono::TimeDelta::minutes(2));
    assert!(ai.messages().claim_for_ai("worker-c", 10, StdDuration::from_secs(1)).await.unwrap().is_empty());
}

#[backends(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_never_claim_the_same_message(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let org = scope.organization_id();
    let conv = conversation(&scope, "+5511987654321").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(inbound(&scope, conv.id, &format!("mensagem {i}"), at(i)).await);
    }
    let mut workers = Vec::new();
    for w in 0..4 {
        let db = tdb.db.clone();
        workers.push(tokio::spawn(async move {
            let ai = db.scope(org, Actor::system("ai-annotator")).await.unwrap();
            let mut mine = Vec::new();
            loop {
                let batch =
                    ai.messages().claim_for_ai(&format!("worker-{w}"), 3, StdDuration::from_secs(300)).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for m in batch {
                    mine.push(m.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "a message was claimed twice");
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every message was claimed once");
}
