//! Reading austa-core's Rust sources into the [`Model`] with `syn`.
//!
//! Only top-level items are read (test modules and other inline modules are skipped):
//!
//! - a `pub struct` with named fields deriving `Serialize` becomes a [`Struct`] of its `pub` fields that
//!   serde serializes (`#[serde(skip)]` and `skip_serializing` are left out, `rename` and the
//!   container's `rename_all` give the wire names);
//! - a `pub enum` deriving `Serialize` becomes an [`Enum`] when all its variants are unit variants, an
//!   [`Opaque`] otherwise;
//! - a `pub struct` deriving `Deserialize` also becomes an [`Input`] (an argument type of the
//!   operations): `Option` fields and `#[serde(default)]` make a field optional, `Option<Option<_>>`
//!   clearable; a deserialized enum with data variants is an [`Input`] without fields (a plain
//!   mapping in the bindings);
//! - every `db_enum!(...)` invocation (the macro of `model/enums.rs`) becomes an [`Enum`] whose
//!   serialized strings are the literals of the invocation.
//!
//! Serde attributes that would change the wire shape in ways the generator does not model (`flatten`,
//! `skip_serializing_if`, `serialize_with`, `tag`, ...) make the parse fail, naming the item, so drift in
//! the core is caught by the "generated files are current" test instead of producing wrong bindings.

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, GenericArgument, Ident, Item, LitStr, PathArguments, Token, Type, Visibility};

use crate::ir::{Enum, Field, Input, InputField, Model, Opaque, RustType, Struct, Variant};
use crate::Error;

/// Parses one source file (its path relative to the workspace root, and its text) into `model`:
/// its output types and its input types.
pub fn parse_source(path: &str, text: &str, model: &mut Model) -> Result<(), Error> {
    let file = syn::parse_file(text).map_err(|e| Error::new(format!("{path}: {e}")))?;
    for item in &file.items {
        parse_input(path, item, model)?;
        parse_item(path, item, model)?;
    }
    Ok(())
}

/// Like [`parse_source`], for the output types only (the registry's files, whose `Deserialize`
/// structs are operations' arguments rather than inputs).
pub fn parse_outputs(path: &str, text: &str, model: &mut Model) -> Result<(), Error> {
    let file = syn::parse_file(text).map_err(|e| Error::new(format!("{path}: {e}")))?;
    for item in &file.items {
        parse_item(path, item, model)?;
    }
    Ok(())
}

/// Like [`parse_source`], for the input types only (sources of the core whose outputs the bindings
/// do not return).
pub fn parse_inputs(path: &str, text: &str, model: &mut Model) -> Result<(), Error> {
    let file = syn::parse_file(text).map_err(|e| Error::new(format!("{path}: {e}")))?;
    for item in &file.items {
        parse_input(path, item, model)?;
    }
    Ok(())
}

fn parse_item(path: &str, item: &Item, model: &mut Model) -> Result<(), Error> {
    match item {
        Item::Struct(s) if is_pub(&s.vis) && !is_cfg_test(&s.attrs) && derives_serialize(&s.attrs, path)? => {
            let ctx = format!("{path}: struct `{}`", s.ident);
            let syn::Fields::Named(named) = &s.fields else {
                return Err(Error::new(format!("{ctx}: a Serialize struct must have named fields")));
            };
            if !s.generics.params.is_empty() {
                return Err(Error::new(format!("{ctx}: generic Serialize structs are not supported")));
            }
            let container = serde_attrs(&s.attrs, &ctx)?;
            let mut fields = Vec::new();
            for f in &named.named {
                let Some(ident) = f.ident.as_ref().map(|i| i.unraw().to_string()) else { continue };
                let fctx = format!("{ctx}: field `{ident}`");
                let attrs = serde_attrs(&f.attrs, &fctx)?;
                if !is_pub(&f.vis) || attrs.skip {
                    continue;
                }
                let name = wire_name(attrs.rename, &container, &ident, &ctx)?;
                let ty = parse_type(&f.ty).map_err(|e| Error::new(format!("{fctx}: {e}")))?;
                let sensitive = ty.contains_sensitive();
                fields.push(Field { rust_name: ident, name, doc: doc_of(&f.attrs), ty, sensitive });
            }
            model.structs.push(Struct {
                name: s.ident.to_string(),
                doc: doc_of(&s.attrs),
                fields,
                table: record_table(&s.attrs, &ctx)?,
                source: path.to_owned(),
            });
        }
        Item::Enum(e) if is_pub(&e.vis) && !is_cfg_test(&e.attrs) && derives_serialize(&e.attrs, path)? => {
            let ctx = format!("{path}: enum `{}`", e.ident);
            let container = serde_attrs(&e.attrs, &ctx)?;
            if !e.generics.params.is_empty() {
                return Err(Error::new(format!("{ctx}: generic Serialize enums are not supported")));
            }
            if e.variants.iter().all(|v| matches!(v.fields, syn::Fields::Unit)) {
                let mut variants = Vec::new();
                for v in &e.variants {
                    let vctx = format!("{ctx}: variant `{}`", v.ident);
                    let attrs = serde_attrs(&v.attrs, &vctx)?;
                    if attrs.skip {
                        continue;
                    }
                    let rust_name = v.ident.unraw().to_string();
                    let serialized = match (attrs.rename, &container.rename_all) {
                        (Some(n), _) => n,
                        (None, Some(rule)) => {
                            rename_variant(rule, &rust_name).map_err(|e| Error::new(format!("{vctx}: {e}")))?
                        }
                        (None, None) => rust_name.clone(),
                    };
                    variants.push(Variant { rust_name, serialized, doc: doc_of(&v.attrs) });
                }
                model.enums.push(Enum {
                    name: e.ident.to_string(),
                    doc: doc_of(&e.attrs),
                    variants,
                    source: path.to_owned(),
                });
            } else {
                model.opaques.push(Opaque { name: e.ident.to_string(), doc: doc_of(&e.attrs) });
            }
        }
        Item::Macro(m) if m.mac.path.is_ident("db_enum") => {
            let db: DbEnum = m.mac.parse_body().map_err(|e| Error::new(format!("{path}: db_enum!: {e}")))?;
            model.enums.push(Enum {
                name: db.name.to_string(),
                doc: doc_of(&db.attrs),
                variants: db
                    .variants
                    .iter()
                    .map(|v| Variant {
                        rust_name: v.ident.to_string(),
                        serialized: v.text.value(),
                        doc: doc_of(&v.attrs),
                    })
                    .collect(),
                source: path.to_owned(),
            });
        }
        _ => {}
    }
    Ok(())
}

/// The body of one `db_enum!` invocation: `#[doc...]* Name { #[doc...]* Variant = "TEXT", ... }`.
struct DbEnum {
    attrs: Vec<Attribute>,
    name: Ident,
    variants: Punctuated<DbVariant, Token![,]>,
}

struct DbVariant {
    attrs: Vec<Attribute>,
    ident: Ident,
    text: LitStr,
}

impl Parse for DbEnum {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let name = input.parse()?;
        let content;
        syn::braced!(content in input);
        let variants = content.parse_terminated(DbVariant::parse, Token![,])?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the variants"));
        }
        Ok(DbEnum { attrs, name, variants })
    }
}

impl Parse for DbVariant {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let text = input.parse()?;
        Ok(DbVariant { attrs, ident, text })
    }
}

fn str_lit(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
        _ => None,
    }
}

/// Maps a Rust type to a [`RustType`]; fails naming the type when it is not one the bindings support.
pub fn parse_type(ty: &Type) -> Result<RustType, Error> {
    let unsupported = || Error::new(format!("unsupported type `{}`", ty.to_token_stream()));
    match ty {
        Type::Group(g) => parse_type(&g.elem),
        Type::Paren(p) => parse_type(&p.elem),
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => Ok(RustType::Str),
            _ => Err(unsupported()),
        },
        Type::Tuple(t) if !t.elems.is_empty() => {
            Ok(RustType::Tuple(t.elems.iter().map(parse_type).collect::<Result<_, _>>()?))
        }
        Type::Path(p) if p.qself.is_none() => {
            let segments: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
            let last = p.path.segments.last().ok_or_else(unsupported)?;
            let args: Vec<&Type> = match &last.arguments {
                PathArguments::None => Vec::new(),
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .map(|a| match a {
                        GenericArgument::Type(t) => Ok(t),
                        _ => Err(unsupported()),
                    })
                    .collect::<Result<_, _>>()?,
                PathArguments::Parenthesized(_) => return Err(unsupported()),
            };
            let name = last.ident.to_string();
            let full = segments.join("::");
            let inner = |i: usize| parse_type(args[i]).map(Box::new);
            Ok(match (name.as_str(), args.len()) {
                ("Uuid", 0) => RustType::Uuid,
                ("DateTime", 1) if matches!(args[0], Type::Path(u) if u.path.segments.last().is_some_and(|s| s.ident == "Utc")) => {
                    RustType::DateTime
                }
                ("NaiveDate", 0) => RustType::Date,
                ("String", 0) => RustType::Str,
                ("PathBuf", 0) => RustType::Path,
                (
                    "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize",
                    0,
                ) => RustType::Int,
                ("f32" | "f64", 0) => RustType::Float,
                ("bool", 0) => RustType::Bool,
                ("Value", 0) if full == "serde_json::Value" => RustType::Json,
                ("Vec", 1) => RustType::Vec(inner(0)?),
                ("Option", 1) => RustType::Option(inner(0)?),
                ("Sensitive", 1) => RustType::Sensitive(inner(0)?),
                ("Box", 1) => *inner(0)?,
                (_, 0) if full == name || full.starts_with("crate::") || full.starts_with("super::") => {
                    RustType::Named(name)
                }
                _ => return Err(unsupported()),
            })
        }
        _ => Err(unsupported()),
    }
}

/// Applies a serde `rename_all` rule to a variant name (PascalCase in Rust).
pub fn rename_variant(rule: &str, name: &str) -> Result<String, Error> {
    let snake = || {
        let mut s = String::new();
        for (i, c) in name.char_indices() {
            if c.is_uppercase() && i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        }
        s
    };
    Ok(match rule {
        "lowercase" => name.to_ascii_lowercase(),
        "UPPERCASE" => name.to_ascii_uppercase(),
        "PascalCase" => name.to_owned(),
        "camelCase" => name[..1].to_ascii_lowercase() + &name[1..],
        "snake_case" => snake(),
        "SCREAMING_SNAKE_CASE" => snake().to_ascii_uppercase(),
        "kebab-case" => snake().replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => snake().to_ascii_uppercase().replace('_', "-"),
        _ => return Err(Error::new(format!("unknown rename_all rule `{rule}`"))),
    })
}

/// Applies a serde `rename_all` rule to a field name (snake_case in Rust).
pub fn rename_field(rule: &str, name: &str) -> Result<String, Error> {
    let pascal = || {
        name.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect::<String>()
    };
    Ok(match rule {
        "lowercase" | "snake_case" => name.to_owned(),
        "UPPERCASE" | "SCREAMING_SNAKE_CASE" => name.to_ascii_uppercase(),
        "PascalCase" => pascal(),
        "camelCase" => {
            let p = pascal();
            p[..1].to_ascii_lowercase() + &p[1..]
        }
        "kebab-case" => name.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => name.to_ascii_uppercase().replace('_', "-"),
        _ => return Err(Error::new(format!("unknown rename_all rule `{rule}`"))),
    })
}

/// A field's name on the wire: its own `rename`, else the container's `rename_all` rule applied.
fn wire_name(rename: Option<String>, container: &SerdeAttrs, ident: &str, ctx: &str) -> Result<String, Error> {
    Ok(match (rename, &container.rename_all) {
        (Some(n), _) => n,
        (None, Some(rule)) => rename_field(rule, ident).map_err(|e| Error::new(format!("{ctx}: {e}")))?,
        (None, None) => ident.to_owned(),
    })
}

fn is_pub(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

fn is_cfg_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("cfg") && a.to_token_stream().to_string().contains("test"))
}

fn derives_serialize(attrs: &[Attribute], path: &str) -> Result<bool, Error> {
    derives(attrs, path, "Serialize")
}

/// Whether the item derives `name` (`Serialize`, `Deserialize`, with or without a path).
fn derives(attrs: &[Attribute], path: &str, name: &str) -> Result<bool, Error> {
    for a in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let paths = a
            .parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)
            .map_err(|e| Error::new(format!("{path}: derive: {e}")))?;
        if paths.iter().any(|p| p.segments.last().is_some_and(|s| s.ident == name)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An input field or argument from its wire name, doc, parsed type and whether serde defaults it:
/// `Option` layers make it optional and nullable, `Sensitive` is only a wrapper. A defaulted field
/// that is not an `Option` is still required when it is an id or a text: its default (the nil id,
/// the empty string) is what the core's validation refuses as missing, while numbers, flags, lists
/// and JSON values have real defaults.
pub fn input_field(name: String, doc: String, ty: RustType, defaulted: bool) -> InputField {
    fn strip(ty: RustType) -> RustType {
        match ty {
            RustType::Sensitive(inner) => strip(*inner),
            other => other,
        }
    }
    let (ty, optional, nullable) = match ty {
        RustType::Option(inner) => match *inner {
            RustType::Option(inner) => (strip(*inner), true, true),
            other => (strip(other), true, true),
        },
        other => {
            let ty = strip(other);
            let missing_is_invalid = matches!(ty, RustType::Uuid | RustType::Str);
            (ty, defaulted && !missing_is_invalid, false)
        }
    };
    InputField { name, doc, ty, required: !optional, nullable }
}

/// The fields of a deserialized struct as input fields, `None` when one of them uses a shape the
/// generator does not model.
pub fn input_fields(s: &syn::ItemStruct, ctx: &str) -> Result<Option<Vec<InputField>>, Error> {
    let syn::Fields::Named(named) = &s.fields else { return Ok(None) };
    let Ok(container) = serde_attrs(&s.attrs, ctx) else { return Ok(None) };
    let mut fields = Vec::new();
    for f in &named.named {
        let Some(ident) = f.ident.as_ref().map(|i| i.unraw().to_string()) else { continue };
        let fctx = format!("{ctx}: field `{ident}`");
        let Ok(attrs) = serde_attrs(&f.attrs, &fctx) else { return Ok(None) };
        if attrs.skip {
            continue;
        }
        let default = attrs.default;
        let name = wire_name(attrs.rename, &container, &ident, ctx)?;
        let ty = parse_type(&f.ty).map_err(|e| Error::new(format!("{fctx}: {e}")))?;
        fields.push(input_field(name, doc_of(&f.attrs), ty, container.default || default));
    }
    Ok(Some(fields))
}

fn parse_input(path: &str, item: &Item, model: &mut Model) -> Result<(), Error> {
    match item {
        Item::Struct(s) if is_pub(&s.vis) && !is_cfg_test(&s.attrs) && derives(&s.attrs, path, "Deserialize")? => {
            let ctx = format!("{path}: struct `{}`", s.ident);
            let fields = input_fields(s, &ctx)?;
            model.inputs.push(Input { name: s.ident.to_string(), doc: doc_of(&s.attrs), fields });
        }
        Item::Enum(e)
            if is_pub(&e.vis)
                && derives(&e.attrs, path, "Deserialize")?
                && !e.variants.iter().all(|v| matches!(v.fields, syn::Fields::Unit)) =>
        {
            model.inputs.push(Input { name: e.ident.to_string(), doc: doc_of(&e.attrs), fields: None });
        }
        _ => {}
    }
    Ok(())
}

/// The doc comment of an item: the `#[doc = "..."]` lines, each without its first space, joined.
pub fn doc_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => str_lit(&nv.value),
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_owned())
        .collect();
    lines.join("\n").trim().to_owned()
}

/// The serde attributes the generator understands.
#[derive(Default)]
struct SerdeAttrs {
    rename: Option<String>,
    rename_all: Option<String>,
    skip: bool,
    default: bool,
}

fn serde_attrs(attrs: &[Attribute], ctx: &str) -> Result<SerdeAttrs, Error> {
    let mut out = SerdeAttrs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        a.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            match key.as_str() {
                "rename" | "rename_all" => {
                    if !meta.input.peek(Token![=]) {
                        return Err(meta.error(format!("`{key}(serialize = ...)` is not supported by austa-codegen")));
                    }
                    let value: LitStr = meta.value()?.parse()?;
                    if key == "rename" {
                        out.rename = Some(value.value());
                    } else {
                        out.rename_all = Some(value.value());
                    }
                }
                "skip" | "skip_serializing" => out.skip = true,
                "default" => {
                    out.default = true;
                    if meta.input.peek(Token![=]) {
                        meta.value()?.parse::<Expr>()?;
                    }
                }
                "flatten"
                | "skip_serializing_if"
                | "serialize_with"
                | "with"
                | "tag"
                | "content"
                | "untagged"
                | "into"
                | "remote"
                | "transparent"
                | "getter"
                | "rename_all_fields" => {
                    return Err(meta.error(format!("serde `{key}` is not supported by austa-codegen")));
                }
                _ => {
                    // Deserialization-only or wire-neutral (`default`, `deny_unknown_fields`, ...).
                    if meta.input.peek(Token![=]) {
                        meta.value()?.parse::<Expr>()?;
                    } else if meta.input.peek(syn::token::Paren) {
                        let _ignored;
                        syn::parenthesized!(_ignored in meta.input);
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| Error::new(format!("{ctx}: {e}")))?;
    }
    Ok(out)
}

/// The table of a stored model: the `table` of its `#[record(table = "...", ...)]` declaration
/// (the attribute `#[derive(Record)]` reads), `None` for other structs.
fn record_table(attrs: &[Attribute], ctx: &str) -> Result<Option<String>, Error> {
    let mut table = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("record")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                table = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.input.peek(Token![=]) {
                meta.value()?.parse::<Expr>()?;
            }
            Ok(())
        })
        .map_err(|e| Error::new(format!("{ctx}: #[record]: {e}")))?;
    }
    Ok(table)
}
