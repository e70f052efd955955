//! Organizations. Unlike every other table, `organizations` is platform-level (the Citus reference
//! table): it is managed through [`Database::organizations`], by platform operators, not through a
//! tenant scope. A scope can read its own organization with [`Scope::organization`].
//!
//! Creating an organization also creates its first data key in the same transaction, so its
//! encrypted settings can be written at once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::{Action, Resource};
use crate::db::{Database, IntoValue, Query, QueryBuilder, Row, RowLock, TxMode};
use crate::error::{Error, Result};
use crate::kernel::event::read_event;
use crate::kernel::Record;
use crate::kernel::{check, AuditTx, Event};
use crate::model::AuditAction;
use crate::model::{NewOrganization, Organization, OrganizationPatch};
use crate::page::{Cursor, Page, PageRequest};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::KeySet;

const TABLE: &str = "organizations";

/// Platform-level repository of organizations.
pub struct Organizations<'d> {
    db: &'d Database,
}

impl Database {
    /// Organizations (platform-level operations).
    pub fn organizations(&self) -> Organizations<'_> {
        Organizations { db: self }
    }
}

impl Scope {
    /// Updates the scope's own organization (its administrators manage name, contacts and settings).
    /// Recorded as `CONFIG_CHANGE` with the names of the fields the patch sets.
    pub async fn update_organization(&self, patch: OrganizationPatch) -> Result<Organization> {
        let allowed = self.authorize(Resource::Organization, Action::Update);
        check(self, TABLE, Action::Update, Some(self.organization_id()), None, allowed).await?;
        self.db().organizations().update_as(self, patch).await
    }

    /// The scope's own organization (its settings decrypted; recorded as a read).
    pub async fn organization(&self) -> Result<Organization> {
        let id = self.organization_id();
        check(self, TABLE, Action::Read, Some(id), None, self.authorize(Resource::Organization, Action::Read)).await?;
        let mut tx = AuditTx::begin_read(self).await?;
        let row = tx
            .fetch_optional(Query::new("SELECT * FROM organizations WHERE id = $1 AND deleted_at IS NULL").bind(id))
            .await?;
        tx.record(read_event(TABLE, row.as_slice(), Some(id))?).await?;
        tx.commit().await?;
        decode(self.db(), &row.ok_or_else(|| Error::not_found("organization"))?).await
    }
}

fn validate_fields(o: &mut Organization) -> Result<()> {
    o.name = validate::text("name", &o.name, 1, 200)?;
    o.tax_id = o.tax_id.as_deref().map(|t| validate::cnpj("tax_id", t)).transpose()?;
    o.phone = o.phone.as_deref().map(|p| validate::phone("phone", p)).transpose()?;
    o.email = o.email.as_deref().map(|e| validate::email("email", e)).transpose()?;
    o.compliance_regimes = validate::labels("compliance_regimes", &o.compliance_regimes)?;
    // The settings the library reads itself are checked when they are written, so that a bad value
    // is refused here rather than breaking every later operation that reads it (the retention policy
    // of every `documents().register`). Also checks `data_retention_years`.
    let settings = o.settings.as_ref().map(|s| s.expose()).transpose()?;
    crate::model::RetentionPolicy::from_settings(o.data_retention_years, settings)?;
    if let Some(a) = &o.address {
        validate::text("address.street", &a.street, 1, 200)?;
        validate::text("address.city", &a.city, 1, 100)?;
        validate::text("address.state", &a.state, 1, 50)?;
    }
    Ok(())
}

/// The columns of `o` as stored (settings encrypted under the organization's own key), without
/// `id` and `created_at`, which never change.
fn columns(o: &Organization, keys: &KeySet) -> Result<Vec<(&'static str, crate::db::Value)>> {
    let cols = o.columns(&keys.row(TABLE, o.id, None)?)?;
    Ok(cols.into_iter().filter(|(n, _)| *n != "id" && *n != "created_at").collect())
}

/// Decodes an organization under its keys, reloading them once if another process rotated them.
async fn decode(db: &Database, row: &Row) -> Result<Organization> {
    let id = row.uuid("id")?;
    let keys = db.key_set(id, None).await?;
    match from_row(row, &keys) {
        Err(e) if crate::kernel::rows::is_unknown_key(&e) => match db.refresh_key_set(&keys).await? {
            Some(fresh) => from_row(row, &fresh),
            None => Err(e),
        },
        decoded => decoded,
    }
}

fn from_row(row: &Row, keys: &KeySet) -> Result<Organization> {
    Organization::from_row(row, &keys.row(TABLE, row.uuid("id")?, None)?)
}

impl Organizations<'_> {
    /// Creates an organization and its first key. The key is created first, in the key store (which
    /// may be a separate database): a key left behind by a failed insert protects nothing.
    pub async fn create(&self, new: NewOrganization) -> Result<Organization> {
        self.create_with_id(Uuid::now_v7(), new).await
    }

    pub(crate) async fn create_with_id(&self, id: Uuid, new: NewOrganization) -> Result<Organization> {
        let now = self.db.now();
        let mut org = Organization {
            id,
            name: new.name,
            organization_type: new.organization_type,
            tax_id: new.tax_id,
            address: new.address,
            phone: new.phone,
            email: new.email,
            is_active: true,
            settings: new.settings,
            compliance_regimes: new.compliance_regimes.unwrap_or_else(|| vec!["LGPD".to_string()]),
            data_retention_years: new.data_retention_years.unwrap_or(20),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        validate_fields(&mut org)?;
        if self.exists(id).await? {
            return Err(Error::Conflict { field: "id".into() });
        }
        self.db.keyring().create_org_key(id).await?;
        let keys = self.db.key_set(id, None).await?;
        let cols = columns(&org, &keys)?;
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        let written: Vec<&'static str> = cols.iter().filter(|(_, v)| !v.is_null()).map(|(n, _)| *n).collect();
        let mut q =
            QueryBuilder::new(format!("INSERT INTO organizations (id, created_at, {}) VALUES ", names.join(", ")));
        q.push_tuple([id.into_value(), now.into_value()].into_iter().chain(cols.into_iter().map(|(_, v)| v)));
        let insert = q.build();
        // Audited in the new organization's own chain, as the platform.
        let scope = Scope::platform_for(self.db, id);
        let mut tx = AuditTx::begin(&scope).await?;
        tx.execute(insert).await?;
        tx.record(Event::on(AuditAction::Create, TABLE).entity(id).records([id]).changed(written)).await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Whether an organization with `id` exists, soft-deleted or not.
    pub(crate) async fn exists(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.db.begin(Some(id), TxMode::Read).await?;
        let row = tx.fetch_optional(Query::new("SELECT id FROM organizations WHERE id = $1").bind(id)).await?;
        tx.commit().await?;
        Ok(row.is_some())
    }

    /// The organization with `id` (not soft-deleted), or `not_found`. Its settings are decrypted, so
    /// the read is recorded in its chain, as the platform.
    pub async fn get(&self, id: Uuid) -> Result<Organization> {
        if !self.exists(id).await? {
            return Err(Error::not_found("organization"));
        }
        let scope = Scope::platform_for(self.db, id);
        let mut tx = AuditTx::begin_read(&scope).await?;
        let row = tx
            .fetch_optional(Query::new("SELECT * FROM organizations WHERE id = $1 AND deleted_at IS NULL").bind(id))
            .await?;
        tx.record(read_event(TABLE, row.as_slice(), Some(id))?).await?;
        tx.commit().await?;
        let row = row.ok_or_else(|| Error::not_found("organization"))?;
        decode(self.db, &row).await
    }

    /// The organization with this CNPJ, if any.
    pub async fn find_by_tax_id(&self, cnpj: &str) -> Result<Option<Organization>> {
        let digits = validate::cnpj("tax_id", cnpj)?;
        let mut tx = self.db.begin(None, TxMode::Read).await?;
        let row = tx
            .fetch_optional(
                Query::new("SELECT id FROM organizations WHERE tax_id = $1 AND deleted_at IS NULL").bind(digits),
            )
            .await?;
        tx.commit().await?;
        match row {
            Some(r) => self.get(r.uuid("id")?).await.map(Some),
            None => Ok(None),
        }
    }

    /// Applies `patch` in one transaction, with the row locked; returns the updated organization.
    /// Recorded as `CONFIG_CHANGE` by the platform in the organization's chain.
    pub async fn update(&self, id: Uuid, patch: OrganizationPatch) -> Result<Organization> {
        if !self.exists(id).await? {
            return Err(Error::not_found("organization"));
        }
        self.update_as(&Scope::platform_for(self.db, id), patch).await
    }

    /// [`Organizations::update`] of the scope's organization, recorded under the scope's actor.
    pub(crate) async fn update_as(&self, scope: &Scope, patch: OrganizationPatch) -> Result<Organization> {
        let id = scope.organization_id();
        let changed = patch_fields(&patch);
        let keys = self.db.key_set(id, None).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let lock = tx.lock(RowLock::Update);
        let row = tx
            .fetch_optional(
                Query::new(format!("SELECT * FROM organizations WHERE id = $1 AND deleted_at IS NULL{lock}")).bind(id),
            )
            .await?
            .ok_or_else(|| Error::not_found("organization"))?;
        let mut org = from_row(&row, &keys)?;
        apply(&mut org, patch, scope.now())?;
        let cols = columns(&org, &keys)?;
        let mut q = QueryBuilder::new("UPDATE organizations SET ");
        q.push_assignments(cols).push(" WHERE id = ").push_bind(id).push(" AND deleted_at IS NULL");
        if tx.execute(q.build()).await? == 0 {
            return Err(Error::not_found("organization"));
        }
        tx.record(Event::on(AuditAction::ConfigChange, TABLE).entity(id).records([id]).changed(changed)).await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Soft-deletes an organization: scopes can no longer be opened for it; its data stays.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let now = self.db.now();
        if !self.exists(id).await? {
            return Err(Error::not_found("organization"));
        }
        let scope = Scope::platform_for(self.db, id);
        let mut tx = AuditTx::begin(&scope).await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE organizations SET deleted_at = $1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(id),
            )
            .await?;
        if n == 0 {
            return Err(Error::not_found("organization"));
        }
        tx.record(Event::on(AuditAction::Delete, TABLE).entity(id).records([id]).changed(["deleted_at"])).await?;
        tx.commit().await
    }

    /// A page of organizations, newest first (each one's read recorded in its own chain).
    pub async fn list(&self, page: PageRequest) -> Result<Page<Organization>> {
        let limit = page.checked_limit()?;
        let after = page.after_id()?;
        let mut tx = self.db.begin(None, TxMode::Read).await?;
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT * FROM organizations WHERE deleted_at IS NULL AND ($1 IS NULL OR id < $1) \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit) + 1),
            )
            .await?;
        tx.commit().await?;
        // Each organization's settings decrypt under its own key; each read is recorded in that
        // organization's own chain.
        let mut items = Vec::with_capacity(rows.len());
        for r in rows.iter().take(limit as usize) {
            let id = r.uuid("id")?;
            let event = read_event(TABLE, std::slice::from_ref(r), Some(id))?;
            crate::kernel::record_read_alone(&Scope::platform_for(self.db, id), event).await?;
            items.push(decode(self.db, r).await?);
        }
        let next =
            if rows.len() > limit as usize { items.last().map(|o| Cursor::encode(&o.id.to_string())) } else { None };
        Ok(Page { items, next })
    }
}

/// Names of the fields a patch sets (for the audit event; never their values).
fn patch_fields(p: &OrganizationPatch) -> Vec<&'static str> {
    [
        ("name", p.name.is_some()),
        ("type", p.organization_type.is_some()),
        ("tax_id", p.tax_id.is_some()),
        ("address", p.address.is_some()),
        ("phone", p.phone.is_some()),
        ("email", p.email.is_some()),
        ("is_active", p.is_active.is_some()),
        ("settings", p.settings.is_some()),
        ("compliance_regimes", p.compliance_regimes.is_some()),
        ("data_retention_years", p.data_retention_years.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect()
}

fn apply(o: &mut Organization, p: OrganizationPatch, now: DateTime<Utc>) -> Result<()> {
    if let Some(v) = p.name {
        o.name = v;
    }
    if let Some(v) = p.organization_type {
        o.organization_type = v;
    }
    if let Some(v) = p.tax_id {
        o.tax_id = v;
    }
    if let Some(v) = p.address {
        o.address = v;
    }
    if let Some(v) = p.phone {
        o.phone = v;
    }
    if let Some(v) = p.email {
        o.email = v;
    }
    if let Some(v) = p.is_active {
        o.is_active = v;
    }
    if let Some(v) = p.settings {
        o.settings = v;
    }
    if let Some(v) = p.compliance_regimes {
        o.compliance_regimes = v;
    }
    if let Some(v) = p.data_retention_years {
        o.data_retention_years = v;
    }
    o.updated_at = now;
    validate_fields(o)
}
