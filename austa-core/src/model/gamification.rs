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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::enums::{ProgressStatus, SourceType, TransactionType};

/// A patient's progress on one mission (at most one row per patient and mission).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingProgress {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
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
#[derive(Debug, Clone, Default)]
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
#[derive(Debug, Clone, Default)]
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
    pub started_at: Option<Option<DateTime<Utc>>>,
    /// New completion time (`Some(None)` clears it).
    pub completed_at: Option<Option<DateTime<Utc>>>,
    /// New points earned.
    pub points_earned: Option<i64>,
    /// New badge (`Some(None)` clears it).
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPoints {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
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
    /// Current level (>= 1); set by the caller's level policy through the patch.
    pub current_level: i64,
    /// Sum of every positive amount recorded (never decreases).
    pub experience_points: i64,
    /// Experience needed for the next level; set through the patch.
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
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input of `scope.health_points().create(...)`: the account starts with every counter at zero
/// (opening balances are recorded as point transactions, so that the ledger explains them).
#[derive(Debug, Clone, Default)]
pub struct NewHealthPoints {
    /// The patient (of the same organization).
    pub patient_id: Uuid,
    /// Level; default 1.
    pub current_level: Option<i64>,
    /// Experience needed for the next level; default 100.
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
#[derive(Debug, Clone, Default)]
pub struct HealthPointsPatch {
    /// New level (>= 1).
    pub current_level: Option<i64>,
    /// New next-level threshold (>= 0).
    pub next_level_at: Option<i64>,
    /// New badge list (replaces the old one).
    pub badges: Option<Vec<String>>,
    /// New achievement list (replaces the old one).
    pub achievements: Option<Vec<Achievement>>,
    /// New daily streak.
    pub daily_streak: Option<i64>,
    /// New weekly streak.
    pub weekly_streak: Option<i64>,
    /// New longest streak.
    pub longest_streak: Option<i64>,
    /// New last active day.
    pub last_active_date: Option<DateTime<Utc>>,
}

/// One movement of points (append-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointTransaction {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// The patient's points account.
    pub health_points_id: Uuid,
    /// Kind of movement.
    #[serde(rename = "type")]
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
#[derive(Debug, Clone)]
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
