//! Operations on a whole database, for operators and the `austa` command: migration status, backup
//! and restore across backends, validation, development resets and the key store's state.
//!
//! Everything here works from the live catalog and the embedded migrations, so a new migration needs
//! no change in this module. One concern per file:
//!
//! * [`catalog`](self) (internal): tables, columns, keys, read from the database itself;
//! * [`migrations`]: applied, pending and changed migrations ([`Database::migration_status`]);
//! * [`format`](mod@format): the documented backup file format;
//! * `backup` and `restore`: [`Database::backup`], [`Database::restore`];
//! * `validate`: [`Database::validate`] and its [`Finding`]s;
//! * [`development`]: [`development::reset`] and the check that guards it;
//! * `keys`: [`Database::key_status`].
//!
//! On PostgreSQL, backup, restore and validate read every organization's rows, so they need a role that
//! bypasses row-level security (the owner with `BYPASSRLS`, or a superuser); the runtime role
//! `austa_app` is refused with a `permission_denied` error that says so.
//!
//! [`Database::migration_status`]: crate::Database::migration_status
//! [`Database::backup`]: crate::Database::backup
//! [`Database::restore`]: crate::Database::restore
//! [`Database::validate`]: crate::Database::validate
//! [`Database::key_status`]: crate::Database::key_status

use crate::db::Pool;
use crate::error::{Error, Result};

mod backup;
mod catalog;
pub mod development;
mod files;
pub mod format;
mod keys;
pub mod migrations;
mod restore;
mod validate;

pub use backup::BackupReport;
pub use files::create_private_file;
pub use keys::{KeyStatus, OrganizationKeyStatus};
pub use migrations::{MigrationEntry, MigrationState, MigrationStatus};
pub use restore::{ChainCheck, RestoreReport};
pub use validate::{Check, Finding, ValidationReport};

/// Key store migrations are numbered from here (data migrations below).
pub(crate) const KEYSTORE_VERSIONS: i64 = 900_000;

/// Receives the progress of a long operation (backup, restore). The `austa` command draws a progress
/// bar on a terminal and prints plain lines otherwise; library callers may ignore it with
/// [`NoProgress`].
pub trait Progress: Send {
    /// A phase begins; `total` is the number of units when known.
    fn start(&mut self, phase: &str, total: Option<u64>);
    /// `n` more units are done.
    fn advance(&mut self, n: u64);
    /// The phase is over.
    fn finish(&mut self);
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: &str, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// Refuses a PostgreSQL role that row-level security would limit to one organization (or none).
pub(crate) async fn require_rls_bypass(pool: &Pool) -> Result<()> {
    if let Pool::Postgres(p) = pool {
        let bypass: bool =
            sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_optional(p)
                .await?
                .unwrap_or(false);
        if !bypass {
            return Err(Error::PermissionDenied(
                "whole-database operations (backup, restore, validate) read every organization's rows: connect as \
                 the database owner with BYPASSRLS, or a superuser"
                    .into(),
            ));
        }
    }
    Ok(())
}
