//! The scope's own organization: reading and changing it, and routing WhatsApp numbers to it.

use austa_core::model::OrganizationPatch;
use austa_core::{Result, Scope};
use serde::Deserialize;

use super::ScopeOperation;

/// The scope's organization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {}

impl ScopeOperation for Organization {
    const NAME: &'static str = "organization";
    type Output = austa_core::model::Organization;
    async fn run(self, scope: &Scope) -> Result<Self::Output> {
        scope.organization().await
    }
}

/// Changes the scope's organization (administrators).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// The fields to change.
    pub patch: OrganizationPatch,
}

impl ScopeOperation for UpdateOrganization {
    const NAME: &'static str = "update_organization";
    type Output = austa_core::model::Organization;
    async fn run(self, scope: &Scope) -> Result<Self::Output> {
        scope.update_organization(self.patch).await
    }
}

/// Routes webhooks for this WhatsApp phone number id to the scope's organization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterWhatsappNumber {
    /// The phone number id of the WhatsApp Business account.
    pub phone_number_id: String,
}

impl ScopeOperation for RegisterWhatsappNumber {
    const NAME: &'static str = "register_whatsapp_number";
    type Output = ();
    async fn run(self, scope: &Scope) -> Result<()> {
        scope.register_whatsapp_number(&self.phone_number_id).await
    }
}

/// Stops routing this phone number id to the scope's organization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnregisterWhatsappNumber {
    /// The phone number id.
    pub phone_number_id: String,
}

impl ScopeOperation for UnregisterWhatsappNumber {
    const NAME: &'static str = "unregister_whatsapp_number";
    type Output = ();
    async fn run(self, scope: &Scope) -> Result<()> {
        scope.unregister_whatsapp_number(&self.phone_number_id).await
    }
}
