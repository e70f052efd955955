//! Input from data: building the library's input types (`NewPatient`, `PatientPatch`, ...) from JSON.
//!
//! The Python and Node bindings, and services that receive JSON, hand the library plain data. Every
//! input type implements `serde::Deserialize` with `deny_unknown_fields`, and [`from_json`] turns a
//! serde failure into [`Error::Validation`] naming the field by its path (`emergency_contact.phone`,
//! `related_conditions[2]`). Serde's own messages quote the offending value (`invalid type: string
//! "123.456.789-09"`), which may be a patient's data, so the reason is rebuilt from the kind of failure
//! and never contains the value.
//!
//! ```
//! use austa_model::{input, model::NewPatient};
//! use austa_error::Error;
//! let new: NewPatient = input::from_json(serde_json::json!({
//!     "first_name": "Ana", "last_name": "Souza", "phone": "+5511987654321",
//! }))?;
//! assert_eq!(new.first_name.expose().unwrap(), "Ana");
//!
//! let err = input::from_json::<NewPatient>(serde_json::json!({"first_name": 42})).unwrap_err();
//! assert_eq!(err.field(), Some("first_name"));
//! assert!(!err.to_string().contains("42"));
//! # Ok::<(), Error>(())
//! ```

use serde::de::DeserializeOwned;

use austa_error::{Error, Result};

/// Builds an input type from a JSON value; a shape error is `validation` on the field's path, with a
/// reason that never quotes the value.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = reason(&e.inner().to_string());
        // A missing or unknown field is reported by its parent's path, with the name in the message.
        let (field, reason) = match (named(&reason), path.as_str()) {
            (Some((name, why)), ".") => (name.to_string(), why),
            (Some((name, why)), path) if path == name || path.ends_with(&format!(".{name}")) => (path.to_string(), why),
            (Some((name, why)), parent) => (format!("{parent}.{name}"), why),
            (None, ".") => ("input".to_string(), reason),
            (None, _) => (path, reason),
        };
        Error::Validation { field, reason }
    })
}

/// Parses JSON text (the bindings' arguments, a webhook body); a failure is `validation` on `field`
/// saying what is wrong and where (line and column), never quoting the text: the JSON is not valid
/// (or not UTF-8), it ends early, or it nests deeper than serde_json's limit of 128 levels.
///
/// ```
/// let e = austa_model::input::parse_json("body", "[".repeat(200).as_bytes()).unwrap_err();
/// assert_eq!(e.field(), Some("body"));
/// assert!(e.to_string().contains("nested more than 128 levels"), "{e}");
/// ```
pub fn parse_json(field: &str, text: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(text).map_err(|e| {
        let at = format!("line {}, column {}", e.line(), e.column());
        let reason = if e.to_string().starts_with("recursion limit exceeded") {
            format!("is JSON nested more than 128 levels deep ({at})")
        } else if e.is_eof() {
            format!("is JSON that ends early ({at})")
        } else {
            format!("is not valid JSON, or not UTF-8 ({at})")
        };
        Error::Validation { field: field.to_string(), reason }
    })
}

/// Serde's message without the offending value.
fn reason(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: ")) {
        let got = rest.split([' ', ',']).next().unwrap_or("value");
        return match rest.split_once(", expected ") {
            Some((_, expected)) => format!("has the wrong type or value ({got} given, expected {expected})"),
            None => "has the wrong type or value".to_string(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.split_once(", expected ") {
            Some((_, expected)) => format!("is not a known value (expected {expected})"),
            None => "is not a known value".to_string(),
        };
    }
    if message.starts_with("missing field ") || message.starts_with("unknown field ") {
        return message.to_string();
    }
    if message.starts_with("invalid length ") {
        return "has the wrong number of items".to_string();
    }
    if message.contains("UUID") || message.contains("uuid") {
        return "is not a UUID".to_string();
    }
    if message.contains("premature end") || message.contains("input contains invalid characters") {
        return "is not a valid date or time (RFC 3339 with a time zone, or YYYY-MM-DD)".to_string();
    }
    "is not valid".to_string()
}

/// `missing field `x`` and `unknown field `x`, expected ...`: the field name and a short reason.
fn named(reason: &str) -> Option<(&str, String)> {
    let (prefix, why) = if reason.starts_with("missing field ") {
        ("missing field ", "is required".to_string())
    } else if reason.starts_with("unknown field ") {
        ("unknown field ", "is not a field of this input".to_string())
    } else {
        return None;
    };
    let name = reason.strip_prefix(prefix)?.trim_start_matches('`');
    let name = name.split('`').next()?;
    Some((name, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewHealthData, NewPatient, PatientPatch};
    use serde_json::json;

    #[test]
    fn missing_unknown_and_nested_fields_are_named() {
        let e = from_json::<NewHealthData>(json!({"patient_id": "0190c3a0-0000-7000-8000-000000000001"})).unwrap_err();
        assert_eq!(e.field(), Some("data_type"), "{e}");
        let e = from_json::<NewPatient>(json!({"first_name": "A", "nickname": "x"})).unwrap_err();
        assert_eq!(e.field(), Some("nickname"));
        let e = from_json::<NewPatient>(json!({"emergency_contact": {"name": "B", "phone": 5}})).unwrap_err();
        assert_eq!(e.field(), Some("emergency_contact.phone"), "{e}");
        let e = from_json::<NewPatient>(json!({"gender": "Feminino-secret"})).unwrap_err();
        assert_eq!(e.field(), Some("gender"));
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn json_text_failures_say_what_is_wrong() {
        let reason = |text: &[u8]| parse_json("arguments", text).unwrap_err().to_string();
        assert!(reason(b"{\"a\": 1").contains("ends early"), "{}", reason(b"{\"a\": 1"));
        assert!(reason(b"{\"object\":\"\xff\"}").contains("not UTF-8"));
        assert!(reason(b"{\"cpf\": 123.456.789-09}").contains("not valid JSON"));
        assert!(!reason(b"{\"cpf\": 123.456.789-09}").contains("123"));
        let deep = format!("{}1{}", "[".repeat(129), "]".repeat(129));
        assert!(reason(deep.as_bytes()).contains("nested more than 128 levels deep"));
        let fine = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_json("arguments", fine.as_bytes()).is_ok());
    }

    #[test]
    fn values_never_reach_the_message() {
        for bad in [json!({"date_of_birth": "1990-13-99-secret"}), json!({"cpf": 12345678909_i64})] {
            let e = from_json::<NewPatient>(bad).unwrap_err();
            let text = e.to_string();
            assert!(!text.contains("secret") && !text.contains("12345678909"), "{text}");
        }
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let p: PatientPatch = from_json(json!({"email": null})).unwrap();
        assert!(matches!(p.email, Some(None)));
        assert!(p.cpf.is_none());
        let p: PatientPatch = from_json(json!({"cpf": "529.982.247-25"})).unwrap();
        assert!(matches!(p.cpf, Some(Some(_))));
    }
}
