//! Backend-neutral row access with typed getters.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;
use uuid::Uuid;

use austa_error::{Error, Result};

use crate::value::SQLITE_TIME_FORMAT;

/// One result row from either backend.
pub enum Row {
    /// A SQLite row.
    Sqlite(SqliteRow),
    /// A PostgreSQL row.
    Postgres(PgRow),
}

/// A column of a [`Row`]: its name, or its position in the select list. A position skips the lookup
/// by name, for decoders that read many columns of many rows in a known order (audit
/// verification); names are the default everywhere else.
pub trait Column: sqlx::ColumnIndex<PgRow> + sqlx::ColumnIndex<SqliteRow> + std::fmt::Display + Copy {}

impl Column for &str {}
impl Column for usize {}

fn corrupt(column: impl std::fmt::Display, err: impl std::fmt::Display) -> Error {
    Error::CorruptData(format!("column {column}: {err}"))
}

impl Row {
    fn sqlite_text(row: &SqliteRow, column: impl Column) -> Result<Option<String>> {
        row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(column, e))
    }

    /// A UUID column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_uuid(&self, column: impl Column) -> Result<Option<Uuid>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => {
                Self::sqlite_text(r, column)?.map(|s| Uuid::parse_str(&s).map_err(|e| corrupt(column, e))).transpose()
            }
        }
    }

    /// A NOT NULL UUID column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn uuid(&self, column: impl Column) -> Result<Uuid> {
        self.opt_uuid(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A text column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_text(&self, column: impl Column) -> Result<Option<String>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => Self::sqlite_text(r, column),
        }
    }

    /// A NOT NULL text column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn text(&self, column: impl Column) -> Result<String> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// An integer column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_int(&self, column: impl Column) -> Result<Option<i64>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    /// A NOT NULL integer column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn int(&self, column: impl Column) -> Result<i64> {
        self.opt_int(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A double column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_float(&self, column: impl Column) -> Result<Option<f64>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    /// A NOT NULL double column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn float(&self, column: impl Column) -> Result<f64> {
        self.opt_float(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A boolean column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the
    /// column.
    pub fn opt_bool(&self, column: impl Column) -> Result<Option<bool>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    /// A NOT NULL boolean column.
    pub fn bool(&self, column: impl Column) -> Result<bool> {
        self.opt_bool(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A timestamp column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_time(&self, column: impl Column) -> Result<Option<DateTime<Utc>>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => Self::sqlite_text(r, column)?
                .map(|s| {
                    NaiveDateTime::parse_from_str(&s, SQLITE_TIME_FORMAT)
                        .map(|t| t.and_utc())
                        .map_err(|e| corrupt(column, e))
                })
                .transpose(),
        }
    }

    /// A NOT NULL timestamp column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn time(&self, column: impl Column) -> Result<DateTime<Utc>> {
        self.opt_time(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A JSON column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_json(&self, column: impl Column) -> Result<Option<serde_json::Value>> {
        match self {
            Row::Postgres(r) => r
                .try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>(column)
                .map(|v| v.map(|j| j.0))
                .map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => Self::sqlite_text(r, column)?
                .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(column, e)))
                .transpose(),
        }
    }

    /// A NOT NULL JSON column. A value the column cannot hold is `corrupt_data` naming the column.
    pub fn json(&self, column: impl Column) -> Result<serde_json::Value> {
        self.opt_json(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    /// A bytes column (NULL: `None`). A value the column cannot hold is `corrupt_data` naming the column.
    pub fn opt_bytes(&self, column: impl Column) -> Result<Option<Vec<u8>>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    /// A TEXT enum column parsed into its Rust enum.
    pub fn enumeration<E: std::str::FromStr>(&self, column: impl Column) -> Result<E> {
        let s = self.text(column)?;
        s.parse().map_err(|_| corrupt(column, "unknown enum value"))
    }

    /// A JSON column holding a list of strings.
    pub fn string_list(&self, column: impl Column) -> Result<Vec<String>> {
        self.json_list(column)
    }

    /// A JSON column holding a list of UUIDs (as strings).
    pub fn uuid_list(&self, column: impl Column) -> Result<Vec<Uuid>> {
        self.json_list(column)
    }

    /// A NOT NULL JSON column holding a list, decoded straight into `T` (no intermediate JSON value).
    fn json_list<T: serde::de::DeserializeOwned>(&self, column: impl Column) -> Result<Vec<T>> {
        let list = match self {
            Row::Postgres(r) => r
                .try_get::<Option<sqlx::types::Json<Vec<T>>>, _>(column)
                .map(|v| v.map(|j| j.0))
                .map_err(|e| corrupt(column, e))?,
            Row::Sqlite(r) => Self::sqlite_text(r, column)?
                .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(column, e)))
                .transpose()?,
        };
        list.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }
}
