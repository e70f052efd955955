//! `missions.*`: the missions of the gamification programme and their prerequisites.

use austa_core::model::{Mission, MissionPatch, NewMission};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("missions", Mission, NewMission, MissionPatch: get, list, create, create_many, update, delete, restore);

/// Creates a mission together with its prerequisites, in one transaction (cycles are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWithPrerequisites {
    /// The mission, its `prerequisites` included.
    pub data: NewMission,
}

impl ScopeOperation for CreateWithPrerequisites {
    const NAME: &'static str = "missions.create_with_prerequisites";
    type Output = Mission;
    async fn run(self, scope: &Scope) -> Result<Mission> {
        scope.missions().create_with_prerequisites(self.data).await
    }
}

/// The ids of a mission's prerequisites.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisites {
    /// The mission.
    pub mission_id: Uuid,
}

impl ScopeOperation for Prerequisites {
    const NAME: &'static str = "missions.prerequisites";
    type Output = Vec<Uuid>;
    async fn run(self, scope: &Scope) -> Result<Vec<Uuid>> {
        scope.missions().prerequisites(self.mission_id).await
    }
}

/// Adds a prerequisite; false when it was already there. A cycle is a `conflict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPrerequisite {
    /// The mission.
    pub mission_id: Uuid,
    /// The mission that must be completed first.
    pub prerequisite_id: Uuid,
}

impl ScopeOperation for AddPrerequisite {
    const NAME: &'static str = "missions.add_prerequisite";
    type Output = bool;
    async fn run(self, scope: &Scope) -> Result<bool> {
        scope.missions().add_prerequisite(self.mission_id, self.prerequisite_id).await
    }
}

/// Removes a prerequisite; false when it was not there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovePrerequisite {
    /// The mission.
    pub mission_id: Uuid,
    /// The prerequisite to remove.
    pub prerequisite_id: Uuid,
}

impl ScopeOperation for RemovePrerequisite {
    const NAME: &'static str = "missions.remove_prerequisite";
    type Output = bool;
    async fn run(self, scope: &Scope) -> Result<bool> {
        scope.missions().remove_prerequisite(self.mission_id, self.prerequisite_id).await
    }
}

/// Missions active now, or at `at`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Active {
    /// The moment; now when absent.
    pub at: Option<DateTime<Utc>>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for Active {
    const NAME: &'static str = "missions.active";
    type Output = Page<Mission>;
    async fn run(self, scope: &Scope) -> Result<Page<Mission>> {
        let page = page(self.limit, self.after)?;
        match self.at {
            Some(at) => scope.missions().active_at(at, page).await,
            None => scope.missions().active(page).await,
        }
    }
}
