//! Parsing a WhatsApp Cloud API webhook body into what the ingest stores, before any I/O.
//!
//! Every shape error names the JSON path of the offending value (`entry[0].changes[1].value.messages[2].id`)
//! as the error's field, never the value itself. Unknown message types are not errors: they are kept
//! (see [`Inbound::unsupported`]). Unknown status values are not errors either: they are skipped and
//! counted by the ingest.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{MessageStatus, MessageType};
use crate::validate;

/// Largest body accepted (Meta's notifications are a few kilobytes; batches stay far below this).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The parts of a body the ingest stores.
pub(super) struct Payload {
    /// `entry[].changes[]` whose `field` is `messages` (or absent), in body order.
    pub changes: Vec<Change>,
}

/// One `entry[i].changes[j].value`.
pub(super) struct Change {
    /// JSON path of the value, e.g. `entry[0].changes[0].value`.
    pub path: String,
    /// `metadata.phone_number_id`: the business number, hence the organization.
    pub phone_number_id: String,
    /// Profile names by WhatsApp id, from `contacts[]`.
    pub names: Vec<(String, Option<String>)>,
    /// `messages[]`.
    pub messages: Vec<Inbound>,
    /// `statuses[]`.
    pub statuses: Vec<StatusUpdate>,
}

/// One inbound message.
pub(super) struct Inbound {
    /// JSON path of the message object.
    pub path: String,
    /// The wamid (`id`).
    pub wamid: String,
    /// The sender's WhatsApp id (`from`), also the chat id.
    pub from: String,
    /// `timestamp`.
    pub sent_at: DateTime<Utc>,
    /// Stored type (see the module documentation of [`crate::whatsapp`] for the mapping).
    pub message_type: MessageType,
    /// Text, caption, button or list title, reaction emoji.
    pub content: Option<String>,
    /// MIME type of media, without parameters (`audio/ogg`).
    pub media_type: Option<String>,
    /// Everything else, encrypted: the raw object without `id`, `from` and `timestamp`, plus
    /// `whatsapp_type` and, for unsupported ones, `unsupported: true`.
    pub metadata: Value,
    /// Whether the type is one the platform does not model.
    pub unsupported: bool,
}

/// One `statuses[]` entry.
pub(super) struct StatusUpdate {
    /// JSON path of the status object.
    pub path: String,
    /// The outbound message's wamid.
    pub wamid: String,
    /// The status; `None` for values the platform does not model (skipped).
    pub status: Option<MessageStatus>,
    /// `timestamp`.
    pub at: DateTime<Utc>,
    /// `errors[]` of a failed status: code and title.
    pub errors: Vec<(Option<i64>, Option<String>)>,
}

fn err(path: &str, reason: &str) -> Error {
    Error::validation(path, reason)
}

/// `path.key`, or `key` at the top level.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| err(path, "must be a JSON object"))
}

fn required<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value> {
    match o.get(key) {
        Some(Value::Null) | None => Err(err(&join(path, key), "is required")),
        Some(v) => Ok(v),
    }
}

/// An optional array (absent or null: empty).
fn array<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a [Value]> {
    match o.get(key) {
        Some(Value::Null) | None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(err(&join(path, key), "must be a JSON array")),
    }
}

fn string<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str> {
    required(o, path, key)?.as_str().ok_or_else(|| err(&join(path, key), "must be a string"))
}

fn opt_string<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// Unix seconds, as Meta sends them (a string of digits; a number is accepted too).
fn timestamp(o: &Map<String, Value>, path: &str) -> Result<DateTime<Utc>> {
    let field = join(path, "timestamp");
    let seconds = match required(o, path, "timestamp")? {
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| err(&field, "must be Unix seconds"))?,
        Value::Number(n) => n.as_i64().ok_or_else(|| err(&field, "must be Unix seconds"))?,
        _ => return Err(err(&field, "must be Unix seconds")),
    };
    // The years every stored timestamp must fall in (see `repo::table`), checked here so that a body
    // fails before anything is looked up.
    let earliest = -2_208_988_800; // 1900-01-01T00:00:00Z
    let latest = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(earliest..=latest).contains(&seconds) {
        return Err(err(&field, "must be between the years 1900 and 9999"));
    }
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| err(&field, "is out of range"))
}

/// Text as the messages table accepts it: control characters other than line breaks and tabs removed,
/// at most 65,536 characters, `None` when blank.
pub(super) fn clean_text(s: &str) -> Option<String> {
    let cleaned: String =
        s.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')).take(65_536).collect();
    if cleaned.trim().is_empty() {
        None
    } else {
        Some(cleaned)
    }
}

/// `audio/ogg; codecs=opus` → `audio/ogg`; `None` when it is not a MIME type.
fn mime(s: Option<&str>) -> Option<String> {
    let m = s?.split(';').next()?.trim().to_ascii_lowercase();
    let ok = (3..=255).contains(&m.len()) && m.contains('/') && !m.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(m)
}

/// Parses and checks the whole body; nothing is looked up.
pub(super) fn parse(body: &[u8]) -> Result<Payload> {
    if body.len() > MAX_BODY {
        return Err(err("body", "is larger than 4 MiB"));
    }
    let root = crate::input::parse_json("body", body)?;
    let root = root.as_object().ok_or_else(|| err("body", "must be a JSON object"))?;
    if string(root, "", "object")? != "whatsapp_business_account" {
        return Err(err("object", "must be \"whatsapp_business_account\""));
    }
    let entries = match required(root, "", "entry")? {
        Value::Array(a) => a,
        _ => return Err(err("entry", "must be a JSON array")),
    };
    let mut changes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("entry[{i}]");
        let entry = object(entry, &path)?;
        for (j, change) in array(entry, &path, "changes")?.iter().enumerate() {
            let path = format!("{path}.changes[{j}]");
            let change = object(change, &path)?;
            match change.get("field") {
                None | Some(Value::Null) => {}
                Some(Value::String(f)) if f == "messages" => {}
                Some(Value::String(_)) => continue, // account or template notifications: not ingested here
                Some(_) => return Err(err(&format!("{path}.field"), "must be a string")),
            }
            changes.push(parse_value(object(required(change, &path, "value")?, &format!("{path}.value"))?, &path)?);
        }
    }
    Ok(Payload { changes })
}

fn parse_value(value: &Map<String, Value>, change_path: &str) -> Result<Change> {
    let path = format!("{change_path}.value");
    let metadata_path = format!("{path}.metadata");
    let metadata = object(required(value, &path, "metadata")?, &metadata_path)?;
    let phone_number_id = super::phone_number_id(
        &format!("{metadata_path}.phone_number_id"),
        string(metadata, &metadata_path, "phone_number_id")?,
    )?;
    let mut names = Vec::new();
    for (k, c) in array(value, &path, "contacts")?.iter().enumerate() {
        let p = format!("{path}.contacts[{k}]");
        let c = object(c, &p)?;
        let wa_id = validate::whatsapp_id(&format!("{p}.wa_id"), string(c, &p, "wa_id")?)?;
        let name = c.get("profile").and_then(Value::as_object).and_then(|p| opt_string(p, "name")).map(str::to_string);
        names.push((wa_id, name));
    }
    let messages = array(value, &path, "messages")?
        .iter()
        .enumerate()
        .map(|(k, m)| parse_message(m, &format!("{path}.messages[{k}]")))
        .collect::<Result<Vec<_>>>()?;
    let statuses = array(value, &path, "statuses")?
        .iter()
        .enumerate()
        .map(|(k, s)| parse_status(s, &format!("{path}.statuses[{k}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Change { path, phone_number_id, names, messages, statuses })
}

fn wamid(o: &Map<String, Value>, path: &str) -> Result<String> {
    let field = format!("{path}.id");
    crate::repo::messages::wa_message_id(string(o, path, "id")?)
        .map_err(|_| err(&field, "must be a WhatsApp message id"))
}

fn parse_message(v: &Value, path: &str) -> Result<Inbound> {
    let o = object(v, path)?;
    let wamid = wamid(o, path)?;
    let from = validate::whatsapp_id(&format!("{path}.from"), string(o, path, "from")?)?;
    let sent_at = timestamp(o, path)?;
    let kind = match o.get("type") {
        None | Some(Value::Null) => "unknown".to_string(),
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(err(&format!("{path}.type"), "must be a string")),
    };
    let part = o.get(kind.as_str()).and_then(Value::as_object);
    let text = |key: &str| part.and_then(|p| opt_string(p, key)).and_then(clean_text);
    let media = |t: MessageType, caption: bool| -> Option<(MessageType, Option<String>, Option<String>)> {
        let p = part?;
        opt_string(p, "id")?;
        Some((t, if caption { text("caption") } else { None }, mime(opt_string(p, "mime_type"))))
    };
    let interactive = || -> Option<String> {
        let p = part?;
        let sub = opt_string(p, "type")?;
        p.get(sub).and_then(Value::as_object).and_then(|r| opt_string(r, "title")).and_then(clean_text)
    };
    let known: Option<(MessageType, Option<String>, Option<String>)> = match kind.as_str() {
        "text" => text("body").map(|b| (MessageType::Text, Some(b), None)),
        "image" => media(MessageType::Image, true),
        "video" => media(MessageType::Video, true),
        "document" => media(MessageType::Document, true),
        "audio" => media(MessageType::Audio, false),
        "sticker" => media(MessageType::Sticker, false),
        "location" => part.map(|_| (MessageType::Location, None, None)),
        "contacts" => o.get("contacts").and_then(Value::as_array).map(|_| (MessageType::Contact, None, None)),
        "interactive" => part.map(|_| (MessageType::Interactive, interactive(), None)),
        "button" => part.map(|_| (MessageType::Interactive, text("text"), None)),
        "reaction" => part.map(|_| (MessageType::Interactive, text("emoji"), None)),
        _ => None,
    };
    let unsupported = known.is_none();
    let (message_type, content, media_type) = known.unwrap_or((MessageType::Interactive, None, None));
    let mut metadata = o.clone();
    for k in ["id", "from", "timestamp"] {
        metadata.remove(k);
    }
    metadata.insert("whatsapp_type".into(), Value::String(kind));
    if unsupported {
        metadata.insert("unsupported".into(), Value::Bool(true));
    }
    Ok(Inbound {
        path: path.to_string(),
        wamid,
        from,
        sent_at,
        message_type,
        content,
        media_type,
        metadata: Value::Object(metadata),
        unsupported,
    })
}

fn parse_status(v: &Value, path: &str) -> Result<StatusUpdate> {
    let o = object(v, path)?;
    let wamid = wamid(o, path)?;
    let status = match string(o, path, "status")? {
        "sent" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "read" => Some(MessageStatus::Read),
        "failed" => Some(MessageStatus::Failed),
        _ => None,
    };
    let at = timestamp(o, path)?;
    let mut errors = Vec::new();
    for (k, e) in array(o, path, "errors")?.iter().enumerate() {
        let e = object(e, &format!("{path}.errors[{k}]"))?;
        let code = e.get("code").and_then(Value::as_i64);
        let title = opt_string(e, "title").and_then(clean_text).map(|t| t.chars().take(500).collect());
        errors.push((code, title));
    }
    Ok(StatusUpdate { path: path.to_string(), wamid, status, at, errors })
}
