//! `health_points.*`: each patient's points total, level and streak.

use austa_core::model::{HealthPoints, HealthPointsPatch, NewHealthPoints};
use austa_core::{Result, Scope};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::ScopeOperation;

table_ops!("health_points", HealthPoints, NewHealthPoints, HealthPointsPatch: get, list, create, create_many, update);

/// The patient's points row, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "health_points.for_patient";
    type Output = Option<HealthPoints>;
    async fn run(self, scope: &Scope) -> Result<Option<HealthPoints>> {
        scope.health_points().for_patient(self.patient_id).await
    }
}

/// Records a day of activity (for streaks).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordActivity {
    /// The patient.
    pub patient_id: Uuid,
    /// When; now when absent.
    pub at: Option<DateTime<Utc>>,
}

impl ScopeOperation for RecordActivity {
    const NAME: &'static str = "health_points.record_activity";
    type Output = HealthPoints;
    async fn run(self, scope: &Scope) -> Result<HealthPoints> {
        let at = self.at.unwrap_or_else(|| scope.now());
        scope.health_points().record_activity(self.patient_id, at).await
    }
}
