//! Gamification state of patients: progress on missions ([`OnboardingProgress`]), the points account
//! ([`HealthPoints`], one per patient) and its append-only ledger ([`PointTransaction`]). All columns
//! are plain: points, levels and mission progress are not clinical data.
//!
//! Design decisions:
//! * The ledger owns the counters. A [`HealthPoints`] account is created with every counter at zero;
//!   `total_points`, `available_points`, `spent_points`, the four category buckets and
//!   `experience_points` change only through `scope.point_transactions().record(...)`, which writes
//!   the transaction and updates the (locked) account in one database transaction. So the account
//!   always equals the sum of its ledger (the original's seed did not add up). [`HealthPointsPatch`]
//!   covers only badges, achievements, streaks and level fields.
//! * Point transactions are append-only: the type is neither updatable nor deletable, and the generic
//!   `create` is not callable for it (its `Model::New` is `Infallible`); `record` is the only way in.
//! * The original's free `sourceId` string is split into real references: `source_mission_id` and
//!   `source_conversation_id`.
//! * The mission workflow (`scope.onboarding_progress().start/advance/complete`) is the way missions
//!   pay out: completing awards the mission's points and badge exactly once per patient (the progress
//!   row is locked and its status checked, and the database holds at most one `EARNED` transaction with
//!   source `MISSION` per patient and mission). [`Completion`] says whether a call awarded.
//! * Levels follow one threshold table ([`level_threshold`]): level `n` needs `50 * n * (n - 1)`
//!   experience points. The library applies it whenever experience changes, so `current_level` and
//!   `next_level_at` always follow the ledger after the first earning (a patch may still set them, as an
//!   administrator's override until the next earning).
//! * Streaks count the patient's *local* days and ISO weeks (their `timezone`):
//!   `scope.health_points().record_activity(patient, at)` keeps `daily_streak`, `weekly_streak`,
//!   `longest_streak` and [`HealthPoints::last_active_local_date`] up to date.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{ProgressStatus, SourceType, TransactionType};

/// A patient's progress on one mission (at most one row per patient and mission).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "onboarding_progress", entity = "onboarding_progress")]
pub struct OnboardingProgress {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// The mission.
    pub mission_id: Uuid,
    /// Where the patient stands.
    pub status: ProgressStatus,
    /// Percentage done, 0 to 100.
    pub progress: f64,
    /// Steps done (0 to `total_steps`).
    pub current_step: i64,
    /// Steps in the mission (>= 1).
    pub total_steps: i64,
    /// When the patient started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the patient finished (not before `started_at`).
    pub completed_at: Option<DateTime<Utc>>,
    /// Points earned on this mission (>= 0).
    pub points_earned: i64,
    /// Badge earned on this mission, if any.
    pub badge_earned: Option<String>,
    /// Attempts so far (>= 0).
    pub attempts_count: i64,
    /// Minutes spent so far (>= 0).
    pub time_spent_minutes: i64,
    /// Last interaction with the mission.
    pub last_interaction_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input of `scope.onboarding_progress().create(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewOnboardingProgress {
    /// The patient (of the same organization).
    pub patient_id: Uuid,
    /// The mission (of the same organization).
    pub mission_id: Uuid,
    /// Status; default `NOT_STARTED`.
    pub status: Option<ProgressStatus>,
    /// Percentage done, 0 to 100; default 0.
    pub progress: f64,
    /// Steps done; default 0, at most `total_steps`.
    pub current_step: i64,
    /// Steps in the mission; default 1.
    pub total_steps: Option<i64>,
    /// When the patient started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the patient finished (not before `started_at`).
    pub completed_at: Option<DateTime<Utc>>,
    /// Points earned; default 0.
    pub points_earned: i64,
    /// Badge earned (1 to 100 characters).
    pub badge_earned: Option<String>,
    /// Attempts; default 0.
    pub attempts_count: i64,
    /// Minutes spent; default 0.
    pub time_spent_minutes: i64,
    /// Last interaction; default now.
    pub last_interaction_at: Option<DateTime<Utc>>,
}

/// Input of `scope.onboarding_progress().update(...)`. The patient and mission cannot change.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnboardingProgressPatch {
    /// New status.
    pub status: Option<ProgressStatus>,
    /// New percentage.
    pub progress: Option<f64>,
    /// New current step.
    pub current_step: Option<i64>,
    /// New step count.
    pub total_steps: Option<i64>,
    /// New start time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub started_at: Option<Option<DateTime<Utc>>>,
    /// New completion time (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub completed_at: Option<Option<DateTime<Utc>>>,
    /// New points earned.
    pub points_earned: Option<i64>,
    /// New badge (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub badge_earned: Option<Option<String>>,
    /// New attempt count.
    pub attempts_count: Option<i64>,
    /// New minutes spent.
    pub time_spent_minutes: Option<i64>,
    /// New last interaction time.
    pub last_interaction_at: Option<DateTime<Utc>>,
}

/// One achievement of a patient, stored in the `achievements` JSON list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Achievement {
    /// Achievement id, e.g. `first_conversation` (1 to 100 characters, unique in the list).
    pub id: String,
    /// Display name, e.g. `Primeira Conversa` (1 to 200 characters).
    pub name: String,
    /// When it was earned.
    pub earned_at: DateTime<Utc>,
}

/// A patient's points account (one per patient and organization).
///
/// Invariants, kept by the ledger and checked by the database:
/// `total_points = available_points + spent_points`; the category buckets
/// (`onboarding_points + engagement_points + health_points + achievement_points`) and
/// `experience_points` both equal the sum of the positive amounts ever recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "health_points", entity = "health_points")]
pub struct HealthPoints {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// Points held: earned minus penalties, expirations and negative adjustments (spent points stay
    /// counted here).
    pub total_points: i64,
    /// Points that can still be spent.
    pub available_points: i64,
    /// Points spent.
    pub spent_points: i64,
    /// Points earned from missions (source `MISSION`).
    pub onboarding_points: i64,
    /// Points earned from engagement (source `ENGAGEMENT`).
    pub engagement_points: i64,
    /// Points earned from any other source (`PURCHASE`, `BONUS`, `REFERRAL`, `SURVEY`,
    /// `ADMIN_ADJUSTMENT`).
    pub health_points: i64,
    /// Points earned from achievements (source `ACHIEVEMENT`).
    pub achievement_points: i64,
    /// Current level (>= 1): [`level_for_experience`] of `experience_points`, applied whenever
    /// experience changes.
    pub current_level: i64,
    /// Sum of every positive amount recorded (never decreases).
    pub experience_points: i64,
    /// Experience needed for the next level: [`level_threshold`] of `current_level + 1`.
    pub next_level_at: i64,
    /// Badge ids earned.
    pub badges: Vec<String>,
    /// Achievements earned.
    pub achievements: Vec<Achievement>,
    /// Consecutive active days.
    pub daily_streak: i64,
    /// Consecutive active weeks.
    pub weekly_streak: i64,
    /// Longest daily streak.
    pub longest_streak: i64,
    /// Last active day.
    pub last_active_date: DateTime<Utc>,
    /// The patient's local calendar date (in their time zone at the time) of their latest activity
    /// recorded by `record_activity`; `None` before the first. Streaks are counted from it.
    pub last_active_local_date: Option<NaiveDate>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl HealthPoints {
    /// The daily streak as it stands on the patient's local date `today`: the stored streak while it is
    /// alive (the last activity was `today` or the day before), 0 once a day has been missed. The stored
    /// `daily_streak` only changes when an activity is recorded, so read streaks through this.
    pub fn daily_streak_on(&self, today: NaiveDate) -> i64 {
        match self.last_active_local_date {
            Some(last) if today <= last || last.checked_add_days(Days::new(1)) == Some(today) => self.daily_streak,
            _ => 0,
        }
    }

    /// The weekly streak as it stands on the patient's local date `today`: the stored streak while the
    /// last activity was in today's ISO week or the one before, 0 once a whole week has been missed.
    pub fn weekly_streak_on(&self, today: NaiveDate) -> i64 {
        match self.last_active_local_date {
            Some(last) if week_start(today) <= week_start(last).checked_add_days(Days::new(7)).unwrap_or(last) => {
                self.weekly_streak
            }
            _ => 0,
        }
    }
}

/// The Monday starting `day`'s ISO week.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday()))).unwrap_or(day)
}

/// Experience points per level step: level `n` needs `LEVEL_STEP * n * (n - 1)` experience.
pub const LEVEL_STEP: i64 = 50;

/// The experience needed to reach `level` (levels start at 1): `50 * n * (n - 1)`, so
///
/// | level | experience | level | experience |
/// |---|---|---|---|
/// | 1 | 0 | 6 | 1,500 |
/// | 2 | 100 | 7 | 2,100 |
/// | 3 | 300 | 8 | 2,800 |
/// | 4 | 600 | 9 | 3,600 |
/// | 5 | 1,000 | 10 | 4,500 |
///
/// Each level costs 100 more than the one before: early levels come quickly, later ones need sustained
/// engagement. Levels below 1 need 0; a threshold beyond `i64::MAX` is `i64::MAX` (unreachable).
pub fn level_threshold(level: i64) -> i64 {
    i64::try_from(threshold(level)).unwrap_or(i64::MAX)
}

/// [`level_threshold`] in a wider type (exact for every level the table can reach; saturating beyond).
fn threshold(level: i64) -> i128 {
    let n = i128::from(level.max(1));
    n.saturating_mul(n - 1).saturating_mul(i128::from(LEVEL_STEP))
}

/// The level an account with `experience` points is at: the highest `n` with
/// `level_threshold(n) <= experience` (1 for zero or negative experience).
pub fn level_for_experience(experience: i64) -> i64 {
    if experience <= 0 {
        return 1;
    }
    // Estimate from n^2 - n - xp/50 = 0, then settle exactly with integer thresholds.
    let estimate = (1.0 + (1.0 + 4.0 * experience as f64 / LEVEL_STEP as f64).sqrt()) / 2.0;
    let mut level = (estimate.floor() as i64).max(1);
    let xp = i128::from(experience);
    while level > 1 && threshold(level) > xp {
        level -= 1;
    }
    while threshold(level + 1) <= xp {
        level += 1;
    }
    level
}

/// What `scope.onboarding_progress().complete(...)` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The progress after the call (status `COMPLETED`).
    pub progress: OnboardingProgress,
    /// True when this call completed the mission: it granted the badge and the points (or, when the
    /// ledger already held the mission's award, linked that award instead of paying twice). False
    /// when the mission was already completed (a retried or racing call): nothing was written but the
    /// call's audit event.
    pub awarded: bool,
    /// The `EARNED` transaction this call recorded: `None` when it awarded nothing, when the mission
    /// awards no points, or when the ledger already held this mission's award for the patient.
    pub transaction: Option<PointTransaction>,
}

/// Input of `scope.health_points().create(...)`: the account starts with every counter at zero
/// (opening balances are recorded as point transactions, so that the ledger explains them).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewHealthPoints {
    /// The patient (of the same organization).
    pub patient_id: Uuid,
    /// Level; default 1 (the threshold table's level for zero experience). Another value is an
    /// override that lasts until the account's first earning.
    pub current_level: Option<i64>,
    /// Experience needed for the next level; default 100 (see `current_level`).
    pub next_level_at: Option<i64>,
    /// Badge ids (each 1 to 100 characters, unique, at most 100).
    pub badges: Vec<String>,
    /// Achievements (unique ids, at most 100).
    pub achievements: Vec<Achievement>,
    /// Daily streak; default 0.
    pub daily_streak: i64,
    /// Weekly streak; default 0.
    pub weekly_streak: i64,
    /// Longest streak; default 0.
    pub longest_streak: i64,
    /// Last active day; default now.
    pub last_active_date: Option<DateTime<Utc>>,
}

/// Input of `scope.health_points().update(...)`: only what the ledger does not own.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthPointsPatch {
    /// New level (>= 1): an administrator's override, replaced by the threshold table's level the next
    /// time experience changes.
    pub current_level: Option<i64>,
    /// New next-level threshold (>= 0); an override like `current_level`.
    pub next_level_at: Option<i64>,
    /// New badge list (replaces the old one).
    pub badges: Option<Vec<String>>,
    /// New achievement list (replaces the old one).
    pub achievements: Option<Vec<Achievement>>,
    /// New daily streak (a correction; `record_activity` maintains streaks).
    pub daily_streak: Option<i64>,
    /// New weekly streak.
    pub weekly_streak: Option<i64>,
    /// New longest streak.
    pub longest_streak: Option<i64>,
    /// New last active day.
    pub last_active_date: Option<DateTime<Utc>>,
}

/// One movement of points (append-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "point_transactions")]
pub struct PointTransaction {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// The patient's points account.
    pub health_points_id: Uuid,
    /// Kind of movement.
    #[record(column = "type")]
    pub transaction_type: TransactionType,
    /// Signed amount: positive earns, negative spends or removes.
    pub amount: i64,
    /// Short reason, 1 to 200 characters.
    pub reason: String,
    /// Longer description.
    pub description: Option<String>,
    /// What the movement came from.
    pub source_type: SourceType,
    /// The mission it came from (required when `source_type` is `MISSION`).
    pub source_mission_id: Option<Uuid>,
    /// The conversation it came from.
    pub source_conversation_id: Option<Uuid>,
    /// Extra JSON object.
    pub metadata: Option<serde_json::Value>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Input of `scope.point_transactions().record(...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPointTransaction {
    /// The patient, who must have a points account in the organization.
    pub patient_id: Uuid,
    /// Kind of movement.
    pub transaction_type: TransactionType,
    /// Non-zero amount: `EARNED`/`BONUS` > 0; `SPENT`/`PENALTY`/`EXPIRED` < 0; `ADJUSTMENT` either.
    pub amount: i64,
    /// Short reason, 1 to 200 characters.
    pub reason: String,
    /// Longer description (1 to 2000 characters).
    pub description: Option<String>,
    /// What the movement came from.
    pub source_type: SourceType,
    /// The mission (same organization, not deleted); required when `source_type` is `MISSION`.
    pub source_mission_id: Option<Uuid>,
    /// The conversation (same organization and patient, not deleted).
    pub source_conversation_id: Option<Uuid>,
    /// Extra data: a JSON object.
    pub metadata: Option<serde_json::Value>,
}

impl NewPointTransaction {
    /// A movement with the given patient, type, amount, reason and source, and nothing else.
    pub fn new(
        patient_id: Uuid,
        transaction_type: TransactionType,
        amount: i64,
        reason: impl Into<String>,
        source_type: SourceType,
    ) -> Self {
        Self {
            patient_id,
            transaction_type,
            amount,
            reason: reason.into(),
            description: None,
            source_type,
            source_mission_id: None,
            source_conversation_id: None,
            metadata: None,
        }
    }
}
