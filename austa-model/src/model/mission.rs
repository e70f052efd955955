//! Missions: the gamification content of an organization (onboarding tasks, health education,
//! medication adherence, ...). Mission definitions are organization-level content, not patient data,
//! so every column is plain (nothing encrypted).
//!
//! Design decision: the original kept `prerequisites` as a free array of mission-id strings. Here they
//! are real references in the `mission_prerequisites` table (composite foreign keys, so a prerequisite
//! can only be a mission of the same organization). [`NewMission::prerequisites`] is written together
//! with the mission, in one transaction, by `scope.missions().create_with_prerequisites(...)`; the
//! generic `create` accepts only a mission without prerequisites (it rejects a non-empty list instead
//! of silently dropping it). After creation, prerequisites are managed with `add_prerequisite` /
//! `remove_prerequisite` and read with `prerequisites`; [`MissionPatch`] does not touch them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{DifficultyLevel, MissionCategory};

/// A mission patients of the organization can complete for points, badges and unlocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "missions", soft_delete)]
pub struct Mission {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Description, 1 to 2000 characters.
    pub description: String,
    /// Kind of mission.
    pub category: MissionCategory,
    /// Difficulty (default `EASY`).
    pub difficulty: DifficultyLevel,
    /// Points granted on completion (>= 0).
    pub points_reward: i64,
    /// Badge id granted on completion, if any.
    pub badge_reward: Option<String>,
    /// What completing the mission unlocks, if anything.
    pub unlock_reward: Option<String>,
    /// The actions the mission requires: a JSON object, typically
    /// `{"steps": [{"id": "fill_personal_info", "completed": false}, ...]}`.
    pub required_actions: serde_json::Value,
    /// Whether patients can take the mission.
    pub is_active: bool,
    /// Availability start, if limited.
    pub start_date: Option<DateTime<Utc>>,
    /// Availability end, if limited (not before `start_date`).
    pub end_date: Option<DateTime<Utc>>,
    /// Estimated time to complete, in minutes (>= 0).
    pub estimated_time_minutes: Option<i64>,
    /// Free labels.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Mission {
    /// How many steps a patient's progress on this mission has: the entries of
    /// `required_actions.steps`, or 1 when it lists none. `onboarding_progress().start` sets
    /// `total_steps` from it.
    pub fn step_count(&self) -> i64 {
        let listed = self.required_actions.get("steps").and_then(|s| s.as_array()).map_or(0, Vec::len);
        i64::try_from(listed).unwrap_or(i64::MAX).max(1)
    }
}

/// Input of `scope.missions().create_with_prerequisites(...)` (and of the generic `create` when
/// `prerequisites` is empty).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMission {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Description, 1 to 2000 characters.
    pub description: String,
    /// Kind of mission.
    pub category: MissionCategory,
    /// Difficulty; default `EASY`.
    pub difficulty: Option<DifficultyLevel>,
    /// Points granted on completion; default 0, never negative.
    pub points_reward: i64,
    /// Badge id granted on completion (1 to 100 characters).
    pub badge_reward: Option<String>,
    /// What completing the mission unlocks (1 to 200 characters).
    pub unlock_reward: Option<String>,
    /// Missions (of the same organization, not deleted) that must be completed first. Duplicates are
    /// ignored; at most 100.
    #[serde(default)]
    pub prerequisites: Vec<Uuid>,
    /// Required actions: a JSON object; when it has `steps`, that is a list of objects each with a
    /// unique string `id` and an optional boolean `completed`.
    pub required_actions: serde_json::Value,
    /// Whether the mission is available; default true.
    pub is_active: Option<bool>,
    /// Availability start.
    pub start_date: Option<DateTime<Utc>>,
    /// Availability end (not before `start_date`).
    pub end_date: Option<DateTime<Utc>>,
    /// Estimated minutes to complete (>= 0).
    pub estimated_time_minutes: Option<i64>,
    /// Labels (each 1 to 100 characters, at most 100).
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NewMission {
    /// A new mission with the given title, description, category and required actions, and defaults
    /// elsewhere (EASY, 0 points, active, no dates, no prerequisites, no tags).
    pub fn new(
        title: impl Into<String>,
        description: impl Into<String>,
        category: MissionCategory,
        required_actions: serde_json::Value,
    ) -> Self {
        Self {
            title: title.into(),
            description: description.into(),
            category,
            difficulty: None,
            points_reward: 0,
            badge_reward: None,
            unlock_reward: None,
            prerequisites: Vec::new(),
            required_actions,
            is_active: None,
            start_date: None,
            end_date: None,
            estimated_time_minutes: None,
            tags: Vec::new(),
        }
    }
}

/// Input of `scope.missions().update(...)`. Prerequisites are not patched here: use
/// `add_prerequisite` / `remove_prerequisite`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MissionPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New category.
    pub category: Option<MissionCategory>,
    /// New difficulty.
    pub difficulty: Option<DifficultyLevel>,
    /// New points reward.
    pub points_reward: Option<i64>,
    /// New badge reward (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub badge_reward: Option<Option<String>>,
    /// New unlock reward (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub unlock_reward: Option<Option<String>>,
    /// New required actions.
    pub required_actions: Option<serde_json::Value>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New availability start (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub start_date: Option<Option<DateTime<Utc>>>,
    /// New availability end (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub end_date: Option<Option<DateTime<Utc>>>,
    /// New estimated minutes (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub estimated_time_minutes: Option<Option<i64>>,
    /// New labels.
    pub tags: Option<Vec<String>>,
}
