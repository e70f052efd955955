//! How a binding reports a failure: the core's [`Error`] as data (`code`, `message`, `field`, and the
//! failed rows of a batch), so that each language raises its own exception type from the same facts.
//!
//! The message is the core's `Display`, which never quotes a sensitive value; a panic inside the core
//! becomes the code `internal` with a fixed message (its payload could quote anything, so it is not
//! passed on).

use austa_core::Error;
use serde_json::{json, Value};

/// The code of a failure that is not one of the core's errors (a panic, a result that did not
/// serialize).
pub const INTERNAL: &str = "internal";

/// The error as `{"code", "message", "field", "rows"}`; `rows` lists `{"row", "code", "message",
/// "field"}` for a batch and is empty otherwise.
pub fn describe(error: &Error) -> Value {
    let rows: Vec<Value> = match error {
        Error::Batch(rows) => rows
            .iter()
            .map(|r| json!({"row": r.row, "code": r.error.code(), "message": r.error.to_string(), "field": r.error.field()}))
            .collect(),
        _ => Vec::new(),
    };
    json!({"code": error.code(), "message": error.to_string(), "field": error.field(), "rows": rows})
}

/// The failure reported for a panic caught at the binding boundary.
pub fn panicked() -> Value {
    json!({
        "code": INTERNAL,
        "message": "internal error in austa (a bug: please report it); the operation did not complete",
        "field": null,
        "rows": [],
    })
}

/// Runs a core future to completion on [`crate::runtime`], on the calling thread, catching panics:
/// the result as a JSON string, or the failure as [`describe`]d. For bindings whose host calls
/// synchronously (Python, with the interpreter lock released around this call).
pub fn block_on<F>(future: F) -> Result<String, Value>
where
    F: std::future::Future<Output = austa_core::Result<Value>>,
{
    let run = std::panic::AssertUnwindSafe(|| {
        let runtime = crate::runtime().map_err(|e| describe(&e))?;
        let value = runtime.block_on(future).map_err(|e| describe(&e))?;
        serde_json::to_string(&value).map_err(|e| describe(&Error::CorruptData(format!("result serialization: {e}"))))
    });
    std::panic::catch_unwind(run).unwrap_or_else(|_| Err(panicked()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use austa_core::RowError;

    #[test]
    fn a_batch_lists_its_rows() {
        let error = Error::Batch(vec![RowError {
            row: 3,
            error: Error::Validation { field: "cpf".into(), reason: "invalid check digits".into() },
        }]);
        let d = describe(&error);
        assert_eq!(d["code"], "invalid_batch");
        assert_eq!(d["rows"][0]["row"], 3);
        assert_eq!(d["rows"][0]["field"], "cpf");
        assert_eq!(d["rows"][0]["code"], "validation");
    }

    #[test]
    fn a_panic_is_an_internal_failure() {
        let result = block_on(async { panic!("secret 123.456.789-09") });
        let failure = result.unwrap_err();
        assert_eq!(failure["code"], INTERNAL);
        assert!(!failure["message"].as_str().unwrap().contains("123"));
    }

    #[test]
    fn a_result_is_json_text() {
        assert_eq!(block_on(async { Ok(json!({"a": 1})) }).unwrap(), r#"{"a":1}"#);
    }
}
