//! The intermediate representation: what the bindings need to know about austa-core's output types,
//! independent of Rust syntax (see [`crate::parse`]) and of any target language (see
//! [`crate::python`]).
//!
//! Names on the wire are already resolved here (serde `rename`, `rename_all` and `skip` applied), so
//! a renderer never has to know serde's rules.

use std::collections::{BTreeMap, BTreeSet};

use crate::Error;

/// A field type, as far as the bindings care. Wrappers ([`Option`], [`Vec`], `Sensitive`, tuples) are
/// kept structurally; scalar types are collapsed into the few kinds the wire format distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustType {
    /// `uuid::Uuid`: a string on the wire.
    Uuid,
    /// `DateTime<Utc>`: an RFC 3339 string on the wire.
    DateTime,
    /// `NaiveDate`: a `YYYY-MM-DD` string on the wire.
    Date,
    /// `String`, `&str`, `&'static str`.
    Str,
    /// `PathBuf`: a file path, a string on the wire.
    Path,
    /// Any integer type.
    Int,
    /// `f32` or `f64`.
    Float,
    /// `bool`.
    Bool,
    /// `serde_json::Value`: passed through as plain JSON.
    Json,
    /// `Vec<T>`.
    Vec(Box<RustType>),
    /// `Option<T>`.
    Option(Box<RustType>),
    /// `Sensitive<T>`: serialized as `T`, or as `null` once erased (crypto-shredding).
    Sensitive(Box<RustType>),
    /// A tuple `(A, B, ...)`: a list on the wire.
    Tuple(Vec<RustType>),
    /// Another type by name: an enum or struct of the [`Model`], resolved by the renderers.
    Named(String),
}

impl RustType {
    /// Whether a `Sensitive` wrapper appears anywhere in the type.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            RustType::Sensitive(_) => true,
            RustType::Vec(t) | RustType::Option(t) => t.contains_sensitive(),
            RustType::Tuple(ts) => ts.iter().any(RustType::contains_sensitive),
            _ => false,
        }
    }

    /// Calls `f` with every name the type refers to.
    pub fn visit_names<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            RustType::Named(n) => f(n),
            RustType::Vec(t) | RustType::Option(t) | RustType::Sensitive(t) => t.visit_names(f),
            RustType::Tuple(ts) => ts.iter().for_each(|t| t.visit_names(f)),
            _ => {}
        }
    }
}

/// One serialized field of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The Rust field name.
    pub rust_name: String,
    /// The key on the wire (after serde renames).
    pub name: String,
    /// The doc comment, without the `///` markers.
    pub doc: String,
    /// The field's type.
    pub ty: RustType,
    /// Whether the value is (or contains) a `Sensitive` value: redacted in representations, and
    /// possibly `null` on the wire whatever its type says (erased).
    pub sensitive: bool,
}

/// A struct serialized as an object: an output type of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    /// The Rust (and binding) name.
    pub name: String,
    /// The doc comment.
    pub doc: String,
    /// The serialized fields, in declaration (and serialization) order.
    pub fields: Vec<Field>,
    /// The SQL table the struct is stored in, for stored models.
    pub table: Option<String>,
    /// The source file, relative to the workspace root.
    pub source: String,
}

/// One unit variant of an [`Enum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The Rust variant name.
    pub rust_name: String,
    /// The string it serializes to.
    pub serialized: String,
    /// The doc comment.
    pub doc: String,
}

/// An enum of unit variants only, serialized as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// The Rust (and binding) name.
    pub name: String,
    /// The doc comment.
    pub doc: String,
    /// The variants, in declaration order.
    pub variants: Vec<Variant>,
    /// The source file, relative to the workspace root.
    pub source: String,
}

/// An enum with data variants: its JSON shape varies, so the bindings pass it through as plain JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    /// The Rust name.
    pub name: String,
    /// The doc comment.
    pub doc: String,
}

/// Everything the generators know, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// The output structs.
    pub structs: Vec<Struct>,
    /// The string enums.
    pub enums: Vec<Enum>,
    /// The enums with data variants.
    pub opaques: Vec<Opaque>,
    /// The input structs (deserialized), by name.
    pub inputs: Vec<Input>,
    /// The operations of the bindings' registry, in registry order.
    pub operations: Vec<Operation>,
    /// The doc comment of each registry module, by module name.
    pub module_docs: BTreeMap<String, String>,
}

/// What a [`RustType::Named`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A string enum.
    Enum(&'a Enum),
    /// A struct.
    Struct(&'a Struct),
    /// An enum with data variants.
    Opaque(&'a Opaque),
}

impl Model {
    /// The operations by group, in registry order: `(group, target, operations)`, the bare names of
    /// each target being the group `""`.
    pub fn groups(&self) -> Vec<(&str, Target, Vec<&Operation>)> {
        let mut out: Vec<(&str, Target, Vec<&Operation>)> = Vec::new();
        for op in &self.operations {
            let g = op.group().unwrap_or("");
            match out.iter_mut().find(|(name, target, _)| *name == g && *target == op.target) {
                Some((_, _, ops)) => ops.push(op),
                None => out.push((g, op.target, vec![op])),
            }
        }
        out
    }

    /// The input struct named `name`, if one.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// What `name` refers to, if the model knows it.
    pub fn lookup(&self, name: &str) -> Option<Kind<'_>> {
        self.enums
            .iter()
            .find(|e| e.name == name)
            .map(Kind::Enum)
            .or_else(|| self.structs.iter().find(|s| s.name == name).map(Kind::Struct))
            .or_else(|| self.opaques.iter().find(|o| o.name == name).map(Kind::Opaque))
    }

    /// Checks that names are unique, that every named type is known, and that no struct contains
    /// itself; fails naming the culprit.
    pub fn validate(&self) -> Result<(), Error> {
        let mut seen = BTreeSet::new();
        let names = self
            .structs
            .iter()
            .map(|s| (&s.name, &s.source))
            .chain(self.enums.iter().map(|e| (&e.name, &e.source)))
            .chain(self.opaques.iter().map(|o| (&o.name, &o.name)));
        for (name, source) in names {
            if !seen.insert(name.as_str()) {
                return Err(Error::new(format!("type `{name}` is defined twice (again in {source})")));
            }
        }
        for s in &self.structs {
            for f in &s.fields {
                let mut unknown = None;
                f.ty.visit_names(&mut |n| {
                    if unknown.is_none() && self.lookup(n).is_none() {
                        unknown = Some(n.to_owned());
                    }
                });
                if let Some(n) = unknown {
                    return Err(Error::new(format!(
                        "field `{}.{}` ({}) has type `{n}`, which is neither a supported type nor a Serialize \
                         struct or enum of the parsed sources",
                        s.name, f.rust_name, s.source
                    )));
                }
            }
        }
        self.validate_operations()?;
        self.structs_in_dependency_order().map(|_| ())
    }

    /// Checks that every argument type of an operation is an enum or an input struct (and so are
    /// their fields' types), and every result type an output struct or enum.
    fn validate_operations(&self) -> Result<(), Error> {
        let is_input = |n: &str| self.input(n).is_some() || matches!(self.lookup(n), Some(Kind::Enum(_)));
        let mut pending: Vec<(&str, &RustType)> = Vec::new();
        for op in &self.operations {
            pending.extend(op.args.iter().map(|a| (op.name.as_str(), &a.ty)));
            let out = match &op.output {
                Output::Unit => None,
                Output::Page(t) | Output::Value(t) => Some(t),
            };
            let mut unknown = None;
            if let Some(t) = out {
                t.visit_names(&mut |n| {
                    if unknown.is_none() && self.lookup(n).is_none() {
                        unknown = Some(n.to_owned());
                    }
                });
            }
            if let Some(n) = unknown {
                return Err(Error::new(format!(
                    "operation `{}` returns `{n}`, which is not a Serialize type",
                    op.name
                )));
            }
        }
        let mut seen = BTreeSet::new();
        while let Some((ctx, ty)) = pending.pop() {
            let mut names = Vec::new();
            ty.visit_names(&mut |n| names.push(n));
            for n in names {
                if !is_input(n) {
                    return Err(Error::new(format!("`{ctx}` takes `{n}`, which is not a Deserialize type")));
                }
                if seen.insert(n) {
                    if let Some(fields) = self.input(n).and_then(|i| i.fields.as_ref()) {
                        pending.extend(fields.iter().map(|f| (n, &f.ty)));
                    }
                }
            }
        }
        Ok(())
    }

    /// The structs ordered so that every struct comes after the structs its fields refer to, otherwise
    /// in source order.
    pub fn structs_in_dependency_order(&self) -> Result<Vec<&Struct>, Error> {
        let deps: BTreeMap<&str, Vec<&str>> = self
            .structs
            .iter()
            .map(|s| {
                let mut d = Vec::new();
                for f in &s.fields {
                    f.ty.visit_names(&mut |n| {
                        if matches!(self.lookup(n), Some(Kind::Struct(_))) {
                            d.push(n);
                        }
                    });
                }
                (s.name.as_str(), d)
            })
            .collect();
        let mut done: Vec<&Struct> = Vec::new();
        let mut visiting = Vec::new();
        fn visit<'a>(
            model: &'a Model,
            s: &'a Struct,
            deps: &BTreeMap<&str, Vec<&'a str>>,
            done: &mut Vec<&'a Struct>,
            visiting: &mut Vec<&'a str>,
        ) -> Result<(), Error> {
            if done.iter().any(|d| d.name == s.name) {
                return Ok(());
            }
            if visiting.contains(&s.name.as_str()) {
                return Err(Error::new(format!("struct `{}` contains itself: {}", s.name, visiting.join(" -> "))));
            }
            visiting.push(&s.name);
            for d in &deps[s.name.as_str()] {
                if let Some(Kind::Struct(inner)) = model.lookup(d) {
                    visit(model, inner, deps, done, visiting)?;
                }
            }
            visiting.pop();
            done.push(s);
            Ok(())
        }
        for s in &self.structs {
            visit(self, s, &deps, &mut done, &mut visiting)?;
        }
        Ok(done)
    }
}

/// One field of an [`Input`] struct, or one argument of an [`Operation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputField {
    /// The key on the wire (after serde renames).
    pub name: String,
    /// The doc comment.
    pub doc: String,
    /// The value's type, without the `Option` layers that make it optional or clearable.
    pub ty: RustType,
    /// Whether the caller must give it (neither an `Option` nor `#[serde(default)]`).
    pub required: bool,
    /// Whether `null` is accepted (an `Option`): for a `Patch`, it clears the field.
    pub nullable: bool,
}

/// A struct deserialized from an object: an input of the core (`NewPatient`, `PatientPatch`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The Rust name.
    pub name: String,
    /// The doc comment.
    pub doc: String,
    /// The fields, in declaration order; `None` for an input whose shape the generator does not
    /// model (a tagged enum such as `AppEvent`): the bindings take it as a plain mapping.
    pub fields: Option<Vec<InputField>>,
}

/// What an [`Operation`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Nothing (`()`).
    Unit,
    /// One page of a listing of this type, and the cursor of the next one.
    Page(RustType),
    /// A value of this type.
    Value(RustType),
}

/// Whether an operation runs in a scope or on the database itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `ScopeOperation`: as the scope's actor, in its organization.
    Scope,
    /// `DatabaseOperation`: schema, seed, platform operations.
    Database,
}

/// One operation of the bindings' registry (`austa-bindings/src/ops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The registry name: `<group>.<method>` or a bare `<method>`.
    pub name: String,
    /// The registry module that defines it (`patients` for `ops/patients.rs`).
    pub module: String,
    /// Where it runs.
    pub target: Target,
    /// The doc comment of its argument struct.
    pub doc: String,
    /// The arguments, in declaration order.
    pub args: Vec<InputField>,
    /// What it returns.
    pub output: Output,
}

impl Operation {
    /// The group (`patients` of `patients.get`), `None` for a bare name.
    pub fn group(&self) -> Option<&str> {
        self.name.split_once('.').map(|(g, _)| g)
    }

    /// The method (`get` of `patients.get`).
    pub fn method(&self) -> &str {
        self.name.split_once('.').map_or(self.name.as_str(), |(_, m)| m)
    }

    /// Whether the operation is a paged listing (its last arguments are `limit` and `after`).
    pub fn paged(&self) -> bool {
        matches!(self.output, Output::Page(_))
            && self.args.iter().rev().take(2).map(|a| a.name.as_str()).eq(["after", "limit"])
    }

    /// The arguments other than the page's `limit` and `after`.
    pub fn plain_args(&self) -> &[InputField] {
        if self.paged() {
            &self.args[..self.args.len() - 2]
        } else {
            &self.args
        }
    }
}
