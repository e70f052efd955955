//! What a model tells the kernel about itself: its table, its column codec, how it is built and
//! patched, and which of its values need the actor's authority. Sealed: implemented by this crate's
//! models only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::Action;
use crate::classification::KeyOwner;
use crate::db::{Row, Value};
use crate::error::Result;
use crate::scope::Scope;
use austa_crypto::RowCrypto;

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
