//! The gamification workflow: missions start only after their prerequisites, progress moves by steps,
//! completing awards the mission's points and badge exactly once (retries and 8 racing calls
//! included), the points accounts always equal their ledger (a random sequence of earnings, spending
//! and completions), overspending writes nothing, levels follow the threshold table, and streaks count
//! the patient's local days and ISO weeks. Each operation records exactly one audit event; actors the
//! access matrix does not allow are refused and the refusal is recorded. Every test runs on SQLite and
//! PostgreSQL.

use austa_core::model::{
    level_for_experience, level_threshold, AuditAction, AuditOutcome, HealthPoints, Mission, MissionCategory,
    MissionPatch, NewHealthPoints, NewMission, NewOnboardingProgress, NewPatient, NewPointTransaction,
    OnboardingProgressPatch, Patient, ProgressStatus, SourceType, TransactionType,
};
use austa_core::{Actor, Result, Scope};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::support::{assert_err, event_count, one_event, Backend, TestDb};
use austa_macros::backends;

// ----------------------------------------------------------------------------------------------
// helpers
// ----------------------------------------------------------------------------------------------

async fn rows(tdb: &TestDb, table: &str) -> i64 {
    tdb.raw_i64(&format!("SELECT COUNT(*) FROM {table}")).await
}

/// Runs `op`, which must fail with `code` on `field`, and checks that it wrote nothing at all: no row of
/// the gamification tables and no audit event.
async fn assert_writes_nothing<T: std::fmt::Debug>(
    tdb: &TestDb,
    scope: &Scope,
    code: &str,
    field: Option<&str>,
    op: impl std::future::Future<Output = Result<T>>,
) {
    let org = scope.organization_id();
    let queries = [
        "SELECT COUNT(*) FROM onboarding_progress WHERE organization_id = '{org}'".to_string(),
        "SELECT COUNT(*) FROM onboarding_progress WHERE organization_id = '{org}' AND status = 'COMPLETED'".into(),
        "SELECT CAST(COALESCE(SUM(current_step + attempts_count + points_earned), 0) AS BIGINT) FROM onboarding_progress \
         WHERE organization_id = '{org}'"
            .into(),
        "SELECT COUNT(*) FROM health_points WHERE organization_id = '{org}'".into(),
        "SELECT CAST(COALESCE(SUM(total_points + available_points + spent_points + experience_points + current_level \
         + daily_streak + weekly_streak + longest_streak), 0) AS BIGINT) FROM health_points \
         WHERE organization_id = '{org}'"
            .into(),
        "SELECT COUNT(*) FROM point_transactions WHERE organization_id = '{org}'".into(),
        "SELECT COUNT(*) FROM audit_logs WHERE organization_id = '{org}'".into(),
    ];
    let snapshot = || async {
        let mut v = Vec::new();
        for q in &queries {
            v.push(tdb.raw_i64(&q.replace("{org}", &org.to_string())).await);
        }
        v
    };
    let before = snapshot().await;
    assert_err(op.await, code, field);
    assert_eq!(snapshot().await, before, "a failed operation writes nothing");
}

fn steps(n: usize) -> serde_json::Value {
    json!({ "steps": (0..n).map(|i| json!({ "id": format!("step_{i}"), "completed": false })).collect::<Vec<_>>() })
}

fn new_mission(title: &str, n_steps: usize, points: i64, badge: Option<&str>) -> NewMission {
    NewMission {
        points_reward: points,
        badge_reward: badge.map(str::to_string),
        ..NewMission::new(title, "Uma missão de boas-vindas.", MissionCategory::Onboarding, steps(n_steps))
    }
}

async fn mission(scope: &Scope, title: &str, n_steps: usize, points: i64, badge: Option<&str>) -> Mission {
    scope.missions().create(new_mission(title, n_steps, points, badge)).await.unwrap()
}

async fn mission_after(scope: &Scope, title: &str, prerequisites: Vec<Uuid>) -> Mission {
    let new = NewMission { prerequisites, ..new_mission(title, 1, 10, None) };
    scope.missions().create_with_prerequisites(new).await.unwrap()
}

/// A patient in `timezone` with a points account; `n` makes the phone unique.
async fn patient_in(scope: &Scope, n: u32, timezone: &str) -> Patient {
    let new = NewPatient {
        first_name: "Carlos".into(),
        last_name: "Mendes".into(),
        phone: format!("+55119876{:05}", 10_000 + n).into(),
        timezone: Some(timezone.into()),
        ..Default::default()
    };
    let p = scope.patients().create(new).await.unwrap();
    scope.health_points().create(NewHealthPoints { patient_id: p.id, ..Default::default() }).await.unwrap();
    p
}

async fn patient(scope: &Scope, n: u32) -> Patient {
    patient_in(scope, n, "America/Sao_Paulo").await
}

/// Starts, walks every step and completes `mission` for `patient_id`.
async fn finish(scope: &Scope, patient_id: Uuid, mission: &Mission) -> austa_core::model::Completion {
    let repo = scope.onboarding_progress();
    repo.start(patient_id, mission.id).await.unwrap();
    repo.advance(patient_id, mission.id, mission.step_count()).await.unwrap();
    repo.complete(patient_id, mission.id).await.unwrap()
}

async fn account(scope: &Scope, patient_id: Uuid) -> HealthPoints {
    scope.health_points().for_patient(patient_id).await.unwrap().expect("a points account")
}

/// The account equals its ledger, its buckets add up to its experience, and its level follows the
/// threshold table.
async fn assert_matches_ledger(scope: &Scope, patient_id: Uuid) -> HealthPoints {
    let h = account(scope, patient_id).await;
    let (earned, spent) = scope.point_transactions().ledger_balance(patient_id).await.unwrap();
    assert_eq!((h.total_points, h.spent_points, h.available_points), (earned, spent, earned - spent));
    assert_eq!(h.onboarding_points + h.engagement_points + h.health_points + h.achievement_points, h.experience_points);
    assert_eq!(h.current_level, level_for_experience(h.experience_points), "{h:?}");
    assert_eq!(h.next_level_at, level_threshold(h.current_level + 1));
    h
}

async fn earned_awards(tdb: &TestDb, patient_id: Uuid, mission_id: Uuid) -> i64 {
    tdb.raw_i64(&format!(
        "SELECT COUNT(*) FROM point_transactions WHERE patient_id = '{patient_id}' \
         AND source_mission_id = '{mission_id}' AND type = 'EARNED'"
    ))
    .await
}

/// Copies point transaction `id` under a new id and `transaction_type` with raw SQL as the database
/// owner (no library checks): the database's own answer.
async fn raw_copy_transaction(tdb: &TestDb, id: Uuid, transaction_type: &str) -> std::result::Result<(), sqlx::Error> {
    let new = match tdb.backend {
        Backend::Sqlite => format!("'{}'", Uuid::now_v7()),
        Backend::Postgres => format!("CAST('{}' AS UUID)", Uuid::now_v7()),
    };
    let sql = format!(
        "INSERT INTO point_transactions (organization_id, id, patient_id, health_points_id, type, amount, reason, \
         source_type, source_mission_id, created_at) SELECT organization_id, {new}, patient_id, health_points_id, \
         '{transaction_type}', amount, reason, source_type, source_mission_id, created_at FROM point_transactions \
         WHERE id = '{id}'"
    );
    match tdb.backend {
        Backend::Sqlite => {
            let pool = tdb.sqlite_pool().await;
            let r = sqlx::query(&sql).execute(&pool).await.map(drop);
            pool.close().await;
            r
        }
        Backend::Postgres => {
            let pool = tdb.pg_pool().await;
            let r = sqlx::query(&sql).execute(&pool).await.map(drop);
            pool.close().await;
            r
        }
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

// ----------------------------------------------------------------------------------------------
// start and prerequisites
// ----------------------------------------------------------------------------------------------

#[backends]
async fn prerequisites_block_start_until_completed_by_that_patient(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let ana = patient(&scope, 2).await;
    let profile = mission(&scope, "Completar Perfil de Saúde", 3, 100, Some("first_steps")).await;
    let chat = mission(&scope, "Primeira Conversa com IA", 1, 50, None).await;
    let meds = mission_after(&scope, "Adicionar Medicamentos", vec![profile.id, chat.id]).await;
    let progress = scope.onboarding_progress();

    // Neither prerequisite done: refused, nothing written.
    assert_writes_nothing(&tdb, &scope, "conflict", Some("prerequisites"), progress.start(carlos.id, meds.id)).await;
    finish(&scope, carlos.id, &profile).await;
    // One of two done: still refused.
    assert_writes_nothing(&tdb, &scope, "conflict", Some("prerequisites"), progress.start(carlos.id, meds.id)).await;
    // Started but not completed does not count either.
    progress.start(carlos.id, chat.id).await.unwrap();
    assert_err(progress.start(carlos.id, meds.id).await, "conflict", Some("prerequisites"));
    progress.advance(carlos.id, chat.id, 1).await.unwrap();
    progress.complete(carlos.id, chat.id).await.unwrap();

    let (started, event) = one_event(&tdb, &scope, progress.start(carlos.id, meds.id)).await;
    let started = started.unwrap();
    assert_eq!((started.status, started.current_step, started.total_steps), (ProgressStatus::InProgress, 0, 1));
    assert_eq!((started.progress, started.attempts_count), (0.0, 1));
    assert!(started.started_at.is_some() && started.completed_at.is_none());
    assert_eq!((event.action, event.outcome), (AuditAction::Create, AuditOutcome::Success));
    assert_eq!((event.entity_id, event.patient_id), (Some(started.id), Some(carlos.id)));
    assert_eq!(progress.find(carlos.id, meds.id).await.unwrap(), Some(started.clone()));

    // Prerequisites count per patient: Ana has completed nothing.
    assert_err(progress.start(ana.id, meds.id).await, "conflict", Some("prerequisites"));

    // A retried start returns the row unchanged (one UPDATE event naming no field).
    let (again, event) = one_event(&tdb, &scope, progress.start(carlos.id, meds.id)).await;
    assert_eq!(again.unwrap(), started);
    assert_eq!((event.action, event.changed_fields.len()), (AuditAction::Update, 0));

    // A completed mission cannot be started again.
    assert_writes_nothing(&tdb, &scope, "conflict", Some("status"), progress.start(carlos.id, profile.id)).await;

    // A soft-deleted prerequisite no longer counts: Ana now only needs the profile mission.
    scope.missions().delete(chat.id).await.unwrap();
    assert_err(progress.start(ana.id, meds.id).await, "conflict", Some("prerequisites"));
    finish(&scope, ana.id, &profile).await;
    progress.start(ana.id, meds.id).await.unwrap();

    // Unknown or deleted missions and patients.
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.start(carlos.id, Uuid::now_v7())).await;
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.start(carlos.id, chat.id)).await;
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.start(Uuid::now_v7(), profile.id)).await;
    let other = tdb.org("Clínica").await;
    let foreign = mission(&other, "Missão da Clínica", 1, 10, None).await;
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.start(carlos.id, foreign.id)).await;
}

#[backends]
async fn only_available_missions_start_and_failed_ones_restart(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let progress = scope.onboarding_progress();

    let inactive = scope
        .missions()
        .create(NewMission { is_active: Some(false), ..new_mission("Desativada", 1, 10, None) })
        .await
        .unwrap();
    assert_writes_nothing(&tdb, &scope, "conflict", Some("is_active"), progress.start(carlos.id, inactive.id)).await;
    let future = scope
        .missions()
        .create(NewMission {
            start_date: Some(Utc::now() + Duration::days(1)),
            ..new_mission("Começa amanhã", 1, 10, None)
        })
        .await
        .unwrap();
    assert_writes_nothing(&tdb, &scope, "conflict", Some("start_date"), progress.start(carlos.id, future.id)).await;
    let ended = scope
        .missions()
        .create(NewMission {
            start_date: Some(Utc::now() - Duration::days(10)),
            end_date: Some(Utc::now() - Duration::days(1)),
            ..new_mission("Encerrada", 1, 10, None)
        })
        .await
        .unwrap();
    assert_writes_nothing(&tdb, &scope, "conflict", Some("end_date"), progress.start(carlos.id, ended.id)).await;

    // A FAILED attempt restarts from step 0 as a new attempt.
    let walk = mission(&scope, "Caminhada", 4, 40, None).await;
    let first = progress.start(carlos.id, walk.id).await.unwrap();
    progress.advance(carlos.id, walk.id, 2).await.unwrap();
    let patch = OnboardingProgressPatch { status: Some(ProgressStatus::Failed), ..Default::default() };
    progress.update(first.id, patch).await.unwrap();
    assert_err(progress.advance(carlos.id, walk.id, 1).await, "conflict", Some("status"));
    assert_err(progress.complete(carlos.id, walk.id).await, "conflict", Some("status"));
    let (again, event) = one_event(&tdb, &scope, progress.start(carlos.id, walk.id)).await;
    let again = again.unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!((again.status, again.current_step, again.total_steps), (ProgressStatus::InProgress, 0, 4));
    assert_eq!((again.progress, again.attempts_count), (0.0, 2));
    assert_eq!(event.action, AuditAction::Update);
    for field in ["status", "current_step", "progress", "attempts_count"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }

    // A NOT_STARTED row made through the generic create starts too.
    let survey = mission(&scope, "Pesquisa", 2, 20, None).await;
    let new = NewOnboardingProgress { patient_id: carlos.id, mission_id: survey.id, ..Default::default() };
    let row = progress.create(new).await.unwrap();
    assert_err(progress.advance(carlos.id, survey.id, 1).await, "conflict", Some("status"));
    let started = progress.start(carlos.id, survey.id).await.unwrap();
    assert_eq!((started.id, started.status, started.total_steps), (row.id, ProgressStatus::InProgress, 2));
}

// ----------------------------------------------------------------------------------------------
// steps
// ----------------------------------------------------------------------------------------------

#[backends]
async fn steps_move_progress_and_derive_the_percentage(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let profile = mission(&scope, "Completar Perfil de Saúde", 3, 100, None).await;
    let progress = scope.onboarding_progress();

    // Nothing to advance before the start.
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.advance(carlos.id, profile.id, 1)).await;
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.complete(carlos.id, profile.id)).await;

    let started = progress.start(carlos.id, profile.id).await.unwrap();
    assert_eq!((started.current_step, started.total_steps, started.progress), (0, 3, 0.0));

    let (one, event) = one_event(&tdb, &scope, progress.advance(carlos.id, profile.id, 1)).await;
    let one = one.unwrap();
    assert_eq!(one.current_step, 1);
    assert!((one.progress - 100.0 / 3.0).abs() < 1e-9, "{}", one.progress);
    assert_eq!((event.action, event.entity_id, event.patient_id), (AuditAction::Update, Some(one.id), Some(carlos.id)));
    for field in ["current_step", "progress", "last_interaction_at"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }

    // Bad step counts write nothing; steps remaining block completion.
    for bad in [0, -1, 3, i64::MAX] {
        assert_writes_nothing(&tdb, &scope, "validation", Some("steps"), progress.advance(carlos.id, profile.id, bad))
            .await;
    }
    assert_writes_nothing(&tdb, &scope, "conflict", Some("current_step"), progress.complete(carlos.id, profile.id))
        .await;

    let done = progress.advance(carlos.id, profile.id, 2).await.unwrap();
    assert_eq!((done.current_step, done.progress, done.status), (3, 100.0, ProgressStatus::InProgress));
    assert_eq!(progress.get(done.id).await.unwrap(), done);
    assert_writes_nothing(&tdb, &scope, "validation", Some("steps"), progress.advance(carlos.id, profile.id, 1)).await;

    // A mission without listed steps has one.
    let chat = scope
        .missions()
        .create(NewMission::new("Conversa", "Fale com a IA.", MissionCategory::Engagement, json!({})))
        .await
        .unwrap();
    assert_eq!(chat.step_count(), 1);
    assert_eq!(progress.start(carlos.id, chat.id).await.unwrap().total_steps, 1);
    assert_eq!(progress.advance(carlos.id, chat.id, 1).await.unwrap().progress, 100.0);
}

// ----------------------------------------------------------------------------------------------
// completion
// ----------------------------------------------------------------------------------------------

#[backends]
async fn completion_awards_points_and_badge_once(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let profile = mission(&scope, "Completar Perfil de Saúde", 2, 150, Some("first_steps")).await;
    let progress = scope.onboarding_progress();
    progress.start(carlos.id, profile.id).await.unwrap();
    progress.advance(carlos.id, profile.id, 2).await.unwrap();

    // The awarding completion records two events: the award's ledger row (CREATE) and the progress
    // (UPDATE, the latest).
    let before = event_count(&tdb, &scope).await;
    let done = progress.complete(carlos.id, profile.id).await.unwrap();
    assert_eq!(event_count(&tdb, &scope).await, before + 2, "the award and the completion");
    let latest = tdb
        .raw_text(&format!(
            "SELECT CAST(id AS TEXT) FROM audit_logs WHERE organization_id = '{}' ORDER BY id DESC LIMIT 1",
            scope.organization_id()
        ))
        .await;
    let event = scope.audit_logs().get(latest.parse().unwrap()).await.unwrap();
    assert!(done.awarded);
    let p = &done.progress;
    assert_eq!((p.status, p.progress, p.points_earned), (ProgressStatus::Completed, 100.0, 150));
    assert_eq!(p.badge_earned.as_deref(), Some("first_steps"));
    assert!(p.completed_at.is_some());
    assert_eq!(progress.get(p.id).await.unwrap(), *p);
    let award = done.transaction.clone().expect("the award");
    assert_eq!(
        (award.transaction_type, award.amount, award.source_type),
        (TransactionType::Earned, 150, SourceType::Mission)
    );
    assert_eq!(award.source_mission_id, Some(profile.id));
    assert_eq!(scope.point_transactions().get(award.id).await.unwrap(), award);
    // One event: the progress update, naming what changed.
    assert_eq!((event.action, event.entity_id, event.patient_id), (AuditAction::Update, Some(p.id), Some(carlos.id)));
    for field in ["status", "completed_at", "points_earned", "badge_earned"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.total_points, h.onboarding_points, h.experience_points), (150, 150, 150));
    assert_eq!(h.badges, vec!["first_steps".to_string()]);
    assert_eq!((h.current_level, h.next_level_at), (2, 300));

    // A retry awards nothing, writes nothing but its (empty) UPDATE event.
    let ledger_rows = rows(&tdb, "point_transactions").await;
    let (again, event) = one_event(&tdb, &scope, progress.complete(carlos.id, profile.id)).await;
    let again = again.unwrap();
    assert!(!again.awarded && again.transaction.is_none());
    assert_eq!(again.progress, *p);
    assert_eq!((event.action, event.changed_fields.len()), (AuditAction::Update, 0));
    assert_eq!(rows(&tdb, "point_transactions").await, ledger_rows);
    assert_eq!(account(&scope, carlos.id).await, h);

    // The ledger refuses a second award of the mission by hand, too.
    let manual = NewPointTransaction {
        source_mission_id: Some(profile.id),
        ..NewPointTransaction::new(carlos.id, TransactionType::Earned, 150, "Mission completed", SourceType::Mission)
    };
    assert_writes_nothing(
        &tdb,
        &scope,
        "conflict",
        Some("source_mission_id"),
        scope.point_transactions().record(manual.clone()),
    )
    .await;
    assert_eq!(earned_awards(&tdb, carlos.id, profile.id).await, 1);
    // And so does the database itself, whatever the path (a BONUS for the mission is not an award).
    let dup = raw_copy_transaction(&tdb, award.id, "EARNED").await;
    assert!(matches!(&dup, Err(sqlx::Error::Database(e)) if e.is_unique_violation()), "{dup:?}");
    raw_copy_transaction(&tdb, award.id, "BONUS").await.unwrap();
    assert_eq!(earned_awards(&tdb, carlos.id, profile.id).await, 1);
    tdb.raw_execute(&format!("DELETE FROM point_transactions WHERE type = 'BONUS' AND patient_id = '{}'", carlos.id))
        .await;

    // A badge already held is not added twice; a second mission with the same badge still pays.
    let chat = mission(&scope, "Primeira Conversa com IA", 1, 50, Some("first_steps")).await;
    let second = finish(&scope, carlos.id, &chat).await;
    assert!(second.awarded);
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.total_points, h.badges.len()), (200, 1));

    // An award recorded by hand before completion is linked, not paid twice.
    let meds = mission(&scope, "Adicionar Medicamentos", 1, 80, None).await;
    let manual = NewPointTransaction { source_mission_id: Some(meds.id), amount: 80, ..manual };
    scope.point_transactions().record(manual).await.unwrap();
    let linked = finish(&scope, carlos.id, &meds).await;
    assert!(linked.awarded && linked.transaction.is_none());
    assert_eq!(linked.progress.points_earned, 80);
    assert_eq!(earned_awards(&tdb, carlos.id, meds.id).await, 1);
    assert_eq!(assert_matches_ledger(&scope, carlos.id).await.total_points, 280);

    // A mission without a reward completes without touching (or needing) an account.
    let intro = mission(&scope, "Boas-vindas", 1, 0, None).await;
    let before = account(&scope, carlos.id).await;
    let plain = finish(&scope, carlos.id, &intro).await;
    assert!(plain.awarded && plain.transaction.is_none());
    assert_eq!(plain.progress.points_earned, 0);
    assert_eq!(account(&scope, carlos.id).await, before);

    // A reward needs a points account: refused, nothing written, the progress stays open.
    let pedro = scope
        .patients()
        .create(NewPatient {
            first_name: "Pedro".into(),
            last_name: "Lima".into(),
            phone: "+5511765432109".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    progress.start(pedro.id, profile.id).await.unwrap();
    progress.advance(pedro.id, profile.id, 2).await.unwrap();
    assert_writes_nothing(&tdb, &scope, "validation", Some("patient_id"), progress.complete(pedro.id, profile.id))
        .await;
    assert_eq!(progress.find(pedro.id, profile.id).await.unwrap().unwrap().status, ProgressStatus::InProgress);

    // A mission deleted while in progress can no longer be completed.
    let gone = mission(&scope, "Apagada", 1, 10, None).await;
    progress.start(carlos.id, gone.id).await.unwrap();
    progress.advance(carlos.id, gone.id, 1).await.unwrap();
    scope.missions().delete(gone.id).await.unwrap();
    assert_writes_nothing(&tdb, &scope, "not_found", None, progress.complete(carlos.id, gone.id)).await;
}

#[backends(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_completions_award_once(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    for round in 0..3 {
        let carlos = patient(&scope, round).await;
        let profile = mission(&scope, &format!("Completar Perfil {round}"), 3, 120, Some("first_steps")).await;
        scope.onboarding_progress().start(carlos.id, profile.id).await.unwrap();
        scope.onboarding_progress().advance(carlos.id, profile.id, 3).await.unwrap();
        let events_before = event_count(&tdb, &scope).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let scope = scope.clone();
                tokio::spawn(async move { scope.onboarding_progress().complete(carlos.id, profile.id).await })
            })
            .collect();
        let mut awarded = 0;
        for task in tasks {
            let done = task.await.unwrap().unwrap();
            assert_eq!(done.progress.status, ProgressStatus::Completed);
            assert_eq!(done.progress.points_earned, 120);
            if done.awarded {
                awarded += 1;
                assert_eq!(done.transaction.map(|t| t.amount), Some(120));
            } else {
                assert!(done.transaction.is_none());
            }
        }
        assert_eq!(awarded, 1, "{:?}", tdb.backend);
        assert_eq!(earned_awards(&tdb, carlos.id, profile.id).await, 1);
        assert_eq!(event_count(&tdb, &scope).await, events_before + 9, "one event per call, plus the award's");
        let h = assert_matches_ledger(&scope, carlos.id).await;
        assert_eq!((h.total_points, h.badges.len()), (120, 1));
    }
}

// ----------------------------------------------------------------------------------------------
// the ledger
// ----------------------------------------------------------------------------------------------

#[backends]
async fn random_operations_keep_every_account_equal_to_its_ledger(tdb: TestDb) {
    let seed: u64 = std::env::var("AUSTA_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("AUSTA_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let scope = tdb.org("Hospital").await;
    let patients = [patient(&scope, 1).await.id, patient(&scope, 2).await.id];
    // What the ledger must sum to, per patient, computed independently: (earned net, spent).
    let mut expected = [(0i64, 0i64); 2];
    let ledger = scope.point_transactions();
    for step in 0..60 {
        let who = rng.gen_range(0..2);
        let p = patients[who];
        let available = expected[who].0 - expected[who].1;
        match rng.gen_range(0..6) {
            0 | 1 => {
                let amount = rng.gen_range(1..=200);
                let source = [SourceType::Engagement, SourceType::Survey, SourceType::Achievement][rng.gen_range(0..3)];
                ledger
                    .record(NewPointTransaction::new(p, TransactionType::Earned, amount, "Participação", source))
                    .await
                    .unwrap();
                expected[who].0 += amount;
            }
            2 => {
                let amount = rng.gen_range(1..=300);
                let r = ledger.spend(p, amount, "Resgate na loja").await;
                if amount <= available {
                    assert_eq!(r.unwrap().amount, -amount);
                    expected[who].1 += amount;
                } else {
                    assert_err(r, "validation", Some("amount"));
                }
            }
            3 => {
                let amount = rng.gen_range(1..=60);
                let r = ledger
                    .record(NewPointTransaction::new(
                        p,
                        TransactionType::Penalty,
                        -amount,
                        "Ajuste",
                        SourceType::AdminAdjustment,
                    ))
                    .await;
                if amount <= available {
                    r.unwrap();
                    expected[who].0 -= amount;
                } else {
                    assert_err(r, "validation", Some("amount"));
                }
            }
            _ => {
                let points = rng.gen_range(0..=250);
                let m =
                    mission(&scope, &format!("Missão {step}"), rng.gen_range(1..=4), points, Some("explorer")).await;
                let done = finish(&scope, p, &m).await;
                assert!(done.awarded);
                expected[who].0 += points;
                if rng.gen_bool(0.5) {
                    let again = scope.onboarding_progress().complete(p, m.id).await.unwrap();
                    assert!(!again.awarded, "seed {seed}");
                }
            }
        }
        let h = assert_matches_ledger(&scope, p).await;
        assert_eq!((h.total_points, h.spent_points), expected[who], "seed {seed}, step {step}, {:?}", tdb.backend);
    }
    for (i, p) in patients.iter().enumerate() {
        assert_eq!(ledger.ledger_balance(*p).await.unwrap(), expected[i], "seed {seed}");
    }
}

#[backends]
async fn overspending_fails_and_writes_nothing(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let ledger = scope.point_transactions();
    ledger
        .record(NewPointTransaction::new(
            carlos.id,
            TransactionType::Earned,
            100,
            "Participação",
            SourceType::Engagement,
        ))
        .await
        .unwrap();

    let (spent, event) = one_event(&tdb, &scope, ledger.spend(carlos.id, 30, "Resgate: consulta")).await;
    let spent = spent.unwrap();
    assert_eq!(
        (spent.transaction_type, spent.amount, spent.source_type),
        (TransactionType::Spent, -30, SourceType::Purchase)
    );
    assert_eq!(
        (event.action, event.entity_id, event.patient_id),
        (AuditAction::Create, Some(spent.id), Some(carlos.id))
    );
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.available_points, h.spent_points, h.total_points), (70, 30, 100));

    for (field, amount, reason) in
        [("amount", 71, "Resgate"), ("amount", 0, "Resgate"), ("amount", -5, "Resgate"), ("reason", 10, " ")]
    {
        assert_writes_nothing(&tdb, &scope, "validation", Some(field), ledger.spend(carlos.id, amount, reason)).await;
    }
    // A patient without an account.
    assert_writes_nothing(&tdb, &scope, "validation", Some("patient_id"), ledger.spend(Uuid::now_v7(), 1, "Resgate"))
        .await;
    // Spending exactly what is available empties the account; a single point more is refused.
    ledger.spend(carlos.id, 70, "Resgate: exame").await.unwrap();
    assert_writes_nothing(&tdb, &scope, "validation", Some("amount"), ledger.spend(carlos.id, 1, "Resgate")).await;
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.available_points, h.spent_points, h.total_points), (0, 100, 100));
    // Spending never lowers experience or level.
    assert_eq!((h.experience_points, h.current_level), (100, 2));
}

// ----------------------------------------------------------------------------------------------
// levels
// ----------------------------------------------------------------------------------------------

#[test]
fn the_threshold_table() {
    let table: Vec<i64> = (1..=10).map(level_threshold).collect();
    assert_eq!(table, [0, 100, 300, 600, 1000, 1500, 2100, 2800, 3600, 4500]);
    assert_eq!(level_threshold(0), 0);
    assert_eq!(level_threshold(i64::MAX), i64::MAX, "saturates");
    for (xp, level) in [(-5, 1), (0, 1), (99, 1), (100, 2), (299, 2), (300, 3), (4499, 9), (4500, 10), (1_001_100, 142)]
    {
        assert_eq!(level_for_experience(xp), level, "{xp}");
    }
    // Exact at every boundary, also far out.
    for level in [2, 17, 1000, 123_456, 400_000_000] {
        let t = level_threshold(level);
        assert_eq!((level_for_experience(t - 1), level_for_experience(t)), (level - 1, level));
    }
    let top = level_for_experience(i64::MAX);
    assert!(top > 400_000_000 && level_threshold(top + 1) == i64::MAX, "{top}");
    assert_eq!(level_for_experience(level_threshold(top)), top);
}

#[backends]
async fn levels_follow_experience(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let carlos = patient(&scope, 1).await;
    let ledger = scope.point_transactions();
    let earn = |amount| {
        NewPointTransaction::new(carlos.id, TransactionType::Earned, amount, "Participação", SourceType::Engagement)
    };
    let level = |h: HealthPoints| (h.experience_points, h.current_level, h.next_level_at);

    assert_eq!(level(account(&scope, carlos.id).await), (0, 1, 100));
    ledger.record(earn(99)).await.unwrap();
    assert_eq!(level(assert_matches_ledger(&scope, carlos.id).await), (99, 1, 100));
    ledger.record(earn(1)).await.unwrap();
    assert_eq!(level(assert_matches_ledger(&scope, carlos.id).await), (100, 2, 300));
    ledger.record(earn(500)).await.unwrap();
    assert_eq!(level(assert_matches_ledger(&scope, carlos.id).await), (600, 4, 1000));
    // Penalties and spending lower the balance, not experience or level.
    ledger
        .record(NewPointTransaction::new(
            carlos.id,
            TransactionType::Penalty,
            -250,
            "Ajuste",
            SourceType::AdminAdjustment,
        ))
        .await
        .unwrap();
    ledger.spend(carlos.id, 300, "Resgate").await.unwrap();
    let h = assert_matches_ledger(&scope, carlos.id).await;
    assert_eq!((h.total_points, h.available_points), (350, 50));
    assert_eq!(level(h), (600, 4, 1000));
    // Mission awards count as experience too.
    let m = mission(&scope, "Completar Perfil de Saúde", 1, 400, None).await;
    finish(&scope, carlos.id, &m).await;
    assert_eq!(level(assert_matches_ledger(&scope, carlos.id).await), (1000, 5, 1500));
    // An administrator's override lasts until experience changes again.
    let id = account(&scope, carlos.id).await.id;
    let patch = austa_core::model::HealthPointsPatch { current_level: Some(9), ..Default::default() };
    assert_eq!(scope.health_points().update(id, patch).await.unwrap().current_level, 9);
    ledger.record(earn(1)).await.unwrap();
    assert_eq!(level(assert_matches_ledger(&scope, carlos.id).await), (1001, 5, 1500));
}

// ----------------------------------------------------------------------------------------------
// streaks
// ----------------------------------------------------------------------------------------------

#[backends]
async fn streaks_follow_the_patients_local_days_and_weeks(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let sp = patient_in(&scope, 1, "America/Sao_Paulo").await;
    let lon = patient_in(&scope, 2, "UTC").await;
    let points = scope.health_points();
    let streaks = |h: &HealthPoints| (h.daily_streak, h.weekly_streak, h.longest_streak);
    let (sp_id, lon_id) = (sp.id, lon.id);
    let both = |at: &'static str| {
        let points = scope.health_points();
        async move {
            let a = points.record_activity(sp_id, utc(at)).await.unwrap();
            let b = points.record_activity(lon_id, utc(at)).await.unwrap();
            (a, b)
        }
    };

    // Sunday 23:30 in São Paulo is already Monday 02:30 in UTC.
    let (a, b) = both("2025-03-10T02:30:00Z").await;
    assert_eq!(
        (a.last_active_local_date, b.last_active_local_date),
        (Some(day("2025-03-09")), Some(day("2025-03-10")))
    );
    assert_eq!((streaks(&a), streaks(&b)), ((1, 1, 1), (1, 1, 1)));
    assert_eq!(a.last_active_date, utc("2025-03-10T02:30:00Z"));
    // Monday morning: a new local day and ISO week in São Paulo, the same day in UTC.
    let (a, b) = both("2025-03-10T12:00:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((2, 2, 2), (1, 1, 1)));
    // Monday 23:30 in São Paulo (Tuesday in UTC), then Tuesday 00:30 in São Paulo: across the local
    // midnight the streak grows in São Paulo, while UTC saw both on one day.
    let (a, b) = both("2025-03-11T02:30:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((2, 2, 2), (2, 1, 2)));
    let (a, b) = both("2025-03-11T03:30:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((3, 2, 3), (2, 1, 2)));
    assert_eq!((a.daily_streak_on(day("2025-03-12")), a.daily_streak_on(day("2025-03-13"))), (3, 0));
    assert_eq!(
        (a.last_active_local_date, b.last_active_local_date),
        (Some(day("2025-03-11")), Some(day("2025-03-11")))
    );

    // A missed day breaks the daily streak (the longest one is kept); the week goes on.
    let (a, b) = both("2025-03-14T12:00:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((1, 2, 3), (1, 1, 2)));
    // The next ISO week extends the weekly streak.
    let (a, b) = both("2025-03-17T12:00:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((1, 3, 3), (1, 2, 2)));
    assert_eq!((a.weekly_streak_on(day("2025-03-30")), a.weekly_streak_on(day("2025-03-31"))), (3, 0));
    // A whole week missed resets it.
    let (a, b) = both("2025-03-31T12:00:00Z").await;
    assert_eq!((streaks(&a), streaks(&b)), ((1, 1, 3), (1, 1, 2)));

    // A late report of an earlier day changes no streak and keeps the latest activity time; it is
    // still one UPDATE event (naming no field).
    let (late, event) = one_event(&tdb, &scope, points.record_activity(sp.id, utc("2025-03-20T12:00:00Z"))).await;
    let late = late.unwrap();
    assert_eq!(late, a);
    assert_eq!((event.action, event.changed_fields.len(), event.patient_id), (AuditAction::Update, 0, Some(sp.id)));
    let (next, event) = one_event(&tdb, &scope, points.record_activity(sp.id, utc("2025-04-01T12:00:00Z"))).await;
    assert_eq!(streaks(&next.unwrap()), (2, 1, 3));
    for field in ["daily_streak", "last_active_date", "last_active_local_date"] {
        assert!(event.changed_fields.iter().any(|f| f == field), "{field} in {:?}", event.changed_fields);
    }
    assert_eq!(points.get(a.id).await.unwrap().last_active_local_date, Some(day("2025-04-01")));

    // Streaks are not points: the ledger is untouched.
    assert_eq!(assert_matches_ledger(&scope, sp.id).await.total_points, 0);

    // Invalid times and patients without an account write nothing.
    assert_writes_nothing(
        &tdb,
        &scope,
        "validation",
        Some("at"),
        points.record_activity(sp.id, Utc::now() + Duration::hours(1)),
    )
    .await;
    assert_writes_nothing(
        &tdb,
        &scope,
        "validation",
        Some("at"),
        points.record_activity(sp.id, utc("1850-01-01T00:00:00Z")),
    )
    .await;
    assert_writes_nothing(
        &tdb,
        &scope,
        "validation",
        Some("patient_id"),
        points.record_activity(Uuid::now_v7(), Utc::now()),
    )
    .await;
}

// ----------------------------------------------------------------------------------------------
// access
// ----------------------------------------------------------------------------------------------

#[backends]
async fn the_access_matrix_decides_who_runs_the_workflow(tdb: TestDb) {
    let platform = tdb.org("Hospital").await;
    let org = platform.organization_id();
    let carlos = patient(&platform, 1).await;
    let profile = mission(&platform, "Completar Perfil de Saúde", 1, 100, Some("first_steps")).await;
    let chat = mission(&platform, "Primeira Conversa com IA", 1, 50, None).await;
    platform.onboarding_progress().start(carlos.id, chat.id).await.unwrap();
    platform.onboarding_progress().advance(carlos.id, chat.id, 1).await.unwrap();

    let patient = tdb.db.scope(org, Actor::patient(carlos.id)).await.unwrap();
    let provider = tdb.db.scope(org, Actor::provider(tdb.provider(&platform).await)).await.unwrap();
    let webhook = tdb.db.scope(org, Actor::system("whatsapp-webhook")).await.unwrap();
    for scope in [&patient, &provider, &webhook] {
        let denied = |op: &str| format!("{op} by {:?}", scope.actor());
        let progress = scope.onboarding_progress();
        for (op, r) in [
            ("start", progress.start(carlos.id, profile.id).await.map(drop)),
            ("advance", progress.advance(carlos.id, chat.id, 1).await.map(drop)),
            ("complete", progress.complete(carlos.id, chat.id).await.map(drop)),
            ("spend", scope.point_transactions().spend(carlos.id, 1, "Resgate").await.map(drop)),
            ("record_activity", scope.health_points().record_activity(carlos.id, Utc::now()).await.map(drop)),
        ] {
            assert_eq!(r.map_err(|e| e.code()), Err("permission_denied"), "{}", denied(op));
        }
    }
    // Each refusal was recorded, and nothing else changed.
    let refusals = tdb
        .raw_i64(&format!(
            "SELECT COUNT(*) FROM audit_logs WHERE organization_id = '{org}' AND action = 'ACCESS_DENIED'"
        ))
        .await;
    assert_eq!(refusals, 15);
    assert!(platform.onboarding_progress().find(carlos.id, profile.id).await.unwrap().is_none());
    assert_eq!(
        platform.onboarding_progress().find(carlos.id, chat.id).await.unwrap().unwrap().status,
        ProgressStatus::InProgress
    );

    // The patient still reads their own progress and account.
    assert_eq!(
        patient
            .onboarding_progress()
            .for_patient(carlos.id, austa_core::repo::PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(patient.health_points().for_patient(carlos.id).await.unwrap().is_some());

    // Administrators may run it.
    let admin = tdb.db.scope(org, Actor::admin(None)).await.unwrap();
    let done = admin.onboarding_progress().complete(carlos.id, chat.id).await.unwrap();
    assert!(done.awarded);
    admin.onboarding_progress().start(carlos.id, profile.id).await.unwrap();
    admin.onboarding_progress().advance(carlos.id, profile.id, 1).await.unwrap();
    admin.onboarding_progress().complete(carlos.id, profile.id).await.unwrap();
    admin.point_transactions().spend(carlos.id, 10, "Resgate").await.unwrap();
    admin.health_points().record_activity(carlos.id, Utc::now()).await.unwrap();
    assert_eq!(assert_matches_ledger(&admin, carlos.id).await.total_points, 150);

    // Another organization's scope finds nothing to work on.
    let other = tdb.org("Clínica").await;
    assert_err(other.onboarding_progress().complete(carlos.id, chat.id).await, "not_found", None);
    assert_err(other.onboarding_progress().start(carlos.id, profile.id).await, "not_found", None);
    assert_err(other.point_transactions().spend(carlos.id, 1, "Resgate").await, "validation", Some("patient_id"));
    assert_err(other.health_points().record_activity(carlos.id, Utc::now()).await, "validation", Some("patient_id"));
    // Deactivating a mission does not take back what was earned.
    platform
        .missions()
        .update(profile.id, MissionPatch { is_active: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(assert_matches_ledger(&platform, carlos.id).await.total_points, 150);
}
