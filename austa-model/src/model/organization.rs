//! Organizations: the hospitals and clinics that are the platform's tenants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::OrganizationType;
use austa_crypto::Sensitive;

/// A tenant. Its CNPJ is unique across the platform; everything else it owns is scoped to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "organizations", soft_delete)]
pub struct Organization {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Kind of organization.
    #[record(column = "type")]
    pub organization_type: OrganizationType,
    /// CNPJ as 14 digits (check digits verified).
    pub tax_id: Option<String>,
    /// Postal address (public information, stored plain).
    #[record(json)]
    pub address: Option<Address>,
    /// Public contact phone in E.164.
    pub phone: Option<String>,
    /// Public contact e-mail.
    pub email: Option<String>,
    /// Whether the organization is active.
    pub is_active: bool,
    /// Organization-specific configuration (encrypted: it holds integration identifiers).
    pub settings: Option<Sensitive<serde_json::Value>>,
    /// Privacy regimes the organization operates under, e.g. `["LGPD"]` (the original's
    /// `hipaaCompliant` flag, named generically).
    pub compliance_regimes: Vec<String>,
    /// Years clinical records are retained (default 20, the minimum of Lei 13.787/2018 for
    /// prontuários).
    pub data_retention_years: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State (UF), e.g. `SP`.
    pub state: String,
    /// CEP.
    pub zip_code: String,
    /// Country.
    pub country: String,
}

/// Input of `db.organizations().create(...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Kind of organization.
    pub organization_type: OrganizationType,
    /// CNPJ, formatted or 14 digits.
    pub tax_id: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Contact e-mail.
    pub email: Option<String>,
    /// Settings (stored encrypted).
    pub settings: Option<Sensitive<serde_json::Value>>,
    /// Privacy regimes; default `["LGPD"]`.
    pub compliance_regimes: Option<Vec<String>>,
    /// Retention in years; default 20.
    pub data_retention_years: Option<i64>,
}

impl NewOrganization {
    /// A new organization with the given name and type and defaults elsewhere.
    pub fn new(name: impl Into<String>, organization_type: OrganizationType) -> Self {
        Self {
            name: name.into(),
            organization_type,
            tax_id: None,
            address: None,
            phone: None,
            email: None,
            settings: None,
            compliance_regimes: None,
            data_retention_years: None,
        }
    }
}

/// Input of `db.organizations().update(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrganizationPatch {
    /// New name.
    pub name: Option<String>,
    /// New type.
    pub organization_type: Option<OrganizationType>,
    /// New CNPJ (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub tax_id: Option<Option<String>>,
    /// New address (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub address: Option<Option<Address>>,
    /// New phone (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub phone: Option<Option<String>>,
    /// New e-mail (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub email: Option<Option<String>>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New settings (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub settings: Option<Option<Sensitive<serde_json::Value>>>,
    /// New regimes.
    pub compliance_regimes: Option<Vec<String>>,
    /// New retention.
    pub data_retention_years: Option<i64>,
}
