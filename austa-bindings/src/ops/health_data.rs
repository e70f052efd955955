//! `health_data.*`: vitals, lab results and the other health data of patients.

use austa_core::model::{HealthData, HealthDataPatch, HealthDataType, NewHealthData};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("health_data", HealthData, NewHealthData, HealthDataPatch: get, list, create, create_many, update, delete, restore);

/// The patient's health data, optionally of one type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Only rows of this type.
    pub data_type: Option<HealthDataType>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "health_data.for_patient";
    type Output = Page<HealthData>;
    async fn run(self, scope: &Scope) -> Result<Page<HealthData>> {
        scope.health_data().for_patient(self.patient_id, self.data_type, page(self.limit, self.after)?).await
    }
}

/// Marks a row verified by a provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The row.
    pub id: Uuid,
    /// The verifying provider.
    pub provider_id: Uuid,
}

impl ScopeOperation for Verify {
    const NAME: &'static str = "health_data.verify";
    type Output = HealthData;
    async fn run(self, scope: &Scope) -> Result<HealthData> {
        scope.health_data().verify(self.id, self.provider_id).await
    }
}
