//! Gamification: missions (prerequisites as real references, active-mission date filtering),
//! mission progress (one row per patient and mission), points accounts and the append-only ledger
//! (the account always equals the sum of its ledger), and tenant isolation of every repository.
//!
//! None of these tables has an encrypted column (missions are organization content; points and
//! progress are not clinical data), so there is no ciphertext to check here; Debug output is still
//! checked not to carry the patient's personal data.

use std::collections::BTreeSet;
use std::future::Future;

use austa_core::model::{
    Achievement, DifficultyLevel, HealthPoints, HealthPointsPatch, Mission, MissionCategory, MissionPatch,
    NewHealthPoints, NewMission, NewOnboardingProgress, NewPointTransaction, OnboardingProgress,
    OnboardingProgressPatch, Patient, PointTransaction, ProgressStatus, SourceType, TransactionType,
};
use austa_core::repo::{Page, PageRequest};
use austa_core::{Result, Scope};
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_code, assert_validation, count, patient, Backend, TestDb};
use austa_macros::backends;

// ----------------------------------------------------------------------------------------------
// helpers
// ----------------------------------------------------------------------------------------------

/// A reference to a row that is missing or belongs to another organization. PostgreSQL names the
/// violated foreign key, so the field is the column; SQLite does not say which key failed.
fn assert_reference<T: std::fmt::Debug>(tdb: &TestDb, r: Result<T>, field: &str) {
    let expected = match tdb.backend {
        Backend::Postgres => field,
        Backend::Sqlite => "reference",
    };
    assert_validation(r, expected);
}

/// Walks every page of a listing with pages of 2; checks page sizes and newest-first order.
async fn drain<T, F, Fut>(mut fetch: F, id: fn(&T) -> Uuid) -> Vec<Uuid>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let mut ids = Vec::new();
    let mut request = PageRequest::first(2);
    loop {
        let page = fetch(request).await.unwrap();
        assert!(page.items.len() <= 2);
        ids.extend(page.items.iter().map(id));
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, 2),
            None => break,
        }
    }
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, each row once");
    ids
}

/// `created` (in creation order) listed newest first.
fn newest_first(created: &[Uuid]) -> Vec<Uuid> {
    created.iter().rev().copied().collect()
}

fn steps(ids: &[&str]) -> serde_json::Value {
    json!({ "steps": ids.iter().map(|id| json!({ "id": id, "completed": false })).collect::<Vec<_>>() })
}

fn new_mission(title: &str) -> NewMission {
    NewMission::new(
        title,
        "Complete seu perfil para receber orientações personalizadas.",
        MissionCategory::Onboarding,
        steps(&["fill_personal_info", "add_emergency_contact", "verify_phone"]),
    )
}

async fn mission(scope: &Scope, title: &str) -> Mission {
    scope.missions().create(new_mission(title)).await.unwrap()
}

async fn account(scope: &Scope, patient_id: Uuid) -> HealthPoints {
    scope.health_points().create(NewHealthPoints { patient_id, ..Default::default() }).await.unwrap()
}

fn movement(patient_id: Uuid, t: TransactionType, amount: i64, source: SourceType) -> NewPointTransaction {
    NewPointTransaction::new(patient_id, t, amount, "Participação diária", source)
}

async fn progress(scope: &Scope, patient_id: Uuid, mission_id: Uuid) -> OnboardingProgress {
    let new = NewOnboardingProgress { patient_id, mission_id, ..Default::default() };
    scope.onboarding_progress().create(new).await.unwrap()
}

// ----------------------------------------------------------------------------------------------
// missions
// ----------------------------------------------------------------------------------------------

#[backends]
async fn mission_round_trip_update_and_soft_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let start = Utc::now() - Duration::days(1);
    let end = Utc::now() + Duration::days(30);
    let new = NewMission {
        difficulty: Some(DifficultyLevel::Medium),
        points_reward: 150,
        badge_reward: Some(" first_steps ".into()),
        unlock_reward: Some("Lembretes de medicação".into()),
        start_date: Some(start),
        end_date: Some(end),
        estimated_time_minutes: Some(15),
        tags: vec!["medication".into(), "health_data".into()],
        ..new_mission("  Adicionar Medicamentos ")
    };
    let created = scope.missions().create(new).await.unwrap();
    assert_eq!(created.title, "Adicionar Medicamentos", "trimmed");
    assert_eq!(created.badge_reward.as_deref(), Some("first_steps"));
    assert_eq!(created.start_date, Some(austa_core::time::truncate(start)));
    let got = scope.missions().get(created.id).await.unwrap();
    assert_eq!(got, created, "{:?}", tdb.backend);
    assert_eq!(got.required_actions["steps"][0]["id"], "fill_personal_info");

    // Defaults.
    let plain = mission(&scope, "Primeira Conversa com IA").await;
    assert_eq!(plain.difficulty, DifficultyLevel::Easy);
    assert!(plain.is_active);
    assert_eq!(plain.points_reward, 0);

    // Update, clearing nullable fields.
    let patch = MissionPatch {
        points_reward: Some(200),
        badge_reward: Some(None),
        end_date: Some(None),
        estimated_time_minutes: Some(None),
        ..Default::default()
    };
    let updated = scope.missions().update(created.id, patch).await.unwrap();
    assert_eq!(scope.missions().get(created.id).await.unwrap(), updated);
    assert_eq!((updated.points_reward, updated.badge_reward.clone(), updated.end_date), (200, None, None));
    assert!(updated.updated_at >= created.updated_at);

    // A failed update writes nothing.
    let bad = MissionPatch {
        title: Some("Novo título".into()),
        end_date: Some(Some(start - Duration::days(1))),
        ..Default::default()
    };
    assert_validation(scope.missions().update(created.id, bad).await, "end_date");
    assert_eq!(scope.missions().get(created.id).await.unwrap(), updated);

    // Soft delete: gone from get and list, still in the table.
    scope.missions().delete(created.id).await.unwrap();
    assert_code(scope.missions().get(created.id).await, "not_found");
    assert_code(scope.missions().delete(created.id).await, "not_found");
    let listed = scope.missions().list(PageRequest::first(50)).await.unwrap();
    assert_eq!(listed.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![plain.id]);
    assert_eq!(count(&tdb, "missions").await, 2);
}

#[backends]
async fn mission_validation_names_the_field_and_writes_nothing(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let now = Utc::now();
    let cases: Vec<(&str, NewMission)> = vec![
        ("title", NewMission { title: " ".into(), ..new_mission("x") }),
        ("description", NewMission { description: "d".repeat(2001), ..new_mission("x") }),
        ("points_reward", NewMission { points_reward: -1, ..new_mission("x") }),
        ("estimated_time_minutes", NewMission { estimated_time_minutes: Some(-5), ..new_mission("x") }),
        (
            "end_date",
            NewMission { start_date: Some(now), end_date: Some(now - Duration::hours(1)), ..new_mission("x") },
        ),
        ("tags", NewMission { tags: vec!["".into()], ..new_mission("x") }),
        ("badge_reward", NewMission { badge_reward: Some("".into()), ..new_mission("x") }),
        ("required_actions", NewMission { required_actions: json!(["fill_personal_info"]), ..new_mission("x") }),
        (
            "required_actions",
            NewMission { required_actions: json!({ "steps": [{ "completed": false }] }), ..new_mission("x") },
        ),
        (
            "required_actions",
            NewMission { required_actions: steps(&["verify_phone", "verify_phone"]), ..new_mission("x") },
        ),
        // The generic create inserts only the mission row: it refuses prerequisites.
        ("prerequisites", NewMission { prerequisites: vec![Uuid::now_v7()], ..new_mission("x") }),
    ];
    for (field, input) in cases {
        assert_validation(scope.missions().create(input).await, field);
    }
    assert_eq!(count(&tdb, "missions").await, 0);
}

#[backends]
async fn missions_paginate_newest_first(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(mission(&scope, &format!("Missão {i}")).await.id);
    }
    let repo = scope.missions();
    let listed = drain(|p| repo.list(p), |m: &Mission| m.id).await;
    assert_eq!(listed, newest_first(&created));
}

#[backends]
async fn prerequisites_are_real_references(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let other = tdb.org("Clínica").await;
    let repo = scope.missions();
    let profile = mission(&scope, "Completar Perfil de Saúde").await;
    let chat = mission(&scope, "Primeira Conversa com IA").await;
    let foreign = mission(&other, "Missão da Clínica").await;

    // Created with prerequisites in one transaction (duplicates ignored).
    let new = NewMission { prerequisites: vec![chat.id, profile.id, chat.id], ..new_mission("Adicionar Medicamentos") };
    let meds = repo.create_with_prerequisites(new).await.unwrap();
    let listed: BTreeSet<Uuid> = repo.prerequisites(meds.id).await.unwrap().into_iter().collect();
    assert_eq!(listed, BTreeSet::from([profile.id, chat.id]));
    assert_eq!(repo.get(meds.id).await.unwrap(), meds);
    assert!(repo.prerequisites(profile.id).await.unwrap().is_empty());
    // Without prerequisites it behaves like create.
    let simple = repo.create_with_prerequisites(new_mission("Pesquisa de satisfação")).await.unwrap();
    assert!(repo.prerequisites(simple.id).await.unwrap().is_empty());

    // An unknown or other-organization prerequisite writes nothing, not even the mission.
    let (missions_before, edges_before) = (count(&tdb, "missions").await, count(&tdb, "mission_prerequisites").await);
    for bad in [Uuid::now_v7(), foreign.id] {
        let new = NewMission { prerequisites: vec![profile.id, bad], ..new_mission("Inválida") };
        assert_validation(repo.create_with_prerequisites(new).await, "prerequisites");
    }
    assert_eq!(count(&tdb, "missions").await, missions_before);
    assert_eq!(count(&tdb, "mission_prerequisites").await, edges_before);

    // Add and remove single edges.
    assert!(repo.add_prerequisite(simple.id, profile.id).await.unwrap());
    assert!(!repo.add_prerequisite(simple.id, profile.id).await.unwrap(), "already there");
    assert_eq!(repo.prerequisites(simple.id).await.unwrap(), vec![profile.id]);
    assert!(repo.remove_prerequisite(simple.id, profile.id).await.unwrap());
    assert!(!repo.remove_prerequisite(simple.id, profile.id).await.unwrap());
    assert!(repo.prerequisites(simple.id).await.unwrap().is_empty());

    // Self-reference, cycles, unknown and foreign prerequisites are rejected.
    assert_validation(repo.add_prerequisite(meds.id, meds.id).await, "prerequisite_mission_id");
    assert_validation(repo.add_prerequisite(profile.id, meds.id).await, "prerequisite_mission_id");
    assert!(repo.add_prerequisite(simple.id, meds.id).await.unwrap());
    assert_validation(repo.add_prerequisite(chat.id, simple.id).await, "prerequisite_mission_id");
    assert_validation(repo.add_prerequisite(meds.id, foreign.id).await, "prerequisite_mission_id");
    assert_validation(repo.add_prerequisite(meds.id, Uuid::now_v7()).await, "prerequisite_mission_id");
    assert_code(repo.add_prerequisite(foreign.id, profile.id).await, "not_found");
    assert_code(repo.remove_prerequisite(foreign.id, profile.id).await, "not_found");
    assert_code(repo.prerequisites(foreign.id).await, "not_found");
    assert_eq!(other.missions().prerequisites(foreign.id).await.unwrap(), Vec::<Uuid>::new());

    // A soft-deleted mission stops counting as a prerequisite.
    repo.delete(chat.id).await.unwrap();
    assert_eq!(repo.prerequisites(meds.id).await.unwrap(), vec![profile.id]);
    assert_code(repo.prerequisites(chat.id).await, "not_found");
}

#[backends]
async fn active_missions_respect_flags_and_dates(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let now = Utc::now();
    let dated = |title: &str, start: Option<i64>, end: Option<i64>| NewMission {
        start_date: start.map(|d| now + Duration::days(d)),
        end_date: end.map(|d| now + Duration::days(d)),
        ..new_mission(title)
    };
    let repo = scope.missions();
    let always = repo.create(dated("Sempre disponível", None, None)).await.unwrap();
    let window = repo.create(dated("Campanha de vacinação", Some(-1), Some(1))).await.unwrap();
    let open_end = repo.create(dated("Desde ontem", Some(-1), None)).await.unwrap();
    let future = repo.create(dated("Começa amanhã", Some(1), Some(10))).await.unwrap();
    repo.create(dated("Encerrada", Some(-10), Some(-1))).await.unwrap();
    repo.create(NewMission { is_active: Some(false), ..dated("Desativada", None, None) }).await.unwrap();
    let deleted = repo.create(dated("Apagada", None, None)).await.unwrap();
    repo.delete(deleted.id).await.unwrap();

    let active = drain(|p| repo.active(p), |m: &Mission| m.id).await;
    assert_eq!(active, vec![open_end.id, window.id, always.id]);
    let later = drain(|p| repo.active_at(now + Duration::days(5), p), |m: &Mission| m.id).await;
    assert_eq!(later, vec![future.id, open_end.id, always.id]);

    // Deactivating removes a mission from the active list.
    repo.update(window.id, MissionPatch { is_active: Some(false), ..Default::default() }).await.unwrap();
    let active = drain(|p| repo.active(p), |m: &Mission| m.id).await;
    assert_eq!(active, vec![open_end.id, always.id]);
}

// ----------------------------------------------------------------------------------------------
// onboarding progress
// ----------------------------------------------------------------------------------------------

#[backends]
async fn onboarding_progress_round_trip_update_and_uniqueness(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let m = mission(&scope, "Completar Perfil de Saúde").await;
    let started = Utc::now() - Duration::days(1);
    let new = NewOnboardingProgress {
        patient_id: carlos.id,
        mission_id: m.id,
        status: Some(ProgressStatus::Completed),
        progress: 100.0,
        current_step: 3,
        total_steps: Some(3),
        started_at: Some(started),
        completed_at: Some(Utc::now()),
        points_earned: 100,
        badge_earned: Some("first_steps".into()),
        attempts_count: 1,
        time_spent_minutes: 8,
        last_interaction_at: None,
    };
    let created = scope.onboarding_progress().create(new.clone()).await.unwrap();
    assert_eq!(scope.onboarding_progress().get(created.id).await.unwrap(), created, "{:?}", tdb.backend);
    assert_eq!(created.started_at, Some(austa_core::time::truncate(started)));

    // Update, clearing nullable fields.
    let patch = OnboardingProgressPatch {
        status: Some(ProgressStatus::InProgress),
        progress: Some(50.0),
        current_step: Some(1),
        completed_at: Some(None),
        badge_earned: Some(None),
        attempts_count: Some(2),
        ..Default::default()
    };
    let updated = scope.onboarding_progress().update(created.id, patch).await.unwrap();
    assert_eq!(scope.onboarding_progress().get(created.id).await.unwrap(), updated);
    assert_eq!((updated.completed_at, updated.badge_earned.clone()), (None, None));

    // Failed updates write nothing.
    let bad = [
        ("current_step", OnboardingProgressPatch { current_step: Some(4), ..Default::default() }),
        ("progress", OnboardingProgressPatch { progress: Some(100.5), ..Default::default() }),
        (
            "completed_at",
            OnboardingProgressPatch { completed_at: Some(Some(started - Duration::hours(1))), ..Default::default() },
        ),
        ("total_steps", OnboardingProgressPatch { total_steps: Some(0), current_step: Some(0), ..Default::default() }),
        ("attempts_count", OnboardingProgressPatch { attempts_count: Some(-1), ..Default::default() }),
    ];
    for (field, patch) in bad {
        assert_validation(scope.onboarding_progress().update(created.id, patch).await, field);
    }
    assert_eq!(scope.onboarding_progress().get(created.id).await.unwrap(), updated);

    // One row per patient and mission: a second one is a conflict and writes nothing.
    let err = scope.onboarding_progress().create(new).await.unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("mission_id")));
    assert_eq!(count(&tdb, "onboarding_progress").await, 1);

    // Create validation writes nothing either.
    let other = mission(&scope, "Primeira Conversa com IA").await;
    let base = NewOnboardingProgress { patient_id: carlos.id, mission_id: other.id, ..Default::default() };
    assert_validation(
        scope.onboarding_progress().create(NewOnboardingProgress { progress: -1.0, ..base.clone() }).await,
        "progress",
    );
    assert_validation(
        scope.onboarding_progress().create(NewOnboardingProgress { current_step: 2, ..base.clone() }).await,
        "current_step",
    );
    assert_reference(
        &tdb,
        scope.onboarding_progress().create(NewOnboardingProgress { patient_id: Uuid::now_v7(), ..base.clone() }).await,
        "patient_id",
    );
    assert_eq!(count(&tdb, "onboarding_progress").await, 1);
    let defaults = scope.onboarding_progress().create(base).await.unwrap();
    assert_eq!((defaults.status, defaults.total_steps, defaults.progress), (ProgressStatus::NotStarted, 1, 0.0));

    // Debug output carries no personal data of the patient.
    let debug = format!("{created:?}");
    assert!(!debug.contains("Carlos") && !debug.contains("987654321"));
}

#[backends]
async fn onboarding_progress_queries_and_pagination(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let ana = patient(&scope, "Ana", "+5511987654322").await;
    let mut missions = Vec::new();
    let mut created = Vec::new();
    for i in 0..5 {
        let m = mission(&scope, &format!("Missão {i}")).await;
        created.push(progress(&scope, carlos.id, m.id).await.id);
        missions.push(m);
    }
    let anas = progress(&scope, ana.id, missions[0].id).await;
    let repo = scope.onboarding_progress();
    assert_eq!(drain(|p| repo.for_patient(carlos.id, p), |o: &OnboardingProgress| o.id).await, newest_first(&created));
    let mut all = created.clone();
    all.push(anas.id);
    assert_eq!(drain(|p| repo.list(p), |o: &OnboardingProgress| o.id).await, newest_first(&all));

    assert_eq!(repo.find(ana.id, missions[0].id).await.unwrap().map(|o| o.id), Some(anas.id));
    assert_eq!(repo.find(carlos.id, missions[2].id).await.unwrap().map(|o| o.id), Some(created[2]));
    assert!(repo.find(ana.id, missions[1].id).await.unwrap().is_none());
}

// ----------------------------------------------------------------------------------------------
// health points
// ----------------------------------------------------------------------------------------------

fn achievement(id: &str, name: &str) -> Achievement {
    Achievement { id: id.into(), name: name.into(), earned_at: Utc::now() }
}

#[backends]
async fn health_points_round_trip_patch_and_one_per_patient(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let ana = patient(&scope, "Ana", "+5511987654322").await;
    let new = NewHealthPoints {
        patient_id: ana.id,
        badges: vec!["first_steps".into()],
        achievements: vec![achievement("profile_complete", "Perfil Completo")],
        daily_streak: 3,
        longest_streak: 3,
        ..Default::default()
    };
    let created = scope.health_points().create(new.clone()).await.unwrap();
    assert_eq!(scope.health_points().get(created.id).await.unwrap(), created, "{:?}", tdb.backend);
    assert_eq!((created.total_points, created.current_level, created.next_level_at), (0, 1, 100));
    assert_eq!(scope.health_points().for_patient(ana.id).await.unwrap(), Some(created.clone()));

    // Patch badges, achievements, streaks and level fields.
    let patch = HealthPointsPatch {
        badges: Some(vec!["first_steps".into(), "active_user".into()]),
        achievements: Some(vec![
            achievement("profile_complete", "Perfil Completo"),
            achievement("first_week", "Primeira Semana"),
        ]),
        daily_streak: Some(10),
        weekly_streak: Some(3),
        longest_streak: Some(15),
        current_level: Some(3),
        next_level_at: Some(750),
        ..Default::default()
    };
    let updated = scope.health_points().update(created.id, patch).await.unwrap();
    assert_eq!(scope.health_points().get(created.id).await.unwrap(), updated);
    assert_eq!(updated.achievements[1].name, "Primeira Semana");
    assert_eq!(updated.total_points, 0, "counters are not patchable");

    // Failed patches write nothing.
    let bad = [
        ("current_level", HealthPointsPatch { current_level: Some(0), ..Default::default() }),
        ("daily_streak", HealthPointsPatch { daily_streak: Some(-1), ..Default::default() }),
        ("badges", HealthPointsPatch { badges: Some(vec!["a".into(), "a".into()]), ..Default::default() }),
        ("achievements", HealthPointsPatch { achievements: Some(vec![achievement("x", "")]), ..Default::default() }),
    ];
    for (field, patch) in bad {
        assert_validation(scope.health_points().update(created.id, patch).await, field);
    }
    assert_eq!(scope.health_points().get(created.id).await.unwrap(), updated);

    // One account per patient.
    let err = scope.health_points().create(new).await.unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("patient_id")));
    assert_validation(
        scope
            .health_points()
            .create(NewHealthPoints { patient_id: ana.id, current_level: Some(0), ..Default::default() })
            .await,
        "current_level",
    );
    assert_eq!(count(&tdb, "health_points").await, 1);
    assert!(scope.health_points().for_patient(Uuid::now_v7()).await.unwrap().is_none());
    assert!(!format!("{updated:?}").contains("Ana"));
}

#[backends]
async fn health_points_paginate_newest_first(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let p = patient(&scope, "Paciente", &format!("+55119876543{i}0")).await;
        created.push(account(&scope, p.id).await.id);
    }
    let repo = scope.health_points();
    assert_eq!(drain(|p| repo.list(p), |h: &HealthPoints| h.id).await, newest_first(&created));
}

// ----------------------------------------------------------------------------------------------
// point transactions
// ----------------------------------------------------------------------------------------------

/// The account equals its ledger.
async fn assert_matches_ledger(scope: &Scope, patient_id: Uuid) -> HealthPoints {
    let h = scope.health_points().for_patient(patient_id).await.unwrap().unwrap();
    let (earned, spent) = scope.point_transactions().ledger_balance(patient_id).await.unwrap();
    assert_eq!((h.total_points, h.spent_points, h.available_points), (earned, spent, earned - spent));
    assert_eq!(h.onboarding_points + h.engagement_points + h.health_points + h.achievement_points, h.experience_points);
    h
}

#[backends]
async fn ledger_keeps_the_account_equal_to_its_transactions(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let account_id = account(&scope, carlos.id).await.id;
    let profile = mission(&scope, "Completar Perfil de Saúde").await;
    let ledger = scope.point_transactions();
    use SourceType as S;
    use TransactionType as T;

    let earned = ledger
        .record(NewPointTransaction {
            source_mission_id: Some(profile.id),
            description: Some("Completou \"Completar Perfil de Saúde\"".into()),
            metadata: Some(json!({ "missionTitle": "Completar Perfil de Saúde", "difficulty": "EASY" })),
            ..movement(carlos.id, T::Earned, 100, S::Mission)
        })
        .await
        .unwrap();
    assert_eq!(ledger.get(earned.id).await.unwrap(), earned, "{:?}", tdb.backend);
    assert_eq!(earned.health_points_id, account_id);
    ledger.record(movement(carlos.id, T::Earned, 50, S::Engagement)).await.unwrap();
    ledger.record(movement(carlos.id, T::Bonus, 25, S::Achievement)).await.unwrap();
    ledger.record(movement(carlos.id, T::Spent, -30, S::Purchase)).await.unwrap();
    ledger.record(movement(carlos.id, T::Penalty, -20, S::AdminAdjustment)).await.unwrap();
    assert_matches_ledger(&scope, carlos.id).await;

    // Overspending, and removing more than is available, write nothing.
    let before = scope.health_points().get(account_id).await.unwrap();
    let rows_before = count(&tdb, "point_transactions").await;
    assert_validation(ledger.record(movement(carlos.id, T::Spent, -1000, S::Purchase)).await, "amount");
    assert_validation(ledger.record(movement(carlos.id, T::Expired, -126, S::Bonus)).await, "amount");
    assert_eq!(scope.health_points().get(account_id).await.unwrap(), before);
    assert_eq!(count(&tdb, "point_transactions").await, rows_before);

    ledger.record(movement(carlos.id, T::Adjustment, 10, S::AdminAdjustment)).await.unwrap();
    ledger.record(movement(carlos.id, T::Adjustment, -5, S::AdminAdjustment)).await.unwrap();
    ledger.record(movement(carlos.id, T::Expired, -5, S::Bonus)).await.unwrap();
    // Spending exactly what is available is allowed.
    let available = scope.health_points().get(account_id).await.unwrap().available_points;
    ledger.record(movement(carlos.id, T::Spent, -available, S::Purchase)).await.unwrap();

    let h = assert_matches_ledger(&scope, carlos.id).await;
    // 100 + 50 + 25 + 10 earned; 20 + 5 + 5 removed; 30 + 125 spent.
    assert_eq!((h.total_points, h.available_points, h.spent_points), (155, 0, 155));
    assert_eq!((h.onboarding_points, h.engagement_points, h.achievement_points, h.health_points), (100, 50, 25, 10));
    assert_eq!(h.experience_points, 185);
    assert_eq!(ledger.ledger_balance(carlos.id).await.unwrap(), (155, 155));
    assert_validation(ledger.record(movement(carlos.id, T::Spent, -1, S::Purchase)).await, "amount");
}

#[backends]
async fn point_transaction_validation_writes_nothing(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let pedro = patient(&scope, "Pedro", "+5511987654323").await;
    account(&scope, carlos.id).await;
    let deleted = mission(&scope, "Apagada").await;
    scope.missions().delete(deleted.id).await.unwrap();
    use SourceType as S;
    use TransactionType as T;
    let ok = movement(carlos.id, T::Earned, 10, S::Engagement);
    let cases: Vec<(&str, NewPointTransaction)> = vec![
        ("amount", movement(carlos.id, T::Earned, 0, S::Engagement)),
        ("amount", movement(carlos.id, T::Earned, -10, S::Engagement)),
        ("amount", movement(carlos.id, T::Bonus, -10, S::Bonus)),
        ("amount", movement(carlos.id, T::Spent, 10, S::Purchase)),
        ("amount", movement(carlos.id, T::Penalty, 10, S::AdminAdjustment)),
        ("amount", movement(carlos.id, T::Adjustment, 0, S::AdminAdjustment)),
        ("amount", movement(carlos.id, T::Spent, i64::MIN, S::Purchase)),
        ("reason", NewPointTransaction { reason: "  ".into(), ..ok.clone() }),
        ("metadata", NewPointTransaction { metadata: Some(json!([1, 2])), ..ok.clone() }),
        ("source_mission_id", movement(carlos.id, T::Earned, 10, S::Mission)),
        ("source_mission_id", NewPointTransaction { source_mission_id: Some(Uuid::now_v7()), ..ok.clone() }),
        ("source_mission_id", NewPointTransaction { source_mission_id: Some(deleted.id), ..ok.clone() }),
        ("source_conversation_id", NewPointTransaction { source_conversation_id: Some(Uuid::now_v7()), ..ok.clone() }),
        // Pedro has no points account.
        ("patient_id", movement(pedro.id, T::Earned, 10, S::Engagement)),
    ];
    for (field, input) in cases {
        assert_validation(scope.point_transactions().record(input).await, field);
    }
    assert_eq!(count(&tdb, "point_transactions").await, 0);
    assert_eq!(assert_matches_ledger(&scope, carlos.id).await.total_points, 0);
}

#[backends]
async fn point_transactions_paginate_per_patient(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    let ana = patient(&scope, "Ana", "+5511987654322").await;
    account(&scope, carlos.id).await;
    account(&scope, ana.id).await;
    let ledger = scope.point_transactions();
    let mut created = Vec::new();
    for i in 1..=5 {
        let t =
            ledger.record(movement(carlos.id, TransactionType::Earned, i * 10, SourceType::Engagement)).await.unwrap();
        created.push(t.id);
    }
    let anas = ledger.record(movement(ana.id, TransactionType::Earned, 200, SourceType::Survey)).await.unwrap();
    assert_eq!(drain(|p| ledger.for_patient(carlos.id, p), |t: &PointTransaction| t.id).await, newest_first(&created));
    let mut all = created.clone();
    all.push(anas.id);
    assert_eq!(drain(|p| ledger.list(p), |t: &PointTransaction| t.id).await, newest_first(&all));
    assert_eq!(ledger.ledger_balance(carlos.id).await.unwrap(), (150, 0));
    assert_eq!(assert_matches_ledger(&scope, ana.id).await.health_points, 200);
    assert!(!format!("{anas:?}").contains("Ana"));
}

// ----------------------------------------------------------------------------------------------
// tenant isolation
// ----------------------------------------------------------------------------------------------

/// One organization's gamification rows.
struct Fixture {
    patient: Patient,
    mission: Mission,
    prerequisite: Mission,
    progress: OnboardingProgress,
    account: HealthPoints,
    transaction: PointTransaction,
}

async fn fixture(scope: &Scope, phone: &str) -> Fixture {
    let patient = patient(scope, "Carlos", phone).await;
    let prerequisite = mission(scope, "Completar Perfil de Saúde").await;
    let new = NewMission { prerequisites: vec![prerequisite.id], ..new_mission("Adicionar Medicamentos") };
    let mission = scope.missions().create_with_prerequisites(new).await.unwrap();
    let progress = progress(scope, patient.id, mission.id).await;
    account(scope, patient.id).await;
    let transaction = scope
        .point_transactions()
        .record(NewPointTransaction {
            source_mission_id: Some(mission.id),
            ..movement(patient.id, TransactionType::Earned, 100, SourceType::Mission)
        })
        .await
        .unwrap();
    let account = scope.health_points().for_patient(patient.id).await.unwrap().unwrap();
    Fixture { patient, mission, prerequisite, progress, account, transaction }
}

fn ids<T>(page: Page<T>, id: fn(&T) -> Uuid) -> Vec<Uuid> {
    page.items.iter().map(id).collect()
}

#[backends]
async fn organizations_are_isolated_in_every_repository(tdb: TestDb) {
    let a = tdb.org("Hospital A").await;
    let b = tdb.org("Clínica B").await;
    let fa = fixture(&a, "+5511987654321").await;
    // Same phone in B on purpose: patients are per organization.
    let fb = fixture(&b, "+5511987654321").await;
    let first = || PageRequest::first(50);

    // Reads, updates and deletes of B's ids from A answer not_found.
    assert_code(a.missions().get(fb.mission.id).await, "not_found");
    assert_code(
        a.missions().update(fb.mission.id, MissionPatch { points_reward: Some(1), ..Default::default() }).await,
        "not_found",
    );
    assert_code(a.missions().delete(fb.mission.id).await, "not_found");
    assert_code(a.missions().prerequisites(fb.mission.id).await, "not_found");
    assert_code(a.missions().remove_prerequisite(fb.mission.id, fb.prerequisite.id).await, "not_found");
    assert_code(a.onboarding_progress().get(fb.progress.id).await, "not_found");
    let patch = OnboardingProgressPatch { progress: Some(99.0), ..Default::default() };
    assert_code(a.onboarding_progress().update(fb.progress.id, patch).await, "not_found");
    assert_code(a.health_points().get(fb.account.id).await, "not_found");
    let patch = HealthPointsPatch { current_level: Some(9), ..Default::default() };
    assert_code(a.health_points().update(fb.account.id, patch).await, "not_found");
    assert_code(a.point_transactions().get(fb.transaction.id).await, "not_found");

    // Lists and domain queries never show B's rows.
    assert_eq!(ids(a.missions().list(first()).await.unwrap(), |m| m.id), vec![fa.mission.id, fa.prerequisite.id]);
    assert_eq!(ids(a.missions().active(first()).await.unwrap(), |m| m.id), vec![fa.mission.id, fa.prerequisite.id]);
    assert_eq!(ids(a.onboarding_progress().list(first()).await.unwrap(), |o| o.id), vec![fa.progress.id]);
    assert!(a.onboarding_progress().for_patient(fb.patient.id, first()).await.unwrap().items.is_empty());
    assert!(a.onboarding_progress().find(fb.patient.id, fb.mission.id).await.unwrap().is_none());
    assert_eq!(ids(a.health_points().list(first()).await.unwrap(), |h| h.id), vec![fa.account.id]);
    assert!(a.health_points().for_patient(fb.patient.id).await.unwrap().is_none());
    assert_eq!(ids(a.point_transactions().list(first()).await.unwrap(), |t| t.id), vec![fa.transaction.id]);
    assert!(a.point_transactions().for_patient(fb.patient.id, first()).await.unwrap().items.is_empty());
    assert_eq!(a.point_transactions().ledger_balance(fb.patient.id).await.unwrap(), (0, 0));

    // Rows in A that reference B's rows are rejected and write nothing.
    let rows = |t: &'static str| count(&tdb, t);
    let before = (rows("missions").await, rows("mission_prerequisites").await, rows("onboarding_progress").await);
    let before = (before, rows("health_points").await, rows("point_transactions").await);
    let new = NewMission { prerequisites: vec![fb.mission.id], ..new_mission("Cruzada") };
    assert_validation(a.missions().create_with_prerequisites(new).await, "prerequisites");
    assert_validation(a.missions().add_prerequisite(fa.mission.id, fb.mission.id).await, "prerequisite_mission_id");
    let cross = NewOnboardingProgress { patient_id: fb.patient.id, mission_id: fa.mission.id, ..Default::default() };
    assert_reference(&tdb, a.onboarding_progress().create(cross).await, "patient_id");
    let cross = NewOnboardingProgress { patient_id: fa.patient.id, mission_id: fb.mission.id, ..Default::default() };
    assert_reference(&tdb, a.onboarding_progress().create(cross).await, "mission_id");
    let cross = NewHealthPoints { patient_id: fb.patient.id, ..Default::default() };
    assert_reference(&tdb, a.health_points().create(cross).await, "patient_id");
    let cross = movement(fb.patient.id, TransactionType::Earned, 10, SourceType::Engagement);
    assert_validation(a.point_transactions().record(cross).await, "patient_id");
    let cross = NewPointTransaction {
        source_mission_id: Some(fb.mission.id),
        ..movement(fa.patient.id, TransactionType::Earned, 10, SourceType::Mission)
    };
    assert_validation(a.point_transactions().record(cross).await, "source_mission_id");
    let after = (rows("missions").await, rows("mission_prerequisites").await, rows("onboarding_progress").await);
    assert_eq!((after, rows("health_points").await, rows("point_transactions").await), before);

    // B's rows are unchanged.
    assert_eq!(b.missions().get(fb.mission.id).await.unwrap(), fb.mission);
    assert_eq!(b.missions().prerequisites(fb.mission.id).await.unwrap(), vec![fb.prerequisite.id]);
    assert_eq!(b.onboarding_progress().get(fb.progress.id).await.unwrap(), fb.progress);
    assert_eq!(b.health_points().get(fb.account.id).await.unwrap(), fb.account);
    assert_eq!(b.point_transactions().get(fb.transaction.id).await.unwrap(), fb.transaction);
    assert_matches_ledger(&b, fb.patient.id).await;
    assert_matches_ledger(&a, fa.patient.id).await;
}

// ----------------------------------------------------------------------------------------------
// concurrency
// ----------------------------------------------------------------------------------------------

#[backends(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spending_never_overdraws_the_account(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, "Carlos", "+5511987654321").await;
    account(&scope, carlos.id).await;
    let ledger = scope.point_transactions();
    ledger.record(movement(carlos.id, TransactionType::Earned, 100, SourceType::Engagement)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let scope = scope.clone();
            let spend = movement(carlos.id, TransactionType::Spent, -10, SourceType::Purchase);
            tokio::spawn(async move { scope.point_transactions().record(spend).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!((e.code(), e.field()), ("validation", Some("amount")), "{e}"),
        }
    }
    assert_eq!(accepted, 10, "{:?}", tdb.backend);
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.available_points, h.spent_points), (0, 100));
}

#[backends(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_prerequisite_edits_cannot_build_a_cycle(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    for round in 0..5 {
        let x = mission(&scope, &format!("Missão X{round}")).await.id;
        let y = mission(&scope, &format!("Missão Y{round}")).await.id;
        let (s1, s2) = (scope.clone(), scope.clone());
        let one = tokio::spawn(async move { s1.missions().add_prerequisite(x, y).await });
        let two = tokio::spawn(async move { s2.missions().add_prerequisite(y, x).await });
        let results = [one.await.unwrap(), two.await.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{:?}: {results:?}", tdb.backend);
        let edges = scope.missions().prerequisites(x).await.unwrap().len()
            + scope.missions().prerequisites(y).await.unwrap().len();
        assert_eq!(edges, 1);
    }
}
