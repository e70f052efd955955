//! Providers: the doctors, nurses and staff of an organization who answer patients.
//!
//! Design decisions: the professional title ("Dr.", "Enf.") is its own field (the original put it in
//! the first name); names, license and specialties are professional information and stay plain, while
//! the e-mail (blind-indexed, unique per organization) and phone are encrypted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::ProviderRole;
use austa_crypto::Sensitive;

/// A healthcare professional of one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "providers", soft_delete)]
pub struct Provider {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// Professional title, e.g. `Dr.`, `Dra.`, `Enf.`.
    pub title: Option<String>,
    /// Given name, without title.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E-mail, lower case (encrypted, blind-indexed, unique per organization).
    #[record(blind = "Email")]
    pub email: Sensitive<String>,
    /// Phone in E.164 (encrypted).
    pub phone: Option<Sensitive<String>>,
    /// Professional license, e.g. `CRM-SP 123456` (unique per organization).
    pub license: Option<String>,
    /// Specialties, e.g. `["CARDIOLOGY", "GENERAL"]`.
    pub specialty: Vec<String>,
    /// Role in the organization.
    pub role: ProviderRole,
    /// Whether the provider is active.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.providers().create(...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// Professional title, 1 to 20 characters.
    pub title: Option<String>,
    /// Given name without title, 1 to 100 characters.
    pub first_name: String,
    /// Family name, 1 to 100 characters.
    pub last_name: String,
    /// E-mail address (normalized to lower case).
    pub email: Sensitive<String>,
    /// Phone; E.164 or a Brazilian number without `+55`.
    pub phone: Option<Sensitive<String>>,
    /// Professional license, 1 to 50 characters.
    pub license: Option<String>,
    /// Specialties (each 1 to 100 characters, at most 100).
    #[serde(default)]
    pub specialty: Vec<String>,
    /// Role in the organization.
    pub role: ProviderRole,
    /// Whether the provider starts active; default true.
    pub is_active: Option<bool>,
}

impl NewProvider {
    /// A new provider with the required fields and defaults elsewhere.
    pub fn new(
        first_name: impl Into<String>,
        last_name: impl Into<String>,
        email: impl Into<String>,
        role: ProviderRole,
    ) -> Self {
        Self {
            title: None,
            first_name: first_name.into(),
            last_name: last_name.into(),
            email: Sensitive::new(email.into()),
            phone: None,
            license: None,
            specialty: Vec::new(),
            role,
            is_active: None,
        }
    }
}

/// Input of `scope.providers().update(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderPatch {
    /// New title (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub title: Option<Option<String>>,
    /// New given name.
    pub first_name: Option<String>,
    /// New family name.
    pub last_name: Option<String>,
    /// New e-mail.
    pub email: Option<Sensitive<String>>,
    /// New phone (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub phone: Option<Option<Sensitive<String>>>,
    /// New license (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub license: Option<Option<String>>,
    /// New specialties.
    pub specialty: Option<Vec<String>>,
    /// New role.
    pub role: Option<ProviderRole>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
}
