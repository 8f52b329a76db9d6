//! The `embed_migrations!` macro. Use it through
//! `migrate_core::embed_migrations!`, which documents it.
//!
//! The macro applies the file rules of `migrate-rules` (the same code
//! `Migrations::from_dir` runs), hashes every file at compile time, and
//! embeds the very text it checked and hashed, as a string literal (a file
//! saved again during the build cannot slip in unchecked). Each file is
//! also named in an `include_str!` that nothing uses, so that editing it
//! rebuilds the crate. Every problem becomes a compile error at the macro's
//! argument; the macro never panics.

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::LitStr;

/// Embeds a directory of migrations. See `migrate_core::embed_migrations!`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    expand(input.into())
        .unwrap_or_else(into_compile_errors)
        .into()
}

/// All errors as one expression: `syn::Error::into_compile_error` of several
/// combined errors is a sequence of `compile_error!` calls, which is not an
/// expression and would add confusing parse errors after the real ones.
fn into_compile_errors(error: syn::Error) -> TokenStream2 {
    let errors = error.into_iter().map(|e| e.into_compile_error());
    quote!({ #(#errors);* })
}

/// Where the lock file is checked: `lock = "build"` (the default, a compile
/// error) or `lock = "test"` (left to `Migrations::check_source` in a test).
#[derive(Clone, Copy, PartialEq, Eq)]
enum LockCheck {
    Build,
    Test,
}

/// The arguments: a string literal, then optionally `, lock = "build"` or
/// `, lock = "test"`.
fn parse_argument(input: TokenStream2) -> syn::Result<(LitStr, LockCheck)> {
    if input.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing the migrations directory: write `embed_migrations!(\"migrations\")`, \
             with the directory relative to the crate's Cargo.toml",
        ));
    }
    let parser = |stream: syn::parse::ParseStream<'_>| -> syn::Result<(LitStr, LockCheck)> {
        let lit: LitStr = stream.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a string literal, such as `embed_migrations!(\"migrations\")`, \
                 naming the directory relative to the crate's Cargo.toml (the macro cannot \
                 read constants or expand other macros)",
            )
        })?;
        let mut check = LockCheck::Build;
        if stream.peek(syn::Token![,]) {
            stream.parse::<syn::Token![,]>()?;
        }
        if !stream.is_empty() {
            let option = || {
                let key: syn::Ident = stream.parse()?;
                if key != "lock" {
                    return Err(syn::Error::new(key.span(), "unknown option"));
                }
                stream.parse::<syn::Token![=]>()?;
                let value: LitStr = stream.parse()?;
                match value.value().as_str() {
                    "build" => Ok(LockCheck::Build),
                    "test" => Ok(LockCheck::Test),
                    _ => Err(syn::Error::new(value.span(), "unknown value")),
                }
            };
            check = option().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "after the directory, `embed_migrations!` takes only `lock = \"build\"` (the \
                     default: an edited released migration is a compile error) or `lock = \"test\"` \
                     (left to `MIGRATIONS.check_source(..)` in a test), such as \
                     `embed_migrations!(\"migrations\", lock = \"test\")`",
                )
            })?;
            if stream.peek(syn::Token![,]) {
                stream.parse::<syn::Token![,]>()?;
            }
            if !stream.is_empty() {
                return Err(syn::Error::new(
                    stream.span(),
                    "unexpected tokens after the options of `embed_migrations!`",
                ));
            }
        }
        Ok((lit, check))
    };
    syn::parse::Parser::parse2(parser, input)
}

fn expand(input: TokenStream2) -> syn::Result<TokenStream2> {
    let (lit, lock_check) = parse_argument(input)?;
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
    let load = match lock_check {
        LockCheck::Build => migrate_rules::load_dir,
        LockCheck::Test => migrate_rules::load_dir_unlocked,
    };
    let loaded = load(&dir).map_err(|problems| {
        let shown_dir = dir.display().to_string();
        // How the user wrote the directory, to prefix file names with.
        let prefix = relative.trim_end_matches(['/', '\\']);
        let mut errors = problems.iter().map(|p| {
            let message = if p.file == shown_dir {
                format!(
                    "{relative}: {} (the path is relative to the directory of the crate's \
                     Cargo.toml)",
                    p.message
                )
            } else {
                // A duplicate names several files, separated by ", " (which
                // a valid migration file name cannot contain; an invalid
                // one may, and is one file: split only into files that are
                // there).
                let parts: Vec<&str> = p.file.split(", ").collect();
                let several = parts.len() > 1 && parts.iter().all(|f| dir.join(f).exists());
                let names = if several {
                    parts
                } else {
                    vec![p.file.as_str()]
                };
                let files: Vec<String> = names
                    .into_iter()
                    .map(|file| format!("{prefix}/{file}"))
                    .collect();
                let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
                format!("{}{at}: {}", files.join(", "), p.message)
            };
            syn::Error::new(span, message)
        });
        let mut first = errors
            .next()
            .unwrap_or_else(|| syn::Error::new(span, "invalid migrations directory"));
        for e in errors {
            first.combine(e);
        }
        first
    })?;

    let mut items = Vec::with_capacity(loaded.len());
    let mut tracked = Vec::with_capacity(loaded.len());
    for m in &loaded {
        let version = m.version;
        let name = &m.name;
        let file_name = &m.up.file_name;
        let up = path_str(&m.up.path, span)?;
        let up_text = &m.up.text;
        let checksum = m.up.contents.checksum;
        let chain = m.chain;
        let no_transaction = m.up.contents.no_transaction;
        // Found once here, so that a run never scans the files' text.
        let mentions = m.up.contents.mentions.to_bits();
        let down = match &m.down {
            Some(down) => {
                let path = path_str(&down.path, span)?;
                tracked.push(path);
                let down_name = &down.file_name;
                let down_text = &down.text;
                let down_mentions = down.contents.mentions.to_bits();
                quote!(::core::option::Option::Some((#down_name, #down_text, #down_mentions)))
            }
            None => quote!(::core::option::Option::None),
        };
        tracked.push(up);
        items.push(quote! {
            ::migrate_core::Migration::__embedded(
                #version, #name, #file_name, #up_text,
                [#(#checksum),*], [#(#chain),*], #no_transaction, #mentions, #down,
            )
        });
    }
    // Only for cargo: a change to any file rebuilds the crate (and the
    // macro reads and checks it again).
    let tracked = tracked.iter().map(|path| {
        quote!(
            const _: &str = ::core::include_str!(#path);
        )
    });
    // The lock file was checked by `load_dir`; including it makes cargo
    // rebuild the crate (and check again) when the lock is edited.
    let lock = dir.join(migrate_rules::LOCK_FILE_NAME);
    let lock = if lock_check == LockCheck::Build && lock.is_file() {
        let lock = path_str(&lock, span)?;
        quote!(
            const _: &[u8] = ::core::include_bytes!(#lock);
        )
    } else {
        quote!()
    };
    Ok(quote! {
        {
            #lock
            #(#tracked)*
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

#[cfg(test)]
mod tests;
