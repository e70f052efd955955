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

/// The README's Rust examples are compiled as doctests, so the manual cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
