//! `#[backends]`: one test body, one test per backend.
//!
//! ```text
//! #[backends(<tokio::test arguments>)]
//! /// docs
//! async fn name(tdb: TestDb) { body }
//! ```
//!
//! becomes
//!
//! ```text
//! /// docs
//! mod name {
//!     use super::*;
//!     async fn name(tdb: TestDb) { body }
//!     #[tokio::test(<arguments>)]
//!     async fn sqlite() { name(crate::support::sqlite().await).await }
//!     #[tokio::test(<arguments>)]
//!     async fn postgres() { if let Some(db) = crate::support::postgres().await { name(db).await } }
//! }
//! ```
//!
//! The body keeps the function's name inside the module rather than a fixed one such as `run`: a test
//! module's own helpers (a `run` among them) stay reachable from the body through `use super::*`, and
//! no helper can have the test's name, which the test itself held. Doc comments go to the module; any
//! other attribute (`#[ignore]`, `#[should_panic]`) goes to both tests.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, Meta, ReturnType, Token};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let f: ItemFn = syn::parse2(item)?;
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new(sig.fn_token.span(), "#[backends] needs an `async fn`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(sig.generics.span(), "#[backends] takes no generics"));
    }
    if let ReturnType::Type(..) = sig.output {
        return Err(Error::new(sig.output.span(), "#[backends] tests return nothing"));
    }
    let param = match (sig.inputs.len(), sig.inputs.first()) {
        (1, Some(FnArg::Typed(param))) => param,
        _ => {
            return Err(Error::new(
                sig.inputs.span(),
                "#[backends] takes one parameter, the test database (`tdb: TestDb`)",
            ))
        }
    };

    let name = &sig.ident;
    let vis = &f.vis;
    let body = &f.block;
    let (docs, others): (Vec<_>, Vec<_>) = f.attrs.iter().partition(|a| a.path().is_ident("doc"));
    let test = if args.is_empty() { quote!(#[::tokio::test]) } else { quote!(#[::tokio::test(#args)]) };

    Ok(quote! {
        #(#docs)*
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            async fn #name(#param) #body

            #(#others)*
            #test
            async fn sqlite() {
                #name(crate::support::sqlite().await).await
            }

            #(#others)*
            #test
            async fn postgres() {
                if let Some(db) = crate::support::postgres().await {
                    #name(db).await
                }
            }
        }
    })
}
