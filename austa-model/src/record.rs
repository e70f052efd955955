//! How a model is stored: its table, its columns and their classification, and the codec between
//! its fields and a row, all produced by `#[derive(Record)]` from the model's one declaration.
//!
//! A field's storage follows from its type and attributes:
//!
//! | declaration | column | class |
//! |---|---|---|
//! | `Sensitive<String>`, `Option<Sensitive<String>>` | encrypted text | sensitive |
//! | `Sensitive<T>`, `Option<Sensitive<T>>` (any other `T`) | encrypted JSON of `T` | sensitive |
//! | the above with `#[record(blind = "Phone")]` | encrypted, plus `<column>_bidx` | identifier |
//! | a [`Column`] type (`Uuid`, `String`, `i64`, `f64`, `bool`, `DateTime<Utc>`, JSON, an enum), or an `Option` of one | plain | operational |
//! | `#[record(json)]` on any serde type, or its `Option` | plain JSON | operational |
//! | `#[record(organization)]` | read back, written by the library itself | operational |
//!
//! `#[record(column = "type")]` names a column other than the field. On the struct,
//! `#[record(table = "...", entity = "...")]` with `soft_delete` when the table has `deleted_at`, and
//! `owner = "<field>"` when the rows are encrypted under a patient's key (the patient's id is in that
//! field). Field doc comments say what a column holds; the classification table reads them.
//!
//! ```
//! use austa_model::record::{ColumnClass, Record};
//! use austa_model::model::Patient;
//! let phone = Patient::COLUMNS.iter().find(|c| c.name == "phone").unwrap();
//! assert!(matches!(phone.class, ColumnClass::Identifier(_)));
//! assert_eq!(Patient::TABLE, "patients");
//! ```

use austa_crypto::{BlindIndexKind, RowCrypto};
use austa_error::{Error, Result};
use austa_sql::{Row, Value};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub use austa_macros::Record;

use crate::classification::KeyOwner;

/// Whether a column is encrypted, and searchable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnClass {
    /// Plain: ids, enums, timestamps, counters, flags, organization-level content.
    Operational,
    /// Encrypted, never searchable.
    Sensitive,
    /// Encrypted, plus a blind index (`<column>_bidx`) for equality lookups and uniqueness.
    Identifier(BlindIndexKind),
}

/// One stored column of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: &'static str,
    /// The field it stores.
    pub field: &'static str,
    /// How it is stored.
    pub class: ColumnClass,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// What it holds (the field's doc comment, first sentence).
    pub holds: &'static str,
}

/// A stored model: its table and the codec between its fields and a row. Derived with
/// `#[derive(Record)]`; see the [module documentation](self).
pub trait Record: Sized {
    /// The table.
    const TABLE: &'static str;
    /// The entity's name in errors (`patient not found`).
    const ENTITY: &'static str;
    /// Whether rows are soft-deleted (`deleted_at`).
    const SOFT_DELETE: bool;
    /// Whose key encrypts the sensitive columns.
    const KEY_OWNER: KeyOwner;
    /// Every stored column but `organization_id`, in declaration order (blind indexes implied).
    const COLUMNS: &'static [ColumnDef];
    /// The row's id.
    fn id(&self) -> Uuid;
    /// The patient whose key encrypts this row, for patient-owned models.
    fn owner_patient(&self) -> Option<Uuid>;
    /// Every column except `organization_id`, encrypted and blind-indexed as classified.
    fn columns(&self, c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>>;
    /// Decodes (and decrypts) a row.
    fn from_row(row: &Row, c: &RowCrypto<'_>) -> Result<Self>;
}

/// A plain column type: how a value is bound, what its NULL is, and how it is read back.
pub trait Column: Sized {
    /// The bind value.
    fn to_value(&self) -> Value;
    /// The typed NULL of this column type.
    fn null() -> Value;
    /// The column of `row`, `None` when NULL.
    fn read(row: &Row, column: &str) -> Result<Option<Self>>;
}

macro_rules! column {
    ($ty:ty, $variant:ident, $read:ident, |$v:ident| $to:expr) => {
        impl Column for $ty {
            fn to_value(&self) -> Value {
                let $v = self;
                Value::$variant(Some($to))
            }
            fn null() -> Value {
                Value::$variant(None)
            }
            fn read(row: &Row, column: &str) -> Result<Option<Self>> {
                row.$read(column)
            }
        }
    };
}

column!(Uuid, Uuid, opt_uuid, |v| *v);
column!(String, Text, opt_text, |v| v.clone());
column!(i64, Int, opt_int, |v| *v);
column!(f64, Float, opt_float, |v| *v);
column!(DateTime<Utc>, Time, opt_time, |v| *v);
column!(serde_json::Value, Json, opt_json, |v| v.clone());

impl Column for bool {
    fn to_value(&self) -> Value {
        Value::Bool(Some(*self))
    }
    fn null() -> Value {
        Value::Bool(None)
    }
    fn read(row: &Row, column: &str) -> Result<Option<Self>> {
        row.opt_bool(column)
    }
}

impl Column for NaiveDate {
    fn to_value(&self) -> Value {
        Value::Text(Some(self.format("%Y-%m-%d").to_string()))
    }
    fn null() -> Value {
        Value::Text(None)
    }
    fn read(row: &Row, column: &str) -> Result<Option<Self>> {
        row.opt_text(column)?
            .map(|s| s.parse().map_err(|_| Error::CorruptData(format!("column {column}: not a date"))))
            .transpose()
    }
}

/// Lists (tags, ids, achievements) are stored as JSON arrays.
impl<T: Serialize + DeserializeOwned> Column for Vec<T> {
    fn to_value(&self) -> Value {
        Value::Json(serde_json::to_value(self).ok())
    }
    fn null() -> Value {
        Value::Json(None)
    }
    fn read(row: &Row, column: &str) -> Result<Option<Self>> {
        json_read(row, column)
    }
}

/// The bind value of an optional plain column.
pub fn opt_value<T: Column>(value: &Option<T>) -> Value {
    value.as_ref().map_or_else(T::null, Column::to_value)
}

/// A NOT NULL plain column.
pub fn required<T: Column>(row: &Row, column: &str) -> Result<T> {
    T::read(row, column)?.ok_or_else(|| Error::CorruptData(format!("column {column}: unexpected NULL")))
}

/// The bind value of a `#[record(json)]` column.
pub fn json_value<T: Serialize>(value: &T) -> Value {
    Value::Json(serde_json::to_value(value).ok().filter(|v| !v.is_null()))
}

/// A `#[record(json)]` column, `None` when NULL.
pub fn json_read<T: DeserializeOwned>(row: &Row, column: &str) -> Result<Option<T>> {
    row.opt_json(column)?
        .map(|v| serde_json::from_value(v).map_err(|_| Error::CorruptData(format!("column {column}: unexpected JSON"))))
        .transpose()
}

/// A NOT NULL `#[record(json)]` column.
pub fn json_required<T: DeserializeOwned>(row: &Row, column: &str) -> Result<T> {
    json_read(row, column)?.ok_or_else(|| Error::CorruptData(format!("column {column}: unexpected NULL")))
}

/// The blind index of an identifier, NULL when the value is absent.
pub fn blind(
    c: &RowCrypto<'_>,
    kind: BlindIndexKind,
    value: Option<&austa_crypto::Sensitive<String>>,
) -> Result<Value> {
    match value {
        Some(v) => c.blind(kind, v.expose()?),
        None => Ok(Value::Bytes(None)),
    }
}
