//! # austa-sql
//!
//! The SQL layer of the Austa data layer, below the domain: what every statement goes through and
//! what differs between SQLite and PostgreSQL, in one place.
//!
//! * [`Pool`] and [`Tx`]: connection pools and transactions on the concrete backend. SQL is written
//!   once, in the dialect both share, with `$1..$N` placeholders; [`Value`] binds each argument in the
//!   representation its backend stores, and [`Row`] reads it back with typed getters.
//! * [`QueryBuilder`]: SQL whose shape depends on the data, with placeholders numbered by the builder.
//! * [`Dialect`]: the capabilities that differ (row locks, advisory locks, parameter budgets, JSON
//!   tests, transaction-local settings), asked for by name, so that domain code never branches on the
//!   backend.
//! * [`migrate`]: the embedded migrations and their runner.
//! * [`transport`]: the TLS a PostgreSQL URL gets: verified to any host off this machine, never a
//!   plaintext fall back.
//! * [`time`]: timestamps at the storage resolution, and the [`Clock`](time::Clock) the library reads.
//! * [`count_round_trips`]: how many statements an operation sends, for tests that hold it to a budget.
//!
//! Every transaction on PostgreSQL first sets the tenant (`austa.organization_id`) as a
//! transaction-local setting, never per session, because connections are pooled. On SQLite, write
//! transactions start with `BEGIN IMMEDIATE` so that concurrent writers queue on the busy timeout
//! instead of failing on a lock upgrade.

mod builder;
pub mod dialect;
pub mod migrate;
mod pool;
mod row;
pub mod time;
pub mod transport;
mod trips;
mod tx;
mod value;

pub use builder::{Filter, QueryBuilder, Separated};
pub use dialect::{Dialect, RowLock};
pub use pool::{redact_password, Backend, Pool};
pub use row::{Column, Row};
pub use trips::count_round_trips;
pub use tx::{begin_on, Tx, TxMode, TENANT_SETTING};
pub use value::{sqlite_time, Array, IntoValue, Query, Value, SQLITE_TIME_FORMAT};
