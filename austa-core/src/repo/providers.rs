//! Providers: the generic operations plus lookups by e-mail (through its blind index) and by license,
//! and the listing of active providers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::db::{Filter, IntoValue, Row, Value};
use crate::error::Result;
use crate::kernel::Sealed;
use crate::model::{NewProvider, Provider, ProviderPatch};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::{BlindIndexKind, RowCrypto, Sensitive};

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
    const TABLE: &'static str = "providers";
    const ENTITY: &'static str = "provider";
    const SOFT_DELETE: bool = true;

    fn id(&self) -> Uuid {
        self.id
    }

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

    fn columns(&self, c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("title", self.title.clone().into_value()),
            ("first_name", self.first_name.clone().into_value()),
            ("last_name", self.last_name.clone().into_value()),
            ("email", c.text("email", &self.email)?),
            ("email_bidx", c.blind(BlindIndexKind::Email, self.email.expose()?)?),
            ("phone", c.opt_text("phone", self.phone.as_ref())?),
            ("license", self.license.clone().into_value()),
            ("specialty", serde_json::json!(self.specialty).into_value()),
            ("role", self.role.as_str().into_value()),
            ("is_active", self.is_active.into_value()),
            ("created_at", self.created_at.into_value()),
            ("updated_at", self.updated_at.into_value()),
            ("deleted_at", self.deleted_at.into_value()),
        ])
    }

    fn from_row(row: &Row, c: &RowCrypto<'_>) -> Result<Self> {
        Ok(Provider {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            title: row.opt_text("title")?,
            first_name: row.text("first_name")?,
            last_name: row.text("last_name")?,
            email: c.open_text(row, "email")?,
            phone: c.open_opt_text(row, "phone")?,
            license: row.opt_text("license")?,
            specialty: row.string_list("specialty")?,
            role: row.enumeration("role")?,
            is_active: row.bool("is_active")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            deleted_at: row.opt_time("deleted_at")?,
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
