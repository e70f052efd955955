//! Repositories: one module per aggregate, all reached through a [`Scope`].
//!
//! The generic [`Repo`] gives every model the same five operations (create, get, update, soft delete,
//! list with cursor pagination); each aggregate's module adds its domain queries (patient by phone,
//! conversation history, ...). A model describes itself to the generic code through the sealed
//! [`Model`] trait: its table, how to build it from input (validation happens there, before any I/O),
//! and how its fields map to columns, encrypting and blind-indexing as the classification says.
//!
//! Every statement is filtered by the scope's organization, so a row of another organization is
//! indistinguishable from a missing one: `get`, `update` and `delete` answer `not_found` for both.

mod page;
pub(crate) mod table;

pub mod ai;
pub mod audit_logs;
pub mod authorizations;
pub mod conversations;
pub mod documents;
pub mod gamification;
pub mod health_data;
pub mod messages;
pub mod missions;
pub mod organizations;
pub mod outbox;
pub mod patients;
pub mod providers;
pub mod tasy;

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use page::{Cursor, Page, PageRequest};

use crate::access::Action;
use crate::classification::KeyOwner;
use crate::crypto::RowCrypto;
use crate::db::{Row, Value};
use crate::error::Result;
use crate::scope::Scope;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A stored model: its table and its column codec. Sealed: implemented by this crate's models only.
pub trait Model: Sealed + Sized + Send + Sync + 'static {
    /// What `create` takes.
    type New: Send;
    #[doc(hidden)]
    const TABLE: &'static str;
    #[doc(hidden)]
    const ENTITY: &'static str;
    #[doc(hidden)]
    const SOFT_DELETE: bool;
    /// Whose key encrypts this model's sensitive columns, from the classification table.
    #[doc(hidden)]
    const KEY_OWNER: KeyOwner = crate::classification::table_owner(Self::TABLE);
    /// Whether creating a row creates its patient's key (only `Patient`).
    #[doc(hidden)]
    const CREATES_PATIENT_KEY: bool = false;
    #[doc(hidden)]
    fn id(&self) -> Uuid;
    /// The patient whose key encrypts this row, for patient-owned models.
    #[doc(hidden)]
    fn owner_patient(&self) -> Option<Uuid> {
        None
    }
    /// Validates `new` and builds the model; no I/O.
    #[doc(hidden)]
    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: Self::New) -> Result<Self>;
    /// Every column except `organization_id`, encrypted where classified so.
    #[doc(hidden)]
    fn columns(&self, c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>>;
    /// Decodes (and decrypts) a row.
    #[doc(hidden)]
    fn from_row(row: &Row, c: &RowCrypto<'_>) -> Result<Self>;
    /// Checks what this row writes into access-controlled fields against what the scope's actor may
    /// grant (an access level it could see itself, a verification only in its own name, no
    /// verification of oneself); `before` is the stored row on update, `None` on create. The row
    /// filter has already decided that the actor may touch the row at all; this decides which values
    /// it may put there. A refusal is `permission_denied`, recorded, and nothing is written.
    #[doc(hidden)]
    fn authorize_fields(&self, _scope: &Scope, _action: Action, _before: Option<&Self>) -> Result<()> {
        Ok(())
    }
}

/// A model whose rows can be changed after creation.
pub trait Updatable: Model + Clone {
    /// What `update` takes: every field optional, `None` meaning "leave as is".
    type Patch: Send;
    /// Validates and applies `patch`, setting `updated_at` to `now`; no I/O.
    #[doc(hidden)]
    fn apply(&mut self, patch: Self::Patch, now: DateTime<Utc>) -> Result<()>;
}

/// A model with `deleted_at`: deleting hides the row and keeps it (clinical data is never erased by a
/// delete; crypto-shredding is the erasure path).
pub trait SoftDeletable: Model {}

/// The generic repository of model `M` within a scope.
pub struct Repo<'s, M> {
    scope: &'s Scope,
    _model: PhantomData<fn() -> M>,
}

impl<'s, M: Model> Repo<'s, M> {
    pub(crate) fn new(scope: &'s Scope) -> Self {
        Self { scope, _model: PhantomData }
    }

    /// The scope this repository works in.
    pub fn scope(&self) -> &'s Scope {
        self.scope
    }

    /// Validates and stores a new row; returns it as stored. Nothing is written when validation fails.
    pub async fn create(&self, new: M::New) -> Result<M> {
        let model = M::build(self.scope.organization_id(), Uuid::now_v7(), self.scope.now(), new)?;
        table::insert(self.scope, &model).await?;
        Ok(model)
    }

    /// Validates and stores many rows in one transaction, with one audit event for the batch: the bulk
    /// path of data pipelines. Every row is validated first; when any row fails (validation, an unknown
    /// patient, a row the actor may not create), the error is [`Error::Batch`](crate::Error::Batch)
    /// listing each failed row by its position in `news` with its field, and nothing is written. A
    /// unique identifier already in use (by a stored row or an earlier row of the batch) lists that
    /// row with `conflict` on the field. Keep batches to
    /// a few thousand rows: the batch is held in memory and in one transaction.
    ///
    /// ```no_run
    /// # async fn demo(scope: &austa_core::Scope, patient: uuid::Uuid) -> austa_core::Result<()> {
    /// use austa_core::model::{HealthCategory, HealthData, HealthDataType, NewHealthData};
    /// let rows = (0..1000).map(|i| NewHealthData {
    ///     lab_results: Some(serde_json::json!({"glucose": {"value": 90 + i % 20, "unit": "mg/dL"}}).into()),
    ///     ..NewHealthData::new(patient, HealthDataType::LabResult, HealthCategory::General)
    /// });
    /// let stored = scope.repo::<HealthData>().create_many(rows).await?;
    /// assert_eq!(stored.len(), 1000);
    /// # Ok(()) }
    /// ```
    pub async fn create_many(&self, news: impl IntoIterator<Item = M::New>) -> Result<Vec<M>> {
        self.create_many_decoded(news.into_iter().map(Ok)).await
    }

    /// [`create_many`](Self::create_many) for callers that decode rows themselves (the Python and
    /// Node bindings): a row that failed to decode is given as its error and reported in the batch
    /// error at its position, together with the rows that fail validation, so that one attempt lists
    /// every bad row. Nothing is written when any row is an error.
    pub async fn create_many_decoded(&self, news: impl IntoIterator<Item = Result<M::New>>) -> Result<Vec<M>> {
        let (org, now) = (self.scope.organization_id(), self.scope.now());
        let mut models = Vec::new();
        let mut errors = Vec::new();
        for (row, new) in news.into_iter().enumerate() {
            table::yield_periodically(row).await;
            match new.and_then(|new| M::build(org, Uuid::now_v7(), now, new)) {
                Ok(model) => models.push(model),
                Err(error) => errors.push(crate::RowError { row, error }),
            }
        }
        if !errors.is_empty() {
            return Err(crate::Error::Batch(errors));
        }
        if !models.is_empty() {
            table::insert_many(self.scope, &models).await?;
        }
        Ok(models)
    }

    /// Creates a row with a caller-chosen id (the development seed's stable ids).
    pub(crate) async fn create_with_id(&self, id: Uuid, new: M::New) -> Result<M> {
        let model = M::build(self.scope.organization_id(), id, self.scope.now(), new)?;
        table::insert(self.scope, &model).await?;
        Ok(model)
    }

    /// Whether a row with `id` exists in this organization, soft-deleted or not.
    pub(crate) async fn exists(&self, id: Uuid) -> Result<bool> {
        table::exists::<M>(self.scope, id).await
    }

    /// The row with `id` in this organization (not soft-deleted), or `not_found`.
    pub async fn get(&self, id: Uuid) -> Result<M> {
        table::get(self.scope, id).await
    }

    /// A page of rows, newest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<M>> {
        table::list_where(self.scope, "", Vec::new(), &page).await
    }
}

impl<M: Updatable> Repo<'_, M> {
    /// Applies `patch` to the row with `id` in one transaction (row locked on PostgreSQL); returns the
    /// updated row. Validation failures write nothing.
    pub async fn update(&self, id: Uuid, patch: M::Patch) -> Result<M> {
        table::update(self.scope, id, patch).await
    }
}

impl<M: SoftDeletable> Repo<'_, M> {
    /// Soft-deletes the row with `id`: it disappears from `get` and `list` but stays in the database.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        table::soft_delete::<M>(self.scope, id).await
    }

    /// Restores a soft-deleted row (`not_found` unless the row exists and is deleted). A returning
    /// patient is restored rather than registered again: their phone and CPF still belong to the old
    /// row.
    pub async fn restore(&self, id: Uuid) -> Result<()> {
        table::restore::<M>(self.scope, id).await
    }
}

impl Scope {
    /// The repository of any model, e.g. `scope.repo::<Patient>()`.
    pub fn repo<M: Model>(&self) -> Repo<'_, M> {
        Repo::new(self)
    }
}
