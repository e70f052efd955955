//! The compiled half of the Node package `austa` (`austa-node/index.js` is the other).
//!
//! Deliberately narrow, like the Python module: `NativeDatabase` and `NativeScope` whose
//! `call(op, args)` take an operation's name and its arguments as JSON text and resolve to the result
//! as JSON text, plus `ingest(body)` for WhatsApp webhook bodies, taken as a string or a Buffer without
//! re-stringifying.
//!
//! Every call returns a Promise at once and runs as a task on the core's tokio runtime
//! ([`failure::spawn`]); the Promise is settled from there through a thread-safe function. No thread
//! waits for the database: neither the JavaScript thread nor libuv's small thread pool (4 threads by
//! default, shared with Node's file, DNS and crypto work), so the number of calls in flight is bounded
//! only by the connection pool. Arguments are parsed inside the task, off the event loop.
//!
//! A failure rejects the Promise with an `Error` whose message is the failure as JSON text (`{code,
//! message, field, rows}`); `index.js` turns it into an `AustaError` with `code` and `field`. A panic in
//! the core ends its task only; it is reported as the code `internal`, never unwinding into Node.
#![deny(unsafe_code)] // the napi macros generate the FFI glue, which must allow it locally

use std::future::Future;

use austa_bindings::failure;
use austa_core::{Database as CoreDatabase, Scope as CoreScope};
use napi::bindgen_prelude::*;
use napi::JsDeferred;
use napi_derive::napi;
use serde_json::Value;

/// What a call settles with.
enum Done {
    Json(String),
    Database(CoreDatabase),
    Scope(CoreScope),
}

type Settled = Either3<String, NativeDatabase, NativeScope>;

fn reject(failure: Value) -> Error {
    Error::from_reason(failure.to_string())
}

type Resolver = Box<dyn FnOnce(Env) -> Result<Settled> + Send>;

/// A Promise's settling end. Dropped unsettled (its task dropped by a runtime shutting down, say),
/// it rejects with `internal`: napi-rs would otherwise leave the Promise pending forever, and its
/// thread-safe function would keep the process alive.
struct Settle(Option<JsDeferred<Settled, Resolver>>);

impl Settle {
    fn outcome(mut self, outcome: std::result::Result<Done, Value>) {
        let Some(deferred) = self.0.take() else { return };
        match outcome {
            Ok(done) => deferred.resolve(Box::new(move |_| {
                Ok(match done {
                    Done::Json(text) => Either3::A(text),
                    Done::Database(inner) => Either3::B(NativeDatabase { inner }),
                    Done::Scope(inner) => Either3::C(NativeScope { inner }),
                })
            })),
            Err(failure) => deferred.reject(reject(failure)),
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        if let Some(deferred) = self.0.take() {
            deferred.reject(reject(failure::panicked()));
        }
    }
}

/// Starts `work` on the core's runtime and returns the Promise it settles.
fn promise<'env, F>(env: &'env Env, work: F) -> Result<Object<'env>>
where
    F: Future<Output = std::result::Result<Done, Value>> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<Settled, Resolver>()?;
    let settle = Settle(Some(deferred));
    failure::spawn(work, move |outcome| settle.outcome(outcome));
    Ok(promise)
}

/// A core result as the JSON text a call resolves to.
fn json(result: austa_core::Result<Value>) -> std::result::Result<Done, Value> {
    failure::encode(result).map(Done::Json)
}

/// The names of the registry's operations, by what they run on.
#[napi(object)]
pub struct Operations {
    /// Operations of a scope (`NativeScope.call`).
    pub scope: Vec<String>,
    /// Operations of the database (`NativeDatabase.call`).
    pub database: Vec<String>,
}

/// The names of every operation `call` accepts.
#[napi]
pub fn operations() -> Operations {
    let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect();
    Operations { scope: names(austa_bindings::SCOPE_OPERATIONS), database: names(austa_bindings::DATABASE_OPERATIONS) }
}

/// Opens a database: `options` is the JSON text of `{url?, master_key?, key_file?, keystore_url?,
/// create_key_file?}`; absent members come from the environment. Resolves to a `NativeDatabase`.
#[napi(ts_return_type = "Promise<NativeDatabase>")]
pub fn open(env: &Env, options: String) -> Result<Object<'_>> {
    promise(env, async move {
        let options = austa_core::input::from_json(failure::arguments(&options)?).map_err(|e| failure::describe(&e))?;
        austa_bindings::open(options).await.map(Done::Database).map_err(|e| failure::describe(&e))
    })
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
    #[napi(ts_return_type = "Promise<string>")]
    pub fn call<'env>(&self, env: &'env Env, op: String, args: String) -> Result<Object<'env>> {
        let db = self.inner.clone();
        promise(env, async move { json(austa_bindings::call_database(&db, &op, failure::arguments(&args)?).await) })
    }

    /// Stores a WhatsApp Cloud API webhook body, given as received (a string or a Buffer).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn ingest<'env>(&self, env: &'env Env, body: Either<String, Buffer>) -> Result<Object<'env>> {
        let body = match body {
            Either::A(text) => text.into_bytes(),
            // Copied before the task runs: JavaScript may change the Buffer meanwhile.
            Either::B(buffer) => buffer.to_vec(),
        };
        let db = self.inner.clone();
        promise(env, async move { json(austa_bindings::ingest(&db, &body).await) })
    }

    /// Opens a scope: JSON text of `{organization_id, actor, request?}`. Resolves to a `NativeScope`.
    #[napi(ts_return_type = "Promise<NativeScope>")]
    pub fn scope<'env>(&self, env: &'env Env, args: String) -> Result<Object<'env>> {
        let db = self.inner.clone();
        promise(env, async move {
            austa_bindings::scope(&db, failure::arguments(&args)?)
                .await
                .map(Done::Scope)
                .map_err(|e| failure::describe(&e))
        })
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
    #[napi(ts_return_type = "Promise<string>")]
    pub fn call<'env>(&self, env: &'env Env, op: String, args: String) -> Result<Object<'env>> {
        let scope = self.inner.clone();
        promise(env, async move { json(austa_bindings::call_scope(&scope, &op, failure::arguments(&args)?).await) })
    }

    /// A provider's recorded, time-limited emergency access to one patient, as a new scope.
    #[napi(ts_return_type = "Promise<NativeScope>")]
    pub fn emergency<'env>(&self, env: &'env Env, args: String) -> Result<Object<'env>> {
        let scope = self.inner.clone();
        promise(env, async move {
            austa_bindings::ops::emergency_scope(&scope, failure::arguments(&args)?)
                .await
                .map(Done::Scope)
                .map_err(|e| failure::describe(&e))
        })
    }
}
