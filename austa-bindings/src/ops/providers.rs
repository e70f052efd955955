//! `providers.*`: doctors, nurses and the other staff of the organization.

use austa_core::model::{NewProvider, Provider, ProviderPatch};
use austa_core::repo::Page;
use austa_core::{Result, Scope};
use serde::Deserialize;

use super::{page, ScopeOperation};

table_ops!("providers", Provider, NewProvider, ProviderPatch: get, list, create, create_many, update, delete, restore);

/// The live provider with this e-mail address, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByEmail {
    /// The e-mail address (compared case-insensitively).
    pub email: String,
}

impl ScopeOperation for FindByEmail {
    const NAME: &'static str = "providers.find_by_email";
    type Output = Option<Provider>;
    async fn run(self, scope: &Scope) -> Result<Option<Provider>> {
        scope.providers().find_by_email(&self.email).await
    }
}

/// The live provider with this professional license number, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByLicense {
    /// The license number (CRM, COREN, ...).
    pub license_number: String,
}

impl ScopeOperation for FindByLicense {
    const NAME: &'static str = "providers.find_by_license";
    type Output = Option<Provider>;
    async fn run(self, scope: &Scope) -> Result<Option<Provider>> {
        scope.providers().find_by_license(&self.license_number).await
    }
}

/// Active providers, a page at a time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListActive {
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl ScopeOperation for ListActive {
    const NAME: &'static str = "providers.list_active";
    type Output = Page<Provider>;
    async fn run(self, scope: &Scope) -> Result<Page<Provider>> {
        scope.providers().list_active(page(self.limit, self.after)?).await
    }
}
