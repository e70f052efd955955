//! Generates the typed models of austa-core's language bindings from its Rust sources.
//!
//! # Design
//!
//! The Rust model definitions are the single source of truth. The generator reads them with `syn`
//! ([`parse`]), never by compiling or running the core, into a small intermediate representation
//! ([`ir::Model`]: structs with typed fields and a sensitive flag, string enums, and opaque data enums)
//! with serde's renames already applied. Renderers turn the IR into one target language: Python
//! ([`python`], for `austa-py`) and TypeScript/JavaScript ([`typescript`], for `austa-node`).
//!
//! Anything the generator does not understand (a field type outside the supported set, a serde
//! attribute that changes the wire shape) fails the run with a message naming the item, and the
//! `generated_files_are_current` test renders in memory and compares with the committed files, so a
//! change to the core that the bindings have not followed fails CI.
//!
//! Run `cargo run -p austa-codegen` to rewrite the generated files.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod ir;
pub mod parse;
pub mod python;
pub mod python_ops;
pub mod registry;
pub mod typescript;
pub mod typescript_ops;

/// A generation failure, with a message naming the file and item at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The directory whose every `.rs` file is parsed, relative to the workspace root.
pub const MODEL_DIR: &str = "austa-model/src/model";

/// The other parsed sources, relative to the workspace root: `identity.rs` defines `Role` (the type
/// of `AuditLog::actor_kind`), the others the reports operations return.
pub const EXTRA_SOURCES: &[&str] = &[
    "austa-model/src/identity.rs",
    "austa-core/src/keys/master.rs",
    "austa-core/src/keys/rotation.rs",
    "austa-core/src/keys/shred.rs",
    "austa-core/src/kernel/outbox.rs",
    "austa-core/src/repo/tasy_outbox.rs",
    "austa-core/src/whatsapp/mod.rs",
    "austa-core/src/seed.rs",
    "austa-core/src/audit/verify.rs",
    "austa-core/src/audit/transparency.rs",
];

/// Sources read for their input types only: the analyses of the AI worker and the outbound
/// message, which the operations take as arguments.
pub const INPUT_SOURCES: &[&str] = &["austa-core/src/repo/ai_work.rs", "austa-core/src/repo/outbound.rs"];

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The path relative to the workspace root.
    pub path: &'static str,
    /// The contents.
    pub contents: String,
}

/// The generated Python enums.
pub const PY_ENUMS: &str = "austa-py/python/austa/_enums.py";
/// The generated Python models.
pub const PY_MODELS: &str = "austa-py/python/austa/_models.py";
/// The generated Python inputs (`TypedDict`s) of the operations.
pub const PY_INPUTS: &str = "austa-py/python/austa/_inputs.py";
/// The generated Python repositories: a class per operation group.
pub const PY_REPOS: &str = "austa-py/python/austa/_repos.py";
/// The generated TypeScript declarations of the Node package's records and enums.
pub const NODE_TYPES: &str = "austa-node/lib/types.d.ts";
/// The generated operation table of the Node package.
pub const NODE_OPERATIONS: &str = "austa-node/lib/operations.js";
/// The generated TypeScript declarations of the Node package's inputs and operation groups.
pub const NODE_OPERATIONS_TYPES: &str = "austa-node/lib/operations.d.ts";
/// The generated decoding schema of the Node package's records.
pub const NODE_SCHEMA: &str = "austa-node/lib/schema.js";

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn read(root: &Path, rel: &str) -> Result<String, Error> {
    std::fs::read_to_string(root.join(rel)).map_err(|e| Error::new(format!("reading {rel}: {e}")))
}

/// The `.rs` files of a directory relative to the root, sorted, as paths relative to the root.
fn rust_files(root: &Path, dir: &str) -> Result<Vec<String>, Error> {
    let entries = std::fs::read_dir(root.join(dir)).map_err(|e| Error::new(format!("listing {dir}: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let name = entry.map_err(|e| Error::new(format!("listing {dir}: {e}")))?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".rs") {
            files.push(format!("{dir}/{name}"));
        }
    }
    files.sort();
    Ok(files)
}

/// Parses the sources under `root` into a validated [`ir::Model`]; stored models carry the table
/// of their `#[record]` declaration.
pub fn load_model(root: &Path) -> Result<ir::Model, Error> {
    let mut model = ir::Model::default();
    let mut sources = rust_files(root, MODEL_DIR)?;
    sources.extend(EXTRA_SOURCES.iter().map(|s| s.to_string()));
    for rel in &sources {
        parse::parse_source(rel, &read(root, rel)?, &mut model)?;
    }
    for rel in INPUT_SOURCES {
        parse::parse_inputs(rel, &read(root, rel)?, &mut model)?;
    }
    let mut registry = Vec::new();
    for rel in rust_files(root, registry::OPS_DIR)? {
        let text = read(root, &rel)?;
        parse::parse_outputs(&rel, &text, &mut model)?;
        let module = rel.rsplit('/').next().unwrap_or_default().trim_end_matches(".rs").to_owned();
        registry.push((module, rel, text));
    }
    registry::parse_registry(&registry, &mut model)?;
    model.validate()?;
    Ok(model)
}

/// Renders every generated file from the sources under `root`, in memory.
pub fn generate(root: &Path) -> Result<Vec<GeneratedFile>, Error> {
    let model = load_model(root)?;
    Ok(vec![
        GeneratedFile { path: PY_ENUMS, contents: python::render_enums(&model)? },
        GeneratedFile { path: PY_MODELS, contents: python::render_models(&model)? },
        GeneratedFile { path: PY_INPUTS, contents: python_ops::render_inputs(&model)? },
        GeneratedFile { path: PY_REPOS, contents: python_ops::render_repos(&model)? },
        GeneratedFile { path: NODE_TYPES, contents: typescript::render_types(&model)? },
        GeneratedFile { path: NODE_SCHEMA, contents: typescript::render_schema(&model)? },
        GeneratedFile { path: NODE_OPERATIONS, contents: typescript_ops::render_operations_js(&model)? },
        GeneratedFile { path: NODE_OPERATIONS_TYPES, contents: typescript_ops::render_operations_dts(&model)? },
    ])
}
