//! Cursor pagination.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

use crate::error::{Error, Result};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size a caller may ask for.
pub const MAX_LIMIT: u32 = 500;

/// An opaque position in a listing. Pass [`Page::next`] back to get the following page.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    pub(crate) fn encode(raw: &str) -> Self {
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }

    pub(crate) fn decode(&self) -> Result<String> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.0)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(Self::invalid)
    }

    /// The error for a cursor this library did not produce.
    pub(crate) fn invalid() -> Error {
        Error::validation("cursor", "is not a cursor returned by this library")
    }

    /// The cursor as a string, for APIs and URLs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

impl FromStr for Cursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let c = Cursor(s.to_string());
        c.decode()?;
        Ok(c)
    }
}

/// Which page to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size; default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`].
    pub limit: Option<u32>,
    /// Continue after this cursor (from the previous page's [`Page::next`]).
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { limit: Some(limit), after: None }
    }

    /// The page of `limit` rows after `cursor`.
    pub fn after(cursor: Cursor, limit: u32) -> Self {
        Self { limit: Some(limit), after: Some(cursor) }
    }

    /// The row id the page continues after (listings ordered by id), if any.
    pub(crate) fn after_id(&self) -> Result<Option<uuid::Uuid>> {
        self.after.as_ref().map(|c| c.decode()?.parse().map_err(|_| Cursor::invalid())).transpose()
    }

    pub(crate) fn checked_limit(&self) -> Result<u32> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            0 => Err(Error::validation("limit", "must be at least 1")),
            n if n > MAX_LIMIT => Err(Error::validation("limit", format!("must be at most {MAX_LIMIT}"))),
            n => Ok(n),
        }
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A page serializes as `{"items": [...], "next": "<cursor>" | null}`, the shape the bindings return.
impl<T: serde::Serialize> serde::Serialize for Page<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut page = serializer.serialize_struct("Page", 2)?;
        page.serialize_field("items", &self.items)?;
        page.serialize_field("next", &self.next.as_ref().map(|c| c.to_string()))?;
        page.end()
    }
}
