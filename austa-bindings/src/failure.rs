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

/// Parses the JSON text of a call's arguments; a failure is `validation` on `arguments`, described
/// as a failure value (see [`austa_core::input::parse_json`] for what the message says).
pub fn arguments(text: &str) -> Result<Value, Value> {
    austa_core::input::parse_json("arguments", text.as_bytes()).map_err(|e| describe(&e))
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
        encode(runtime.block_on(future))
    });
    std::panic::catch_unwind(run).unwrap_or_else(|_| Err(panicked()))
}

/// A core result as a binding's answer: the value as JSON text, or the failure as [`describe`]d.
pub fn encode(result: austa_core::Result<Value>) -> Result<String, Value> {
    let value = result.map_err(|e| describe(&e))?;
    serde_json::to_string(&value).map_err(|e| describe(&Error::CorruptData(format!("result serialization: {e}"))))
}

/// Runs `future` as a task on [`crate::runtime`] and hands its outcome to `deliver`, on a runtime
/// thread: for bindings whose host wants a callback rather than a blocked thread (Node resolves a
/// Promise from it). A panic in the future is caught by the runtime and delivered as [`panicked`];
/// `deliver` is called exactly once, also when the runtime cannot start.
pub fn spawn<T, F, D>(future: F, deliver: D)
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, Value>> + Send + 'static,
    D: FnOnce(Result<T, Value>) + Send + 'static,
{
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(e) => return deliver(Err(describe(&e))),
    };
    let task = runtime.spawn(future);
    // A second task awaits the first: a panic unwinds only the first, and ends as a `JoinError` here.
    runtime.spawn(async move { deliver(task.await.unwrap_or_else(|_| Err(panicked()))) });
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
    fn a_spawned_panic_is_delivered_as_an_internal_failure() {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(async { panic!("secret 123.456.789-09") as Result<(), Value> }, move |outcome| {
            let _ = tx.send(outcome);
        });
        let failure = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("delivered").unwrap_err();
        assert_eq!(failure["code"], INTERNAL);
        assert!(!failure.to_string().contains("123"));
    }

    #[test]
    fn a_spawned_result_is_delivered_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(async { Ok(7) }, move |outcome| {
            let _ = tx.send(outcome);
        });
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)).expect("delivered"), Ok(7));
        assert!(rx.recv_timeout(std::time::Duration::from_millis(100)).is_err());
    }

    #[test]
    fn a_result_is_json_text() {
        assert_eq!(block_on(async { Ok(json!({"a": 1})) }).unwrap(), r#"{"a":1}"#);
    }
}
