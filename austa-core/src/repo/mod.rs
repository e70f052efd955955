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

pub mod ai_work;
pub mod audit_logs;
pub mod authorizations;
pub mod conversations;
pub(crate) mod delivery_status;
pub mod documents;
pub mod gamification;
pub mod health_data;
pub mod messages;
pub mod missions;
pub mod organizations;
pub mod outbound;
pub mod patients;
pub mod providers;
pub mod tasy;
pub mod tasy_outbox;

use std::marker::PhantomData;

/// In a patch's `apply`: when the patch gives `$value`, checks it with `$check` (where `$v` is the
/// value) and writes the result into `$field`; `$check` may use `?`.
///
/// `patch!(self.filename, p.filename, |v| secret_text("filename", &v, 1, 255)?)` stands for
/// `if let Some(v) = p.filename { self.filename = secret_text(...)?; }`.
macro_rules! patch {
    ($field:expr, $value:expr) => {
        if let Some(v) = $value {
            $field = v;
        }
    };
    ($field:expr, $value:expr, |$v:ident| $check:expr) => {
        if let Some($v) = $value {
            $field = $check;
        }
    };
}
pub(crate) use patch;

use uuid::Uuid;

pub use crate::kernel::{Model, SoftDeletable, Updatable};
pub use crate::page::{Cursor, Page, PageRequest};

use crate::error::Result;
use crate::kernel::rows;
use crate::scope::Scope;

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
        rows::insert(self.scope, &model).await?;
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
            rows::yield_periodically(row).await;
            match new.and_then(|new| M::build(org, Uuid::now_v7(), now, new)) {
                Ok(model) => models.push(model),
                Err(error) => errors.push(crate::RowError { row, error }),
            }
        }
        if !errors.is_empty() {
            return Err(crate::Error::Batch(errors));
        }
        if !models.is_empty() {
            rows::insert_many(self.scope, &models).await?;
        }
        Ok(models)
    }

    /// Creates a row with a caller-chosen id (the development seed's stable ids).
    pub(crate) async fn create_with_id(&self, id: Uuid, new: M::New) -> Result<M> {
        let model = M::build(self.scope.organization_id(), id, self.scope.now(), new)?;
        rows::insert(self.scope, &model).await?;
        Ok(model)
    }

    /// Whether a row with `id` exists in this organization, soft-deleted or not.
    pub(crate) async fn exists(&self, id: Uuid) -> Result<bool> {
        rows::exists::<M>(self.scope, id).await
    }

    /// The row with `id` in this organization (not soft-deleted), or `not_found`.
    pub async fn get(&self, id: Uuid) -> Result<M> {
        rows::get(self.scope, id).await
    }

    /// A page of rows, newest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<M>> {
        rows::list_where(self.scope, crate::db::Filter::new(), &page).await
    }
}

impl<M: Updatable> Repo<'_, M> {
    /// Applies `patch` to the row with `id` in one transaction (row locked on PostgreSQL); returns the
    /// updated row. Validation failures write nothing.
    pub async fn update(&self, id: Uuid, patch: M::Patch) -> Result<M> {
        rows::update(self.scope, id, patch).await
    }
}

impl<M: SoftDeletable> Repo<'_, M> {
    /// Soft-deletes the row with `id`: it disappears from `get` and `list` but stays in the database.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        rows::soft_delete::<M>(self.scope, id).await
    }

    /// Restores a soft-deleted row (`not_found` unless the row exists and is deleted). A returning
    /// patient is restored rather than registered again: their phone and CPF still belong to the old
    /// row.
    pub async fn restore(&self, id: Uuid) -> Result<()> {
        rows::restore::<M>(self.scope, id).await
    }
}

impl Scope {
    /// The repository of any model, e.g. `scope.repo::<Patient>()`.
    pub fn repo<M: Model>(&self) -> Repo<'_, M> {
        Repo::new(self)
    }
}
