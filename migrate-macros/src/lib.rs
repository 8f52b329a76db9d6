//! The `embed_migrations!` macro. Use it through
//! `migrate_core::embed_migrations!`, which documents it.
//!
//! The macro applies the file rules of `migrate-rules` (the same code
//! `Migrations::from_dir` runs), hashes every file at compile time, and
//! embeds each file with `include_str!` so that editing a file rebuilds the
//! crate. Every problem becomes a compile error at the macro's argument; the
//! macro never panics.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::LitStr;

/// Embeds a directory of migrations. See `migrate_core::embed_migrations!`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(input: TokenStream2) -> syn::Result<TokenStream2> {
    let lit: LitStr = syn::parse2(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the migrations directory as a string literal, relative to the crate's \
             Cargo.toml: `embed_migrations!(\"migrations\")`",
        )
    })?;
    let span = lit.span();
    let relative = lit.value();
    if Path::new(&relative).is_absolute() {
        return Err(syn::Error::new(
            span,
            format!(
                "`{relative}` is an absolute path, which works only on this machine; give the \
                 directory relative to the crate's Cargo.toml, such as \"migrations\""
            ),
        ));
    }
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        syn::Error::new(
            span,
            "CARGO_MANIFEST_DIR is not set: build the crate with cargo",
        )
    })?;
    let dir = PathBuf::from(manifest_dir).join(&relative);
    let loaded = migrate_rules::load_dir(&dir).map_err(|problems| {
        let shown_dir = dir.display().to_string();
        let mut errors = problems.iter().map(|p| {
            let file = if p.file == shown_dir {
                relative.clone()
            } else {
                format!("{relative}/{}", p.file)
            };
            let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            syn::Error::new(span, format!("{file}{at}: {}", p.message))
        });
        let mut first = errors
            .next()
            .unwrap_or_else(|| syn::Error::new(span, "invalid migrations"));
        for e in errors {
            first.combine(e);
        }
        first
    })?;

    let mut items = Vec::with_capacity(loaded.len());
    for m in &loaded {
        let version = m.version;
        let name = &m.name;
        let file_name = &m.up.file_name;
        let up = path_str(&m.up.path, span)?;
        let checksum = m.up.contents.checksum;
        let no_transaction = m.up.contents.no_transaction;
        let down = match &m.down {
            Some(down) => {
                let path = path_str(&down.path, span)?;
                quote!(::core::option::Option::Some(::core::include_str!(#path)))
            }
            None => quote!(::core::option::Option::None),
        };
        items.push(quote! {
            ::migrate_core::Migration::__embedded(
                #version, #name, #file_name, ::core::include_str!(#up),
                [#(#checksum),*], #no_transaction, #down,
            )
        });
    }
    Ok(quote! {
        {
            const MIGRATIONS: &[::migrate_core::Migration] = &[#(#items),*];
            ::migrate_core::Migrations::__embedded(MIGRATIONS)
        }
    })
}

fn path_str(path: &Path, span: Span) -> syn::Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        syn::Error::new(
            span,
            format!(
                "{}: the path is not valid UTF-8; move the crate",
                path.display()
            ),
        )
    })
}
