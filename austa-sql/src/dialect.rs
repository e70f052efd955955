//! What differs between the backends, in one place.
//!
//! Domain code never asks which backend it runs on: it asks the transaction's [`Dialect`] for the
//! capability it needs (a row lock, an advisory lock, a parameter budget, a JSON test), in the spirit
//! of diesel's backend capability traits. A capability SQLite does not need is empty there (its
//! write transactions hold the database's single write lock, so row and advisory locks are implied).

use uuid::Uuid;

use crate::pool::Backend;
use crate::tx::{TxMode, TENANT_SETTING};

/// A row lock taken by a `SELECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    /// Exclusive, until commit (`FOR UPDATE`).
    Update,
    /// Shared, until commit: the row may not change meanwhile (`FOR SHARE`).
    Share,
    /// Exclusive, skipping rows another transaction holds (`FOR UPDATE SKIP LOCKED`): for work
    /// queues whose workers must never take the same row.
    SkipLocked,
}

/// The capabilities of one backend's SQL.
pub trait Dialect: Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// The clause a `SELECT` ends with to take `lock` (with its leading space), or `""` where the
    /// transaction's own lock covers it.
    fn row_lock(&self, lock: RowLock) -> &'static str;

    /// Whether the database serializes write transactions itself (SQLite's one write lock). Work that
    /// must be ordered across writers (linking audit events into a chain) can then run inside the
    /// writer's transaction; elsewhere it is ordered after commit.
    fn serializes_writers(&self) -> bool;

    /// The most bind parameters one statement should carry: under the driver's limit, and small
    /// enough that statements stay fast (SQLite's cost per statement grows faster than its size).
    fn max_bind_params(&self) -> usize;

    /// The statement that takes a transaction-scoped advisory lock on the pair (`$1`, `$2`) of texts
    /// (shared or exclusive), or `None` where writers are serialized already.
    fn advisory_lock(&self, shared: bool) -> Option<&'static str>;

    /// The statement that sets a transaction-local setting `$1` to `$2` (read by row-level security
    /// policies), or `None` where there are no such policies.
    fn set_local(&self) -> Option<&'static str>;

    /// A condition that holds when the JSON array of text in `column` contains the text bound at
    /// `param` (e.g. `$2`).
    fn json_array_contains(&self, column: &str, param: &str) -> String;

    /// The statement that opens a transaction of `mode`, bound to `tenant` where the backend has
    /// row-level security: one round trip, however many settings it makes.
    fn begin(&self, mode: TxMode, tenant: Option<Uuid>) -> String;

    /// Whether one statement can insert into two tables (a data-modifying `WITH`), so that an audit
    /// event and its chain-queue entry are one round trip.
    fn writable_cte(&self) -> bool;
}

/// SQLite's dialect.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

/// PostgreSQL's dialect.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl Dialect for Sqlite {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn row_lock(&self, _lock: RowLock) -> &'static str {
        ""
    }

    fn serializes_writers(&self) -> bool {
        true
    }

    /// Measured from Python on health data rows: 500-row statements ran at about 2,000 rows per
    /// second and 50-row ones at about 7,000.
    fn max_bind_params(&self) -> usize {
        2_000
    }

    fn advisory_lock(&self, _shared: bool) -> Option<&'static str> {
        None
    }

    fn set_local(&self) -> Option<&'static str> {
        None
    }

    fn json_array_contains(&self, column: &str, param: &str) -> String {
        format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {param})")
    }

    /// Deferred for reads (a snapshot from the first statement on, in WAL mode); `IMMEDIATE` for
    /// anything that writes, so that writers queue on the busy timeout instead of failing to upgrade.
    fn begin(&self, mode: TxMode, _tenant: Option<Uuid>) -> String {
        match mode {
            TxMode::Read | TxMode::Snapshot => "BEGIN".into(),
            TxMode::Write | TxMode::RecordedRead => "BEGIN IMMEDIATE".into(),
        }
    }

    fn writable_cte(&self) -> bool {
        false
    }
}

impl Dialect for Postgres {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn row_lock(&self, lock: RowLock) -> &'static str {
        match lock {
            RowLock::Update => " FOR UPDATE",
            RowLock::Share => " FOR SHARE",
            RowLock::SkipLocked => " FOR UPDATE SKIP LOCKED",
        }
    }

    fn serializes_writers(&self) -> bool {
        false
    }

    /// Under the protocol's 65,535.
    fn max_bind_params(&self) -> usize {
        30_000
    }

    fn advisory_lock(&self, shared: bool) -> Option<&'static str> {
        Some(if shared {
            "SELECT pg_advisory_xact_lock_shared(hashtext($1), hashtext($2))"
        } else {
            "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))"
        })
    }

    fn set_local(&self) -> Option<&'static str> {
        Some("SELECT set_config($1, $2, true)")
    }

    fn json_array_contains(&self, column: &str, param: &str) -> String {
        format!("{column} @> jsonb_build_array({param}::text)")
    }

    /// `BEGIN` and the tenant setting ([`TENANT_SETTING`]) sent together as one simple query, so that
    /// a transaction costs one round trip before its first statement, not two. The tenant is inlined
    /// as text: a hyphenated UUID holds only hex digits and dashes, so it cannot close the quote.
    /// [`TxMode::Snapshot`] is `REPEATABLE READ READ ONLY`. [`TxMode::RecordedRead`] also sets
    /// `synchronous_commit = off` for this transaction only: PostgreSQL acknowledges the commit before
    /// the WAL flush and flushes within three times `wal_writer_delay` (600 ms by default). A server
    /// crash in that window loses the transaction whole, never part of it, and no later synchronous
    /// commit can depend on it without flushing it first (the WAL is flushed in order).
    fn begin(&self, mode: TxMode, tenant: Option<Uuid>) -> String {
        let begin = match mode {
            TxMode::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            TxMode::Read | TxMode::Write | TxMode::RecordedRead => "BEGIN",
        };
        let tenant = tenant.map(|t| t.hyphenated().to_string()).unwrap_or_default();
        let relaxed = if mode == TxMode::RecordedRead { ", set_config('synchronous_commit', 'off', true)" } else { "" };
        format!("{begin}; SELECT set_config('{TENANT_SETTING}', '{tenant}', true){relaxed}")
    }

    fn writable_cte(&self) -> bool {
        true
    }
}

/// The dialect of `backend`.
pub fn of(backend: Backend) -> &'static dyn Dialect {
    match backend {
        Backend::Sqlite => &Sqlite,
        Backend::Postgres => &Postgres,
    }
}
