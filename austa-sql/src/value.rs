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
    /// A UUID (`uuid`; SQLite: hyphenated TEXT).
    Uuid(Option<Uuid>),
    /// Text.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A double.
    Float(Option<f64>),
    /// A boolean (SQLite: INTEGER 0/1).
    Bool(Option<bool>),
    /// A UTC timestamp (`timestamptz`; SQLite: fixed-width RFC 3339 TEXT).
    Time(Option<DateTime<Utc>>),
    /// JSON (`jsonb`; SQLite: TEXT).
    Json(Option<serde_json::Value>),
    /// Bytes (`bytea`; SQLite: BLOB).
    Bytes(Option<Vec<u8>>),
    /// A column of values bound as one array parameter: on PostgreSQL a native array (`uuid[]`,
    /// `text[]`, ...), which `unnest` turns back into rows, so that a multi-row insert carries one
    /// parameter per column instead of one per value (see [`Dialect::insert_rows`]); on SQLite, which
    /// has no arrays, the JSON text of the elements (readable with `json_each`).
    ///
    /// [`Dialect::insert_rows`]: crate::Dialect::insert_rows
    Array(Array),
}

/// The elements of an [`Value::Array`], all of one type (each may be NULL).
#[derive(Clone, PartialEq)]
pub enum Array {
    /// `uuid[]`.
    Uuid(Vec<Option<Uuid>>),
    /// `text[]`.
    Text(Vec<Option<String>>),
    /// `int8[]`.
    Int(Vec<Option<i64>>),
    /// `float8[]`.
    Float(Vec<Option<f64>>),
    /// `boolean[]`.
    Bool(Vec<Option<bool>>),
    /// `timestamptz[]`.
    Time(Vec<Option<DateTime<Utc>>>),
    /// `jsonb[]`.
    Json(Vec<Option<serde_json::Value>>),
    /// `bytea[]`.
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Array {
    /// An empty array of the type of `value`, with room for `capacity` elements; `None` for a value
    /// that is itself an array (there are no arrays of arrays).
    pub fn like(value: &Value, capacity: usize) -> Option<Self> {
        Some(match value {
            Value::Uuid(_) => Array::Uuid(Vec::with_capacity(capacity)),
            Value::Text(_) => Array::Text(Vec::with_capacity(capacity)),
            Value::Int(_) => Array::Int(Vec::with_capacity(capacity)),
            Value::Float(_) => Array::Float(Vec::with_capacity(capacity)),
            Value::Bool(_) => Array::Bool(Vec::with_capacity(capacity)),
            Value::Time(_) => Array::Time(Vec::with_capacity(capacity)),
            Value::Json(_) => Array::Json(Vec::with_capacity(capacity)),
            Value::Bytes(_) => Array::Bytes(Vec::with_capacity(capacity)),
            Value::Array(_) => return None,
        })
    }

    /// Appends `value`; gives it back when its type is not the array's.
    pub fn push(&mut self, value: Value) -> std::result::Result<(), Value> {
        match (self, value) {
            (Array::Uuid(a), Value::Uuid(v)) => a.push(v),
            (Array::Text(a), Value::Text(v)) => a.push(v),
            (Array::Int(a), Value::Int(v)) => a.push(v),
            (Array::Float(a), Value::Float(v)) => a.push(v),
            (Array::Bool(a), Value::Bool(v)) => a.push(v),
            (Array::Time(a), Value::Time(v)) => a.push(v),
            (Array::Json(a), Value::Json(v)) => a.push(v),
            (Array::Bytes(a), Value::Bytes(v)) => a.push(v),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// The PostgreSQL type of the array (`uuid[]`, ...), for the cast that tells `unnest` what it
    /// unpacks.
    pub fn sql_type(&self) -> &'static str {
        match self {
            Array::Uuid(_) => "uuid[]",
            Array::Text(_) => "text[]",
            Array::Int(_) => "int8[]",
            Array::Float(_) => "float8[]",
            Array::Bool(_) => "boolean[]",
            Array::Time(_) => "timestamptz[]",
            Array::Json(_) => "jsonb[]",
            Array::Bytes(_) => "bytea[]",
        }
    }

    /// The elements as JSON text, SQLite's stand-in for an array (serde's form of each element).
    pub(crate) fn json_text(&self) -> String {
        let text = match self {
            Array::Uuid(a) => serde_json::to_string(a),
            Array::Text(a) => serde_json::to_string(a),
            Array::Int(a) => serde_json::to_string(a),
            Array::Float(a) => serde_json::to_string(a),
            Array::Bool(a) => serde_json::to_string(a),
            Array::Time(a) => serde_json::to_string(a),
            Array::Json(a) => serde_json::to_string(a),
            Array::Bytes(a) => serde_json::to_string(a),
        };
        // Serializing these types cannot fail (no maps with non-string keys, no failing Serialize);
        // NULL would be the honest fallback if it ever did.
        text.unwrap_or_else(|_| "null".into())
    }
}

impl Value {
    /// Whether the value is SQL NULL.
    pub fn is_null(&self) -> bool {
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
    /// The bind value.
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

impl std::fmt::Debug for Query {
    /// The SQL and the number of arguments, never their values (they may be patient data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("sql", &self.sql).field("args", &self.args.len()).finish()
    }
}

impl Query {
    /// A statement with `$1..$N` placeholders, bound in order by [`Query::bind`]. For SQL whose shape
    /// depends on the data, use a [`QueryBuilder`](crate::QueryBuilder).
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    /// The SQL text (the arguments stay private: they may be patient data).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Appends the next positional argument (`$1`, `$2`, ... in order of `bind` calls).
    pub fn bind(mut self, value: impl IntoValue) -> Self {
        self.args.push(value.into_value());
        self
    }
}

/// The fixed-width text form of timestamps on SQLite: lexicographic order equals time order.
pub const SQLITE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// A timestamp in SQLite's fixed-width text form, [`SQLITE_TIME_FORMAT`]. Written field by field: the
/// same text as `t.format(SQLITE_TIME_FORMAT)`, without interpreting the format string on every call
/// (that showed in profiles of bulk imports and of audit verification). Years outside 0..=9999 and
/// leap seconds, which the fixed width does not cover, take chrono's formatter.
pub fn sqlite_time(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return t.format(SQLITE_TIME_FORMAT).to_string();
    }
    let mut text = String::with_capacity(27);
    let (month, day, hour, minute, second) = (t.month(), t.day(), t.hour(), t.minute(), t.second());
    // Writing to a String cannot fail.
    let _ = write!(text, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:06}Z", nanos / 1_000);
    text
}

/// Rewrites the `$N` placeholders of `sql` as anonymous `?` placeholders, in the order they occur, and
/// orders (and, for a placeholder used twice, repeats) the arguments to match.
///
/// Why: sqlx-sqlite maps each bound parameter to its `$N` by asking SQLite for the parameter's name,
/// and SQLite finds names by walking a linear list, so binding a statement of n named parameters costs
/// about n²/2 steps. A 2,000-parameter multi-row INSERT spent more than half of a bulk import there
/// (profiled). Anonymous parameters have no name to look up. Quoted text (`'...'`, `"..."`) is left
/// alone; SQL that names an argument that does not exist is returned unchanged, so that the driver
/// reports it as before.
pub(crate) fn anonymous_placeholders(sql: &str, args: Vec<Value>) -> (String, Vec<Value>) {
    if !sql.contains('$') {
        return (sql.to_string(), args);
    }
    let mut out = String::with_capacity(sql.len());
    let mut order: Vec<usize> = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                    n = n.saturating_mul(10).saturating_add(d as usize - '0' as usize);
                    chars.next();
                }
                if n == 0 || n > args.len() {
                    return (sql.to_string(), args);
                }
                order.push(n - 1);
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    // The common case (each argument once, in order) keeps the vector as it is.
    if order.len() == args.len() && order.iter().enumerate().all(|(i, &n)| i == n) {
        return (out, args);
    }
    let ordered = order.iter().map(|&n| args[n].clone()).collect();
    (out, ordered)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_time_writes_what_chrono_formats() {
        use chrono::TimeZone;
        let mut times = vec![
            chrono::Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).single(),
            chrono::Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            chrono::Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single(),
            chrono::Utc.with_ymd_and_hms(-1, 6, 15, 12, 30, 5).single(),
            chrono::DateTime::from_timestamp(1_700_000_000, 999_999_999),
            chrono::DateTime::from_timestamp(1_700_000_000, 1_000_000_500),
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            times.push(chrono::DateTime::from_timestamp(
                x.rem_euclid(300_000_000_000) - 62_000_000_000,
                (x as u32) % 1_000_000_000,
            ));
        }
        for t in times.into_iter().flatten() {
            assert_eq!(super::sqlite_time(&t), t.format(super::SQLITE_TIME_FORMAT).to_string(), "{t:?}");
        }
    }

    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(Some(s.to_string()))
    }

    #[test]
    fn arrays_take_values_of_their_type_only_and_read_as_json_on_sqlite() {
        let mut a = Array::like(&Value::Uuid(None), 2).unwrap();
        a.push(Uuid::nil().into_value()).map_err(|_| "a uuid").unwrap();
        a.push(Value::Uuid(None)).map_err(|_| "a NULL uuid").unwrap();
        assert!(a.push(text("x")).is_err(), "text is refused by a uuid array");
        assert!(Array::like(&Value::Array(a.clone()), 1).is_none(), "no arrays of arrays");
        assert_eq!(a.sql_type(), "uuid[]");
        assert_eq!(a.json_text(), r#"["00000000-0000-0000-0000-000000000000",null]"#);
    }

    #[test]
    fn placeholders_become_anonymous_in_occurrence_order() {
        let (sql, args) = anonymous_placeholders("SELECT $1, $2 WHERE x = $1", vec![text("a"), text("b")]);
        assert_eq!(sql, "SELECT ?, ? WHERE x = ?");
        assert!(args == vec![text("a"), text("b"), text("a")]);
        let (sql, _) =
            anonymous_placeholders("SELECT '$1', \"$2\", $10", (0..10).map(|i| text(&i.to_string())).collect());
        assert_eq!(sql, "SELECT '$1', \"$2\", ?");
        let (sql, args) =
            anonymous_placeholders("INSERT INTO t VALUES ($1, $2), ($3, $4)", (0..4).map(|_| text("v")).collect());
        assert_eq!((sql.as_str(), args.len()), ("INSERT INTO t VALUES (?, ?), (?, ?)", 4));
        let (sql, _) = anonymous_placeholders("SELECT $3", vec![text("a")]);
        assert_eq!(sql, "SELECT $3", "an argument that does not exist is left to the driver");
    }
}
