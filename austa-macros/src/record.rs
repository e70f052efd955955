//! `#[derive(Record)]`: a model's storage from its one declaration (see `austa_model::record`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Expr, Fields, GenericArgument, Lit, Meta, PathArguments, Type};

/// What the struct's `#[record(...)]` says.
#[derive(Default)]
struct Table {
    table: Option<String>,
    entity: Option<String>,
    soft_delete: bool,
    owner: Option<String>,
}

/// What a field's `#[record(...)]` says.
#[derive(Default)]
struct FieldAttrs {
    column: Option<String>,
    blind: Option<String>,
    json: bool,
    organization: bool,
}

/// How a field is stored, from its type and attributes.
enum Codec {
    /// `Sensitive<String>`.
    Text,
    /// `Sensitive<T>` of any other `T`.
    SealedJson,
    /// A `Column` type.
    Plain,
    /// `#[record(json)]`.
    Json,
}

fn string_value(expr: &Expr, what: &str) -> syn::Result<String> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.value()),
            other => Err(syn::Error::new_spanned(other, format!("{what} must be a string"))),
        },
        other => Err(syn::Error::new_spanned(other, format!("{what} must be a string"))),
    }
}

fn record_metas(attrs: &[syn::Attribute]) -> syn::Result<Vec<Meta>> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("record")) {
        let list = attr.parse_args_with(syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated)?;
        out.extend(list);
    }
    Ok(out)
}

fn table_attrs(input: &DeriveInput) -> syn::Result<Table> {
    let mut t = Table::default();
    for meta in record_metas(&input.attrs)? {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("table") => t.table = Some(string_value(&nv.value, "table")?),
            Meta::NameValue(nv) if nv.path.is_ident("entity") => t.entity = Some(string_value(&nv.value, "entity")?),
            Meta::NameValue(nv) if nv.path.is_ident("owner") => t.owner = Some(string_value(&nv.value, "owner")?),
            Meta::Path(p) if p.is_ident("soft_delete") => t.soft_delete = true,
            other => return Err(syn::Error::new_spanned(other, "expected table, entity, owner or soft_delete")),
        }
    }
    Ok(t)
}

fn field_attrs(field: &syn::Field) -> syn::Result<FieldAttrs> {
    let mut f = FieldAttrs::default();
    for meta in record_metas(&field.attrs)? {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("column") => f.column = Some(string_value(&nv.value, "column")?),
            Meta::NameValue(nv) if nv.path.is_ident("blind") => f.blind = Some(string_value(&nv.value, "blind")?),
            Meta::Path(p) if p.is_ident("json") => f.json = true,
            Meta::Path(p) if p.is_ident("organization") => f.organization = true,
            other => return Err(syn::Error::new_spanned(other, "expected column, blind, json or organization")),
        }
    }
    Ok(f)
}

/// `Wrapper<Inner>` → `Inner`, when the last path segment is `wrapper`.
fn unwrap_generic<'a>(ty: &'a Type, wrapper: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

fn is_string(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.is_ident("String"))
}

/// The first sentence of the field's doc comment, without a trailing `(encrypted...)` note.
fn holds(field: &syn::Field) -> String {
    let mut doc = String::new();
    for attr in &field.attrs {
        if let Meta::NameValue(nv) = &attr.meta {
            if nv.path.is_ident("doc") {
                if let Ok(line) = string_value(&nv.value, "doc") {
                    doc.push_str(line.trim());
                    doc.push(' ');
                }
            }
        }
    }
    let first = first_sentence(doc.trim());
    let first = match first.find(" (encrypted") {
        Some(at) => &first[..at],
        None => first,
    };
    first.trim().trim_end_matches('.').to_string()
}

/// The text up to the first full stop that ends a sentence: one followed by a
/// space or the end, and not the stop of an abbreviation such as "e.g.".
fn first_sentence(doc: &str) -> &str {
    let mut from = 0;
    while let Some(at) = doc[from..].find('.').map(|i| from + i) {
        let next = doc[at + 1..].chars().next();
        let before = &doc[..at];
        let abbreviation = ["e.g", "i.e", "etc", "vs"].iter().any(|a| before.ends_with(a));
        if (next.is_none() || next == Some(' ')) && !abbreviation {
            return &doc[..at];
        }
        from = at + 1;
    }
    doc
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let t = table_attrs(&input)?;
    let table = t.table.ok_or_else(|| syn::Error::new_spanned(name, "#[record(table = \"...\")] is required"))?;
    let entity = t.entity.unwrap_or_else(|| table.trim_end_matches('s').to_string());
    let soft_delete = t.soft_delete;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(name, "Record is derived for structs"));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(name, "Record needs named fields"));
    };
    let (mut encode, mut decode, mut defs) = (Vec::new(), Vec::new(), Vec::new());
    for field in &fields.named {
        let Some(ident) = field.ident.as_ref() else { continue };
        let attrs = field_attrs(field)?;
        let column = attrs.column.clone().unwrap_or_else(|| ident.to_string());
        let field_name = ident.to_string();
        if attrs.organization {
            decode.push(quote! { #ident: ::austa_model::record::required(row, #column)? });
            continue;
        }
        let (optional, inner) = match unwrap_generic(&field.ty, "Option") {
            Some(inner) => (true, inner),
            None => (false, &field.ty),
        };
        let codec = match unwrap_generic(inner, "Sensitive") {
            Some(sealed) if is_string(sealed) => Codec::Text,
            Some(_) => Codec::SealedJson,
            None if attrs.json => Codec::Json,
            None => Codec::Plain,
        };
        let (enc, dec) = match (&codec, optional) {
            (Codec::Text, false) => (quote! { c.text(#column, &self.#ident)? }, quote! { c.open_text(row, #column)? }),
            (Codec::Text, true) => {
                (quote! { c.opt_text(#column, self.#ident.as_ref())? }, quote! { c.open_opt_text(row, #column)? })
            }
            (Codec::SealedJson, false) => {
                (quote! { c.json(#column, &self.#ident)? }, quote! { c.open_json(row, #column)? })
            }
            (Codec::SealedJson, true) => {
                (quote! { c.opt_json(#column, self.#ident.as_ref())? }, quote! { c.open_opt_json(row, #column)? })
            }
            (Codec::Plain, false) => (
                quote! { ::austa_model::record::Column::to_value(&self.#ident) },
                quote! { ::austa_model::record::required(row, #column)? },
            ),
            (Codec::Plain, true) => (
                quote! { ::austa_model::record::opt_value(&self.#ident) },
                quote! { ::austa_model::record::Column::read(row, #column)? },
            ),
            (Codec::Json, false) => (
                quote! { ::austa_model::record::json_value(&self.#ident) },
                quote! { ::austa_model::record::json_required(row, #column)? },
            ),
            (Codec::Json, true) => (
                quote! { ::austa_model::record::json_value(&self.#ident) },
                quote! { ::austa_model::record::json_read(row, #column)? },
            ),
        };
        encode.push(quote! { (#column, #enc) });
        decode.push(quote! { #ident: #dec });
        let class = match (&codec, &attrs.blind) {
            (Codec::Text, Some(kind)) => {
                let kind = format_ident!("{}", kind);
                let bidx = format!("{column}_bidx");
                let value = if optional {
                    quote! { self.#ident.as_ref() }
                } else {
                    quote! { Some(&self.#ident) }
                };
                encode.push(quote! {
                    (#bidx, ::austa_model::record::blind(c, ::austa_crypto::BlindIndexKind::#kind, #value)?)
                });
                quote! { ::austa_model::record::ColumnClass::Identifier(::austa_crypto::BlindIndexKind::#kind) }
            }
            (_, Some(_)) => {
                return Err(syn::Error::new_spanned(field, "a blind index needs a Sensitive<String> field"))
            }
            (Codec::Text | Codec::SealedJson, None) => quote! { ::austa_model::record::ColumnClass::Sensitive },
            _ => quote! { ::austa_model::record::ColumnClass::Operational },
        };
        let holds = holds(field);
        defs.push(quote! {
            ::austa_model::record::ColumnDef {
                name: #column, field: #field_name, class: #class, nullable: #optional, holds: #holds,
            }
        });
    }
    let (key_owner, owner_patient) = match &t.owner {
        Some(field) => {
            let ident = format_ident!("{}", field);
            (
                quote! { ::austa_model::classification::KeyOwner::Patient { column: #field } },
                quote! { Some(self.#ident) },
            )
        }
        None => (quote! { ::austa_model::classification::KeyOwner::Organization }, quote! { None }),
    };
    Ok(quote! {
        impl ::austa_model::record::Record for #name {
            const TABLE: &'static str = #table;
            const ENTITY: &'static str = #entity;
            const SOFT_DELETE: bool = #soft_delete;
            const KEY_OWNER: ::austa_model::classification::KeyOwner = #key_owner;
            const COLUMNS: &'static [::austa_model::record::ColumnDef] = &[#(#defs),*];

            fn id(&self) -> ::uuid::Uuid {
                self.id
            }

            fn owner_patient(&self) -> Option<::uuid::Uuid> {
                #owner_patient
            }

            fn columns(
                &self,
                c: &::austa_crypto::RowCrypto<'_>,
            ) -> ::austa_error::Result<Vec<(&'static str, ::austa_sql::Value)>> {
                Ok(vec![#(#encode),*])
            }

            fn from_row(row: &::austa_sql::Row, c: &::austa_crypto::RowCrypto<'_>) -> ::austa_error::Result<Self> {
                Ok(Self { #(#decode),* })
            }
        }
    })
}
