//! Health data (the reference's `HealthData`): one clinical record of a patient (a condition, a
//! medication, an allergy, vital signs, lab results, ...).
//!
//! Design decisions:
//! * The six clinical payloads are free JSON encrypted as a whole (`Sensitive<serde_json::Value>`); a
//!   record must carry at least one of them (validation error on field `payload` otherwise), and none
//!   may be JSON `null` (omit it instead).
//! * Verification is all or nothing: `is_verified` requires `verified_by_provider_id` (a real provider
//!   of the same organization) and `verified_at`. When the verifier is given without a time, the time
//!   is set to now (the original seed marked rows verified without `verifiedAt`). An unverified record
//!   carries neither a verifier nor a verification time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{AccessLevel, DataSource, HealthCategory, HealthDataType, ReliabilityLevel, SensitivityLevel};
use austa_crypto::Sensitive;
use austa_error::{Error, Result};

use crate::validate;

/// One clinical record of a patient. The clinical payloads are encrypted; classification, source and
/// verification metadata are plain so that they can be filtered on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "health_data", soft_delete, owner = "patient_id")]
pub struct HealthData {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The patient the record belongs to.
    pub patient_id: Uuid,
    /// Kind of record (stored in column `type`).
    #[record(column = "type")]
    pub data_type: HealthDataType,
    /// Clinical area.
    pub category: HealthCategory,
    /// Medical conditions (encrypted JSON).
    pub conditions: Option<Sensitive<serde_json::Value>>,
    /// Medications with dosages (encrypted JSON).
    pub medications: Option<Sensitive<serde_json::Value>>,
    /// Known allergies (encrypted JSON).
    pub allergies: Option<Sensitive<serde_json::Value>>,
    /// Current symptoms (encrypted JSON).
    pub symptoms: Option<Sensitive<serde_json::Value>>,
    /// The measured values, such as blood pressure or weight (encrypted JSON).
    pub vital_signs: Option<Sensitive<serde_json::Value>>,
    /// Laboratory results (encrypted JSON).
    pub lab_results: Option<Sensitive<serde_json::Value>>,
    /// Where the record came from.
    pub source: DataSource,
    /// How far it can be trusted.
    pub reliability: ReliabilityLevel,
    /// Whether a provider verified it (then `verified_by_provider_id` and `verified_at` are set).
    pub is_verified: bool,
    /// The provider who verified it.
    pub verified_by_provider_id: Option<Uuid>,
    /// When it was verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// Data classification.
    pub sensitivity_level: SensitivityLevel,
    /// Who may see it.
    pub access_level: AccessLevel,
    /// When temporary data stops being relevant.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the record is current (inactive records are history).
    pub is_active: bool,
    /// When the observation was made.
    pub recorded_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.health_data().create(...)`. Start from [`NewHealthData::new`] and set the payloads.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHealthData {
    /// The patient (must exist in the scope's organization).
    pub patient_id: Uuid,
    /// Kind of record.
    pub data_type: HealthDataType,
    /// Clinical area.
    pub category: HealthCategory,
    /// Medical conditions.
    pub conditions: Option<Sensitive<serde_json::Value>>,
    /// Medications.
    pub medications: Option<Sensitive<serde_json::Value>>,
    /// Allergies.
    pub allergies: Option<Sensitive<serde_json::Value>>,
    /// Symptoms.
    pub symptoms: Option<Sensitive<serde_json::Value>>,
    /// Vital signs.
    pub vital_signs: Option<Sensitive<serde_json::Value>>,
    /// Lab results.
    pub lab_results: Option<Sensitive<serde_json::Value>>,
    /// Source; default `USER_REPORTED`.
    pub source: Option<DataSource>,
    /// Reliability; default `MEDIUM`.
    pub reliability: Option<ReliabilityLevel>,
    /// Whether a provider verified the record; requires `verified_by_provider_id`.
    #[serde(default)]
    pub is_verified: bool,
    /// The verifying provider (only with `is_verified`).
    pub verified_by_provider_id: Option<Uuid>,
    /// Verification time (only with `is_verified`); default now when verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// Classification; default `NORMAL`.
    pub sensitivity_level: Option<SensitivityLevel>,
    /// Access; default `PATIENT_ONLY`.
    pub access_level: Option<AccessLevel>,
    /// Expiry of temporary data; not before `recorded_at`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Observation time; default now.
    pub recorded_at: Option<DateTime<Utc>>,
}

impl NewHealthData {
    /// A record of `data_type` in `category` for `patient_id`, every other field at its default (no
    /// payload yet: set at least one before creating).
    pub fn new(patient_id: Uuid, data_type: HealthDataType, category: HealthCategory) -> Self {
        Self {
            patient_id,
            data_type,
            category,
            conditions: None,
            medications: None,
            allergies: None,
            symptoms: None,
            vital_signs: None,
            lab_results: None,
            source: None,
            reliability: None,
            is_verified: false,
            verified_by_provider_id: None,
            verified_at: None,
            sensitivity_level: None,
            access_level: None,
            expires_at: None,
            recorded_at: None,
        }
    }
}

/// Input of `scope.health_data().update(...)`. The patient cannot be changed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthDataPatch {
    /// New kind of record.
    pub data_type: Option<HealthDataType>,
    /// New clinical area.
    pub category: Option<HealthCategory>,
    /// New conditions (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub conditions: Option<Option<Sensitive<serde_json::Value>>>,
    /// New medications (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub medications: Option<Option<Sensitive<serde_json::Value>>>,
    /// New allergies (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub allergies: Option<Option<Sensitive<serde_json::Value>>>,
    /// New symptoms (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub symptoms: Option<Option<Sensitive<serde_json::Value>>>,
    /// New vital signs (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub vital_signs: Option<Option<Sensitive<serde_json::Value>>>,
    /// New lab results (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub lab_results: Option<Option<Sensitive<serde_json::Value>>>,
    /// New source.
    pub source: Option<DataSource>,
    /// New reliability.
    pub reliability: Option<ReliabilityLevel>,
    /// Verify or unverify; `Some(false)` also clears the verifier and the verification time.
    pub is_verified: Option<bool>,
    /// New verifier (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub verified_by_provider_id: Option<Option<Uuid>>,
    /// New verification time (`Some(None)` clears it; a verified record then gets now).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub verified_at: Option<Option<DateTime<Utc>>>,
    /// New classification.
    pub sensitivity_level: Option<SensitivityLevel>,
    /// New access level.
    pub access_level: Option<AccessLevel>,
    /// New expiry (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New observation time.
    pub recorded_at: Option<DateTime<Utc>>,
}

impl HealthData {
    /// Checks the cross-field rules on the final state (after defaults on create, after a patch on
    /// update); fills `verified_at` with `now` for a verified record
    /// without one.
    pub fn check(&mut self, now: DateTime<Utc>) -> Result<()> {
        let payloads = [
            &self.conditions,
            &self.medications,
            &self.allergies,
            &self.symptoms,
            &self.vital_signs,
            &self.lab_results,
        ];
        if payloads.iter().all(|p| p.is_none()) {
            return Err(Error::validation(
                "payload",
                "at least one of conditions, medications, allergies, symptoms, vital_signs, lab_results is required",
            ));
        }
        if self.is_verified {
            if self.verified_by_provider_id.is_none() {
                return Err(Error::validation("verified_by_provider_id", "is required when is_verified is true"));
            }
            if self.verified_at.is_none() {
                self.verified_at = Some(now);
            }
        } else if self.verified_by_provider_id.is_some() {
            return Err(Error::validation("verified_by_provider_id", "requires is_verified"));
        } else if self.verified_at.is_some() {
            return Err(Error::validation("verified_at", "requires is_verified"));
        }
        validate::ordered("expires_at", Some(&self.recorded_at), self.expires_at.as_ref())
    }
}
