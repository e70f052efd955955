//! Procedural macros of austa: `#[derive(Record)]`, a model's storage from its one declaration (used
//! by `austa-model`), and `#[backends]`, one test per backend (used by the tests). Each macro lives in
//! a module of its own; this file only exports them.

use proc_macro::TokenStream;

mod backends;
mod record;

/// Runs one async test body once per backend, as two tests named for the backend.
///
/// The function takes the test database as its one parameter. The attribute turns it into a module of
/// the function's name holding the body and two `#[tokio::test]` functions, `sqlite` (a fresh SQLite
/// database, always) and `postgres` (a fresh PostgreSQL database when `AUSTA_TEST_DATABASE_URL` is set;
/// otherwise it passes without running the body, or fails under `CI=true`). A failure thus names its
/// backend (`patients::create_and_read::postgres`), and `cargo test sqlite` or `cargo test postgres`
/// selects one backend. Arguments, if any, are passed on to `tokio::test`.
///
/// The databases come from `crate::support::sqlite()` and `crate::support::postgres()`, which the test
/// crate provides; the parameter keeps the name and type written.
///
/// ```ignore
/// use crate::support::TestDb;
/// use austa_macros::backends;
///
/// #[backends(flavor = "multi_thread", worker_threads = 2)]
/// async fn organizations_are_created(tdb: TestDb) {
///     let scope = tdb.org("Hospital Central").await;
///     assert!(scope.organization().await.is_ok());
/// }
/// // Tests: organizations_are_created::sqlite, organizations_are_created::postgres
/// ```
#[proc_macro_attribute]
pub fn backends(args: TokenStream, item: TokenStream) -> TokenStream {
    backends::expand(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `austa_model::record::Record` for a model: its table, its column list with each column's
/// classification (plain, encrypted, or encrypted with a blind index), and the codec between its
/// fields and a row, encrypting under the organization's or the owning patient's key. See the
/// `austa_model::record` module for the attributes.
#[proc_macro_derive(Record, attributes(record))]
pub fn derive_record(item: TokenStream) -> TokenStream {
    syn::parse::<syn::DeriveInput>(item).and_then(record::expand).unwrap_or_else(syn::Error::into_compile_error).into()
}
