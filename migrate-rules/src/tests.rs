#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;
use std::fs;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    let dir = dir_with(files);
    load_dir(dir.path())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn file_names() {
    let up = |v, n| {
        Some(FileName {
            version: v,
            name: n,
            direction: Direction::Up,
        })
    };
    assert_eq!(
        parse_file_name("001_create_users.sql").unwrap(),
        up(1, "create_users")
    );
    assert_eq!(parse_file_name("7.sql").unwrap(), up(7, ""));
    assert_eq!(parse_file_name("0042_a-b_C.sql").unwrap(), up(42, "a-b_C"));
    assert_eq!(
        parse_file_name("2147483647_max.sql").unwrap(),
        up(MAX_VERSION, "max")
    );
    assert_eq!(
        parse_file_name("003_posts.down.sql").unwrap(),
        Some(FileName {
            version: 3,
            name: "posts",
            direction: Direction::Down
        })
    );
    for ignored in [
        "README.md",
        ".001_hidden.sql",
        "migrate.lock",
        "001_x.sql~",
        "notes.txt",
    ] {
        assert_eq!(parse_file_name(ignored).unwrap(), None, "{ignored}");
    }
}

#[test]
fn bad_file_names_are_errors_naming_the_file() {
    for (bad, says) in [
        ("create_users.sql", "does not start with a version"),
        (
            "1-create.sql",
            "after the version `1` comes '-' instead of `_` (before the name) or `.sql`",
        ),
        ("001_.sql", "the name after `_` is empty"),
        ("001_a b.sql", "contains ' '"),
        ("001_x.up.sql", "up files have no `.up`"),
        ("001_x.SQL", "lowercase"),
        ("0_zero.sql", "version 0"),
        ("000.sql", "version 0"),
        ("2147483648_big.sql", "above 2147483647"),
        ("20240101120000_timestamp.sql", "number migrations 1, 2, 3"),
        ("99999999999999999999999_huge.sql", "above 2147483647"),
    ] {
        let err = parse_file_name(bad).unwrap_err();
        assert_eq!(err.file, bad);
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
}

#[test]
fn checksum_ignores_bom_and_crlf_only() {
    let lf = checksum("CREATE TABLE a(x);\nCREATE TABLE b(y);\n");
    assert_eq!(
        checksum("\u{feff}CREATE TABLE a(x);\r\nCREATE TABLE b(y);\r\n"),
        lf
    );
    assert_ne!(checksum("CREATE TABLE a(x);\nCREATE TABLE b(y); \n"), lf);
    assert_ne!(checksum("CREATE TABLE a(x);\rCREATE TABLE b(y);\r"), lf);
    // Known SHA-256 of "abc".
    assert_eq!(
        hex(&checksum("abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(parse_hex(&hex(&lf)), Some(lf));
    assert_eq!(parse_hex("xyz"), None);
    // A reused buffer holds the new digits only.
    let mut reused = hex(&lf);
    crate::hex_to(&checksum("abc"), &mut reused);
    assert_eq!(reused, hex(&checksum("abc")));
}

#[test]
fn contents_rules() {
    assert!(
        !check_contents("f", "CREATE TABLE a(x);", Direction::Up)
            .unwrap()
            .no_transaction
    );
    let nt = check_contents(
        "f",
        "-- a comment\n-- migrate:no-transaction\nVACUUM;",
        Direction::Up,
    )
    .unwrap();
    assert!(nt.no_transaction);
    assert!(
        check_contents(
            "f",
            "\u{feff}-- migrate:no-transaction\r\nVACUUM;",
            Direction::Up
        )
        .unwrap()
        .no_transaction
    );
    // A directive-looking text inside a string is not a directive.
    let s = check_contents(
        "f",
        "INSERT INTO t VALUES ('-- migrate:nope');",
        Direction::Up,
    )
    .unwrap();
    assert!(!s.no_transaction);

    for empty in [
        "",
        "   \n\t",
        "-- only a comment\n",
        "/* block */ -- and line",
        ";\n;",
        "\u{feff}",
    ] {
        let err = check_contents("009_empty.sql", empty, Direction::Up).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("009_empty.sql: the file has no SQL statement"),
            "{err}"
        );
    }
    assert!(check_contents("f.down.sql", "-- nothing to undo\n", Direction::Down).is_ok());
    let err = check_contents(
        "f.sql",
        "-- x\n-- migrate:no-transactoin\nVACUUM;",
        Direction::Up,
    )
    .unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.to_string()
            .contains("unknown directive `-- migrate:no-transactoin`"),
        "{err}"
    );
    let err = check_contents(
        "f.sql",
        "CREATE TABLE a(x);\n-- migrate:no-transaction\n",
        Direction::Up,
    )
    .unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.to_string().contains("move it to the top"), "{err}");
}

#[test]
fn trivia_and_keywords() {
    let sql = "  -- c\n/* b */ ;\n begin /* x */ transaction; rollback to sp;";
    let start = skip_trivia(sql, 0);
    assert_eq!(&sql[start..start + 5], "begin");
    assert_eq!(line_of(sql, start), 3);
    let words: Vec<&str> = keywords(sql, 0).take(2).collect();
    assert_eq!(words, ["begin", "transaction"]);
    let rb = sql.find("rollback").unwrap();
    let words: Vec<&str> = keywords(sql, rb).collect();
    assert_eq!(words, ["rollback", "to", "sp"]);
    assert_eq!(skip_trivia("/* unterminated", 0), 15);
}

#[test]
fn pragma_assignments_are_recognized() {
    for (sql, name) in [
        ("PRAGMA journal_mode = OFF;", Some("journal_mode")),
        ("pragma Journal_Mode=memory", Some("Journal_Mode")),
        (
            "  -- c\nPRAGMA main.journal_mode = off;",
            Some("journal_mode"),
        ),
        (
            "PRAGMA \"main\" . \"journal_mode\" /* x */ = wal;",
            Some("journal_mode"),
        ),
        ("PRAGMA [journal_mode]('delete');", Some("journal_mode")),
        ("PRAGMA user_version = 3;", Some("user_version")),
        ("PRAGMA table_info(t);", Some("table_info")),
        // Reads, and other statements.
        ("PRAGMA journal_mode;", None),
        ("PRAGMA journal_mode;\n= 1", None),
        ("PRAGMA main.journal_mode", None),
        ("SELECT 'PRAGMA journal_mode = OFF';", None),
        ("PRAGMAX journal_mode = OFF;", None),
        ("PRAGMA", None),
        ("PRAGMA \"unterminated", None),
        ("", None),
    ] {
        assert_eq!(pragma_assignment(sql, 0), name, "{sql:?}");
    }
}

#[test]
fn load_dir_orders_by_number_not_text() {
    let dir = dir_with(&[
        ("1_a.sql", "CREATE TABLE a(x);"),
        ("2_b.sql", "CREATE TABLE b(x);"),
        ("10_j.sql", "CREATE TABLE j(x);"),
        ("3.sql", "CREATE TABLE c(x);"),
        ("4_d.sql", "SELECT 1;"),
        ("5_e.sql", "SELECT 1;"),
        ("6_f.sql", "SELECT 1;"),
        ("7_g.sql", "SELECT 1;"),
        ("8_h.sql", "SELECT 1;"),
        ("9_i.sql", "SELECT 1;"),
        ("9_i.down.sql", "SELECT 2;"),
        ("README.md", "not a migration"),
        (".hidden.sql", "garbage"),
    ]);
    fs::create_dir(dir.path().join("11_subdir.sql")).unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    let versions: Vec<u32> = loaded.iter().map(|m| m.version).collect();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    assert_eq!(loaded[9].name, "j");
    assert_eq!(loaded[2].name, "");
    assert_eq!(loaded[8].down.as_ref().unwrap().file_name, "9_i.down.sql");
    assert_eq!(loaded[8].up.contents.checksum, checksum("SELECT 1;"));
}

#[test]
fn set_rules_name_the_files() {
    let p = problems(&[
        ("001_a.sql", "SELECT 1;"),
        ("001_b.sql", "SELECT 1;"),
        ("002_c.sql", "SELECT 1;"),
    ]);
    assert_eq!(p, ["001_a.sql, 001_b.sql: 2 files have version 1; versions must be unique: give all but one the next free versions"]);

    let p = problems(&[("001_a.sql", "SELECT 1;"), ("004_d.sql", "SELECT 1;")]);
    assert_eq!(p, ["004_d.sql: versions 2 to 3 are missing between 001_a.sql and 004_d.sql; versions must be contiguous: restore the missing file if it was ever applied to a database (an applied migration must stay), otherwise renumber the files after it"]);

    let p = problems(&[("002_b.sql", "SELECT 1;")]);
    assert_eq!(p, ["002_b.sql: version 1 is missing before 002_b.sql; versions start at 1 and must be contiguous: restore the missing file if it was ever applied to a database (an applied migration must stay), otherwise renumber the files"]);

    // Two down files for one version: renumbering one would not help.
    let p = problems(&[
        ("001_a.sql", "SELECT 1;"),
        ("001_a.down.sql", "SELECT 1;"),
        ("001_b.down.sql", "SELECT 1;"),
    ]);
    assert_eq!(p[0], "001_a.down.sql, 001_b.down.sql: 2 down files have version 1; a version has at most one down file, named as its up file with `.down.sql`: delete or merge the others");

    let p = problems(&[("001_a.sql", "SELECT 1;"), ("002_b.down.sql", "SELECT 1;")]);
    assert_eq!(p, ["002_b.down.sql: a down file without an up file for version 2; add the up file or delete this one"]);

    let p = problems(&[("001_a.sql", "SELECT 1;"), ("001_b.down.sql", "SELECT 1;")]);
    assert_eq!(p, ["001_b.down.sql: the down file's name does not match its up file 001_a.sql; rename one of them"]);

    // Several problems are all reported, in file order.
    let p = problems(&[
        ("001_a.sql", "-- nothing"),
        ("002_b.sql", "SELECT 1;"),
        ("x_c.sql", "SELECT 1;"),
    ]);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("001_a.sql: the file has no SQL statement"));
    assert!(p[1].starts_with("x_c.sql: the name does not start with a version"));
}

#[test]
fn bad_directories_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = load_dir(&missing).unwrap_err();
    assert!(err[0]
        .to_string()
        .ends_with("the migrations directory does not exist; create it, or fix the path"));
    let file = dir.path().join("file.sql");
    fs::write(&file, "SELECT 1;").unwrap();
    assert!(load_dir(&file).unwrap_err()[0]
        .message
        .starts_with("this is a file, not a directory"));

    let bad = tempfile::tempdir().unwrap();
    fs::write(bad.path().join("001_a.sql"), b"SELECT 1;\n-- caf\xe9\n").unwrap();
    let err = load_dir(bad.path()).unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "001_a.sql:2: the file is not valid UTF-8 (byte 16); save it as UTF-8"
    );

    assert!(load_dir(tempfile::tempdir().unwrap().path())
        .unwrap()
        .is_empty());
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;")]);
    let fifo = dir.path().join("002_pipe.sql");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let err = load_dir(dir.path()).unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "002_pipe.sql: not a regular file (a pipe, socket or device); replace it with a file"
    );
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir_with(&[("001_a.sql", "SELECT 1;")]);
    let path = dir.path().join("001_a.sql");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_ok() {
        // Running as root: permissions do not stop reads; nothing to test.
        return;
    }
    let err = load_dir(dir.path()).unwrap_err();
    assert!(
        err[0]
            .to_string()
            .starts_with("001_a.sql: cannot read the file"),
        "{}",
        err[0]
    );
}

proptest! {
    #[test]
    fn parse_file_name_never_panics(s in "\\PC*") {
        let _ = parse_file_name(&s);
    }

    #[test]
    fn lexer_never_panics(s in "(PRAGMA|pragma|[ .=(\"'`\\[\\]]|--|/\\*|\\*/|\n|;|\\PC){0,24}") {
        for from in 0..=s.len() {
            if s.is_char_boundary(from) {
                let _ = pragma_assignment(&s, from);
                let _ = skip_trivia(&s, from);
                let _ = keywords(&s, from).count();
            }
        }
    }

    #[test]
    fn file_name_round_trip(version in 1..=MAX_VERSION, zeros in 0usize..4, name in "[A-Za-z0-9_-]{1,20}", down: bool) {
        let file = format!("{}{version}_{name}{}.sql", "0".repeat(zeros), if down { ".down" } else { "" });
        let parsed = parse_file_name(&file).unwrap().unwrap();
        prop_assert_eq!(parsed.version, version);
        prop_assert_eq!(parsed.name, name.as_str());
        prop_assert_eq!(parsed.direction, if down { Direction::Down } else { Direction::Up });
    }

    #[test]
    fn check_contents_never_panics(s in "\\PC*") {
        let _ = check_contents("f.sql", &s, Direction::Up);
        let _ = keywords(&s, 0).take(3).count();
    }

    #[test]
    fn check_contents_never_panics_on_sql_like_text(
        s in proptest::collection::vec(prop_oneof![
            Just("--"), Just("/*"), Just("*/"), Just("'"), Just("\""), Just("`"), Just("["), Just("]"),
            Just("\n"), Just("\r\n"), Just(";"), Just(" "), Just("migrate:"), Just("no-transaction"),
            Just("SELECT 1"), Just("é"), Just("\u{feff}"),
        ], 0..30)
    ) {
        let text: String = s.concat();
        let _ = check_contents("f.sql", &text, Direction::Up);
    }

    #[test]
    fn checksum_is_newline_style_blind(lines in proptest::collection::vec("[^\r\n\u{feff}]*", 0..8)) {
        let lf = lines.join("\n");
        let crlf = lines.join("\r\n");
        prop_assert_eq!(checksum(&lf), checksum(&crlf));
        prop_assert_eq!(checksum(&lf), checksum(&format!("\u{feff}{crlf}")));
    }

    #[test]
    fn load_dir_never_panics_on_random_directories(
        files in proptest::collection::vec(("[0-9a-z_.-]{0,12}", proptest::collection::vec(any::<u8>(), 0..40)), 0..8)
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in &files {
            if name.is_empty() || name == "." || name == ".." { continue; }
            let _ = fs::write(dir.path().join(name), bytes);
        }
        match load_dir(dir.path()) {
            Ok(list) => {
                for (i, m) in list.iter().enumerate() {
                    prop_assert_eq!(m.version as usize, i + 1);
                }
            }
            Err(problems) => prop_assert!(!problems.is_empty()),
        }
    }
}

mod lock_file {
    use super::*;

    const A: &str = "CREATE TABLE a(x);";
    const B: &str = "CREATE TABLE b(x);";

    fn locked_dir() -> tempfile::TempDir {
        let dir = dir_with(&[("001_a.sql", A), ("002_b.sql", B)]);
        let loaded = load_dir(dir.path()).unwrap();
        let (text, added) = LockFile::appended(None, &LockFile::default(), &loaded);
        assert_eq!(added, [1, 2]);
        fs::write(dir.path().join(LOCK_FILE_NAME), text).unwrap();
        dir
    }

    #[test]
    fn format_is_one_line_per_version() {
        let dir = locked_dir();
        let text = fs::read_to_string(dir.path().join(LOCK_FILE_NAME)).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                format!("1 001_a.sql {}", hex(&checksum(A))),
                format!("2 002_b.sql {}", hex(&checksum(B)))
            ]
        );
        assert_eq!(load_dir(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn new_migrations_beyond_the_lock_are_fine_and_appended_without_touching_lines() {
        let dir = locked_dir();
        let lock_path = dir.path().join(LOCK_FILE_NAME);
        let before = fs::read(&lock_path).unwrap();
        fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c(x);").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        let (lock, text) = LockFile::read(dir.path()).unwrap().unwrap();
        let (new_text, added) = LockFile::appended(Some(&text), &lock, &loaded);
        assert_eq!(added, [3]);
        assert!(
            new_text.as_bytes().starts_with(&before),
            "existing lines are kept byte for byte"
        );
        assert!(new_text.ends_with(&format!(
            "3 003_c.sql {}\n",
            hex(&checksum("CREATE TABLE c(x);"))
        )));
    }

    #[test]
    fn edited_removed_and_renamed_locked_files_are_errors() {
        let dir = locked_dir();
        fs::write(dir.path().join("002_b.sql"), "CREATE TABLE b(x, y);").unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert_eq!(err.len(), 1);
        let msg = err[0].to_string();
        assert!(
            msg.starts_with("002_b.sql: version 2 was edited after it was released"),
            "{msg}"
        );
        assert!(
            msg.contains(&hex(&checksum(B)))
                && msg.contains(&hex(&checksum("CREATE TABLE b(x, y);"))),
            "{msg}"
        );
        assert!(
            msg.contains("revert the edit and put the change in a new migration"),
            "{msg}"
        );
        // Windows line endings and a BOM are not an edit.
        fs::write(
            dir.path().join("002_b.sql"),
            format!("\u{feff}{B}\r\n").replace("\r\n", ""),
        )
        .unwrap();
        assert!(load_dir(dir.path()).is_ok());
        fs::write(dir.path().join("002_b.sql"), "\u{feff}CREATE TABLE b(x);").unwrap();
        assert!(load_dir(dir.path()).is_ok());

        fs::rename(dir.path().join("002_b.sql"), dir.path().join("002_bee.sql")).unwrap();
        let msg = load_dir(dir.path()).unwrap_err()[0].to_string();
        assert!(
            msg.contains(
                "locked in migrate.lock (line 5) as 002_b.sql, but the file is now 002_bee.sql"
            ),
            "{msg}"
        );

        fs::remove_file(dir.path().join("002_bee.sql")).unwrap();
        let msg = load_dir(dir.path()).unwrap_err()[0].to_string();
        assert!(
            msg.starts_with(
                "002_b.sql: version 2 is locked in migrate.lock (line 5) but its file is gone"
            ),
            "{msg}"
        );
    }

    #[test]
    fn malformed_lock_files_name_the_line() {
        let ok = format!("1 001_a.sql {}\n", hex(&checksum(A)));
        for (text, line, says) in [
            (
                format!("# c\n{ok}2 002_b.sql\n"),
                3,
                "expected `<version> <file name> <sha256>`",
            ),
            (
                format!("{ok}\n2 002_b.sql abc\n"),
                3,
                "is not a SHA-256 checksum",
            ),
            (
                format!("x 001_a.sql {}\n", hex(&checksum(A))),
                1,
                "is not a version",
            ),
            (
                format!("{ok}{ok}"),
                2,
                "version 1 where version 2 was expected",
            ),
            (
                format!("2 002_b.sql {}\n", hex(&checksum(B))),
                1,
                "version 2 where version 1 was expected",
            ),
        ] {
            let err = LockFile::parse(&text).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}");
            assert!(
                err.to_string()
                    .starts_with(&format!("migrate.lock:{line}: ")),
                "{err}"
            );
            assert!(err.message.contains(says), "{err}");
        }
        let dir = dir_with(&[("001_a.sql", A), (LOCK_FILE_NAME, "garbage\n")]);
        assert_eq!(load_dir(dir.path()).unwrap_err()[0].line, Some(1));
    }

    #[test]
    fn relock_rewrites_only_the_named_line() {
        let dir = locked_dir();
        fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a(x, y);").unwrap();
        let loaded = load_dir_unlocked(dir.path()).unwrap();
        let (lock, text) = LockFile::read(dir.path()).unwrap().unwrap();
        let new_text = LockFile::relocked(&text, &lock, &loaded, 1).unwrap();
        let old_lines: Vec<&str> = text.lines().collect();
        let new_lines: Vec<&str> = new_text.lines().collect();
        assert_eq!(old_lines.len(), new_lines.len());
        for (i, (o, n)) in old_lines.iter().zip(&new_lines).enumerate() {
            if i + 1 == lock.entries[0].line {
                assert_eq!(
                    *n,
                    format!("1 001_a.sql {}", hex(&checksum("CREATE TABLE a(x, y);")))
                );
            } else {
                assert_eq!(o, n);
            }
        }
        assert!(LockFile::relocked(&text, &lock, &loaded, 3).is_none());
    }
}
