//! `organizations.*` of the database: the tenants themselves, a platform operation that needs no
//! scope.

use austa_core::model::{NewOrganization, Organization, OrganizationPatch};
use austa_core::repo::Page;
use austa_core::{Database, Result};
use serde::Deserialize;
use uuid::Uuid;

use super::{page, DatabaseOperation};

/// Creates an organization; its key is created with it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    /// The organization.
    pub data: NewOrganization,
}

impl DatabaseOperation for Create {
    const NAME: &'static str = "organizations.create";
    type Output = Organization;
    async fn run(self, db: &Database) -> Result<Organization> {
        db.organizations().create(self.data).await
    }
}

/// One organization; `not_found` otherwise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Get {
    /// The organization's id.
    pub id: Uuid,
}

impl DatabaseOperation for Get {
    const NAME: &'static str = "organizations.get";
    type Output = Organization;
    async fn run(self, db: &Database) -> Result<Organization> {
        db.organizations().get(self.id).await
    }
}

/// The organization with this CNPJ, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindByTaxId {
    /// The CNPJ, formatted or 14 digits.
    pub cnpj: String,
}

impl DatabaseOperation for FindByTaxId {
    const NAME: &'static str = "organizations.find_by_tax_id";
    type Output = Option<Organization>;
    async fn run(self, db: &Database) -> Result<Option<Organization>> {
        db.organizations().find_by_tax_id(&self.cnpj).await
    }
}

/// Changes an organization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// The organization's id.
    pub id: Uuid,
    /// The fields to change.
    pub patch: OrganizationPatch,
}

impl DatabaseOperation for Update {
    const NAME: &'static str = "organizations.update";
    type Output = Organization;
    async fn run(self, db: &Database) -> Result<Organization> {
        db.organizations().update(self.id, self.patch).await
    }
}

/// Soft-deletes an organization.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// The organization's id.
    pub id: Uuid,
}

impl DatabaseOperation for Delete {
    const NAME: &'static str = "organizations.delete";
    type Output = ();
    async fn run(self, db: &Database) -> Result<()> {
        db.organizations().delete(self.id).await
    }
}

/// One page of organizations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// Rows per page.
    pub limit: Option<u32>,
    /// The previous page's `next` cursor.
    pub after: Option<String>,
}

impl DatabaseOperation for List {
    const NAME: &'static str = "organizations.list";
    type Output = Page<Organization>;
    async fn run(self, db: &Database) -> Result<Page<Organization>> {
        db.organizations().list(page(self.limit, self.after)?).await
    }
}
