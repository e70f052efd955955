//! Health data: the generic operations plus the patient's records by type and a `verify` shortcut.
//!
//! Validation happens on the final state of a record (after defaults on create, after the patch on
//! update), so that the cross-field rules (at least one payload, verification all or nothing, expiry
//! not before the observation) hold whichever fields a caller touched. References to the patient and
//! the verifying provider are checked by the database's composite foreign keys: an id of another
//! organization is reported as a validation error on the field, exactly like a missing one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::Filter;
use crate::error::{Error, Result};
use crate::kernel::Sealed;
use crate::model::{
    AccessLevel, DataSource, HealthData, HealthDataPatch, HealthDataType, NewHealthData, ReliabilityLevel,
    SensitivityLevel,
};
use crate::scope::Scope;
use crate::time::truncate;
use austa_crypto::Sensitive;

/// Repository of health data.
pub type HealthDataRepo<'s> = Repo<'s, HealthData>;

impl Scope {
    /// Health data of this scope's organization.
    pub fn health_data(&self) -> HealthDataRepo<'_> {
        Repo::new(self)
    }
}

/// Largest serialized size of one clinical payload.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Counts serialized bytes without keeping a plaintext copy.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks an encrypted JSON value: not JSON `null` (omit it instead), at most `max_bytes` once
/// serialized.
pub(super) fn json_payload(
    field: &str,
    v: Option<Sensitive<serde_json::Value>>,
    max_bytes: usize,
) -> Result<Option<Sensitive<serde_json::Value>>> {
    if let Some(p) = &v {
        if p.expose()?.is_null() {
            return Err(Error::validation(field, "must not be JSON null (omit it instead)"));
        }
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, p.expose()?)
            .map_err(|_| Error::validation(field, "is not serializable JSON"))?;
        if counter.0 > max_bytes {
            return Err(Error::validation(field, format!("must be at most {max_bytes} bytes of JSON")));
        }
    }
    Ok(v)
}

/// Checks one clinical payload.
fn payload(field: &str, v: Option<Sensitive<serde_json::Value>>) -> Result<Option<Sensitive<serde_json::Value>>> {
    json_payload(field, v, MAX_PAYLOAD_BYTES)
}

impl Sealed for HealthData {}

impl Model for HealthData {
    type New = NewHealthData;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewHealthData) -> Result<Self> {
        let mut model = HealthData {
            id,
            organization_id: organization,
            patient_id: new.patient_id,
            data_type: new.data_type,
            category: new.category,
            conditions: payload("conditions", new.conditions)?,
            medications: payload("medications", new.medications)?,
            allergies: payload("allergies", new.allergies)?,
            symptoms: payload("symptoms", new.symptoms)?,
            vital_signs: payload("vital_signs", new.vital_signs)?,
            lab_results: payload("lab_results", new.lab_results)?,
            source: new.source.unwrap_or(DataSource::UserReported),
            reliability: new.reliability.unwrap_or(ReliabilityLevel::Medium),
            is_verified: new.is_verified,
            verified_by_provider_id: new.verified_by_provider_id,
            verified_at: new.verified_at.map(truncate),
            sensitivity_level: new.sensitivity_level.unwrap_or(SensitivityLevel::Normal),
            access_level: new.access_level.unwrap_or(AccessLevel::PatientOnly),
            expires_at: new.expires_at.map(truncate),
            is_active: true,
            recorded_at: new.recorded_at.map(truncate).unwrap_or(now),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        model.check(now)?;
        Ok(model)
    }

    /// The access level must be one the actor could see itself (see
    /// [`Scope::authorize_access_level`]), and a provider records a verification only in its own name.
    fn authorize_fields(&self, scope: &Scope, action: Action, before: Option<&Self>) -> Result<()> {
        scope.authorize_access_level(Resource::HealthData, action, self.patient_id, self.access_level)?;
        if before.is_none_or(|b| b.verified_by_provider_id != self.verified_by_provider_id) {
            scope.authorize_acting_provider("verified_by_provider_id", self.verified_by_provider_id)?;
        }
        Ok(())
    }
}

impl Updatable for HealthData {
    type Patch = HealthDataPatch;

    fn apply(&mut self, p: HealthDataPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.data_type, p.data_type);
        patch!(self.category, p.category);
        patch!(self.conditions, p.conditions, |v| payload("conditions", v)?);
        patch!(self.medications, p.medications, |v| payload("medications", v)?);
        patch!(self.allergies, p.allergies, |v| payload("allergies", v)?);
        patch!(self.symptoms, p.symptoms, |v| payload("symptoms", v)?);
        patch!(self.vital_signs, p.vital_signs, |v| payload("vital_signs", v)?);
        patch!(self.lab_results, p.lab_results, |v| payload("lab_results", v)?);
        patch!(self.source, p.source);
        patch!(self.reliability, p.reliability);
        if let Some(v) = p.is_verified {
            if !v {
                // Unverifying drops the verifier; setting one again in the same patch is an error below.
                self.verified_by_provider_id = None;
                self.verified_at = None;
            }
            self.is_verified = v;
        }
        if let Some(v) = p.verified_by_provider_id {
            if v != self.verified_by_provider_id {
                // A new verifier is a new verification: its time is the patch's, or now.
                self.verified_at = None;
            }
            self.verified_by_provider_id = v;
        }
        patch!(self.verified_at, p.verified_at, |v| v.map(truncate));
        patch!(self.sensitivity_level, p.sensitivity_level);
        patch!(self.access_level, p.access_level);
        patch!(self.expires_at, p.expires_at, |v| v.map(truncate));
        patch!(self.is_active, p.is_active);
        patch!(self.recorded_at, p.recorded_at, |v| truncate(v));
        self.check(now)?;
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for HealthData {}

impl HealthDataRepo<'_> {
    /// A page of the patient's active health data, optionally of one type, newest first.
    pub async fn for_patient(
        &self,
        patient_id: Uuid,
        data_type: Option<HealthDataType>,
        page: PageRequest,
    ) -> Result<Page<HealthData>> {
        let mut filter = Filter::new().and_eq("patient_id", patient_id).and_eq("is_active", true);
        if let Some(t) = data_type {
            filter = filter.and_eq("type", t.as_str());
        }
        rows::list_where(self.scope(), filter, &page).await
    }

    /// Marks the record verified by `provider_id` now (`is_verified`, `verified_by_provider_id`,
    /// `verified_at`); returns the updated record. A provider of another organization is a validation
    /// error on `verified_by_provider_id` and changes nothing.
    pub async fn verify(&self, id: Uuid, provider_id: Uuid) -> Result<HealthData> {
        self.update(
            id,
            HealthDataPatch {
                is_verified: Some(true),
                verified_by_provider_id: Some(Some(provider_id)),
                verified_at: Some(Some(self.scope().now())),
                ..Default::default()
            },
        )
        .await
    }
}
