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
//! Modules by concern: [`db`] (connections, backend dispatch, migrations), [`crypto`] (keys, envelope,
//! blind index), [`scope`] (tenancy), [`model`] (types and enums), [`repo`] (one module per aggregate),
//! [`validate`] (input rules), [`seed`] (development data).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod audit;
pub mod classification;
pub mod crypto;
pub mod db;
mod error;
pub mod input;
pub mod model;
pub mod ops;
pub mod repo;
pub mod scope;
pub mod seed;
pub mod time;
pub mod validate;
pub mod whatsapp;

pub use db::{Backend, Database, DatabaseOptions};
pub use error::{CryptoErrorKind, Error, Result, RowError};
pub use scope::{Actor, RequestContext, Role, Scope};

/// The README's Rust examples are compiled as doctests, so the manual cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
