//! Typed models, their inputs and enums (from `austa-model`), plus the inputs only this crate can
//! build.

use uuid::Uuid;

pub use austa_model::model::*;

/// What the generic `create` of [`TasySyncLog`] takes. It can only be built inside `austa-core`
/// (by `scope.tasy_sync_logs().start(...)`), so every run starts through `start`, which checks that the
/// integration is live.
#[derive(Debug, Clone)]
pub struct TasySyncStart {
    pub(crate) integration_id: Uuid,
    pub(crate) sync: NewTasySync,
}
