//! # austa-bindings
//!
//! What the Python (`austa-py`) and Node (`austa-node`) packages share, so that each binding is a thin
//! layer that only converts its language's values and errors:
//!
//! * [`open`]: opening a [`Database`] from a URL and a key given as base64, a key file or the
//!   environment (the same rules as the Rust API).
//! * [`call_database`] and [`call_scope`]: every operation of the core by name (`"patients.create"`,
//!   `"authorizations.approve"`, `"audit.verify"`), with JSON arguments and a JSON result. Inputs are
//!   built with [`austa_core::input::from_json`], so a bad value is a `validation` error naming the
//!   field and never quoting the value; results are the core's models serialized with serde (sensitive
//!   fields decrypted: the bindings hand them to the caller who asked for them).
//! * [`runtime`]: the one multi-threaded tokio runtime the bindings run the core on.
//!
//! The operations are typed structs in one registry ([`ops`]); the bindings' typed surfaces (Python
//! repositories, TypeScript declarations) are generated from it by `austa-codegen`.

pub mod failure;
mod open;
pub mod ops;

pub use open::{open, OpenOptions};
pub use ops::{call_database, call_scope, emergency_scope, ingest, scope, DATABASE_OPERATIONS, SCOPE_OPERATIONS};

use std::sync::OnceLock;

/// The tokio runtime every binding call runs on: multi-threaded, so that calls from several
/// threads (Python threads that released the GIL, Node's worker pool) progress in parallel, and the
/// core's background audit sequencer keeps running between calls. Created on first use.
pub fn runtime() -> austa_core::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("austa")
        .build()
        .map_err(austa_core::Error::Io)?;
    Ok(RUNTIME.get_or_init(|| rt))
}

pub use austa_core::Database;
