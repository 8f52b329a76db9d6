//! The macro returns a compile error, never panics, whatever it is given.
//! The trybuild cases in `tests/ui` pin the messages a user sees; these tests
//! call the expansion directly with many more inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proc_macro2::{Delimiter, TokenStream as TokenStream2, TokenTree};

use super::{expand, into_compile_errors};

/// A fresh directory under the system's temporary directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "migrate-macros-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `tokens` is one `{ ... }` block: one expression, as the macro is
/// used in expression position (`static M: Migrations = embed_migrations!(..)`).
fn is_one_block(tokens: TokenStream2) -> bool {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    matches!(trees.as_slice(), [TokenTree::Group(g)] if g.delimiter() == Delimiter::Brace)
}

/// Expands `input` (Rust tokens) and returns the error messages, or an
/// empty list if it expanded.
fn messages(input: &str) -> Vec<String> {
    let tokens: TokenStream2 = input.parse().unwrap();
    match expand(tokens) {
        Ok(expanded) => {
            assert!(is_one_block(expanded), "expansion of {input:?}");
            Vec::new()
        }
        Err(error) => {
            let as_tokens = into_compile_errors(error.clone());
            assert!(is_one_block(as_tokens), "errors of {input:?}");
            error.into_iter().map(|e| e.to_string()).collect()
        }
    }
}

// One test, because it sets CARGO_MANIFEST_DIR for the process.
#[test]
fn never_panics_and_reports_every_problem() {
    let root = scratch_dir("manifest");
    std::env::set_var("CARGO_MANIFEST_DIR", &root);

    let good = root.join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("001_a.sql"), "CREATE TABLE a (x);\n").unwrap();
    std::fs::write(good.join("002.sql"), "-- migrate:no-transaction\nVACUUM;\n").unwrap();
    std::fs::write(good.join("002.down.sql"), "SELECT 1;\n").unwrap();
    std::fs::write(good.join("notes.txt"), "ignored").unwrap();
    std::fs::create_dir(good.join("003_dir.sql")).unwrap();
    assert_eq!(messages(r#""good""#), Vec::<String>::new());
    assert_eq!(messages(r#""good/""#), Vec::<String>::new());
    assert_eq!(messages(r#"r"good""#), Vec::<String>::new());

    // A file name with ", " in it (invalid) is named as one file.
    let comma = root.join("comma");
    std::fs::create_dir(&comma).unwrap();
    std::fs::write(comma.join("001_a, b.sql"), "SELECT 1;\n").unwrap();
    let errors = messages(r#""comma""#);
    assert!(errors[0].starts_with("comma/001_a, b.sql: "), "{errors:?}");

    // The embedded SQL is the text the macro checked and hashed, as a
    // literal, not a second read of the file by rustc (which a save during
    // the build could change); `include_str!` is there only for cargo.
    let expanded = expand(r#""good""#.parse().unwrap()).unwrap().to_string();
    for text in [
        "CREATE TABLE a (x);\\n",
        "-- migrate:no-transaction\\nVACUUM;\\n",
        "SELECT 1;\\n",
    ] {
        assert!(
            expanded.contains(&format!("\"{text}\"")),
            "{text} in {expanded}"
        );
    }
    assert_eq!(
        expanded.matches("include_str").count(),
        expanded
            .matches("const _ : & str = :: core :: include_str")
            .count(),
        "{expanded}"
    );

    let bad = root.join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("001_a.sql"), "").unwrap();
    std::fs::write(bad.join("001_b.sql"), "SELECT 1;").unwrap();
    std::fs::write(bad.join("003_c.sql"), b"SELECT '\xff';").unwrap();
    std::fs::write(bad.join("x.sql"), "SELECT 1;").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"004_\xff.sql");
        std::fs::write(bad.join(name), "SELECT 1;").unwrap();
        std::os::unix::fs::symlink("005_loop.sql", bad.join("005_loop.sql")).unwrap();
    }
    let found = messages(r#""bad""#);
    let expected = [
        "bad/001_a.sql: the file has no SQL statement",
        "bad/001_a.sql, bad/001_b.sql: 2 files have version 1",
        "bad/003_c.sql:1: the file is not valid UTF-8",
        "bad/x.sql: the name does not start with a version",
    ];
    for want in expected {
        assert!(
            found.iter().any(|m| m.starts_with(want)),
            "no message starting with {want:?} in {found:#?}"
        );
    }
    #[cfg(unix)]
    {
        assert!(
            found.iter().any(|m| m.contains("004_\u{fffd}.sql")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|m| m.starts_with("bad/005_loop.sql: cannot read the file")),
            "{found:#?}"
        );
    }

    let long = format!("\"{}\"", "a/".repeat(5000));
    let long_name = format!("\"{}\"", "n".repeat(5000));
    let inputs = [
        "",
        "DIR",
        "1",
        "'c'",
        "b\"bad\"",
        "c\"bad\"",
        "\"bad\" \"good\"",
        "\"bad\", \"good\"",
        "\"bad\";",
        "(\"bad\")",
        "concat!(\"ba\", \"d\")",
        "\"\"",
        "\".\"",
        "\"..\"",
        "\"/\"",
        "\"/etc/passwd\"",
        "\"\\\\\\\\server\\\\share\"",
        "\"migr\\0ations\"",
        "\"good/001_a.sql\"",
        "\"good/001_a.sql/\"",
        "\"\\u{202e}\\u{feff}\"",
        "\"missing/../../good\"",
        &long,
        &long_name,
    ];
    for input in inputs {
        let result = std::panic::catch_unwind(|| messages(input));
        assert!(result.is_ok(), "expanding {input:?} panicked");
    }
    assert!(messages("DIR")[0].starts_with("expected a string literal"));
    assert!(messages("")[0].starts_with("missing the migrations directory"));
    assert!(messages("\"bad\", \"good\"")[0]
        .starts_with("after the directory, `embed_migrations!` takes only"));
    assert!(messages("\"bad\", lock = \"test\" x")[0]
        .starts_with("unexpected tokens after the options"));
    assert!(messages("\"bad\", colour = \"test\"")[0].starts_with("after the directory"));
    assert!(messages("\"/etc\"")[0].contains("is an absolute path"));
    assert!(messages("\"good/001_a.sql\"")[0].contains("this is a file, not a directory"));

    std::fs::remove_dir_all(&root).unwrap();
}
