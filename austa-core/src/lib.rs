//! # austa-core
//!
//! The data layer of the Austa Care Platform: typed models for the platform's 15 entities, embedded
//! migrations for SQLite and PostgreSQL, AES-256-GCM field encryption with per-organization keys and
//! blind indexes, tenancy by organization through [`Scope`], and repositories for every model.
//!
//! ```no_run
//! # async fn demo() -> austa_core::Result<()> {
//! use austa_core::{crypto::LocalKeyProvider, Actor, Database};
//!
//! let db = Database::connect("sqlite://austa.db", LocalKeyProvider::from_env()?).await?;
//! db.migrate().await?;
//! let seed = austa_core::seed::run(&db).await?;
//! let scope = db.scope(seed.hospital_id, Actor::system("whatsapp-webhook")).await?;
//! if let Some(patient) = scope.patients().find_by_phone("+5511987654321").await? {
//!     println!("found patient {}", patient.id);
//! }
//! # Ok(()) }
//! ```
//!
//! The layers below are crates of their own, so that a dependency cycle between them cannot compile:
//! `austa-error` (the error type), `austa-sql` (pools, transactions, values, the query builder, the
//! dialect capabilities, migrations), `austa-crypto` (envelope, keys and key store, blind indexes) and
//! `austa-model` (types, enums, inputs and their validation, the classification). This crate is the
//! domain on top and re-exports what callers need at the paths below.
//!
//! Modules by concern: [`db`] (the database handle), [`crypto`] (keys, envelope, blind index, key
//! rotation and crypto-shredding), [`scope`] (tenancy), [`access`] (who may do what), [`audit`] (the
//! trail), [`model`] (types and enums), [`repo`] (one module per aggregate), [`whatsapp`] (webhook
//! ingest), [`ops`] (operator tooling), [`validate`] (input rules), [`seed`] (development data).
//!
//! The [`manual`] is the guide: the pages of the repository's `docs/`, one module per page.

pub mod access;
pub mod audit;
pub use austa_model::classification;
pub mod crypto;
pub mod db;
pub mod kernel;
pub mod keys;
pub use austa_model::input;
pub use austa_model::record;
pub mod model;
pub mod ops;
pub mod page;
pub mod repo;
pub mod scope;
pub mod seed;
pub use austa_model::validate;
pub use austa_sql::time;
pub mod whatsapp;

mod layers;

/// The error type, shared with the layers below (`austa-error`).
pub(crate) use austa_error as error;

pub use austa_error::{CryptoErrorKind, Error, Result, RowError};
pub use db::{Backend, Database, DatabaseOptions};
pub use scope::{Actor, RequestContext, Role, Scope};

/// The README's Rust examples are compiled as doctests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The manual: the pages of the repository's `docs/` directory, one module per page (the index is
/// `docs/README.md`; the benchmarks are in `benches/README.md`).
///
/// Each module's documentation is its page, included as it is, so the Rust samples of every page
/// compile as doctests and cannot drift from the API. Links between pages point at the Markdown
/// files, for reading the pages in the repository.
///
/// * [`configuration`](crate::manual::configuration): Configuration.
/// * [`usage`](crate::manual::usage): Using the library.
/// * [`schema`](crate::manual::schema): The schema and data classification.
/// * [`keys`](crate::manual::keys): Key management.
/// * [`access`](crate::manual::access): Access control.
/// * [`workflows`](crate::manual::workflows): Workflows.
/// * [`audit`](crate::manual::audit): Audit trail.
/// * [`row_level_security`](crate::manual::row_level_security): Row-level security (PostgreSQL).
/// * [`citus`](crate::manual::citus): Scaling out with Citus.
/// * [`seed`](crate::manual::seed): Development seed.
/// * [`cli`](crate::manual::cli): Operations: the `austa` command.
/// * [`python`](crate::manual::python): Python.
/// * [`node`](crate::manual::node): Node.
/// * [`errors`](crate::manual::errors): Errors.
/// * [`decisions`](crate::manual::decisions): Decisions and limits.
/// * [`architecture`](crate::manual::architecture): Architecture.
pub mod manual {
    #[doc = include_str!("../../docs/configuration.md")]
    pub mod configuration {}

    #[doc = include_str!("../../docs/usage.md")]
    pub mod usage {}

    #[doc = include_str!("../../docs/schema.md")]
    pub mod schema {}

    #[doc = include_str!("../../docs/keys.md")]
    pub mod keys {}

    #[doc = include_str!("../../docs/access.md")]
    pub mod access {}

    #[doc = include_str!("../../docs/workflows.md")]
    pub mod workflows {}

    #[doc = include_str!("../../docs/audit.md")]
    pub mod audit {}

    #[doc = include_str!("../../docs/row-level-security.md")]
    pub mod row_level_security {}

    #[doc = include_str!("../../docs/citus.md")]
    pub mod citus {}

    #[doc = include_str!("../../docs/seed.md")]
    pub mod seed {}

    #[doc = include_str!("../../docs/cli.md")]
    pub mod cli {}

    #[doc = include_str!("../../docs/python.md")]
    pub mod python {}

    #[doc = include_str!("../../docs/node.md")]
    pub mod node {}

    #[doc = include_str!("../../docs/errors.md")]
    pub mod errors {}

    #[doc = include_str!("../../docs/decisions.md")]
    pub mod decisions {}

    #[doc = include_str!("../../docs/architecture.md")]
    pub mod architecture {}
}
