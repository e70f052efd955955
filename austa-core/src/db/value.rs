//! Backend-neutral bind values and queries.
//!
//! SQL is written once, in the dialect both backends share, with `$1..$N` placeholders. A [`Query`]
//! collects typed [`Value`]s; the executor binds each value in the representation its backend stores
//! (PostgreSQL: native `uuid`, `timestamptz`, `jsonb`, `boolean`; SQLite: hyphenated TEXT ids,
//! fixed-width RFC 3339 TEXT timestamps, TEXT JSON, INTEGER booleans). Every value carries its type even
//! when NULL, because PostgreSQL needs the parameter type.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A typed, possibly NULL bind value.
#[derive(Clone, PartialEq)]
pub enum Value {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Json(Option<serde_json::Value>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    /// Whether the value is SQL NULL.
    pub(crate) fn is_null(&self) -> bool {
        matches!(
            self,
            Value::Uuid(None)
                | Value::Text(None)
                | Value::Int(None)
                | Value::Float(None)
                | Value::Bool(None)
                | Value::Time(None)
                | Value::Json(None)
                | Value::Bytes(None)
        )
    }
}

/// Conversion into a bind value; implemented for the column types the schema uses and their `Option`s.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

macro_rules! into_value {
    ($ty:ty, $variant:ident, $conv:expr) => {
        impl IntoValue for $ty {
            fn into_value(self) -> Value {
                #[allow(clippy::redundant_closure_call)]
                Value::$variant(Some(($conv)(self)))
            }
        }
        impl IntoValue for Option<$ty> {
            fn into_value(self) -> Value {
                #[allow(clippy::redundant_closure_call)]
                Value::$variant(self.map($conv))
            }
        }
    };
}

into_value!(Uuid, Uuid, |v| v);
into_value!(String, Text, |v| v);
into_value!(&str, Text, |v: &str| v.to_owned());
into_value!(i64, Int, |v| v);
into_value!(f64, Float, |v| v);
into_value!(bool, Bool, |v| v);
into_value!(DateTime<Utc>, Time, |v| v);
into_value!(serde_json::Value, Json, |v| v);
into_value!(Vec<u8>, Bytes, |v| v);

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

/// A SQL statement and its arguments, not yet bound to a backend.
pub struct Query {
    pub(crate) sql: String,
    pub(crate) args: Vec<Value>,
}

impl Query {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    /// Appends the next positional argument (`$1`, `$2`, ... in order of `bind` calls).
    pub(crate) fn bind(mut self, value: impl IntoValue) -> Self {
        self.args.push(value.into_value());
        self
    }
}

/// The fixed-width text form of timestamps on SQLite: lexicographic order equals time order.
pub(crate) const SQLITE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub(crate) fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.format(SQLITE_TIME_FORMAT).to_string()
}
