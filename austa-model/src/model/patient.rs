//! Patients (the reference's `User`): people who talk to their hospital or clinic over WhatsApp.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::Gender;
use austa_crypto::Sensitive;

/// A patient of one organization. Identifiers (phone, CPF, e-mail, WhatsApp id) are unique per
/// organization through blind indexes; the same person may be a patient of two organizations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "patients", soft_delete, owner = "id")]
pub struct Patient {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// Given name (encrypted).
    pub first_name: Sensitive<String>,
    /// Family name (encrypted).
    pub last_name: Sensitive<String>,
    /// E-mail, lower case (encrypted, blind-indexed).
    #[record(blind = "Email")]
    pub email: Option<Sensitive<String>>,
    /// Phone in E.164, the WhatsApp number (encrypted, blind-indexed).
    #[record(blind = "Phone")]
    pub phone: Sensitive<String>,
    /// CPF as 11 digits (encrypted, blind-indexed).
    #[record(blind = "Cpf")]
    pub cpf: Option<Sensitive<String>>,
    /// Date of birth (encrypted).
    pub date_of_birth: Option<Sensitive<NaiveDate>>,
    /// Gender (encrypted).
    pub gender: Option<Sensitive<Gender>>,
    /// WhatsApp Business API user id (encrypted, blind-indexed).
    #[record(blind = "WhatsappId")]
    pub whatsapp_id: Option<Sensitive<String>>,
    /// BCP 47 language tag, default `pt-BR`.
    pub preferred_language: String,
    /// IANA time zone, default `America/Sao_Paulo`.
    pub timezone: String,
    /// Whether the patient may use the service.
    pub is_active: bool,
    /// Whether the patient's identity was verified.
    pub is_verified: bool,
    /// Last interaction.
    pub last_active_at: DateTime<Utc>,
    /// Emergency contact (encrypted).
    pub emergency_contact: Option<Sensitive<EmergencyContact>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the patient's keys were destroyed (crypto-shredding); their encrypted fields read as erased.
    pub erased_at: Option<DateTime<Utc>>,
}

/// Whom to call in an emergency. Stored encrypted as one JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyContact {
    /// Contact's name.
    pub name: String,
    /// Contact's phone (normalized to E.164 on write).
    pub phone: String,
    /// Relationship to the patient (`spouse`, `father`, ...).
    pub relationship: String,
}

/// Input of `scope.patients().create(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewPatient {
    /// Given name, 1 to 100 characters.
    pub first_name: Sensitive<String>,
    /// Family name, 1 to 100 characters.
    pub last_name: Sensitive<String>,
    /// Phone; E.164 or a Brazilian number without `+55`.
    pub phone: Sensitive<String>,
    /// E-mail address.
    pub email: Option<Sensitive<String>>,
    /// CPF, formatted or 11 digits; check digits are verified.
    pub cpf: Option<Sensitive<String>>,
    /// Date of birth; not in the future, not before 1900.
    pub date_of_birth: Option<Sensitive<NaiveDate>>,
    /// Gender.
    pub gender: Option<Sensitive<Gender>>,
    /// WhatsApp user id.
    pub whatsapp_id: Option<Sensitive<String>>,
    /// Language tag; default `pt-BR`.
    pub preferred_language: Option<String>,
    /// IANA time zone; default `America/Sao_Paulo`.
    pub timezone: Option<String>,
    /// Whether identity is verified; default false.
    pub is_verified: bool,
    /// Emergency contact.
    pub emergency_contact: Option<Sensitive<EmergencyContact>>,
}

/// Input of `scope.patients().update(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientPatch {
    /// New given name.
    pub first_name: Option<Sensitive<String>>,
    /// New family name.
    pub last_name: Option<Sensitive<String>>,
    /// New phone.
    pub phone: Option<Sensitive<String>>,
    /// New e-mail (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub email: Option<Option<Sensitive<String>>>,
    /// New CPF (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub cpf: Option<Option<Sensitive<String>>>,
    /// New date of birth (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub date_of_birth: Option<Option<Sensitive<NaiveDate>>>,
    /// New gender (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub gender: Option<Option<Sensitive<Gender>>>,
    /// New WhatsApp id (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub whatsapp_id: Option<Option<Sensitive<String>>>,
    /// New language tag.
    pub preferred_language: Option<String>,
    /// New time zone.
    pub timezone: Option<String>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// Mark verified or not.
    pub is_verified: Option<bool>,
    /// Record activity at this time.
    pub last_active_at: Option<DateTime<Utc>>,
    /// New emergency contact (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub emergency_contact: Option<Option<Sensitive<EmergencyContact>>>,
}
