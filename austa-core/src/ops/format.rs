//! The backup file format, version 1.
//!
//! A backup is a gzip-compressed [JSON Lines](https://jsonlines.org) stream:
//!
//! ```text
//! {"format":"austa-backup","version":1,"contents":"data","created_at":"2026-11-26T04:00:00.000000Z","backend":"sqlite","migrations":[1,2,4,...]}
//! {"table":"organizations","columns":["id","name",...]}
//! ["0190...","Hospital São Paulo",...]          <- one line per row, values in column order
//! {"table":"patients","columns":[...]}
//! ...
//! {"end":{"organizations":2,"patients":3,...},"sha256":"<hex>"}
//! ```
//!
//! * `contents` is `data` (every table but the key store's) or `keys` (the key store: wrapped keys and
//!   the key check value, written only on request, to a file of its own).
//! * Tables come parents first, so that loading them in file order satisfies every foreign key.
//! * Values are backend-neutral: `null`, `true`/`false`, numbers, strings (text; UUIDs hyphenated lower
//!   case; timestamps `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC; JSON documents as their text), and
//!   `{"base64":"..."}` for binary columns. Binary columns are the ciphertext envelopes, blind indexes
//!   and wrapped keys exactly as stored: a data backup holds no plaintext of any sensitive column and
//!   no usable key, and decrypts only with the key store and the master key.
//! * The last line counts the rows of every table and carries the SHA-256 of every line before it
//!   (newlines included), so that a truncated or altered file is refused before anything is committed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use base64::Engine as _;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The `format` value of a backup's first line.
pub const FORMAT: &str = "austa-backup";
/// The format version this build writes and reads.
pub const VERSION: u64 = 1;

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contents {
    /// Every table but the key store's.
    Data,
    /// The key store's tables.
    Keys,
}

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`]).
    pub version: u64,
    /// What the file holds.
    pub contents: Contents,
    /// When the backup was taken.
    pub created_at: String,
    /// The source backend (`sqlite` or `postgres`).
    pub backend: String,
    /// The migration versions applied to the source, which the target must match.
    pub migrations: Vec<i64>,
}

/// Encodes a binary value.
pub(crate) fn bytes(b: &[u8]) -> Json {
    json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) })
}

/// Decodes a binary value, if `v` is one.
pub(crate) fn as_bytes(v: &Json) -> Result<Option<Vec<u8>>> {
    match v.as_object().and_then(|o| o.get("base64")).and_then(Json::as_str) {
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Some)
            .map_err(|_| Error::CorruptData("backup: invalid base64 value".into())),
        None => Ok(None),
    }
}

/// Writes a backup: a header, then tables and rows, then the trailer. The writer hashes as it goes.
pub(crate) struct Writer<W: Write> {
    out: W,
    hash: Sha256,
    counts: BTreeMap<String, u64>,
    current: Option<String>,
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(out: W, header: &Header) -> Result<Self> {
        let mut w = Self { out, hash: Sha256::new(), counts: BTreeMap::new(), current: None };
        w.line(&serde_json::to_value(header).map_err(|e| Error::CorruptData(e.to_string()))?)?;
        Ok(w)
    }

    fn line(&mut self, v: &Json) -> Result<()> {
        let mut s = v.to_string();
        s.push('\n');
        self.hash.update(s.as_bytes());
        self.out.write_all(s.as_bytes())?;
        Ok(())
    }

    pub(crate) fn table(&mut self, name: &str, columns: &[String]) -> Result<()> {
        self.counts.insert(name.to_string(), 0);
        self.current = Some(name.to_string());
        self.line(&json!({ "table": name, "columns": columns }))
    }

    pub(crate) fn row(&mut self, values: Vec<Json>) -> Result<()> {
        if let Some(n) = self.current.as_ref().and_then(|t| self.counts.get_mut(t)) {
            *n += 1;
        }
        self.line(&Json::Array(values))
    }

    /// Writes the trailer and returns the output and the row counts.
    pub(crate) fn finish(mut self) -> Result<(W, BTreeMap<String, u64>)> {
        let digest = hex(&self.hash.clone().finalize());
        let end = json!({ "end": self.counts, "sha256": digest });
        let mut s = end.to_string();
        s.push('\n');
        self.out.write_all(s.as_bytes())?;
        self.out.flush()?;
        Ok((self.out, self.counts))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One item read from a backup.
#[derive(Debug)]
pub(crate) enum Item {
    Table {
        name: String,
        columns: Vec<String>,
    },
    Row(Vec<Json>),
    /// The trailer, checked: the hash matched and the counts are the rows read.
    End(BTreeMap<String, u64>),
}

/// Reads a backup line by line, checking the hash and the counts at the end.
pub(crate) struct Reader<R: BufRead> {
    input: R,
    hash: Sha256,
    counts: BTreeMap<String, u64>,
    current: Option<String>,
    line: String,
    ended: bool,
}

fn corrupt(what: &str) -> Error {
    Error::CorruptData(format!("backup file: {what}"))
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header.
    pub(crate) fn open(input: R) -> Result<(Self, Header)> {
        let mut r = Self {
            input,
            hash: Sha256::new(),
            counts: BTreeMap::new(),
            current: None,
            line: String::new(),
            ended: false,
        };
        let first = r.next_line()?.ok_or_else(|| corrupt("empty"))?;
        let header: Header = serde_json::from_value(first).map_err(|_| corrupt("not an austa backup (bad header)"))?;
        if header.format != FORMAT {
            return Err(corrupt("not an austa backup"));
        }
        if header.version != VERSION {
            return Err(Error::Config(format!(
                "backup format version {} is not supported by this build (it reads version {VERSION})",
                header.version
            )));
        }
        Ok((r, header))
    }

    fn next_line(&mut self) -> Result<Option<Json>> {
        self.line.clear();
        if self.input.read_line(&mut self.line).map_err(|e| corrupt(&format!("unreadable ({e})")))? == 0 {
            return Ok(None);
        }
        let v: Json = serde_json::from_str(&self.line).map_err(|_| corrupt("a line is not JSON"))?;
        // The trailer is not part of what it hashes.
        if v.get("end").is_none() {
            self.hash.update(self.line.as_bytes());
        }
        Ok(Some(v))
    }

    /// The next item; `None` after the trailer. A file that stops before its trailer is an error.
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>> {
        if self.ended {
            return Ok(None);
        }
        let v = self.next_line()?.ok_or_else(|| corrupt("truncated (no trailer)"))?;
        match v {
            Json::Array(values) => {
                let table = self.current.as_ref().ok_or_else(|| corrupt("a row before any table"))?;
                *self.counts.entry(table.clone()).or_default() += 1;
                Ok(Some(Item::Row(values)))
            }
            Json::Object(mut o) => {
                if let Some(end) = o.remove("end") {
                    let counts: BTreeMap<String, u64> =
                        serde_json::from_value(end).map_err(|_| corrupt("bad trailer"))?;
                    let digest = hex(&self.hash.clone().finalize());
                    if o.get("sha256").and_then(Json::as_str) != Some(digest.as_str()) {
                        return Err(corrupt("checksum mismatch (altered or damaged)"));
                    }
                    if counts != self.counts {
                        return Err(corrupt("row counts do not match the trailer"));
                    }
                    self.ended = true;
                    return Ok(Some(Item::End(counts)));
                }
                let name = o.get("table").and_then(Json::as_str).ok_or_else(|| corrupt("unknown line"))?.to_string();
                let columns: Vec<String> = o
                    .remove("columns")
                    .and_then(|c| serde_json::from_value(c).ok())
                    .ok_or_else(|| corrupt("table without columns"))?;
                self.counts.insert(name.clone(), 0);
                self.current = Some(name.clone());
                Ok(Some(Item::Table { name, columns }))
            }
            _ => Err(corrupt("unknown line")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            contents: Contents::Data,
            created_at: "2026-11-26T00:00:00.000000Z".into(),
            backend: "sqlite".into(),
            migrations: vec![1, 2],
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header()).unwrap();
        w.table("t", &["a".into(), "b".into()]).unwrap();
        w.row(vec![json!(1), bytes(b"\x00\x01")]).unwrap();
        w.row(vec![json!("x"), Json::Null]).unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn round_trip() {
        let file = sample();
        let (mut r, h) = Reader::open(file.as_slice()).unwrap();
        assert_eq!(h, header());
        assert!(matches!(r.next_item().unwrap(), Some(Item::Table { name, .. }) if name == "t"));
        match r.next_item().unwrap() {
            Some(Item::Row(v)) => assert_eq!(as_bytes(&v[1]).unwrap(), Some(vec![0, 1])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.next_item().unwrap(), Some(Item::Row(_))));
        assert!(matches!(r.next_item().unwrap(), Some(Item::End(c)) if c["t"] == 2));
        assert!(r.next_item().unwrap().is_none());
    }

    #[test]
    fn altered_or_truncated_files_are_refused() {
        let file = String::from_utf8(sample()).unwrap();
        let altered = file.replace("\"x\"", "\"y\"");
        let (mut r, _) = Reader::open(altered.as_bytes()).unwrap();
        let err = std::iter::from_fn(|| r.next_item().transpose()).find_map(|i| i.err()).unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");

        let truncated: String = file.lines().take(3).map(|l| format!("{l}\n")).collect();
        let (mut r, _) = Reader::open(truncated.as_bytes()).unwrap();
        let err = std::iter::from_fn(|| r.next_item().transpose()).find_map(|i| i.err()).unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
