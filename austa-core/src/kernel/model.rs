//! What a model tells the kernel about itself beyond its storage: how it is built and patched, and
//! which of its values need the actor's authority. Sealed: implemented by this crate's
//! models only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use austa_model::record::Record;

use crate::access::Action;
use crate::error::Result;
use crate::scope::Scope;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A model the repositories work with: how it is stored comes from its [`Record`] declaration
/// (`#[derive(Record)]` in `austa-model`: table, columns, classification, codec); this trait adds how
/// it is built from input and which of its values need the actor's authority. Sealed: implemented by
/// this crate's models only.
pub trait Model: Record + Sealed + Send + Sync + 'static {
    /// What `create` takes.
    type New: Send;
    /// Whether creating a row creates its patient's key (only `Patient`).
    #[doc(hidden)]
    const CREATES_PATIENT_KEY: bool = false;
    /// Validates `new` and builds the model; no I/O.
    #[doc(hidden)]
    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: Self::New) -> Result<Self>;
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
