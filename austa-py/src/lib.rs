//! `austa._native`: the compiled half of the Python package.
//!
//! It is deliberately narrow: a `Database` and a `Scope` class whose `call(op, args)` takes the
//! operation's name and its arguments as JSON text and returns the result as JSON text. Everything
//! idiomatic (typed records, `datetime` and `UUID` values, the exception hierarchy, batching,
//! streaming, asyncio) is written in Python over it (`python/austa/`), the way polars and
//! pydantic-core keep their Python surface in Python.
//!
//! Why JSON text across the boundary: Python's `json` module is C code, so encoding arguments and
//! decoding results costs about as much as walking the objects from Rust would, and the boundary stays
//! a single, testable shape that the Node binding shares. Every call releases the interpreter lock
//! while the core works (`Python::detach`), so threads in a pipeline run in parallel, and catches
//! panics, which reach Python as `NativeError` with the code `internal`, never as a crash.

use austa_bindings::failure;
use austa_core::{Database as CoreDatabase, Scope as CoreScope};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use serde_json::Value;

create_exception!(
    _native,
    NativeError,
    PyException,
    "A failure of the core; its one argument is the failure as JSON text ({code, message, field, rows})."
);

fn raise(failure: Value) -> PyErr {
    NativeError::new_err(failure.to_string())
}

/// Runs `work` on the core's runtime with the interpreter lock released.
fn run<F, Fut>(py: Python<'_>, args: &str, work: F) -> PyResult<String>
where
    F: FnOnce(Value) -> Fut + Send,
    Fut: std::future::Future<Output = austa_core::Result<Value>>,
{
    let args = failure::arguments(args).map_err(raise)?;
    py.detach(|| failure::block_on(work(args))).map_err(raise)
}

/// Like [`run`], for calls that return a handle rather than a value.
fn run_handle<F, Fut, T>(py: Python<'_>, args: &str, work: F) -> PyResult<T>
where
    F: FnOnce(Value) -> Fut + Send,
    Fut: std::future::Future<Output = austa_core::Result<T>>,
    T: Send,
{
    let args = failure::arguments(args).map_err(raise)?;
    let mut handle = None;
    py.detach(|| {
        failure::block_on(async {
            handle = Some(work(args).await?);
            Ok(Value::Null)
        })
    })
    .map_err(raise)?;
    handle.ok_or_else(|| raise(failure::panicked()))
}

/// An open database (a connection pool and the key cache). Cheap to share between threads.
#[pyclass(module = "austa._native", frozen)]
struct Database {
    inner: CoreDatabase,
}

#[pymethods]
impl Database {
    /// Opens the database the options (JSON text of `{url?, master_key?, key_file?, keystore_url?,
    /// create_key_file?}`) name; absent members come from the environment.
    #[staticmethod]
    fn open(py: Python<'_>, options: &str) -> PyResult<Self> {
        let inner = run_handle(py, options, |args| async move {
            let options = austa_core::input::from_json(args)?;
            austa_bindings::open(options).await
        })?;
        Ok(Self { inner })
    }

    /// A database operation (`migrate`, `seed`, `organizations.create`, ...); see austa-bindings.
    fn call(&self, py: Python<'_>, op: &str, args: &str) -> PyResult<String> {
        let db = &self.inner;
        run(py, args, |args| austa_bindings::call_database(db, op, args))
    }

    /// Stores a WhatsApp Cloud API webhook body, given as the bytes received (never decoded in
    /// Python: invalid UTF-8 is the core's validation error); returns the ingest report as JSON text.
    fn ingest(&self, py: Python<'_>, body: &[u8]) -> PyResult<String> {
        let (db, body) = (&self.inner, body.to_vec());
        py.detach(|| failure::block_on(austa_bindings::ingest(db, &body))).map_err(raise)
    }

    /// Opens a scope: JSON text of `{organization_id, actor, request?}`.
    fn scope(&self, py: Python<'_>, args: &str) -> PyResult<Scope> {
        let db = &self.inner;
        let inner = run_handle(py, args, |args| austa_bindings::scope(db, args))?;
        Ok(Scope { inner })
    }
}

/// An organization and an actor: what every repository call runs as.
#[pyclass(module = "austa._native", frozen)]
struct Scope {
    inner: CoreScope,
}

#[pymethods]
impl Scope {
    /// A scope operation (`patients.create`, `audit.verify`, ...); see austa-bindings.
    fn call(&self, py: Python<'_>, op: &str, args: &str) -> PyResult<String> {
        let scope = &self.inner;
        run(py, args, |args| austa_bindings::call_scope(scope, op, args))
    }

    /// A provider's time-limited, recorded emergency access to one patient, as a new scope.
    fn emergency(&self, py: Python<'_>, args: &str) -> PyResult<Scope> {
        let scope = &self.inner;
        let inner = run_handle(py, args, |args| austa_bindings::emergency_scope(scope, args))?;
        Ok(Scope { inner })
    }
}

/// The registry's operation names: `(scope operations, database operations)`.
#[pyfunction]
fn operations() -> (Vec<&'static str>, Vec<&'static str>) {
    (austa_bindings::SCOPE_OPERATIONS.to_vec(), austa_bindings::DATABASE_OPERATIONS.to_vec())
}

/// The module `austa._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(operations, m)?)?;
    m.add_class::<Database>()?;
    m.add_class::<Scope>()?;
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
