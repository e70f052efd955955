//! The compiled half of the Node package `austa` (`austa-node/index.js` is the other).
//!
//! Deliberately narrow, like the Python module: `NativeDatabase` and `NativeScope` whose
//! `call(op, args)` take an operation's name and its arguments as JSON text and resolve to the result
//! as JSON text, plus `ingest(body)` for WhatsApp webhook bodies, taken as a string or a Buffer without
//! re-stringifying. Every call returns a Promise and runs on libuv's thread pool (`AsyncTask`), which
//! blocks on the core's tokio runtime: the JavaScript thread never waits for the database.
//!
//! A failure rejects the Promise with an `Error` whose message is the failure as JSON text (`{code,
//! message, field, rows}`); `index.js` turns it into an `AustaError` with `code` and `field`. A panic in
//! the core is caught inside the task (`austa_bindings::failure::block_on`) and becomes the code
//! `internal`: it never unwinds into libuv, which would abort the process.
#![deny(unsafe_code)] // the napi macros generate the FFI glue, which must allow it locally

use austa_bindings::failure;
use austa_core::{Database as CoreDatabase, Scope as CoreScope};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

/// What a task does once it runs on the thread pool.
pub enum Work {
    Open,
    Database(CoreDatabase, String),
    Scope(CoreScope, String),
    Ingest(CoreDatabase, Vec<u8>),
    OpenScope(CoreDatabase),
    Emergency(CoreScope),
}

/// What a task produced (public only because `Task::Output` names it).
pub enum Done {
    Json(String),
    Database(CoreDatabase),
    Scope(CoreScope),
}

fn arguments(args: &str) -> std::result::Result<Value, Value> {
    serde_json::from_str(args).map_err(|e| {
        failure::describe(&austa_core::Error::Validation {
            field: "arguments".into(),
            reason: format!("are not JSON (line {}, column {})", e.line(), e.column()),
        })
    })
}

fn reject(failure: Value) -> Error {
    Error::from_reason(failure.to_string())
}

/// Runs a future that yields a handle, with the same panic guard as [`failure::block_on`].
fn handle<T, F>(future: F) -> std::result::Result<T, Value>
where
    F: std::future::Future<Output = austa_core::Result<T>>,
{
    let mut out = None;
    failure::block_on(async {
        out = Some(future.await?);
        Ok(Value::Null)
    })?;
    out.ok_or_else(failure::panicked)
}

/// One call of the core, run off the JavaScript thread (arguments are parsed there too: a bulk
/// batch's JSON is not parsed on the event loop).
pub struct Call {
    work: Option<(Work, String)>,
}

impl Call {
    fn with(args: String, work: Work) -> AsyncTask<Self> {
        AsyncTask::new(Self { work: Some((work, args)) })
    }
}

impl Task for Call {
    type Output = Done;
    type JsValue = Either3<String, NativeDatabase, NativeScope>;

    fn compute(&mut self) -> Result<Done> {
        let (work, args) = self.work.take().ok_or_else(|| reject(failure::panicked()))?;
        let args = arguments(&args).map_err(reject)?;
        let done = match work {
            Work::Open => handle(async {
                let options = austa_core::input::from_json(args)?;
                austa_bindings::open(options).await
            })
            .map(Done::Database),
            Work::Database(db, op) => failure::block_on(austa_bindings::call_database(&db, &op, args)).map(Done::Json),
            Work::Scope(scope, op) => failure::block_on(austa_bindings::call_scope(&scope, &op, args)).map(Done::Json),
            Work::Ingest(db, body) => failure::block_on(async {
                let report = db.whatsapp().ingest(&body).await?;
                serde_json::to_value(report)
                    .map_err(|e| austa_core::Error::CorruptData(format!("result serialization: {e}")))
            })
            .map(Done::Json),
            Work::OpenScope(db) => handle(austa_bindings::scope(&db, args)).map(Done::Scope),
            Work::Emergency(scope) => handle(austa_bindings::ops::emergency_scope(&scope, args)).map(Done::Scope),
        };
        done.map_err(reject)
    }

    fn resolve(&mut self, _env: Env, output: Done) -> Result<Self::JsValue> {
        Ok(match output {
            Done::Json(text) => Either3::A(text),
            Done::Database(inner) => Either3::B(NativeDatabase { inner }),
            Done::Scope(inner) => Either3::C(NativeScope { inner }),
        })
    }
}

/// Opens a database: `options` is the JSON text of `{url?, master_key?, key_file?, keystore_url?,
/// create_key_file?}`; absent members come from the environment. Resolves to a `NativeDatabase`.
#[napi]
pub fn open(options: String) -> AsyncTask<Call> {
    Call::with(options, Work::Open)
}

/// An open database (a connection pool and the key cache), shared by every call of the process.
#[napi]
pub struct NativeDatabase {
    inner: CoreDatabase,
}

#[napi]
impl NativeDatabase {
    /// A database operation (`migrate`, `seed`, `organizations.create`, ...), arguments and result
    /// as JSON text.
    #[napi]
    pub fn call(&self, op: String, args: String) -> AsyncTask<Call> {
        Call::with(args, Work::Database(self.inner.clone(), op))
    }

    /// Stores a WhatsApp Cloud API webhook body, given as received (a string or a Buffer).
    #[napi]
    pub fn ingest(&self, body: Either<String, Buffer>) -> AsyncTask<Call> {
        let body = match body {
            Either::A(text) => text.into_bytes(),
            // Copied before the task runs: JavaScript may change the Buffer meanwhile.
            Either::B(buffer) => buffer.to_vec(),
        };
        Call::with("{}".into(), Work::Ingest(self.inner.clone(), body))
    }

    /// Opens a scope: JSON text of `{organization_id, actor, request?}`. Resolves to a `NativeScope`.
    #[napi]
    pub fn scope(&self, args: String) -> AsyncTask<Call> {
        Call::with(args, Work::OpenScope(self.inner.clone()))
    }
}

/// An organization and an actor: what every repository call runs as.
#[napi]
pub struct NativeScope {
    inner: CoreScope,
}

#[napi]
impl NativeScope {
    /// A scope operation (`patients.create`, `audit.verify`, ...), arguments and result as JSON text.
    #[napi]
    pub fn call(&self, op: String, args: String) -> AsyncTask<Call> {
        Call::with(args, Work::Scope(self.inner.clone(), op))
    }

    /// A provider's recorded, time-limited emergency access to one patient, as a new scope.
    #[napi]
    pub fn emergency(&self, args: String) -> AsyncTask<Call> {
        Call::with(args, Work::Emergency(self.inner.clone()))
    }
}
