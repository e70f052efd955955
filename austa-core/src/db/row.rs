//! Backend-neutral row access with typed getters.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;
use uuid::Uuid;

use super::value::SQLITE_TIME_FORMAT;
use crate::error::{Error, Result};

/// One result row from either backend.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

fn corrupt(column: &str, err: impl std::fmt::Display) -> Error {
    Error::CorruptData(format!("column {column}: {err}"))
}

impl Row {
    fn sqlite_text(row: &SqliteRow, column: &str) -> Result<Option<String>> {
        row.try_get::<Option<String>, _>(column).map_err(|e| corrupt(column, e))
    }

    pub(crate) fn opt_uuid(&self, column: &str) -> Result<Option<Uuid>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => {
                Self::sqlite_text(r, column)?.map(|s| Uuid::parse_str(&s).map_err(|e| corrupt(column, e))).transpose()
            }
        }
    }

    pub(crate) fn uuid(&self, column: &str) -> Result<Uuid> {
        self.opt_uuid(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => Self::sqlite_text(r, column),
        }
    }

    pub(crate) fn text(&self, column: &str) -> Result<String> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64> {
        self.opt_int(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    pub(crate) fn float(&self, column: &str) -> Result<f64> {
        self.opt_float(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool> {
        let v: Option<bool> = match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e))?,
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e))?,
        };
        v.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>> {
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

    pub(crate) fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        self.opt_time(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_json(&self, column: &str) -> Result<Option<serde_json::Value>> {
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

    pub(crate) fn json(&self, column: &str) -> Result<serde_json::Value> {
        self.opt_json(column)?.ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Row::Postgres(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
            Row::Sqlite(r) => r.try_get(column).map_err(|e| corrupt(column, e)),
        }
    }

    /// A TEXT enum column parsed into its Rust enum.
    pub(crate) fn enumeration<E: std::str::FromStr>(&self, column: &str) -> Result<E> {
        let s = self.text(column)?;
        s.parse().map_err(|_| corrupt(column, "unknown enum value"))
    }

    /// A JSON column holding a list of strings.
    pub(crate) fn string_list(&self, column: &str) -> Result<Vec<String>> {
        serde_json::from_value(self.json(column)?).map_err(|e| corrupt(column, e))
    }
}
