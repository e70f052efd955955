//! Arguments of an operation: a JSON object whose members are taken by name.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use austa_core::repo::{Cursor, PageRequest};
use austa_core::{input, Error, Result};

/// The arguments of one call. Each member is taken once; a member left over after the call is an
/// `validation` error (a misspelt keyword must not be ignored silently).
#[derive(Debug, Default)]
pub struct Args(Map<String, Value>);

impl Args {
    /// Arguments from a JSON value: an object, or `null` for none.
    pub fn new(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self(map)),
            Value::Null => Ok(Self::default()),
            _ => Err(Error::Validation { field: "arguments".into(), reason: "must be an object".into() }),
        }
    }

    /// A required argument. Input types (`data`, `patch`) report their own fields by name.
    pub fn req<T: DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        match self.0.remove(name) {
            Some(Value::Null) | None => Err(Error::Validation { field: name.into(), reason: "is required".into() }),
            Some(v) => input_named(name, v),
        }
    }

    /// An optional argument (`null` or absent is `None`).
    pub fn opt<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>> {
        match self.0.remove(name) {
            Some(Value::Null) | None => Ok(None),
            Some(v) => input_named(name, v).map(Some),
        }
    }

    /// The page arguments `limit` and `after`.
    pub fn page(&mut self) -> Result<PageRequest> {
        let limit = self.opt::<u32>("limit")?;
        let after = self.opt::<String>("after")?.map(|c| c.parse::<Cursor>()).transpose()?;
        Ok(PageRequest { limit, after })
    }

    /// Fails on any argument no operation took.
    pub fn finish(self) -> Result<()> {
        match self.0.keys().next() {
            Some(extra) => {
                Err(Error::Validation { field: extra.clone(), reason: "is not an argument of this call".into() })
            }
            None => Ok(()),
        }
    }
}

/// An input value: plain arguments (ids, numbers) are named by the argument; records (`data`,
/// `patch`, `rows`) by their own field paths.
fn input_named<T: DeserializeOwned>(name: &str, value: Value) -> Result<T> {
    let is_record = matches!(value, Value::Object(_) | Value::Array(_));
    input::from_json(value).map_err(|e| match e {
        Error::Validation { field, reason } if !is_record || field == "input" => {
            Error::Validation { field: name.to_string(), reason }
        }
        other => other,
    })
}
