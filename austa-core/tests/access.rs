//! The access matrix, walked cell by cell against the real repositories on both backends, plus the
//! row-level rules (a patient sees only themself; providers see health data by access level; admins
//! read clinical data only with a stated purpose) and break-glass emergency access.

use austa_core::access::{markdown_matrix, Action, Resource, Rule, SystemIntegration, Who};
use austa_core::crypto::{RotationTarget, Sensitive};
use austa_core::model::*;
use austa_core::repo::PageRequest;
use austa_core::seed::{self, ids};
use austa_core::{Actor, Database, RequestContext, Result, Scope};
use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use crate::support::{self, TestDb};
use austa_macros::backends;

/// Rows every cell's operation works on: the seed's hospital plus an authorization, a Tasy integration
/// and a sync run.
struct Fixture {
    platform: Scope,
    authorization: Uuid,
    integration: Uuid,
    run: Uuid,
    rotation: Uuid,
}

async fn fixture(db: &Database) -> Fixture {
    seed::run(db).await.unwrap();
    let platform = db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let authorization = platform
        .authorizations()
        .create(NewAuthorization::new(
            AuthorizationType::Diagnostic,
            "Ecocardiograma",
            ids::PATIENT_CARLOS,
            ids::PROVIDER_ANA_SILVA,
        ))
        .await
        .unwrap()
        .id;
    let integration = platform.tasy_integrations().create(integration()).await.unwrap().id;
    let run = platform.tasy_sync_logs().start(integration, sync()).await.unwrap().id;
    let rotation = platform.keys().start_rotation(RotationTarget::Patient(ids::PATIENT_ANA)).await.unwrap().id;
    Fixture { platform, authorization, integration, run, rotation }
}

fn integration() -> NewTasyIntegration {
    NewTasyIntegration {
        tasy_instance_url: "https://tasy.hospital.example".into(),
        api_key: "tasy-api-key-1234".into(),
        field_mapping: json!({"patient": "PESSOA_FISICA"}),
        ..Default::default()
    }
}

fn sync() -> NewTasySync {
    NewTasySync { sync_type: SyncType::Incremental, direction: SyncDirection::Import, record_type: "patients".into() }
}

fn new_patient() -> NewPatient {
    // A counter, not randomness: every patient of a run needs a distinct phone.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    NewPatient {
        first_name: "Julia".into(),
        last_name: "Ramos".into(),
        phone: format!("+55119{:08}", 10_000_000 + n).into(),
        ..Default::default()
    }
}

fn new_health_data() -> NewHealthData {
    NewHealthData {
        symptoms: Some(Sensitive::new(json!({"primary": "cefaleia"}))),
        access_level: Some(AccessLevel::ProviderPatient),
        ..NewHealthData::new(ids::PATIENT_CARLOS, HealthDataType::Symptom, HealthCategory::Neurology)
    }
}

fn new_document() -> NewDocument {
    NewDocument {
        access_level: Some(AccessLevel::ProviderPatient),
        ..NewDocument::new(
            ids::PATIENT_CARLOS,
            "receita.pdf",
            "Receita.pdf",
            "application/pdf",
            1024,
            "/uploads/receita.pdf",
            DocumentType::Prescription,
            DocumentCategory::Medical,
        )
    }
}

fn new_mission() -> NewMission {
    NewMission::new("Caminhada", "Caminhe 30 minutos", MissionCategory::Lifestyle, json!({"steps": []}))
}

fn text(content: &str) -> NewMessage {
    NewMessage {
        content: Some(content.into()),
        ..NewMessage::new(ids::CONVERSATION_CARLOS, MessageDirection::Outbound, MessageType::Text, SenderKind::Bot)
    }
}

fn ok<T>(r: Result<T>) -> Result<()> {
    r.map(|_| ())
}

/// Performs the cell's representative operation as `s`; `None` when the library offers no such
/// operation (the matrix must then deny it: there is nothing to allow).
async fn attempt(s: &Scope, f: &Fixture, resource: Resource, action: Action) -> Option<Result<()>> {
    use Action::*;
    use Resource as R;
    let p = &f.platform;
    let page = || PageRequest::first(10);
    Some(match (resource, action) {
        (R::Organization, Read) => ok(s.organization().await),
        (R::Organization, Update) => ok(s.update_organization(OrganizationPatch::default()).await),
        (R::Patient, Read) => ok(s.patients().get(ids::PATIENT_CARLOS).await),
        (R::Patient, Create) => ok(s.patients().create(new_patient()).await),
        (R::Patient, Update) => ok(s.patients().update(ids::PATIENT_CARLOS, PatientPatch::default()).await),
        (R::Patient, Delete) => s.patients().delete(p.patients().create(new_patient()).await.unwrap().id).await,
        (R::Provider, Read) => ok(s.providers().get(ids::PROVIDER_ANA_SILVA).await),
        (R::Provider, Create) => {
            let email = format!("p{}@hospital.com.br", Uuid::now_v7().simple());
            ok(s.providers().create(NewProvider::new("Rita", "Lopes", email.as_str(), ProviderRole::Nurse)).await)
        }
        (R::Provider, Update) => ok(s.providers().update(ids::PROVIDER_ANA_SILVA, ProviderPatch::default()).await),
        (R::Provider, Delete) => {
            let email = format!("p{}@hospital.com.br", Uuid::now_v7().simple());
            let new = NewProvider::new("Rita", "Lopes", email.as_str(), ProviderRole::Nurse);
            s.providers().delete(p.providers().create(new).await.unwrap().id).await
        }
        (R::Conversation, Read) => ok(s.conversations().get(ids::CONVERSATION_CARLOS).await),
        (R::Conversation, Create) => {
            let chat = format!("wa-chat-{}", Uuid::now_v7().simple());
            let new = NewConversation {
                patient_id: ids::PATIENT_CARLOS,
                whatsapp_chat_id: chat.into(),
                status: Some(ConversationStatus::Completed),
                ..Default::default()
            };
            ok(s.conversations().create(new).await)
        }
        (R::Conversation, Update) => {
            ok(s.conversations().update(ids::CONVERSATION_CARLOS, ConversationPatch::default()).await)
        }
        (R::Conversation, Delete) => {
            let chat = format!("wa-chat-{}", Uuid::now_v7().simple());
            let new = NewConversation {
                patient_id: ids::PATIENT_CARLOS,
                whatsapp_chat_id: chat.into(),
                status: Some(ConversationStatus::Archived),
                ..Default::default()
            };
            s.conversations().delete(p.conversations().create(new).await.unwrap().id).await
        }
        (R::Message, Read) => ok(s.messages().history(ids::CONVERSATION_CARLOS, page()).await),
        (R::Message, Create) => ok(s.messages().append(text("Posso ajudar em algo mais?")).await),
        (R::Message, Update) => ok(s.messages().update(ids::MESSAGES[0], MessagePatch::default()).await),
        (R::Message, Delete) => s.messages().delete(p.messages().append(text("temporária")).await.unwrap().id).await,
        (R::HealthData, Read) => ok(s.health_data().get(ids::HEALTH_DATA[0]).await),
        (R::HealthData, Create) => ok(s.health_data().create(new_health_data()).await),
        (R::HealthData, Update) => ok(s.health_data().update(ids::HEALTH_DATA[0], HealthDataPatch::default()).await),
        (R::HealthData, Delete) => {
            s.health_data().delete(p.health_data().create(new_health_data()).await.unwrap().id).await
        }
        (R::Mission, Read) => ok(s.missions().get(ids::MISSIONS[0]).await),
        (R::Mission, Create) => ok(s.missions().create_with_prerequisites(new_mission()).await),
        (R::Mission, Update) => ok(s.missions().update(ids::MISSIONS[0], MissionPatch::default()).await),
        (R::Mission, Delete) => s.missions().delete(p.missions().create(new_mission()).await.unwrap().id).await,
        (R::OnboardingProgress, Read) => ok(s.onboarding_progress().get(ids::ONBOARDING[0]).await),
        (R::OnboardingProgress, Create) => {
            let patient = p.patients().create(new_patient()).await.unwrap().id;
            let new = NewOnboardingProgress { patient_id: patient, mission_id: ids::MISSIONS[1], ..Default::default() };
            ok(s.onboarding_progress().create(new).await)
        }
        (R::OnboardingProgress, Update) => {
            ok(s.onboarding_progress().update(ids::ONBOARDING[0], OnboardingProgressPatch::default()).await)
        }
        (R::HealthPoints, Read) => ok(s.health_points().get(ids::HEALTH_POINTS[0]).await),
        (R::HealthPoints, Create) => {
            let patient = p.patients().create(new_patient()).await.unwrap().id;
            ok(s.health_points().create(NewHealthPoints { patient_id: patient, ..Default::default() }).await)
        }
        (R::HealthPoints, Update) => {
            ok(s.health_points().update(ids::HEALTH_POINTS[0], HealthPointsPatch::default()).await)
        }
        (R::PointTransaction, Read) => ok(s.point_transactions().ledger_balance(ids::PATIENT_CARLOS).await),
        (R::PointTransaction, Create) => {
            let new =
                NewPointTransaction::new(ids::PATIENT_CARLOS, TransactionType::Bonus, 5, "Bônus", SourceType::Bonus);
            ok(s.point_transactions().record(new).await)
        }
        (R::Authorization, Read) => ok(s.authorizations().get(f.authorization).await),
        (R::Authorization, Create) => ok(s
            .authorizations()
            .create(NewAuthorization::new(
                AuthorizationType::Diagnostic,
                "Holter 24h",
                ids::PATIENT_CARLOS,
                ids::PROVIDER_ANA_SILVA,
            ))
            .await),
        (R::Authorization, Update) => {
            ok(s.authorizations().update(f.authorization, AuthorizationPatch::default()).await)
        }
        (R::Authorization, Delete) => {
            let new = NewAuthorization::new(
                AuthorizationType::Therapy,
                "Fisioterapia",
                ids::PATIENT_CARLOS,
                ids::PROVIDER_ANA_SILVA,
            );
            s.authorizations().delete(p.authorizations().create(new).await.unwrap().id).await
        }
        (R::Document, Read) => ok(s.documents().get(ids::DOCUMENT_CARLOS_LAB).await),
        (R::Document, Create) => ok(s.documents().create(new_document()).await),
        (R::Document, Update) => ok(s.documents().update(ids::DOCUMENT_CARLOS_LAB, DocumentPatch::default()).await),
        (R::Document, Delete) => s.documents().delete(p.documents().create(new_document()).await.unwrap().id).await,
        (R::TasyIntegration, Read) => ok(s.tasy_integrations().get(f.integration).await),
        (R::TasyIntegration, Create) => ok(s.tasy_integrations().create(integration()).await),
        (R::TasyIntegration, Update) => {
            ok(s.tasy_integrations().update(f.integration, TasyIntegrationPatch::default()).await)
        }
        (R::TasyIntegration, Delete) => {
            s.tasy_integrations().delete(p.tasy_integrations().create(integration()).await.unwrap().id).await
        }
        (R::TasySyncLog, Read) => ok(s.tasy_sync_logs().get(f.run).await),
        (R::TasySyncLog, Create) => ok(s.tasy_sync_logs().start(f.integration, sync()).await),
        (R::TasySyncLog, Update) => {
            let run = p.tasy_sync_logs().start(f.integration, sync()).await.unwrap().id;
            ok(s.tasy_sync_logs().finish(run, SyncOutcome::completed(1, 1, 0, 0)).await)
        }
        (R::AuditLog, Read) => ok(s.audit_logs().list(page()).await),
        (R::AuditLog, Create) => ok(s.audit().record(AppEvent::Login).await),
        (R::Keys, Read) => ok(s.keys().rotation_status(f.rotation).await),
        (R::Keys, Create) => {
            let patient = p.patients().create(new_patient()).await.unwrap().id;
            ok(s.keys().start_rotation(RotationTarget::Patient(patient)).await)
        }
        (R::Keys, Update) => ok(s.keys().run_rotation(f.rotation, Default::default(), |_| {}).await),
        (R::Keys, Delete) => {
            let patient = p.patients().create(new_patient()).await.unwrap().id;
            ok(s.keys().shred_patient(patient, "pedido LGPD de teste").await)
        }
        _ => return None,
    })
}

fn actor(who: Who) -> Actor {
    match who {
        Who::Patient => Actor::patient(ids::PATIENT_CARLOS),
        Who::Provider => Actor::provider(ids::PROVIDER_ANA_SILVA),
        Who::Admin => Actor::admin(Some(Uuid::now_v7())),
        Who::System(i) => Actor::system(i.name()),
    }
}

fn expected_rule(who: Who, resource: Resource, action: Action) -> Rule {
    if who == Who::System(SystemIntegration::Platform) {
        return Rule::Allow;
    }
    austa_core::access::MATRIX
        .iter()
        .find(|(w, r, _)| *w == who && *r == resource)
        .map(|(_, _, rules)| rules[Action::ALL.iter().position(|a| *a == action).unwrap_or(0)])
        .unwrap_or(Rule::Deny)
}

#[backends]
async fn every_cell_of_the_matrix_is_enforced(tdb: TestDb) {
    let f = fixture(&tdb.db).await;
    let purpose = RequestContext { purpose: Some("auditoria clínica".into()), ..Default::default() };
    let mut cells = 0;
    for who in Who::ALL {
        let plain = tdb.db.scope(ids::HOSPITAL, actor(who)).await.unwrap();
        let with_purpose = tdb.db.scope_with(ids::HOSPITAL, actor(who), purpose.clone()).await.unwrap();
        for resource in Resource::ALL {
            for action in Action::ALL {
                let rule = expected_rule(who, resource, action);
                assert_eq!(plain.rule(resource, action), rule);
                let Some(result) = attempt(&plain, &f, resource, action).await else {
                    // No operation exists (organizations are created platform-side, the ledger and the
                    // audit trail are append-only): only `platform`'s blanket rule may name it.
                    let platform = who == Who::System(SystemIntegration::Platform);
                    assert!(platform || rule == Rule::Deny, "{who:?} {resource:?} {action:?}: no such operation");
                    continue;
                };
                cells += 1;
                let cell = format!("{:?}: {} {:?} {:?} -> {result:?}", tdb.backend, who.label(), resource, action);
                match rule {
                    Rule::Deny => assert_eq!(result.unwrap_err().code(), "permission_denied", "{cell}"),
                    Rule::WithPurpose => {
                        assert_eq!(result.unwrap_err().code(), "permission_denied", "{cell} without purpose");
                        let again = attempt(&with_purpose, &f, resource, action).await;
                        assert!(matches!(again, Some(Ok(()))), "{cell} with purpose: {again:?}");
                    }
                    _ => assert!(result.is_ok(), "{cell}"),
                }
            }
        }
    }
    assert!(cells > 300, "{cells} cells exercised");
}

#[backends]
async fn a_patient_reaches_only_their_own_record(tdb: TestDb) {
    fixture(&tdb.db).await;
    let carlos = tdb.db.scope(ids::HOSPITAL, Actor::patient(ids::PATIENT_CARLOS)).await.unwrap();
    assert_eq!(carlos.patients().get(ids::PATIENT_ANA).await.unwrap_err().code(), "not_found");
    let patients = carlos.patients().list(PageRequest::first(50)).await.unwrap().items;
    assert_eq!(patients.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ids::PATIENT_CARLOS]);
    assert!(carlos.patients().find_by_phone("+5511876543210").await.unwrap().is_none(), "Ana is invisible");
    let ana_conversation = carlos.conversations().get(ids::CONVERSATION_ANA).await;
    assert_eq!(ana_conversation.unwrap_err().code(), "not_found");
    assert!(carlos
        .health_data()
        .list(PageRequest::first(50))
        .await
        .unwrap()
        .items
        .iter()
        .all(|h| h.patient_id == ids::PATIENT_CARLOS));
    let update = carlos.patients().update(ids::PATIENT_ANA, PatientPatch::default()).await;
    assert_eq!(update.unwrap_err().code(), "not_found");
    let other_ledger = carlos.point_transactions().ledger_balance(ids::PATIENT_ANA).await;
    assert_eq!(other_ledger.unwrap_err().code(), "permission_denied");
    // Patients never reach data marked for system administrators only.
    let platform = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let hidden = NewHealthData { access_level: Some(AccessLevel::SystemAdmin), ..new_health_data() };
    let hidden = platform.health_data().create(hidden).await.unwrap().id;
    assert_eq!(carlos.health_data().get(hidden).await.unwrap_err().code(), "not_found");
}

#[backends]
async fn providers_see_health_data_by_access_level_and_break_glass_opens_one_patient_for_a_while(tdb: TestDb) {
    fixture(&tdb.db).await;
    let ana = tdb.db.scope(ids::HOSPITAL, Actor::provider(ids::PROVIDER_ANA_SILVA)).await.unwrap();
    // HEALTH_DATA[1] is Carlos's medication record, PATIENT_ONLY.
    assert_eq!(ana.health_data().get(ids::HEALTH_DATA[1]).await.unwrap_err().code(), "not_found");
    assert!(ana.health_data().get(ids::HEALTH_DATA[0]).await.is_ok(), "PROVIDER_PATIENT is visible");

    let short = ana.emergency_access(ids::PATIENT_CARLOS, "curto", Duration::minutes(30)).await;
    assert_eq!(short.unwrap_err().field(), Some("reason"));
    let long = ana.emergency_access(ids::PATIENT_CARLOS, "paciente inconsciente na emergência", Duration::hours(13));
    assert_eq!(long.await.unwrap_err().field(), Some("duration"));
    let admin = tdb.db.scope(ids::HOSPITAL, Actor::admin(None)).await.unwrap();
    let not_provider = admin.emergency_access(ids::PATIENT_CARLOS, "paciente inconsciente", Duration::minutes(5));
    assert_eq!(not_provider.await.unwrap_err().code(), "permission_denied");

    let reason = "paciente inconsciente na emergência, alergias desconhecidas";
    let glass = ana.emergency_access(ids::PATIENT_CARLOS, reason, Duration::minutes(30)).await.unwrap();
    let grant = glass.emergency().unwrap();
    assert_eq!((grant.patient_id, grant.reason.as_str()), (ids::PATIENT_CARLOS, reason));
    assert!(grant.active() && grant.expires_at > grant.granted_at);
    assert!(glass.health_data().get(ids::HEALTH_DATA[1]).await.is_ok(), "opened by the grant");
    // Only that patient, and only through the new scope.
    assert!(ana.health_data().get(ids::HEALTH_DATA[1]).await.is_err());
    assert!(ana.emergency().is_none());
    let ana_allergy = ids::HEALTH_DATA[2];
    assert_eq!(glass.health_data().get(ana_allergy).await.unwrap_err().code(), "not_found");

    let brief = ana.emergency_access(ids::PATIENT_CARLOS, reason, Duration::minutes(5)).await.unwrap();
    tdb.clock.advance(Duration::minutes(6));
    assert!(!brief.emergency().unwrap().active_at(tdb.db.now()));
    assert_eq!(brief.health_data().get(ids::HEALTH_DATA[1]).await.unwrap_err().code(), "not_found", "expired");
}

#[backends]
async fn denied_operations_change_nothing(tdb: TestDb) {
    fixture(&tdb.db).await;
    let platform = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let before = platform.patients().list(PageRequest::first(500)).await.unwrap().items.len();
    let webhook = tdb.db.scope(ids::HOSPITAL, Actor::system("whatsapp-webhook")).await.unwrap();
    assert_eq!(webhook.patients().delete(ids::PATIENT_CARLOS).await.unwrap_err().code(), "permission_denied");
    let unknown = tdb.db.scope(ids::HOSPITAL, Actor::system("scraper")).await.unwrap();
    assert_eq!(unknown.patients().create(new_patient()).await.unwrap_err().code(), "permission_denied");
    assert_eq!(platform.patients().list(PageRequest::first(500)).await.unwrap().items.len(), before);
    assert!(platform.patients().get(ids::PATIENT_CARLOS).await.is_ok());
}

/// `ACCESS_DENIED` events of the seed hospital so far.
async fn refusals(tdb: &support::TestDb) -> i64 {
    tdb.raw_i64(&format!(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'ACCESS_DENIED' AND organization_id = '{}'",
        ids::HOSPITAL
    ))
    .await
}

#[backends]
async fn providers_write_access_levels_only_where_they_could_see_the_row(tdb: TestDb) {
    fixture(&tdb.db).await;
    let platform = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let carlos = tdb.db.scope(ids::HOSPITAL, Actor::patient(ids::PATIENT_CARLOS)).await.unwrap();
    let ana = tdb.db.scope(ids::HOSPITAL, Actor::provider(ids::PROVIDER_ANA_SILVA)).await.unwrap();
    let tdb = &tdb;
    let rows = |table: &'static str| {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        async move { tdb.raw_i64(&sql).await }
    };
    let denied = |r: Result<()>, what: &str| assert_eq!(r.unwrap_err().code(), "permission_denied", "{what}");

    // Creating above the levels a provider sees is refused, recorded, and writes nothing.
    let (health_rows, document_rows, refused) =
        (rows("health_data").await, rows("documents").await, refusals(tdb).await);
    for level in [AccessLevel::SystemAdmin, AccessLevel::PatientOnly] {
        let hidden = NewHealthData { access_level: Some(level), ..new_health_data() };
        denied(ok(ana.health_data().create(hidden.clone()).await), "health_data.create");
        match ana.health_data().create_many([new_health_data(), hidden]).await {
            Err(austa_core::Error::Batch(rows)) => {
                assert_eq!((rows.len(), rows[0].row, rows[0].error.code()), (1, 1, "permission_denied"));
            }
            other => panic!("create_many: {other:?}"),
        }
        let doc = NewDocument { access_level: Some(level), ..new_document() };
        denied(ok(ana.documents().create(doc.clone()).await), "documents.create");
        denied(ok(ana.documents().register(doc, &"ab".repeat(32)).await), "documents.register");
    }
    assert_eq!((rows("health_data").await, rows("documents").await), (health_rows, document_rows));
    assert_eq!(refusals(tdb).await, refused + 8, "every refusal is recorded");

    // Raising a record it can see above its levels is refused too: the record stays where it was,
    // and stays visible to its patient.
    let visible = ana.health_data().create(new_health_data()).await.unwrap();
    let raise = HealthDataPatch { access_level: Some(AccessLevel::SystemAdmin), ..Default::default() };
    let refused = refusals(tdb).await;
    denied(ok(ana.health_data().update(visible.id, raise.clone()).await), "health_data.update");
    assert_eq!(refusals(tdb).await, refused + 1);
    assert_eq!(platform.health_data().get(visible.id).await.unwrap(), visible, "nothing written");
    assert!(carlos.health_data().get(visible.id).await.is_ok());
    let doc = ana.documents().register(new_document(), &"cd".repeat(32)).await.unwrap();
    let hide = DocumentPatch { access_level: Some(AccessLevel::SystemAdmin), ..Default::default() };
    denied(ok(ana.documents().update(doc.id, hide.clone()).await), "documents.update");
    assert_eq!(platform.documents().get(doc.id).await.unwrap(), doc);
    // Between levels it can see, it may move a record.
    let org_wide = HealthDataPatch { access_level: Some(AccessLevel::Organization), ..Default::default() };
    assert_eq!(ana.health_data().update(visible.id, org_wide).await.unwrap().access_level, AccessLevel::Organization);

    // A provider records a verification only in its own name.
    let as_maria = HealthDataPatch {
        is_verified: Some(true),
        verified_by_provider_id: Some(Some(ids::PROVIDER_MARIA_SANTOS)),
        ..Default::default()
    };
    denied(ok(ana.health_data().update(visible.id, as_maria).await), "verify as another");
    denied(ok(ana.health_data().verify(visible.id, ids::PROVIDER_MARIA_SANTOS).await), "verify as another");
    assert_eq!(
        ana.health_data().verify(visible.id, ids::PROVIDER_ANA_SILVA).await.unwrap().verified_by_provider_id,
        Some(ids::PROVIDER_ANA_SILVA)
    );

    // Under an emergency grant the patient's rows are visible at every level, and so writable.
    let reason = "paciente inconsciente na emergência, histórico necessário";
    let glass = ana.emergency_access(ids::PATIENT_CARLOS, reason, Duration::minutes(30)).await.unwrap();
    assert_eq!(glass.health_data().update(visible.id, raise).await.unwrap().access_level, AccessLevel::SystemAdmin);
    assert_eq!(glass.documents().update(doc.id, hide).await.unwrap().access_level, AccessLevel::SystemAdmin);
    // The platform and the Tasy integration are not limited by level.
    let tasy = tdb.db.scope(ids::HOSPITAL, Actor::system("tasy-sync")).await.unwrap();
    let admin_only = NewHealthData { access_level: Some(AccessLevel::SystemAdmin), ..new_health_data() };
    assert!(tasy.health_data().create(admin_only).await.is_ok());
}

#[backends]
async fn a_scope_names_a_real_provider_or_patient_of_its_organization(tdb: TestDb) {
    fixture(&tdb.db).await;
    let platform = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let code = |r: Result<Scope>| r.map(|_| ()).unwrap_err().code();
    let refused = refusals(&tdb).await;
    // An id that is no provider, a patient's id named as a provider, a provider of another
    // organization, a provider's id named as a patient: no scope, and each refusal recorded
    // under the claimed actor.
    let stranger = Uuid::now_v7();
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::provider(stranger)).await), "permission_denied");
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::provider(ids::PATIENT_CARLOS)).await), "permission_denied");
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::patient(ids::PROVIDER_ANA_SILVA)).await), "permission_denied");
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::patient(stranger)).await), "permission_denied");
    let clinic = tdb.db.scope(ids::CLINIC, Actor::platform()).await.unwrap();
    let clinic_doctor = tdb.provider(&clinic).await;
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::provider(clinic_doctor)).await), "permission_denied");
    assert!(tdb.db.scope(ids::CLINIC, Actor::provider(clinic_doctor)).await.is_ok());
    assert_eq!(refusals(&tdb).await, refused + 5);
    let claimed = tdb
        .raw_i64(&format!(
            "SELECT COUNT(*) FROM audit_logs WHERE action = 'ACCESS_DENIED' AND actor_kind = 'PROVIDER' \
             AND actor_id = '{stranger}' AND entity_id = '{stranger}'"
        ))
        .await;
    assert_eq!(claimed, 1, "the refusal names the claimed actor");

    // A deactivated (or deleted) provider gets no new scope, and a scope opened before cannot open
    // an emergency grant: the grant checks the provider again.
    let doctor = tdb.provider(&platform).await;
    let before = tdb.db.scope(ids::HOSPITAL, Actor::provider(doctor)).await.unwrap();
    platform.providers().update(doctor, ProviderPatch { is_active: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::provider(doctor)).await), "permission_denied");
    let reason = "paciente inconsciente na emergência, histórico necessário";
    let grant = before.emergency_access(ids::PATIENT_CARLOS, reason, Duration::minutes(30)).await;
    assert_eq!(grant.map(|_| ()).unwrap_err().code(), "permission_denied");
    let gone = tdb.provider(&platform).await;
    platform.providers().delete(gone).await.unwrap();
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::provider(gone)).await), "permission_denied");
    // A soft-deleted patient likewise; a live one gets their scope.
    let julia = platform.patients().create(new_patient()).await.unwrap().id;
    assert!(tdb.db.scope(ids::HOSPITAL, Actor::patient(julia)).await.is_ok());
    platform.patients().delete(julia).await.unwrap();
    assert_eq!(code(tdb.db.scope(ids::HOSPITAL, Actor::patient(julia)).await), "permission_denied");
    assert!(platform.audit().verify().await.unwrap().is_intact());
}

#[backends]
async fn a_patient_cannot_mark_themself_verified(tdb: TestDb) {
    fixture(&tdb.db).await;
    let platform = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    // Julia registered herself unverified (as the webhook registers unknown senders).
    let julia = platform.patients().create(new_patient()).await.unwrap().id;
    let as_julia = tdb.db.scope(ids::HOSPITAL, Actor::patient(julia)).await.unwrap();
    let refused = refusals(&tdb).await;
    let verify = PatientPatch { is_verified: Some(true), ..Default::default() };
    assert_eq!(as_julia.patients().update(julia, verify.clone()).await.unwrap_err().code(), "permission_denied");
    assert_eq!(refusals(&tdb).await, refused + 1);
    assert!(!platform.patients().get(julia).await.unwrap().is_verified);
    // Carlos (verified) may not clear it either, but may change what is his to change, and a patch
    // that leaves the flag as it is passes.
    let carlos = tdb.db.scope(ids::HOSPITAL, Actor::patient(ids::PATIENT_CARLOS)).await.unwrap();
    let clear = PatientPatch { is_verified: Some(false), ..Default::default() };
    assert_eq!(carlos.patients().update(ids::PATIENT_CARLOS, clear).await.unwrap_err().code(), "permission_denied");
    let same = PatientPatch { is_verified: Some(true), timezone: Some("America/Recife".into()), ..Default::default() };
    assert_eq!(carlos.patients().update(ids::PATIENT_CARLOS, same).await.unwrap().timezone, "America/Recife");
    // The organization verifies.
    let ana = tdb.db.scope(ids::HOSPITAL, Actor::provider(ids::PROVIDER_ANA_SILVA)).await.unwrap();
    assert!(ana.patients().update(julia, verify).await.unwrap().is_verified);
}

#[test]
fn the_manual_carries_the_access_matrix() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/access.md")).unwrap();
    assert!(
        page.contains(&markdown_matrix()),
        "docs/access.md's access matrix is out of date; paste:\n{}",
        markdown_matrix()
    );
}
