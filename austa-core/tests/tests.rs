//! austa-core's integration tests, as one test binary: one module per area, and `support` with the
//! test databases and the fixtures several areas share.
//!
//! One binary links the library once instead of once per area, and its tests share one process: the
//! migrated templates that every test database is copied from (see `support`) are built once per run.
//!
//! A test that runs on both backends is written once, as `#[backends] async fn name(tdb: TestDb)` (see
//! `austa_macros::backends`), and runs as `area::name::sqlite` and `area::name::postgres`; so
//! `cargo test -p austa-core --test integration postgres` runs the PostgreSQL half, and a failure names
//! its backend. A test that makes sense on one backend only is a plain `#[tokio::test]` whose name ends
//! in `_sqlite` or `_postgres`; one that compares the two ends in `_on_sqlite_and_postgres`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod support;

mod access;
mod ai_and_outbound;
mod audit;
mod authorization_workflow;
mod bulk;
mod classification;
mod clinical;
mod conversations;
mod document_workflow;
mod gamification;
mod gamification_workflow;
mod keys;
mod patients;
mod read_audit;
mod rls;
mod round_trips;
mod schema_shape;
mod seed;
mod sqlite_open;
mod tasy_and_audit;
mod tasy_outbox;
mod transparency;
mod transport;
mod whatsapp_ingest;
