//! `onboarding_progress.*`: each patient's progress through the missions.

use austa_core::model::{Completion, NewOnboardingProgress, OnboardingProgress, OnboardingProgressPatch};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, ScopeOperation};

table_ops!("onboarding_progress", OnboardingProgress, NewOnboardingProgress, OnboardingProgressPatch: get, list, create, create_many, update);

/// The patient's progress rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForPatient {
    /// The patient.
    pub patient_id: Uuid,
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ForPatient {
    const NAME: &'static str = "onboarding_progress.for_patient";
    type Output = Page<OnboardingProgress>;
    async fn run(self, scope: &Scope) -> Result<Page<OnboardingProgress>> {
        scope.onboarding_progress().for_patient(self.patient_id, page(self.limit, self.after)?).await
    }
}

/// The patient's progress on one mission, if started.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Find {
    /// The patient.
    pub patient_id: Uuid,
    /// The mission.
    pub mission_id: Uuid,
}

impl ScopeOperation for Find {
    const NAME: &'static str = "onboarding_progress.find";
    type Output = Option<OnboardingProgress>;
    async fn run(self, scope: &Scope) -> Result<Option<OnboardingProgress>> {
        scope.onboarding_progress().find(self.patient_id, self.mission_id).await
    }
}

/// Starts a mission for the patient (its prerequisites must be completed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The patient.
    pub patient_id: Uuid,
    /// The mission.
    pub mission_id: Uuid,
}

impl ScopeOperation for Start {
    const NAME: &'static str = "onboarding_progress.start";
    type Output = OnboardingProgress;
    async fn run(self, scope: &Scope) -> Result<OnboardingProgress> {
        scope.onboarding_progress().start(self.patient_id, self.mission_id).await
    }
}

/// Advances a started mission by `steps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    /// The patient.
    pub patient_id: Uuid,
    /// The mission.
    pub mission_id: Uuid,
    /// Steps done.
    pub steps: i64,
}

impl ScopeOperation for Advance {
    const NAME: &'static str = "onboarding_progress.advance";
    type Output = OnboardingProgress;
    async fn run(self, scope: &Scope) -> Result<OnboardingProgress> {
        scope.onboarding_progress().advance(self.patient_id, self.mission_id, self.steps).await
    }
}

/// Completes a mission and awards its points, once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    /// The patient.
    pub patient_id: Uuid,
    /// The mission.
    pub mission_id: Uuid,
}

impl ScopeOperation for Complete {
    const NAME: &'static str = "onboarding_progress.complete";
    type Output = Completion;
    async fn run(self, scope: &Scope) -> Result<Completion> {
        scope.onboarding_progress().complete(self.patient_id, self.mission_id).await
    }
}
