//! Reading the bindings' operation registry (`austa-bindings/src/ops`) into [`Operation`]s.
//!
//! The registry is Rust code, read with `syn` like the models: each operation is a struct deriving
//! `Deserialize` (its fields are the arguments) with an `impl ScopeOperation` or `impl
//! DatabaseOperation` that gives its `NAME` and its `Output`; a `table_ops!(table, Model, New,
//! Patch: capability, ...)` line declares a stored model's generic operations, whose shapes are
//! known here; and the `registry! { scope { .. } database { .. } }` invocation of `mod.rs` gives
//! the order. An operation the registry lists but the files do not define, or a type the generator
//! does not know, fails the run naming it.

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, ImplItem, Item, LitStr, Token, Type};

use crate::ir::{InputField, Model, Operation, Output, RustType, Target};
use crate::parse::{doc_of, input_field, input_fields, parse_type};
use crate::Error;

/// The registry's directory, relative to the workspace root.
pub const OPS_DIR: &str = "austa-bindings/src/ops";

/// An operation found in one module, before the registry orders it.
struct Found {
    name: String,
    target: Target,
    output: Output,
}

/// What one module of the registry defines: argument structs and operation impls, by struct name.
#[derive(Default)]
struct ModuleOps {
    args: BTreeMap<String, (String, Vec<InputField>)>,
    ops: BTreeMap<String, Found>,
}

/// Parses the registry's files (`(module name, path, text)`, `mod.rs` among them) into
/// `model.operations`, in registry order.
pub fn parse_registry(files: &[(String, String, String)], model: &mut Model) -> Result<(), Error> {
    let mut modules: BTreeMap<String, ModuleOps> = BTreeMap::new();
    let mut order = None;
    for (module, path, text) in files {
        let file = syn::parse_file(text).map_err(|e| Error::new(format!("{path}: {e}")))?;
        let docs = crate::parse::doc_of(&file.attrs);
        model.module_docs.insert(module.clone(), docs);
        let ops = modules.entry(module.clone()).or_default();
        for item in &file.items {
            parse_item(path, item, ops, &mut order)?;
        }
    }
    let order: Registry = order.ok_or_else(|| Error::new(format!("{OPS_DIR}/mod.rs: no `registry!` invocation")))?;
    for (target, path) in order.entries() {
        let ctx = format!("{OPS_DIR}/mod.rs: registry entry `{}`", path.to_token_stream());
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let [module, ty] = segments.as_slice() else {
            return Err(Error::new(format!("{ctx}: expected `module::Type`")));
        };
        let ops = modules.get_mut(module).ok_or_else(|| Error::new(format!("{ctx}: no module `{module}`")))?;
        let found = ops.ops.remove(ty).ok_or_else(|| Error::new(format!("{ctx}: no operation impl for `{ty}`")))?;
        let (doc, args) =
            ops.args.remove(ty).ok_or_else(|| Error::new(format!("{ctx}: no Deserialize struct `{ty}`")))?;
        if found.target != target {
            return Err(Error::new(format!("{ctx}: listed under the wrong target")));
        }
        let module = module.clone();
        model.operations.push(Operation { name: found.name, module, target, doc, args, output: found.output });
    }
    for (module, ops) in &modules {
        if let Some(ty) = ops.ops.keys().next() {
            return Err(Error::new(format!("{OPS_DIR}/{module}.rs: operation `{ty}` is not in the registry")));
        }
    }
    Ok(())
}

fn parse_item(path: &str, item: &Item, ops: &mut ModuleOps, order: &mut Option<Registry>) -> Result<(), Error> {
    match item {
        Item::Struct(s) if s.attrs.iter().any(|a| a.to_token_stream().to_string().contains("Deserialize")) => {
            let ctx = format!("{path}: struct `{}`", s.ident);
            let fields = input_fields(s, &ctx)?
                .ok_or_else(|| Error::new(format!("{ctx}: an operation's arguments must be plain named fields")))?;
            ops.args.insert(s.ident.to_string(), (doc_of(&s.attrs), fields));
        }
        Item::Impl(i) => {
            let Some((_, trait_path, _)) = &i.trait_ else { return Ok(()) };
            let target = match trait_path.segments.last().map(|s| s.ident.to_string()).as_deref() {
                Some("ScopeOperation") => Target::Scope,
                Some("DatabaseOperation") => Target::Database,
                _ => return Ok(()),
            };
            let ty = i.self_ty.to_token_stream().to_string();
            let ctx = format!("{path}: impl for `{ty}`");
            let mut name = None;
            let mut output = None;
            for member in &i.items {
                match member {
                    ImplItem::Const(c) if c.ident == "NAME" => name = str_lit(&c.expr),
                    ImplItem::Type(t) if t.ident == "Output" => {
                        output = Some(output_of(&t.ty).map_err(|e| Error::new(format!("{ctx}: Output: {e}")))?)
                    }
                    _ => {}
                }
            }
            let name = name.ok_or_else(|| Error::new(format!("{ctx}: `NAME` must be a string literal")))?;
            let output = output.ok_or_else(|| Error::new(format!("{ctx}: no `type Output`")))?;
            ops.ops.insert(ty, Found { name, target, output });
        }
        Item::Macro(m) if m.mac.path.is_ident("table_ops") => {
            let t: TableOps = m.mac.parse_body().map_err(|e| Error::new(format!("{path}: table_ops!: {e}")))?;
            t.declare(path, ops)?;
        }
        Item::Macro(m) if m.mac.path.is_ident("registry") => {
            *order = Some(m.mac.parse_body().map_err(|e| Error::new(format!("{path}: registry!: {e}")))?);
        }
        _ => {}
    }
    Ok(())
}

fn str_lit(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
        _ => None,
    }
}

/// A path type whose crate is the core's (`austa_core::crypto::RotationStatus`) by its last segment.
fn local(ty: &Type) -> Type {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.segments.len() > 1 => {
            let first = p.path.segments[0].ident.to_string();
            if first.starts_with("austa") {
                let mut p = p.clone();
                let last = p.path.segments.last().cloned();
                p.path.segments = last.into_iter().collect();
                return Type::Path(p);
            }
            ty.clone()
        }
        _ => ty.clone(),
    }
}

fn output_of(ty: &Type) -> Result<Output, Error> {
    if let Type::Tuple(t) = ty {
        if t.elems.is_empty() {
            return Ok(Output::Unit);
        }
    }
    if let Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            if last.ident == "Page" {
                let syn::PathArguments::AngleBracketed(a) = &last.arguments else {
                    return Err(Error::new("`Page` without its item type"));
                };
                let Some(syn::GenericArgument::Type(item)) = a.args.first() else {
                    return Err(Error::new("`Page` without its item type"));
                };
                return Ok(Output::Page(parse_type(&local(item))?));
            }
        }
    }
    Ok(Output::Value(parse_type(&local(ty))?))
}

/// `"table", Model, New, Patch: capability, ...`.
struct TableOps {
    table: LitStr,
    model: Type,
    new: Type,
    patch: Type,
    capabilities: Punctuated<Ident, Token![,]>,
}

impl Parse for TableOps {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let table = input.parse()?;
        input.parse::<Token![,]>()?;
        let model = input.parse()?;
        input.parse::<Token![,]>()?;
        let new = input.parse()?;
        input.parse::<Token![,]>()?;
        let patch = input.parse()?;
        input.parse::<Token![:]>()?;
        let capabilities = Punctuated::parse_terminated(input)?;
        Ok(TableOps { table, model, new, patch, capabilities })
    }
}

impl TableOps {
    /// The generic operations, with the shapes `table_ops!` gives them.
    fn declare(&self, path: &str, ops: &mut ModuleOps) -> Result<(), Error> {
        let ctx = format!("{path}: table_ops!");
        let ty = |t: &Type| parse_type(&local(t)).map_err(|e| Error::new(format!("{ctx}: {e}")));
        let model = ty(&self.model)?;
        let arg = |name: &str, doc: &str, ty: RustType, required: bool| InputField {
            name: name.into(),
            doc: doc.into(),
            ty,
            required,
            nullable: !required,
        };
        let id = || arg("id", "The row's id.", RustType::Uuid, true);
        for capability in &self.capabilities {
            let (ty_name, doc, args, output) = match capability.to_string().as_str() {
                "get" => ("Get", "The live row with this id.", vec![id()], Output::Value(model.clone())),
                "list" => (
                    "List",
                    "One page of live rows, oldest first.",
                    vec![
                        input_field(
                            "limit".into(),
                            "Rows per page (default 50, at most 500).".into(),
                            RustType::Option(Box::new(RustType::Int)),
                            false,
                        ),
                        input_field(
                            "after".into(),
                            "The previous page's `next` cursor.".into(),
                            RustType::Option(Box::new(RustType::Str)),
                            false,
                        ),
                    ],
                    Output::Page(model.clone()),
                ),
                "create" => (
                    "Create",
                    "Creates one row; the row, its audit event and any outbox entry are one transaction.",
                    vec![arg("data", "The new row.", ty(&self.new)?, true)],
                    Output::Value(model.clone()),
                ),
                "create_many" => (
                    "CreateMany",
                    "Creates rows in one transaction with one audit event; a bad row fails the batch.",
                    vec![
                        arg("rows", "The new rows.", RustType::Vec(Box::new(RustType::Json)), true),
                        arg("count_only", "Answer the count instead of the rows.", RustType::Bool, false),
                    ],
                    Output::Value(RustType::Json),
                ),
                "update" => (
                    "Update",
                    "Changes the named fields of one row; returns the row as stored.",
                    vec![id(), arg("patch", "The changes.", ty(&self.patch)?, true)],
                    Output::Value(model.clone()),
                ),
                "delete" => ("Delete", "Soft-deletes one row.", vec![id()], Output::Unit),
                "restore" => ("Restore", "Restores a soft-deleted row.", vec![id()], Output::Unit),
                other => return Err(Error::new(format!("{ctx}: unknown capability `{other}`"))),
            };
            let name = format!("{}.{capability}", self.table.value());
            ops.args.insert(ty_name.into(), (doc.into(), args));
            ops.ops.insert(ty_name.into(), Found { name, target: Target::Scope, output });
        }
        Ok(())
    }
}

/// `scope { module::Type, ... } database { module::Type, ... }`.
struct Registry {
    scope: Punctuated<syn::Path, Token![,]>,
    database: Punctuated<syn::Path, Token![,]>,
}

impl Parse for Registry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut lists = Vec::new();
        for expected in ["scope", "database"] {
            let label: Ident = input.parse()?;
            if label != expected {
                return Err(syn::Error::new(label.span(), format!("expected `{expected}`")));
            }
            let content;
            syn::braced!(content in input);
            lists.push(Punctuated::parse_terminated(&content)?);
        }
        let database = lists.pop().unwrap_or_default();
        let scope = lists.pop().unwrap_or_default();
        Ok(Registry { scope, database })
    }
}

impl Registry {
    fn entries(&self) -> impl Iterator<Item = (Target, &syn::Path)> {
        self.scope.iter().map(|p| (Target::Scope, p)).chain(self.database.iter().map(|p| (Target::Database, p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(files: &[(&str, &str)]) -> Result<Model, Error> {
        let files: Vec<(String, String, String)> =
            files.iter().map(|(m, t)| (m.to_string(), format!("{m}.rs"), t.to_string())).collect();
        let mut model = Model::default();
        parse_registry(&files, &mut model)?;
        Ok(model)
    }

    const MOD: &str = "registry! { scope { p::FindByPhone, p::Get } database { d::Migrate } }";

    const P: &str = r#"
        table_ops!("patients", Patient, NewPatient, PatientPatch: get);
        /// The patient with this phone.
        #[derive(Deserialize)]
        pub struct FindByPhone { pub phone: String, pub limit: Option<u32> }
        impl ScopeOperation for FindByPhone {
            const NAME: &'static str = "patients.find_by_phone";
            type Output = Option<Patient>;
        }
    "#;

    const D: &str = r#"
        #[derive(Deserialize)]
        pub struct Migrate {}
        impl DatabaseOperation for Migrate {
            const NAME: &'static str = "migrate";
            type Output = ();
        }
    "#;

    #[test]
    fn reads_operations_in_registry_order_with_their_arguments_and_results() {
        let model = parse(&[("mod", MOD), ("p", P), ("d", D)]).unwrap();
        let names: Vec<&str> = model.operations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["patients.find_by_phone", "patients.get", "migrate"]);
        let find = &model.operations[0];
        assert_eq!(find.doc, "The patient with this phone.");
        assert_eq!((find.args[0].name.as_str(), find.args[0].required), ("phone", true));
        assert_eq!((find.args[1].ty.clone(), find.args[1].required), (RustType::Int, false));
        assert_eq!(find.output, Output::Value(RustType::Option(Box::new(RustType::Named("Patient".into())))));
        assert_eq!(model.operations[1].output, Output::Value(RustType::Named("Patient".into())));
        assert_eq!((model.operations[2].target, &model.operations[2].output), (Target::Database, &Output::Unit));
    }

    #[test]
    fn an_operation_outside_the_registry_or_a_missing_one_fails_naming_it() {
        let extra = parse(&[("mod", "registry! { scope { p::Get } database { } }"), ("p", P)]).unwrap_err();
        assert!(extra.to_string().contains("`FindByPhone` is not in the registry"), "{extra}");
        let missing = parse(&[("mod", "registry! { scope { p::Nope } database { } }"), ("p", P)]).unwrap_err();
        assert!(missing.to_string().contains("no operation impl for `Nope`"), "{missing}");
        let wrong = parse(&[("mod", "registry! { scope { d::Migrate } database { } }"), ("d", D)]).unwrap_err();
        assert!(wrong.to_string().contains("wrong target"), "{wrong}");
    }
}
