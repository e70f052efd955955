//! Providers: the generic operations plus lookups by e-mail (through its blind index) and by license,
//! and the listing of active providers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::db::Filter;
use crate::error::Result;
use crate::kernel::Sealed;
use crate::model::{NewProvider, Provider, ProviderPatch};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::{BlindIndexKind, Sensitive};

/// Repository of providers.
pub type Providers<'s> = Repo<'s, Provider>;

impl Scope {
    /// Providers of this scope's organization.
    pub fn providers(&self) -> Providers<'_> {
        Repo::new(self)
    }
}

fn name(field: &str, v: &str) -> Result<String> {
    validate::text(field, v, 1, 100)
}

fn title(v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text("title", v, 1, 20)
}

fn license(v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text("license", v, 1, 50)
}

fn email(v: &Sensitive<String>) -> Result<Sensitive<String>> {
    validate::email("email", v.expose()?).map(Sensitive::new)
}

fn phone(v: Option<&Sensitive<String>>) -> Result<Option<Sensitive<String>>> {
    v.map(|p| validate::phone("phone", p.expose()?).map(Sensitive::new)).transpose()
}

impl Sealed for Provider {}

impl Model for Provider {
    type New = NewProvider;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewProvider) -> Result<Self> {
        Ok(Provider {
            id,
            organization_id: organization,
            title: title(new.title.as_deref())?,
            first_name: name("first_name", &new.first_name)?,
            last_name: name("last_name", &new.last_name)?,
            email: email(&new.email)?,
            phone: phone(new.phone.as_ref())?,
            license: license(new.license.as_deref())?,
            specialty: validate::labels("specialty", &new.specialty)?,
            role: new.role,
            is_active: new.is_active.unwrap_or(true),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Updatable for Provider {
    type Patch = ProviderPatch;

    fn apply(&mut self, p: ProviderPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.title, p.title, |v| title(v.as_deref())?);
        patch!(self.first_name, p.first_name, |v| name("first_name", &v)?);
        patch!(self.last_name, p.last_name, |v| name("last_name", &v)?);
        patch!(self.email, p.email, |v| email(&v)?);
        patch!(self.phone, p.phone, |v| phone(v.as_ref())?);
        patch!(self.license, p.license, |v| license(v.as_deref())?);
        patch!(self.specialty, p.specialty, |v| validate::labels("specialty", &v)?);
        patch!(self.role, p.role);
        patch!(self.is_active, p.is_active);
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Provider {}

impl Providers<'_> {
    /// The provider with this e-mail (case-insensitive), if any.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Provider>> {
        let normalized = validate::email("email", email)?;
        rows::find_by_blind(self.scope(), "email_bidx", BlindIndexKind::Email, &normalized, "").await
    }

    /// The provider with this professional license (surrounding spaces ignored), if any.
    pub async fn find_by_license(&self, license: &str) -> Result<Option<Provider>> {
        let normalized = validate::text("license", license, 1, 50)?;
        rows::find_where(self.scope(), Filter::new().and_eq("license", normalized)).await
    }

    /// A page of active providers, newest first.
    pub async fn list_active(&self, page: PageRequest) -> Result<Page<Provider>> {
        rows::list_where(self.scope(), Filter::new().and_eq("is_active", true), &page).await
    }
}
