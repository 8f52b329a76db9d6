//! `embed_migrations!` and `Migrations::from_dir` give the same migrations
//! for the same directory: one implementation of the file rules, applied at
//! compile time or at run time. Paths given to the macro are relative to this
//! crate's directory (`tests/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use migrate_core::{embed_migrations, Checksum, Migrations};

static EXAMPLE: Migrations = embed_migrations!("../migrations-example/migrations");
static ATUIN_CLIENT: Migrations = embed_migrations!("corpus/atuin-client/numbered");
static CDK_MINT: Migrations = embed_migrations!("corpus/cdk-mint/numbered");
static GROCY: Migrations = embed_migrations!("corpus/grocy/numbered");
static LND: Migrations = embed_migrations!("corpus/lnd/numbered");
static RAUTHY: Migrations = embed_migrations!("corpus/rauthy/numbered");
static YAAK: Migrations = embed_migrations!("corpus/yaak/numbered");
static DIRECTIVES: Migrations = embed_migrations!("fixtures/directives");
static LF: Migrations = embed_migrations!("fixtures/line_endings/lf");
static CRLF_BOM: Migrations = embed_migrations!("fixtures/line_endings/crlf_bom");
// Up and down files that name the words the run looks for in a file (the
// macro finds them at compile time, the loader when it reads the file).
static MENTIONS: Migrations = embed_migrations!("fixtures/mentions");

/// Every embedded directory, with its path relative to `tests/`.
static EMBEDDED: &[(&str, &Migrations)] = &[
    ("../migrations-example/migrations", &EXAMPLE),
    ("corpus/atuin-client/numbered", &ATUIN_CLIENT),
    ("corpus/cdk-mint/numbered", &CDK_MINT),
    ("corpus/grocy/numbered", &GROCY),
    ("corpus/lnd/numbered", &LND),
    ("corpus/rauthy/numbered", &RAUTHY),
    ("corpus/yaak/numbered", &YAAK),
    ("fixtures/directives", &DIRECTIVES),
    ("fixtures/line_endings/lf", &LF),
    ("fixtures/line_endings/crlf_bom", &CRLF_BOM),
    ("fixtures/mentions", &MENTIONS),
];

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The up files of a directory, read directly: (file name, bytes).
fn up_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql") && !n.ends_with(".down.sql"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    files.sort_by_key(|(name, _)| {
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().unwrap()
    });
    files
}

#[test]
fn macro_and_from_dir_agree_on_every_directory() {
    for (relative, embedded) in EMBEDDED {
        let dir = tests_dir().join(relative);
        let loaded = Migrations::from_dir(&dir).unwrap();
        assert!(!embedded.is_empty(), "{relative}: nothing embedded");
        assert_eq!(embedded.len(), loaded.len(), "{relative}: count");
        for (e, l) in embedded.iter().zip(loaded.iter()) {
            let at = format!("{relative}/{}", l.file_name());
            assert_eq!(e.version(), l.version(), "{at}: version");
            assert_eq!(e.name(), l.name(), "{at}: name");
            assert_eq!(e.file_name(), l.file_name(), "{at}: file name");
            assert_eq!(e.sql(), l.sql(), "{at}: SQL");
            assert_eq!(e.checksum(), l.checksum(), "{at}: checksum");
            assert_eq!(e.no_transaction(), l.no_transaction(), "{at}: directive");
            assert_eq!(e.down_sql(), l.down_sql(), "{at}: down SQL");
        }
        // And nothing else differs.
        assert_eq!(**embedded, loaded, "{relative}");
    }
}

/// The embedded SQL is each file's text exactly, in version order, and the
/// checksum is that text's, independently of the loader.
#[test]
fn embedded_sql_is_the_files_text() {
    for (relative, embedded) in EMBEDDED {
        let files = up_files(&tests_dir().join(relative));
        assert_eq!(embedded.len(), files.len(), "{relative}");
        for ((name, bytes), m) in files.iter().zip(embedded.iter()) {
            assert_eq!(m.file_name(), name, "{relative}");
            assert_eq!(m.sql().as_bytes(), bytes.as_slice(), "{relative}/{name}");
            assert_eq!(m.checksum(), Checksum::of(m.sql()), "{relative}/{name}");
        }
        assert_eq!(
            embedded.iter().map(|m| m.version()).collect::<Vec<_>>(),
            (1..=u32::try_from(files.len()).unwrap()).collect::<Vec<_>>(),
            "{relative}"
        );
    }
}

/// A new corpus set must be added to the list above.
#[test]
fn every_corpus_set_is_embedded() {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(tests_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path().join("numbered"))
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    assert!(sets.len() >= 6, "corpus sets: {sets:?}");
    for set in sets {
        let relative = set.strip_prefix(tests_dir()).unwrap();
        assert!(
            EMBEDDED.iter().any(|(r, _)| Path::new(r) == relative),
            "{} is not embedded by this test: add it to EMBEDDED",
            relative.display()
        );
    }
}

/// Directives, down files and `<version>.sql` names are embedded as
/// `from_dir` reads them.
#[test]
fn directives_and_down_files_are_embedded() {
    let got: Vec<_> = DIRECTIVES
        .iter()
        .map(|m| (m.version(), m.name(), m.no_transaction(), m.down_sql()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "create_users", false, Some("DROP TABLE users;\n")),
            (2, "vacuum", true, None),
            (3, "", false, None),
        ]
    );
    // The lnd set has a down file for every version.
    assert!(LND.iter().all(|m| m.down_sql().is_some()));
}

/// A Windows checkout (CRLF line endings, a byte-order mark) has the same
/// checksum as the LF file: SHA-256 of the text without BOM, CRLF as LF.
#[test]
fn crlf_and_bom_do_not_change_the_checksum() {
    let lf = LF.get(1).unwrap();
    let crlf = CRLF_BOM.get(1).unwrap();
    assert!(crlf.sql().starts_with('\u{feff}'));
    assert!(crlf.sql().contains("\r\n"));
    assert!(!lf.sql().contains('\r'));
    assert_eq!(
        crlf.sql()
            .trim_start_matches('\u{feff}')
            .replace("\r\n", "\n"),
        lf.sql()
    );
    // `sha256sum fixtures/line_endings/lf/001_create_users.sql`
    let expected = "368416bad87bbe023192d5ec54f60f7dd904778228e4e8652a4b2272f64fe905";
    assert_eq!(lf.checksum().to_string(), expected);
    assert_eq!(crlf.checksum().to_string(), expected);
    assert_eq!(
        Migrations::from_dir(tests_dir().join("fixtures/line_endings/crlf_bom"))
            .unwrap()
            .get(1)
            .unwrap()
            .checksum()
            .to_string(),
        expected
    );
}
