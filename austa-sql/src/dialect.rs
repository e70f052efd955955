//! What differs between the backends, in one place.
//!
//! Domain code never asks which backend it runs on: it asks the transaction's [`Dialect`] for the
//! capability it needs (a row lock, an advisory lock, a parameter budget, a JSON test), in the spirit
//! of diesel's backend capability traits. A capability SQLite does not need is empty there (its
//! write transactions hold the database's single write lock, so row and advisory locks are implied).

use uuid::Uuid;

use crate::builder::QueryBuilder;
use crate::pool::Backend;
use crate::tx::{TxMode, TENANT_SETTING};
use crate::value::{Array, Query, Value};

/// The most rows one `VALUES` list carries, whatever the parameter budget allows: past a few hundred
/// rows a longer statement costs more to parse than the round trips it saves.
const MAX_ROWS_PER_VALUES: usize = 500;

/// The most rows one array insert carries: the arrays are held in memory twice (here and in the
/// driver's buffer) until the statement is sent.
const MAX_ROWS_PER_ARRAYS: usize = 5_000;

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

    /// The statements that insert `rows` into `table`, each row the values of `columns` in order, in
    /// as few statements as the backend runs fastest. SQLite: multi-row `VALUES` lists under the
    /// parameter budget. PostgreSQL: one `INSERT ... SELECT * FROM unnest($1::uuid[], ...)` per few
    /// thousand rows, one array parameter per column, so that the statement's text is the same for
    /// every batch (prepared once, planned once) and the server parses arrays instead of thousands of
    /// parameters. Rows whose columns do not share one type per column fall back to `VALUES`.
    ///
    /// ```
    /// use austa_sql::{Dialect, IntoValue};
    /// let rows = vec![vec![1i64.into_value(), "a".into_value()], vec![2i64.into_value(), "b".into_value()]];
    /// let statements = austa_sql::dialect::Postgres.insert_rows("t", &["n", "s"], rows);
    /// assert_eq!(statements.len(), 1);
    /// assert_eq!(statements[0].sql(), "INSERT INTO t (n, s) SELECT * FROM unnest($1::int8[], $2::text[])");
    /// ```
    fn insert_rows(&self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Vec<Query>;
}

/// `INSERT INTO table (columns) VALUES (...), (...)` statements, each under `max_params` parameters
/// and [`MAX_ROWS_PER_VALUES`] rows.
fn values_inserts(table: &str, columns: &[&str], rows: Vec<Vec<Value>>, max_params: usize) -> Vec<Query> {
    let per = (max_params / columns.len().max(1)).clamp(1, MAX_ROWS_PER_VALUES);
    let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut statements = Vec::with_capacity(rows.len().div_ceil(per));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut q = QueryBuilder::new(head.as_str());
        for (i, row) in rows.by_ref().take(per).enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push_tuple(row);
        }
        statements.push(q.build());
    }
    statements
}

/// One array per column of `rows`, or the rows back when a column's values are not of one type.
fn column_arrays(width: usize, rows: Vec<Vec<Value>>) -> std::result::Result<Vec<Array>, Vec<Vec<Value>>> {
    use std::mem::discriminant;
    let Some(first) = rows.first().filter(|f| f.len() == width) else { return Err(rows) };
    let uniform = rows
        .iter()
        .all(|row| row.len() == width && row.iter().zip(first).all(|(v, f)| discriminant(v) == discriminant(f)));
    let arrays: Option<Vec<Array>> = first.iter().map(|v| Array::like(v, rows.len())).collect();
    let (true, Some(mut arrays)) = (uniform, arrays) else { return Err(rows) };
    for row in rows {
        for (value, array) in row.into_iter().zip(arrays.iter_mut()) {
            // Every value was checked to be of its array's type: a push cannot be refused.
            let _ = array.push(value);
        }
    }
    Ok(arrays)
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

    fn insert_rows(&self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Vec<Query> {
        values_inserts(table, columns, rows, self.max_bind_params())
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

    fn insert_rows(&self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Vec<Query> {
        if rows.len() < 2 {
            return values_inserts(table, columns, rows, self.max_bind_params());
        }
        let head = format!("INSERT INTO {table} ({}) SELECT * FROM unnest(", columns.join(", "));
        let mut statements = Vec::with_capacity(rows.len().div_ceil(MAX_ROWS_PER_ARRAYS));
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(MAX_ROWS_PER_ARRAYS).collect();
            match column_arrays(columns.len(), chunk) {
                Ok(arrays) => {
                    let mut q = QueryBuilder::new(head.as_str());
                    let mut list = q.separated(", ");
                    for array in arrays {
                        let cast = array.sql_type();
                        list.push_bind(Value::Array(array));
                        list.push_unseparated(format_args!("::{cast}"));
                    }
                    q.push(")");
                    statements.push(q.build());
                }
                Err(chunk) => statements.extend(values_inserts(table, columns, chunk, self.max_bind_params())),
            }
        }
        statements
    }
}

/// The dialect of `backend`.
pub fn of(backend: Backend) -> &'static dyn Dialect {
    match backend {
        Backend::Sqlite => &Sqlite,
        Backend::Postgres => &Postgres,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IntoValue;

    fn rows(n: usize) -> Vec<Vec<Value>> {
        (0..n).map(|i| vec![(i as i64).into_value(), None::<String>.into_value(), Uuid::nil().into_value()]).collect()
    }

    #[test]
    fn postgres_inserts_arrays_one_statement_per_few_thousand_rows() {
        let statements = Postgres.insert_rows("t", &["n", "s", "u"], rows(MAX_ROWS_PER_ARRAYS + 1));
        assert_eq!(statements.len(), 2);
        for q in &statements {
            assert_eq!(q.sql(), "INSERT INTO t (n, s, u) SELECT * FROM unnest($1::int8[], $2::text[], $3::uuid[])");
            assert_eq!(q.args.len(), 3);
        }
        match &statements[1].args[1] {
            Value::Array(Array::Text(a)) => assert_eq!(a, &vec![None]),
            _ => panic!("the second column is a text array"),
        }
    }

    #[test]
    fn mixed_column_types_and_single_rows_fall_back_to_values() {
        let mut mixed = rows(3);
        mixed[2][0] = "not a number".into_value();
        let statements = Postgres.insert_rows("t", &["n", "s", "u"], mixed);
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].sql(), "INSERT INTO t (n, s, u) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)");
        let one = Postgres.insert_rows("t", &["n", "s", "u"], rows(1));
        assert_eq!(one[0].sql(), "INSERT INTO t (n, s, u) VALUES ($1, $2, $3)");
        assert!(Postgres.insert_rows("t", &["n"], Vec::new()).is_empty());
    }

    #[test]
    fn sqlite_splits_values_lists_under_its_parameter_budget() {
        let statements = Sqlite.insert_rows("t", &["n", "s", "u"], rows(1_000));
        let per = Sqlite.max_bind_params() / 3;
        assert_eq!(statements.len(), 1_000usize.div_ceil(per));
        assert!(statements.iter().all(|q| q.args.len() <= Sqlite.max_bind_params()));
        assert_eq!(statements.iter().map(|q| q.args.len()).sum::<usize>(), 3_000);
    }
}
