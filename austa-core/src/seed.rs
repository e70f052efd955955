//! The development seed: the reference's section 6 data, corrected where the original was wrong.
//!
//! * 2 organizations, 3 providers, 3 patients, 4 health data entries, 3 missions, 2 conversations,
//!   3 messages, 1 document, 3 onboarding progress rows, 2 health points rows, 3 point transactions.
//! * Every row has a stable id ([`ids`]), so the seed is idempotent: a row that already exists (even
//!   soft-deleted) is left alone, and running the seed twice changes nothing and does not fail. A seed
//!   interrupted halfway is completed by the next run.
//! * Fixes to the original data: CPFs and CNPJs have valid check digits (same shapes); provider titles
//!   ("Dr.", "Enf.") are a field of their own, not part of the first name; every verified health record
//!   has its `verified_at`; the bot's message has a BOT sender instead of the patient's id; message
//!   counters equal the messages (conversation 2 has none, so its count is 0, not 12); health points
//!   totals are the sum of the ledger (Carlos 150, Ana 200: the original's 250/500 did not add up);
//!   mission 3's prerequisite is a real reference.
//! * Everything goes through the repositories, so the seed is validated, encrypted and scoped like any
//!   other write.

use chrono::{Duration, NaiveDate};
use serde_json::json;
use uuid::Uuid;

use crate::db::Database;
use crate::error::Result;
use crate::kernel::Model;
use crate::model::*;
use crate::scope::{Actor, Scope};
use austa_crypto::Sensitive;

/// The seed's stable ids: `0190....-7...-8...` (valid UUIDv7 layout) with the entity kind and a number.
pub mod ids {
    use uuid::Uuid;

    const fn id(kind: u128, n: u128) -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | (kind << 16) | n)
    }

    /// Hospital São Paulo.
    pub const HOSPITAL: Uuid = id(1, 1);
    /// The hospital's WhatsApp Business number id (Meta's `phone_number_id`), registered for webhook
    /// ingest.
    pub const HOSPITAL_WHATSAPP_NUMBER: &str = "104857600000001";
    /// Clínica Vida Saudável.
    pub const CLINIC: Uuid = id(1, 2);
    /// Dr. Ana Silva (hospital).
    pub const PROVIDER_ANA_SILVA: Uuid = id(2, 1);
    /// Enf. Maria Santos (hospital).
    pub const PROVIDER_MARIA_SANTOS: Uuid = id(2, 2);
    /// Dr. João Oliveira (clinic).
    pub const PROVIDER_JOAO_OLIVEIRA: Uuid = id(2, 3);
    /// Carlos Mendes (hospital).
    pub const PATIENT_CARLOS: Uuid = id(3, 1);
    /// Ana Costa (hospital).
    pub const PATIENT_ANA: Uuid = id(3, 2);
    /// Pedro Lima (clinic).
    pub const PATIENT_PEDRO: Uuid = id(3, 3);
    /// Health data entries 1 to 4.
    pub const HEALTH_DATA: [Uuid; 4] = [id(4, 1), id(4, 2), id(4, 3), id(4, 4)];
    /// Missions 1 to 3 (hospital).
    pub const MISSIONS: [Uuid; 3] = [id(5, 1), id(5, 2), id(5, 3)];
    /// Carlos's support conversation (wa-chat-001).
    pub const CONVERSATION_CARLOS: Uuid = id(6, 1);
    /// Ana's onboarding conversation (wa-chat-002).
    pub const CONVERSATION_ANA: Uuid = id(6, 2);
    /// The three messages of Carlos's conversation.
    pub const MESSAGES: [Uuid; 3] = [id(7, 1), id(7, 2), id(7, 3)];
    /// Carlos's lab result document.
    pub const DOCUMENT_CARLOS_LAB: Uuid = id(8, 1);
    /// Onboarding progress rows 1 to 3.
    pub const ONBOARDING: [Uuid; 3] = [id(9, 1), id(9, 2), id(9, 3)];
    /// Health points of Carlos and Ana.
    pub const HEALTH_POINTS: [Uuid; 2] = [id(10, 1), id(10, 2)];
    /// Point transactions 1 to 3.
    pub const POINT_TRANSACTIONS: [Uuid; 3] = [id(11, 1), id(11, 2), id(11, 3)];
}

/// What a seed run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    /// The hospital's id (for opening a scope).
    pub hospital_id: Uuid,
    /// The clinic's id.
    pub clinic_id: Uuid,
    /// Per entity: (name, created now, already present).
    pub entities: Vec<(&'static str, usize, usize)>,
}

impl SeedReport {
    /// Rows created by this run.
    pub fn created(&self) -> usize {
        self.entities.iter().map(|e| e.1).sum()
    }

    /// Rows that were already there.
    pub fn existing(&self) -> usize {
        self.entities.iter().map(|e| e.2).sum()
    }

    fn count(&mut self, entity: &'static str, created: bool) {
        if let Some(e) = self.entities.iter_mut().find(|e| e.0 == entity) {
            if created {
                e.1 += 1
            } else {
                e.2 += 1
            }
        } else {
            self.entities.push((entity, usize::from(created), usize::from(!created)));
        }
    }
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, created, existing) in &self.entities {
            writeln!(
                f,
                "  {name:<22} {:>2} total ({created} created, {existing} already present)",
                created + existing
            )?;
        }
        Ok(())
    }
}

/// Runs `create` unless a row of `M` with `id` exists; records which in `report`.
async fn ensure<M, F>(report: &mut SeedReport, scope: &Scope, entity: &'static str, id: Uuid, create: F) -> Result<()>
where
    M: Model,
    F: std::future::Future<Output = Result<M>>,
{
    let exists = scope.repo::<M>().exists(id).await?;
    if !exists {
        create.await?;
    }
    report.count(entity, !exists);
    Ok(())
}

/// Loads the development seed into `db` (already migrated). Idempotent.
pub async fn run(db: &Database) -> Result<SeedReport> {
    let mut report = SeedReport { hospital_id: ids::HOSPITAL, clinic_id: ids::CLINIC, ..Default::default() };
    organizations(db, &mut report).await?;
    let hospital = db.scope(ids::HOSPITAL, Actor::platform()).await?;
    let clinic = db.scope(ids::CLINIC, Actor::platform()).await?;
    // Idempotent: the webhook finds the hospital by this number.
    hospital.register_whatsapp_number(ids::HOSPITAL_WHATSAPP_NUMBER).await?;
    providers(&hospital, &clinic, &mut report).await?;
    patients(&hospital, &clinic, &mut report).await?;
    health_data(&hospital, &clinic, &mut report).await?;
    missions(&hospital, &mut report).await?;
    conversations(&hospital, &mut report).await?;
    documents(&hospital, &mut report).await?;
    gamification(&hospital, &mut report).await?;
    Ok(report)
}

async fn organizations(db: &Database, report: &mut SeedReport) -> Result<()> {
    let orgs = db.organizations();
    let hospital = NewOrganization {
        tax_id: Some("12.345.678/0001-95".into()),
        address: Some(Address {
            street: "Rua das Flores, 123".into(),
            city: "São Paulo".into(),
            state: "SP".into(),
            zip_code: "01234-567".into(),
            country: "Brasil".into(),
        }),
        phone: Some("+55 11 3456-7890".into()),
        email: Some("contato@hospitalsaopaulo.com.br".into()),
        settings: Some(Sensitive::new(json!({
            "whatsappBusinessId": "wa-business-001",
            "defaultLanguage": "pt-BR",
            "timezone": "America/Sao_Paulo",
            "features": {"aiChatbot": true, "voiceMessages": true, "documentOcr": true, "tasyIntegration": true}
        }))),
        compliance_regimes: Some(vec!["LGPD".into(), "HIPAA".into()]),
        ..NewOrganization::new("Hospital São Paulo", OrganizationType::Hospital)
    };
    let clinic = NewOrganization {
        tax_id: Some("98.765.432/0001-98".into()),
        address: Some(Address {
            street: "Av. Paulista, 456".into(),
            city: "São Paulo".into(),
            state: "SP".into(),
            zip_code: "01310-100".into(),
            country: "Brasil".into(),
        }),
        phone: Some("+55 11 9876-5432".into()),
        email: Some("contato@vidasaudavel.com.br".into()),
        settings: Some(Sensitive::new(json!({
            "whatsappBusinessId": "wa-business-002",
            "defaultLanguage": "pt-BR",
            "timezone": "America/Sao_Paulo"
        }))),
        compliance_regimes: Some(vec!["LGPD".into(), "HIPAA".into()]),
        ..NewOrganization::new("Clínica Vida Saudável", OrganizationType::Clinic)
    };
    for (id, new) in [(ids::HOSPITAL, hospital), (ids::CLINIC, clinic)] {
        let exists = orgs.exists(id).await?;
        if !exists {
            orgs.create_with_id(id, new).await?;
        }
        report.count("organizations", !exists);
    }
    Ok(())
}

async fn providers(hospital: &Scope, clinic: &Scope, report: &mut SeedReport) -> Result<()> {
    let provider =
        |title: &str, first: &str, last: &str, email: &str, phone: &str, license: &str, specialty: &[&str], role| {
            NewProvider {
                title: Some(title.into()),
                first_name: first.into(),
                last_name: last.into(),
                email: email.into(),
                phone: Some(phone.into()),
                license: Some(license.into()),
                specialty: specialty.iter().map(|s| s.to_string()).collect(),
                role,
                is_active: None,
            }
        };
    let rows = [
        (
            hospital,
            ids::PROVIDER_ANA_SILVA,
            provider(
                "Dr.",
                "Ana",
                "Silva",
                "ana.silva@hospitalsaopaulo.com.br",
                "+55 11 99999-1111",
                "CRM-SP 123456",
                &["CARDIOLOGY", "GENERAL"],
                ProviderRole::Doctor,
            ),
        ),
        (
            hospital,
            ids::PROVIDER_MARIA_SANTOS,
            provider(
                "Enf.",
                "Maria",
                "Santos",
                "maria.santos@hospitalsaopaulo.com.br",
                "+55 11 99999-2222",
                "COREN-SP 654321",
                &["GENERAL", "PEDIATRICS"],
                ProviderRole::Nurse,
            ),
        ),
        (
            clinic,
            ids::PROVIDER_JOAO_OLIVEIRA,
            provider(
                "Dr.",
                "João",
                "Oliveira",
                "joao.oliveira@vidasaudavel.com.br",
                "+55 11 99999-3333",
                "CRM-SP 789012",
                &["DIABETES", "ENDOCRINOLOGY"],
                ProviderRole::Doctor,
            ),
        ),
    ];
    for (scope, id, new) in rows {
        ensure(report, scope, "providers", id, scope.providers().create_with_id(id, new)).await?;
    }
    Ok(())
}

async fn patients(hospital: &Scope, clinic: &Scope, report: &mut SeedReport) -> Result<()> {
    let contact = |name: &str, phone: &str, relationship: &str| {
        Some(Sensitive::new(EmergencyContact {
            name: name.into(),
            phone: phone.into(),
            relationship: relationship.into(),
        }))
    };
    let patient = |first: &str,
                   last: &str,
                   email: &str,
                   phone: &str,
                   cpf: &str,
                   born: (i32, u32, u32),
                   gender: Gender,
                   wa: &str| NewPatient {
        first_name: first.into(),
        last_name: last.into(),
        email: Some(email.into()),
        phone: phone.into(),
        cpf: Some(cpf.into()),
        date_of_birth: NaiveDate::from_ymd_opt(born.0, born.1, born.2).map(Sensitive::new),
        gender: Some(gender.into()),
        whatsapp_id: Some(wa.into()),
        is_verified: true,
        ..Default::default()
    };
    let rows = [
        (
            hospital,
            ids::PATIENT_CARLOS,
            NewPatient {
                emergency_contact: contact("Maria Mendes", "+5511987654322", "spouse"),
                ..patient(
                    "Carlos",
                    "Mendes",
                    "carlos.mendes@email.com",
                    "+5511987654321",
                    "123.456.789-09",
                    (1985, 3, 15),
                    Gender::Male,
                    "5511987654321",
                )
            },
        ),
        (
            hospital,
            ids::PATIENT_ANA,
            NewPatient {
                emergency_contact: contact("João Costa", "+5511876543211", "father"),
                ..patient(
                    "Ana",
                    "Costa",
                    "ana.costa@email.com",
                    "+5511876543210",
                    "987.654.321-00",
                    (1992, 7, 22),
                    Gender::Female,
                    "5511876543210",
                )
            },
        ),
        (
            clinic,
            ids::PATIENT_PEDRO,
            patient(
                "Pedro",
                "Lima",
                "pedro.lima@email.com",
                "+5511765432109",
                "456.789.123-64",
                (1978, 11, 8),
                Gender::Male,
                "5511765432109",
            ),
        ),
    ];
    for (scope, id, new) in rows {
        ensure(report, scope, "patients", id, scope.patients().create_with_id(id, new)).await?;
    }
    Ok(())
}

async fn health_data(hospital: &Scope, clinic: &Scope, report: &mut SeedReport) -> Result<()> {
    let now = hospital.now();
    let base = |patient_id, data_type, category| NewHealthData {
        patient_id,
        data_type,
        category,
        conditions: None,
        medications: None,
        allergies: None,
        symptoms: None,
        vital_signs: None,
        lab_results: None,
        source: Some(DataSource::ProviderEntered),
        reliability: Some(ReliabilityLevel::Verified),
        is_verified: false,
        verified_by_provider_id: None,
        verified_at: None,
        sensitivity_level: Some(SensitivityLevel::Sensitive),
        access_level: Some(AccessLevel::PatientOnly),
        expires_at: None,
        recorded_at: None,
    };
    let verified = |new: NewHealthData, by| NewHealthData {
        is_verified: true,
        verified_by_provider_id: Some(by),
        verified_at: Some(now),
        ..new
    };
    let rows = [
        (
            hospital,
            verified(
                NewHealthData {
                    conditions: Some(Sensitive::new(
                        json!({"primary": "Hipertensão Arterial", "icd10": "I10", "severity": "moderate", "diagnosedAt": "2023-01-15", "status": "active"}),
                    )),
                    access_level: Some(AccessLevel::ProviderPatient),
                    ..base(ids::PATIENT_CARLOS, HealthDataType::Condition, HealthCategory::Cardiology)
                },
                ids::PROVIDER_ANA_SILVA,
            ),
        ),
        (
            hospital,
            verified(
                NewHealthData {
                    medications: Some(Sensitive::new(
                        json!({"name": "Losartana", "dosage": "50mg", "frequency": "once_daily", "startDate": "2023-01-15", "prescribedBy": ids::PROVIDER_ANA_SILVA, "instructions": "Tomar pela manhã, em jejum"}),
                    )),
                    ..base(ids::PATIENT_CARLOS, HealthDataType::Medication, HealthCategory::Cardiology)
                },
                ids::PROVIDER_ANA_SILVA,
            ),
        ),
        (
            hospital,
            NewHealthData {
                allergies: Some(Sensitive::new(
                    json!({"allergen": "Penicilina", "severity": "severe", "reaction": "Urticária generalizada", "diagnosedAt": "2020-05-10"}),
                )),
                source: Some(DataSource::UserReported),
                reliability: Some(ReliabilityLevel::High),
                sensitivity_level: Some(SensitivityLevel::HighlySensitive),
                ..base(ids::PATIENT_ANA, HealthDataType::Allergy, HealthCategory::General)
            },
        ),
        (
            clinic,
            verified(
                NewHealthData {
                    conditions: Some(Sensitive::new(
                        json!({"primary": "Diabetes Mellitus Tipo 2", "icd10": "E11", "severity": "moderate", "diagnosedAt": "2022-08-20", "status": "active", "complications": []}),
                    )),
                    ..base(ids::PATIENT_PEDRO, HealthDataType::Condition, HealthCategory::Diabetes)
                },
                ids::PROVIDER_JOAO_OLIVEIRA,
            ),
        ),
    ];
    for ((scope, new), id) in rows.into_iter().zip(ids::HEALTH_DATA) {
        ensure(report, scope, "health_data", id, scope.health_data().create_with_id(id, new)).await?;
    }
    Ok(())
}

async fn missions(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let steps = |names: &[&str]| json!({"steps": names.iter().map(|n| json!({"id": n, "completed": false})).collect::<Vec<_>>()});
    let mission = |title: &str,
                   description: &str,
                   category,
                   difficulty,
                   points,
                   badge: Option<&str>,
                   prerequisites: Vec<Uuid>,
                   actions: &[&str],
                   minutes,
                   tags: &[&str]| NewMission {
        title: title.into(),
        description: description.into(),
        category,
        difficulty: Some(difficulty),
        points_reward: points,
        badge_reward: badge.map(str::to_string),
        unlock_reward: None,
        prerequisites,
        required_actions: steps(actions),
        is_active: None,
        start_date: None,
        end_date: None,
        estimated_time_minutes: Some(minutes),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    let rows = [
        mission(
            "Completar Perfil de Saúde",
            "Preencha suas informações pessoais e de saúde para um atendimento personalizado.",
            MissionCategory::Onboarding,
            DifficultyLevel::Easy,
            100,
            Some("first_steps"),
            vec![],
            &["fill_personal_info", "add_emergency_contact", "verify_phone"],
            10,
            &["profile", "basic", "onboarding"],
        ),
        mission(
            "Primeira Conversa com IA",
            "Converse com nossa assistente virtual e tire uma dúvida de saúde.",
            MissionCategory::Engagement,
            DifficultyLevel::Easy,
            50,
            None,
            vec![],
            &["start_conversation", "ask_health_question"],
            5,
            &["ai", "chat", "engagement"],
        ),
        mission(
            "Adicionar Medicamentos",
            "Cadastre seus medicamentos e configure lembretes.",
            MissionCategory::HealthEducation,
            DifficultyLevel::Medium,
            150,
            None,
            vec![ids::MISSIONS[0]],
            &["add_medication", "set_reminder", "confirm_dosage"],
            15,
            &["medication", "health_data", "management"],
        ),
    ];
    for (new, id) in rows.into_iter().zip(ids::MISSIONS) {
        ensure(report, hospital, "missions", id, hospital.missions().create_with_prerequisites_and_id(id, new)).await?;
    }
    Ok(())
}

async fn conversations(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let now = hospital.now();
    let carlos = NewConversation {
        patient_id: ids::PATIENT_CARLOS,
        whatsapp_chat_id: "5511987654321".into(),
        status: Some(ConversationStatus::Active),
        conversation_type: Some(ConversationType::Support),
        title: Some("Dúvidas sobre medicação".into()),
        priority: Some(Priority::Normal),
        health_topics: Some(Sensitive::new(vec!["medication".into(), "hypertension".into()])),
        medications_mentioned: Some(Sensitive::new(vec!["Losartana".into()])),
        started_at: Some(now - Duration::minutes(10)),
        ..Default::default()
    };
    let ana = NewConversation {
        patient_id: ids::PATIENT_ANA,
        whatsapp_chat_id: "5511876543210".into(),
        status: Some(ConversationStatus::Completed),
        conversation_type: Some(ConversationType::Onboarding),
        title: Some("Boas-vindas ao sistema".into()),
        priority: Some(Priority::High),
        health_topics: Some(Sensitive::new(vec!["allergies".into(), "profile_setup".into()])),
        satisfaction_score: Some(4.5),
        started_at: Some(now - Duration::days(1)),
        ended_at: Some(now),
        ..Default::default()
    };
    for (id, new) in [(ids::CONVERSATION_CARLOS, carlos), (ids::CONVERSATION_ANA, ana)] {
        ensure(report, hospital, "conversations", id, hospital.conversations().create_with_id(id, new)).await?;
    }

    let text = |direction, sender| NewMessage::new(ids::CONVERSATION_CARLOS, direction, MessageType::Text, sender);
    let inbound = |wamid: &str, content: &str, minutes_ago: i64| NewMessage {
        whatsapp_message_id: Some(wamid.into()),
        content: Some(content.into()),
        ai_processed: true,
        requires_response: true,
        status: Some(MessageStatus::Delivered),
        sent_at: Some(now - Duration::minutes(minutes_ago)),
        ..text(MessageDirection::Inbound, SenderKind::Patient)
    };
    let messages = [
        NewMessage {
            health_keywords: Some(Sensitive::new(vec!["medicamento".into(), "pressão".into()])),
            urgency_level: Some(UrgencyLevel::Medium),
            ai_intent: Some("medication_inquiry".into()),
            ai_entities: Some(Sensitive::new(
                json!({"medications": ["pressure_medication"], "conditions": ["hypertension"]}),
            )),
            ai_confidence: Some(0.92),
            ..inbound("wa-msg-001", "Olá, tenho uma dúvida sobre o meu remédio de pressão.", 6)
        },
        NewMessage {
            content: Some("Olá, Carlos! Claro, posso ajudar. Qual é o medicamento que você está tomando?".into()),
            bot_response_time_seconds: Some(2.5),
            status: Some(MessageStatus::Delivered),
            sent_at: Some(now - Duration::minutes(5)),
            ..text(MessageDirection::Outbound, SenderKind::Bot)
        },
        NewMessage {
            health_keywords: Some(Sensitive::new(vec!["Losartana".into(), "estômago".into()])),
            urgency_level: Some(UrgencyLevel::Low),
            ai_intent: Some("medication_administration".into()),
            ai_entities: Some(Sensitive::new(
                json!({"medications": ["Losartana"], "dosage": ["50mg"], "administration": ["stomach_full"]}),
            )),
            ai_confidence: Some(0.95),
            ..inbound("wa-msg-002", "É a Losartana 50mg. Posso tomar de estômago cheio?", 4)
        },
    ];
    for (new, id) in messages.into_iter().zip(ids::MESSAGES) {
        ensure(report, hospital, "messages", id, hospital.messages().append_with_id(id, new)).await?;
    }
    Ok(())
}

async fn documents(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let now = hospital.now();
    let new = NewDocument {
        patient_id: ids::PATIENT_CARLOS,
        filename: "exame_sangue_carlos_20240115.pdf".into(),
        original_name: "Exame de Sangue - Carlos Mendes.pdf".into(),
        mime_type: "application/pdf".into(),
        size_bytes: 2_048_576,
        storage_provider: Some(StorageProvider::Local),
        storage_path: "/uploads/documents/exame_sangue_carlos_20240115.pdf".into(),
        download_url: None,
        thumbnail_url: None,
        document_type: DocumentType::LabResult,
        category: DocumentCategory::Laboratory,
        tags: vec!["laboratorio".into()],
        has_ocr: true,
        ocr_text: Some("Hemograma completo. Glicose 95 mg/dL, colesterol total 180 mg/dL, triglicérides 120 mg/dL. Todos os valores dentro da normalidade.".into()),
        ocr_confidence: Some(0.95),
        processed_at: Some(now),
        extracted_data: Some(Sensitive::new(json!({"tests": [
            {"name": "Glicose", "value": 95, "unit": "mg/dL", "status": "normal"},
            {"name": "Colesterol Total", "value": 180, "unit": "mg/dL", "status": "normal"},
            {"name": "Triglicérides", "value": 120, "unit": "mg/dL", "status": "normal"}
        ]}))),
        health_keywords: Some(Sensitive::new(vec!["hemograma".into(), "glicose".into(), "colesterol".into()])),
        is_encrypted: false,
        storage_key_ref: None,
        access_level: Some(AccessLevel::ProviderPatient),
        sensitivity_level: Some(SensitivityLevel::Sensitive),
        archived_at: None,
        retention_until: Some(now + Duration::days(20 * 365)),
        uploaded_at: Some(now),
    };
    let id = ids::DOCUMENT_CARLOS_LAB;
    ensure(report, hospital, "documents", id, hospital.documents().create_with_id(id, new)).await
}

async fn gamification(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let now = hospital.now();
    let progress =
        |patient_id, mission_id, done: bool, step, total, minutes, started, completed| NewOnboardingProgress {
            patient_id,
            mission_id,
            status: Some(if done { ProgressStatus::Completed } else { ProgressStatus::InProgress }),
            progress: 100.0 * step as f64 / total as f64,
            current_step: step,
            total_steps: Some(total),
            started_at: Some(started),
            completed_at: completed,
            points_earned: if done { 100 } else { 0 },
            badge_earned: done.then(|| "first_steps".to_string()),
            attempts_count: 1,
            time_spent_minutes: minutes,
            last_interaction_at: None,
        };
    let rows = [
        progress(ids::PATIENT_CARLOS, ids::MISSIONS[0], true, 3, 3, 8, now - Duration::days(1), Some(now)),
        progress(ids::PATIENT_CARLOS, ids::MISSIONS[1], false, 1, 2, 3, now, None),
        progress(
            ids::PATIENT_ANA,
            ids::MISSIONS[0],
            true,
            3,
            3,
            12,
            now - Duration::days(2),
            Some(now - Duration::days(1)),
        ),
    ];
    for (new, id) in rows.into_iter().zip(ids::ONBOARDING) {
        ensure(report, hospital, "onboarding_progress", id, hospital.onboarding_progress().create_with_id(id, new))
            .await?;
    }
    health_points(hospital, report).await?;
    point_transactions(hospital, report).await
}

/// The seed's points accounts.
async fn health_points(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let now = hospital.now();
    let achievement = |id: &str, name: &str| Achievement { id: id.into(), name: name.into(), earned_at: now };
    let points = [
        NewHealthPoints {
            patient_id: ids::PATIENT_CARLOS,
            current_level: Some(2),
            next_level_at: Some(500),
            badges: vec!["first_steps".into(), "active_user".into()],
            achievements: vec![achievement("first_conversation", "Primeira Conversa")],
            daily_streak: 5,
            weekly_streak: 2,
            longest_streak: 7,
            last_active_date: None,
        },
        NewHealthPoints {
            patient_id: ids::PATIENT_ANA,
            current_level: Some(3),
            next_level_at: Some(750),
            badges: vec!["first_steps".into(), "active_user".into(), "health_champion".into()],
            achievements: vec![
                achievement("profile_complete", "Perfil Completo"),
                achievement("first_week", "Primeira Semana"),
            ],
            daily_streak: 10,
            weekly_streak: 3,
            longest_streak: 15,
            last_active_date: None,
        },
    ];
    for (new, id) in points.into_iter().zip(ids::HEALTH_POINTS) {
        ensure(report, hospital, "health_points", id, hospital.health_points().create_with_id(id, new)).await?;
    }
    Ok(())
}

/// The seed's ledger rows.
async fn point_transactions(hospital: &Scope, report: &mut SeedReport) -> Result<()> {
    let earned = |patient_id,
                  amount,
                  reason: &str,
                  description: &str,
                  source_type,
                  mission: Option<Uuid>,
                  conversation: Option<Uuid>,
                  metadata| NewPointTransaction {
        patient_id,
        transaction_type: TransactionType::Earned,
        amount,
        reason: reason.into(),
        description: Some(description.into()),
        source_type,
        source_mission_id: mission,
        source_conversation_id: conversation,
        metadata,
    };
    let transactions = [
        earned(
            ids::PATIENT_CARLOS,
            100,
            "Mission completed",
            "Completou \"Completar Perfil de Saúde\"",
            SourceType::Mission,
            Some(ids::MISSIONS[0]),
            None,
            Some(json!({"missionTitle": "Completar Perfil de Saúde", "difficulty": "EASY"})),
        ),
        earned(
            ids::PATIENT_CARLOS,
            50,
            "Daily engagement",
            "Participação ativa na conversa",
            SourceType::Engagement,
            None,
            Some(ids::CONVERSATION_CARLOS),
            None,
        ),
        earned(
            ids::PATIENT_ANA,
            200,
            "Multiple missions completed",
            "Completou as missões de boas-vindas",
            SourceType::Mission,
            Some(ids::MISSIONS[0]),
            None,
            None,
        ),
    ];
    for (new, id) in transactions.into_iter().zip(ids::POINT_TRANSACTIONS) {
        ensure(report, hospital, "point_transactions", id, hospital.point_transactions().record_with_id(id, new))
            .await?;
    }
    Ok(())
}
