//! End-to-end tests of `migrate-core` through its public API: the migrate
//! algorithm (DESIGN section 5), verification (section 6), errors (section 7)
//! and every builder option.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use migrate_core::{
    AutoVacuum, Error, IntegrityCheck, IntegrityOutcome, JournalMode, Migrations, Outcome,
};
use migrate_tests::{integrity, migrations_dir, schema_dump, snapshot};
use rusqlite::{Connection, OpenFlags};

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);";
const POSTS: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, body TEXT);";

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = migrations_dir(files);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn history(conn: &Connection) -> Vec<(u32, String, String)> {
    let mut stmt = conn
        .prepare("SELECT version, name, state FROM _migrate_history ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn applies_in_order_records_history_and_reports() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003.sql",
            "INSERT INTO users (email) VALUES ('a@example.com');",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.from_version(), 0);
    assert_eq!(report.version(), 3);
    let applied: Vec<u32> = report.applied().iter().map(|a| a.version()).collect();
    assert_eq!(applied, [1, 2, 3]);
    assert_eq!(
        report.integrity(),
        IntegrityOutcome::Ok(IntegrityCheck::Full)
    );
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("applied 1  users "), "{text}");
    assert!(lines[0].ends_with(" ms"), "{text}");
    assert!(lines[2].starts_with("applied 3  003.sql"), "{text}");
    assert_eq!(lines[3], "now at version 3 (was 0), integrity ok");

    assert_eq!(user_version(&conn), 3);
    assert_eq!(
        history(&conn),
        [
            (1, "users".into(), "applied".into()),
            (2, "posts".into(), "applied".into()),
            (3, "".into(), "applied".into())
        ]
    );
    let (checksum, applied_at): (String, String) = conn
        .query_row(
            "SELECT checksum, applied_at FROM _migrate_history WHERE version = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(checksum, m.get(1).unwrap().checksum().to_string());
    assert_eq!(checksum.len(), 64);
    // UTC, ISO 8601 with milliseconds, as SQLite's date functions read it,
    // and now (within a minute, by SQLite's clock).
    assert_eq!(
        applied_at.len(),
        "2026-01-31T12:00:00.000Z".len(),
        "{applied_at}"
    );
    let age_seconds: f64 = conn
        .query_row(
            "SELECT (julianday('now') - julianday(?1)) * 86400.0",
            [&applied_at],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        applied_at.ends_with('Z') && (0.0..60.0).contains(&age_seconds),
        "{applied_at} is {age_seconds} s old"
    );

    // Second run: nothing to do.
    let again = m.migrate(&mut conn).unwrap();
    assert!(again.applied().is_empty());
    assert_eq!(again.integrity(), IntegrityOutcome::NotRun);
    assert_eq!(
        again.to_string(),
        "nothing to apply: the database is at version 3"
    );
    assert_eq!(count(&conn, "users"), 1);
}

#[test]
fn corpus_sets_produce_their_expected_schema() {
    for set in migrate_tests::corpus_sets() {
        let name = set.file_name().unwrap().to_string_lossy().into_owned();
        let m =
            Migrations::from_dir(set.join("numbered")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut conn = Connection::open(file.path()).unwrap();
        let report = m
            .migrate(&mut conn)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.applied().len(), m.len(), "{name}");
        let expected = std::fs::read_to_string(set.join("expected_schema.sql")).unwrap();
        let actual = schema_dump(&conn);
        if actual != expected {
            for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
                if a != e {
                    panic!(
                        "{name}: schema differs at line {}:\n  got      {a}\n  expected {e}",
                        i + 1
                    );
                }
            }
            panic!(
                "{name}: schema differs in length: {} vs {} lines",
                actual.lines().count(),
                expected.lines().count()
            );
        }
        drop(conn);
        // A fresh connection (a new process, in effect) finds nothing to do.
        let mut conn = Connection::open(file.path()).unwrap();
        let again = m.migrate(&mut conn).unwrap();
        assert!(again.applied().is_empty(), "{name}");
        assert_eq!(again.version() as usize, m.len(), "{name}");
        assert_eq!(integrity(&conn), "ok", "{name}");
    }
}

#[test]
fn corpus_sets_also_apply_in_one_transaction() {
    for set in migrate_tests::corpus_sets() {
        let name = set.file_name().unwrap().to_string_lossy().into_owned();
        let m = Migrations::from_dir(set.join("numbered")).unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        m.migrator()
            .single_transaction(true)
            .migrate(&mut conn)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = std::fs::read_to_string(set.join("expected_schema.sql")).unwrap();
        assert!(
            schema_dump(&conn) == expected,
            "{name}: schema differs in single-transaction mode"
        );
    }
}

#[test]
fn failing_migration_is_rolled_back_completely_and_names_file_and_line() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        (
            "002_bad.sql",
            "-- adds posts, then fails\nCREATE TABLE posts (id INTEGER PRIMARY KEY);\nINSERT INTO users (email) VALUES ('x@example.com');\n\n  INSERT INTO nowhere\n    VALUES (1);\n",
        ),
    ]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    conn.execute("INSERT INTO users (email) VALUES ('kept@example.com')", [])
        .unwrap();
    let before = snapshot(&conn);

    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version,
            file,
            line,
            statement,
            message,
            outcome,
            ..
        } => {
            assert_eq!((*version, file.as_str(), *line), (2, "002_bad.sql", 5));
            assert_eq!(statement, "INSERT INTO nowhere");
            assert_eq!(message, "no such table: nowhere");
            assert_eq!(*outcome, Outcome::RolledBack);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "migration 2 failed at 002_bad.sql:5 (statement `INSERT INTO nowhere`): no such table: nowhere; \
         the migration was rolled back and the database is as before it (the migrations applied \
         before it, by this run or earlier, stay applied: `status` lists them)"
    );
    assert_eq!(snapshot(&conn), before);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    let conn = Connection::open(file.path()).unwrap();
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn statements_are_split_by_sqlite_not_by_semicolons() {
    // A trigger body with inner semicolons and BEGIN, strings with `;` and
    // `--`, a last statement without `;`, comments between statements.
    let sql = "CREATE TABLE t (x TEXT);\n\
               CREATE TABLE log (msg TEXT);\n\
               /* a block; comment */\n\
               CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n\
                 INSERT INTO log VALUES ('inserted; -- not a comment');\n\
                 INSERT INTO log VALUES (new.x);\n\
               END;\n\
               INSERT INTO t VALUES ('a;b') ;;\n\
               -- trailing comment\n\
               INSERT INTO t VALUES ('c')";
    let (_d, m) = load(&[
        ("001_t.sql", sql),
        ("002_fail.sql", "SELECT 1;\nSELECT 2;\nCREATE TABLE t (x);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    assert_eq!(count(&conn, "t"), 2);
    assert_eq!(count(&conn, "log"), 4);
    match m.migrate(&mut conn).unwrap_err() {
        Error::Migration { line, message, .. } => {
            assert_eq!(line, 3);
            assert_eq!(message, "table t already exists");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_syntax_error_names_its_line() {
    let (_d, m) = load(&[(
        "001_t.sql",
        "CREATE TABLE a (x);\n\nCREATE TABEL b (y);\nCREATE TABLE c (z);",
    )]);
    let mut conn = Connection::open_in_memory().unwrap();
    match m.migrate(&mut conn).unwrap_err() {
        Error::Migration {
            line,
            statement,
            message,
            ..
        } => {
            assert_eq!(line, 3);
            assert_eq!(statement, "CREATE TABEL b (y);");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(user_version(&conn), 0);
    assert_eq!(schema_dump(&conn), "");
}

#[test]
fn an_error_inside_a_long_statement_names_the_line_sqlite_stopped_at() {
    // (file text, the line SQLite points at, the line the statement starts)
    let cases = [
        // A missing comma: SQLite stops at the next column's name.
        (
            "CREATE TABLE a (x);\n\nCREATE TABLE post_tags (\n    post_id INTEGER NOT NULL,\n    \
             tag_id INTEGER NOT NULL\n    note TEXT,\n    PRIMARY KEY (post_id, tag_id)\n);\n",
            6,
            3,
        ),
        // An unknown column in a multi-line SELECT.
        (
            "CREATE TABLE a (x);\nINSERT INTO a (x)\nSELECT x\nFROM a\nWHERE nope > 1;\n",
            5,
            2,
        ),
        // An unknown column, after a comment with a semicolon in it.
        (
            "CREATE TABLE a (x);\n-- note; here\nCREATE INDEX a_y ON a (\n  y\n);\n",
            4,
            3,
        ),
    ];
    for (sql, line, statement_line) in cases {
        let (_d, m) = load(&[("001_t.sql", sql)]);
        let mut conn = Connection::open_in_memory().unwrap();
        let err = m.migrate(&mut conn).unwrap_err();
        match &err {
            Error::Migration {
                line: l,
                statement_line: s,
                ..
            } => assert_eq!((*l, *s), (line, statement_line), "{sql:?}: {err}"),
            other => panic!("{sql:?}: unexpected {other:?}"),
        }
        let text = err.to_string();
        let at =
            format!("failed at 001_t.sql:{line} (in the statement from line {statement_line}: `");
        assert!(text.contains(&at), "{text}");
        assert_eq!(schema_dump(&conn), "", "{sql:?}");
        assert_eq!(user_version(&conn), 0);
    }
}

#[test]
fn transaction_control_in_a_migration_is_refused_before_it_runs() {
    for (file, sql, line) in [
        ("001_commit.sql", "CREATE TABLE a (x);\nCOMMIT;\nCREATE TABLE b (x);", 2),
        ("001_begin.sql", "BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;", 1),
        ("001_end.sql", "CREATE TABLE a (x);\n  end transaction;", 2),
        ("001_rollback.sql", "CREATE TABLE a (x);\nROLLBACK;", 2),
        ("001_drizzle.sql", "COMMIT TRANSACTION;\nPRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE a (x);", 1),
    ] {
        let (_d, m) = load(&[(file, sql)]);
        let mut conn = Connection::open_in_memory().unwrap();
        let err = m.migrate(&mut conn).unwrap_err();
        match &err {
            Error::Migration { line: l, file: f, .. } => assert_eq!((f.as_str(), *l), (file, line)),
            other => panic!("{file}: unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("would end or nest the framework's transaction"), "{text}");
        assert!(text.contains("-- migrate:no-transaction"), "{text}");
        assert_eq!(schema_dump(&conn), "", "{file}");
        assert_eq!(user_version(&conn), 0);
    }
    // Savepoints of the file's own are fine.
    let (_d, m) = load(&[(
        "001_sp.sql",
        "CREATE TABLE a (x);\nSAVEPOINT s;\nINSERT INTO a VALUES (1);\nROLLBACK TO s;\nROLLBACK TRANSACTION TO SAVEPOINT s;\nRELEASE s;\nINSERT INTO a VALUES (2);",
    )]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    assert_eq!(count(&conn, "a"), 1);
}

#[test]
fn no_transaction_directive_runs_vacuum_and_marks_the_history() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_vacuum.sql", "-- migrate:no-transaction\nVACUUM;\n"),
        ("003_posts.sql", POSTS),
    ]);
    assert!(m.get(2).unwrap().no_transaction());
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.applied().len(), 3);
    assert_eq!(user_version(&conn), 3);
    assert_eq!(history(&conn)[1], (2, "vacuum".into(), "applied".into()));

    // The first migration of a new database may be one too: the history
    // table is created with its "started" mark. In single-transaction mode
    // it is refused before anything is written.
    for single in [false, true] {
        let (_d, m) = load(&[
            (
                "001_wal.sql",
                "-- migrate:no-transaction\nPRAGMA journal_mode = WAL;\n",
            ),
            ("002_users.sql", USERS),
        ]);
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut conn = Connection::open(file.path()).unwrap();
        let err = m.migrator().single_transaction(single).migrate(&mut conn);
        if single {
            // Refused before anything is written.
            assert!(matches!(err, Err(Error::Target { .. })), "{err:?}");
            assert_eq!(count(&conn, "sqlite_master"), 0);
            continue;
        }
        err.unwrap();
        assert_eq!(user_version(&conn), 2);
        assert_eq!(history(&conn)[0], (1, "wal".into(), "applied".into()));
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        m.verify(&conn).unwrap();
    }

    // Without the directive, VACUUM fails with advice, and nothing stays.
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_vacuum.sql", "VACUUM;")]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot VACUUM from within a transaction"),
        "{text}"
    );
    assert!(
        text.contains("start with the line `-- migrate:no-transaction`")
            || text.contains("starts with the line `-- migrate:no-transaction`"),
        "{text}"
    );
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn no_transaction_failure_at_first_statement_leaves_nothing() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nINSERT INTO nowhere VALUES (1);\nVACUUM;",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    match m.migrate(&mut conn).unwrap_err() {
        Error::Migration { outcome, line, .. } => {
            assert_eq!((outcome, line), (Outcome::NothingApplied, 2))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn no_transaction_failure_later_is_reported_incomplete_next_time() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nCREATE TABLE half (x);\nINSERT INTO nowhere VALUES (1);",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration { outcome, line, .. } => {
            assert_eq!((*outcome, *line), (Outcome::PartlyApplied, 3))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("marked incomplete"), "{err}");
    assert_eq!(history(&conn)[1], (2, "nt".into(), "started".into()));
    assert_eq!(user_version(&conn), 1);
    let before = snapshot(&conn);
    for _ in 0..2 {
        // (It waits up to the lock timeout for another instance to finish.)
        let err = m
            .migrator()
            .lock_timeout(Duration::from_millis(20))
            .migrate(&mut conn)
            .unwrap_err();
        match &err {
            Error::Incomplete { version, file } => {
                assert_eq!((*version, file.as_str()), (2, "002_nt.sql"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("DELETE FROM main._migrate_history WHERE version = 2;"),
            "{err}"
        );
        assert_eq!(snapshot(&conn), before);
    }
    assert!(matches!(
        m.verify(&conn),
        Err(Error::Incomplete { version: 2, .. })
    ));
}

#[test]
fn drift_is_refused_and_touches_nothing() {
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    let (_d2, edited) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);",
        ),
        ("002_posts.sql", POSTS),
    ]);
    let err = edited.migrate(&mut conn).unwrap_err();
    let recorded = m.get(1).unwrap().checksum().to_string();
    let current = edited.get(1).unwrap().checksum().to_string();
    match &err {
        Error::Drift {
            version,
            file,
            recorded: r,
            current: c,
        } => {
            assert_eq!((*version, file.as_str()), (1, "001_users.sql"));
            assert_eq!(
                (r.as_str(), c.to_string()),
                (recorded.as_str(), current.clone())
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "migration 1 (001_users.sql) was edited after it was applied: the database recorded checksum \
             {recorded}, the file now has {current}; revert the edit and put the change in a new migration"
        )
    );
    assert_eq!(snapshot(&conn), before);
    assert!(matches!(
        edited.verify(&conn),
        Err(Error::Drift { version: 1, .. })
    ));
}

#[test]
fn crlf_and_bom_checkouts_are_not_drift() {
    let (_d, m) = load(&[(
        "001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\nCREATE INDEX i ON users(id);\n",
    )]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    let (_d2, windows) = load(&[(
        "001_users.sql",
        "\u{feff}CREATE TABLE users (id INTEGER PRIMARY KEY);\r\nCREATE INDEX i ON users(id);\r\n",
    )]);
    windows.verify(&conn).unwrap();
    assert!(windows.migrate(&mut conn).unwrap().applied().is_empty());
}

#[test]
fn a_database_newer_than_the_program_is_refused() {
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    let before = snapshot(&conn);
    let (_d2, old) = load(&[("001_users.sql", USERS)]);
    let err = old.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownVersion {
                database: 2,
                latest: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "the database is at version 2, but the newest migration this program knows is 1: \
         version 2 (named \"posts\" in the database's history) is not among this program's \
         migrations; if its file was deleted or renamed, restore it"
        ),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);

    // Also without a history table (user_version only).
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA user_version = 5").unwrap();
    assert!(matches!(
        old.migrate(&mut conn),
        Err(Error::UnknownVersion {
            database: 5,
            latest: 1,
            name: None
        })
    ));
    assert_eq!(user_version(&conn), 5);
}

#[test]
fn inconsistent_history_is_refused() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003.sql", "SELECT 1;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 2).unwrap();

    conn.execute("DELETE FROM _migrate_history WHERE version = 1", [])
        .unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(matches!(err, Error::Inconsistent { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the history has no row for version 1 (001_users.sql)"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);

    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("PRAGMA user_version is 1 but the history's newest applied version is 2"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
    assert!(matches!(m.verify(&conn), Err(Error::Inconsistent { .. })));
}

/// A database made before migrations were used (tables, no history,
/// `user_version` 0): migration 1 fails on what already exists, and the
/// error says how to adopt it; following that advice works.
#[test]
fn an_existing_schema_without_history_is_pointed_to_adoption() {
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(USERS).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration { version, hint, .. } => {
            assert_eq!((*version, *hint), (1, migrate_core::Hint::ExistingSchema))
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("table users already exists (the database already has tables but no migration history: if its schema is what migrations 1 to N create, set `PRAGMA user_version = N`"),
        "{text}"
    );
    assert_eq!(snapshot(&conn), before);
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.applied().len(), 1);
    assert_eq!(report.version(), 2);

    // The same failure on a database the migrations made is not about
    // adoption.
    let (_d, twice) = load(&[("001_users.sql", USERS), ("002_again.sql", USERS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    match twice.migrate(&mut conn).unwrap_err() {
        Error::Migration {
            version: 2, hint, ..
        } => assert_eq!(hint, migrate_core::Hint::None),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn user_version_only_databases_are_adopted() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_idx.sql", "CREATE INDEX posts_user ON posts(user_id);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    // Made by a user_version-only scheme: the first two migrations, by hand.
    conn.execute_batch(&format!("{USERS}{POSTS}PRAGMA user_version = 2;"))
        .unwrap();
    conn.execute("INSERT INTO users (email) VALUES ('a@example.com')", [])
        .unwrap();
    m.verify(&conn).unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.adopted(), Some(2));
    assert_eq!(report.applied().len(), 1);
    assert!(report
        .to_string()
        .starts_with("adopted the existing database at version 2\n"));
    let h = history(&conn);
    assert_eq!(h.len(), 3);
    let recorded: String = conn
        .query_row(
            "SELECT checksum FROM _migrate_history WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, m.get(2).unwrap().checksum().to_string());
    assert_eq!(count(&conn, "users"), 1);

    // Adopting an up-to-date database applies nothing but records it.
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "{USERS}{POSTS}CREATE INDEX posts_user ON posts(user_id); PRAGMA user_version = 3;"
    ))
    .unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!((report.adopted(), report.applied().len()), (Some(3), 0));
    assert_eq!(history(&conn).len(), 3);
}

#[test]
fn foreign_key_violation_is_rolled_back() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_orphan.sql",
            "INSERT INTO posts (user_id, body) VALUES (42, 'orphan');",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::ForeignKeyViolation {
            version,
            file,
            violations,
            outcome,
        } => {
            assert_eq!((*version, file.as_str()), (3, "003_orphan.sql"));
            assert_eq!(violations, &["posts row 1 has no parent in users"]);
            assert_eq!(*outcome, migrate_core::Outcome::RolledBack);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("the migration was rolled back and the database is as before it"),
        "{text}"
    );
    assert!(
        text.contains("fix the migration so that every row"),
        "{text}"
    );
    assert_eq!(snapshot(&conn), before);
    let fk: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(fk, "foreign_keys must be restored after an error");
}

#[test]
fn parent_table_rebuild_keeps_every_cascading_child_row() {
    let rebuild = "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '');\n\
                   INSERT INTO users_new (id, email) SELECT id, email FROM users;\n\
                   DROP TABLE users;\n\
                   ALTER TABLE users_new RENAME TO users;";
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_rebuild.sql", rebuild),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    for i in 0..50 {
        conn.execute(
            "INSERT INTO users (id, email) VALUES (?1, ?2)",
            rusqlite::params![i, format!("u{i}@example.com")],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO posts (user_id, body) VALUES (?1, 'hello')",
            [i],
        )
        .unwrap();
    }
    m.migrate(&mut conn).unwrap();
    assert_eq!(count(&conn, "posts"), 50, "the rebuild must not cascade");
    assert_eq!(count(&conn, "users"), 50);
    let fk: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(fk, "foreign_keys restored");
    // And the cascade still works afterwards.
    conn.execute("DELETE FROM users WHERE id = 0", []).unwrap();
    assert_eq!(count(&conn, "posts"), 49);
}

#[test]
fn migrate_refuses_a_connection_inside_a_transaction() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(matches!(err, Error::InTransaction));
    assert!(err.to_string().contains("commit or roll back first"));
    assert!(
        !conn.is_autocommit(),
        "the caller's transaction is left alone"
    );
}

#[test]
fn migrate_to_goes_up_step_by_step_and_refuses_down() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003.sql", "SELECT 1;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    assert_eq!(m.migrate_to(&mut conn, 1).unwrap().version(), 1);
    assert_eq!(m.migrate_to(&mut conn, 1).unwrap().applied().len(), 0);
    assert_eq!(m.migrate_to(&mut conn, 2).unwrap().version(), 2);
    let before = snapshot(&conn);
    let err = m.migrate_to(&mut conn, 1).unwrap_err();
    assert!(matches!(err, Error::Target { target: 1, .. }));
    // Without a down file for version 2, going down is refused untouched.
    assert!(
        err.to_string()
            .contains("version 2 has no down file: add 002_posts.down.sql"),
        "{err}"
    );
    let err = m.migrate_to(&mut conn, 4).unwrap_err();
    assert!(
        err.to_string()
            .contains("the newest migration is version 3"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
    assert_eq!(m.migrate(&mut conn).unwrap().version(), 3);
}

#[test]
fn single_transaction_is_all_or_nothing() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_bad.sql", "INSERT INTO nowhere VALUES (1);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = m
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(matches!(err, Error::Migration { version: 3, .. }));
    assert!(
        err.to_string()
            .contains("every migration of this run was rolled back"),
        "{err}"
    );
    assert_eq!(schema_dump(&conn), "");
    assert_eq!(user_version(&conn), 0);

    let (_d, good) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let report = good
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(report.applied().len(), 2);
    assert_eq!(history(&conn).len(), 2);

    // A pending no-transaction migration cannot be part of one transaction.
    let (_d, nt) = load(&[
        ("001_users.sql", USERS),
        ("002_vacuum.sql", "-- migrate:no-transaction\nVACUUM;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = nt
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("migration 2 (002_vacuum.sql) runs outside a transaction"),
        "{err}"
    );
    assert_eq!(user_version(&conn), 0);
}

#[test]
fn integrity_check_levels() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    for (level, outcome, text) in [
        (
            IntegrityCheck::Full,
            IntegrityOutcome::Ok(IntegrityCheck::Full),
            "integrity ok",
        ),
        (
            IntegrityCheck::Quick,
            IntegrityOutcome::Ok(IntegrityCheck::Quick),
            "quick check ok",
        ),
        (
            IntegrityCheck::Off,
            IntegrityOutcome::Skipped,
            "integrity check off",
        ),
    ] {
        let mut conn = Connection::open_in_memory().unwrap();
        let report = m
            .migrator()
            .integrity_check(level)
            .migrate(&mut conn)
            .unwrap();
        assert_eq!(report.integrity(), outcome);
        assert!(report.to_string().ends_with(text), "{report}");
    }
}

/// A migration that declares `<table>.x` NOT NULL behind SQLite's back
/// (with writable_schema) while a row holds a NULL: only an integrity check
/// of that table reports it.
fn declare_not_null(table: &str) -> String {
    format!(
        "PRAGMA writable_schema = ON;\n\
         UPDATE sqlite_master SET sql = 'CREATE TABLE {table} (x INTEGER NOT NULL)' WHERE name = '{table}';\n\
         PRAGMA schema_version = 100;\n\
         PRAGMA writable_schema = OFF;"
    )
}

#[test]
fn integrity_failure_is_reported() {
    // A NOT NULL constraint that the data violates, added behind SQLite's
    // back with writable_schema: integrity_check reports it.
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (NULL);",
        ),
        ("002_corrupt.sql", &declare_not_null("t")),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Integrity { version, problems } => {
            assert_eq!(*version, 2);
            assert_eq!(problems, &["NULL value in t.x"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("the migrations were committed"));
}

#[test]
fn damage_committed_before_a_later_failure_is_still_reported() {
    // 002 damages t and commits; 003 fails. What 002 left is checked as a
    // successful run would check it, and that damage is the error.
    let corrupt = declare_not_null("t");
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (NULL);",
        ),
        ("002_corrupt.sql", &corrupt),
        ("003_fails.sql", "SELECT * FROM nope;"),
    ]);
    for level in [IntegrityCheck::Full, IntegrityCheck::Changed] {
        let mut conn = Connection::open_in_memory().unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let err = m
            .migrator()
            .integrity_check(level)
            .migrate(&mut conn)
            .unwrap_err();
        match &err {
            Error::Integrity { version, problems } => {
                assert_eq!(*version, 2, "{level:?}");
                assert_eq!(problems, &["NULL value in t.x"], "{level:?}");
            }
            other => panic!("{level:?}: unexpected {other:?}"),
        }
        assert_eq!(user_version(&conn), 2);
    }
    // Without damage, the failure itself is the error; with the check off,
    // nothing is checked.
    let (_d, m) = load(&[
        ("001_t.sql", "CREATE TABLE t (x INTEGER);"),
        ("002_u.sql", "CREATE TABLE u (x INTEGER);"),
        ("003_fails.sql", "SELECT * FROM nope;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    assert!(matches!(
        m.migrate(&mut conn),
        Err(Error::Migration { version: 3, .. })
    ));
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (NULL);",
        ),
        ("002_corrupt.sql", &corrupt),
        ("003_fails.sql", "SELECT * FROM nope;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    assert!(matches!(
        m.migrator()
            .integrity_check(IntegrityCheck::Off)
            .migrate(&mut conn),
        Err(Error::Migration { version: 3, .. })
    ));
}

#[test]
fn new_database_settings_apply_only_to_a_new_database() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let mut conn = Connection::open(&path).unwrap();
    m.migrator()
        .page_size(8192)
        .auto_vacuum(AutoVacuum::Incremental)
        .journal_mode(JournalMode::Wal)
        .migrate(&mut conn)
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let auto_vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((page_size, auto_vacuum, journal.as_str()), (8192, 2, "wal"));

    // An existing database keeps its settings.
    let path = dir.path().join("old.db");
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE existing (x); PRAGMA user_version = 0;")
        .unwrap();
    let (_d2, m2) = load(&[("001_users.sql", USERS)]);
    m2.migrator()
        .page_size(8192)
        .journal_mode(JournalMode::Wal)
        .migrate(&mut conn)
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((page_size, journal.as_str()), (4096, "delete"));
}

/// A page size SQLite would ignore is refused before anything is done,
/// rather than silently giving another size.
#[test]
fn an_invalid_page_size_is_refused_before_anything_is_done() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let mut conn = Connection::open(&path).unwrap();
    for size in [0, 256, 1000, 131_072] {
        let err = m.migrator().page_size(size).migrate(&mut conn).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid option page_size({size}): SQLite takes a power of two from 512 to \
                 65536; nothing was done"
            )
        );
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    for size in [512, 65_536] {
        let path = dir.path().join(format!("{size}.db"));
        let mut conn = Connection::open(&path).unwrap();
        m.migrator().page_size(size).migrate(&mut conn).unwrap();
        let page_size: u32 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, size);
    }
}

#[test]
fn lock_timeout_gives_a_clear_error() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let holder = Connection::open(&path).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; CREATE TABLE other (x);")
        .unwrap();
    let mut conn = Connection::open(&path).unwrap();
    let t0 = Instant::now();
    let err = m
        .migrator()
        .lock_timeout(Duration::from_millis(300))
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "waited {:?}",
        t0.elapsed()
    );
    assert!(
        matches!(err, Error::Locked { timeout } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.to_string().contains("(300ms)"), "{err}");
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(user_version(&conn), 0);
    // The connection's own busy timeout is restored.
    let busy: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 5000);
    m.migrate(&mut conn).unwrap();
}

#[test]
fn verify_and_status_never_write_and_work_read_only() {
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("SELECT 1").unwrap();
    }
    let ro = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    m.verify(&ro).unwrap();
    let status = m.status(&ro).unwrap();
    assert_eq!(
        (status.version(), status.latest(), status.pending()),
        (0, 2, &[1, 2][..])
    );
    assert!(!status.is_up_to_date());
    assert_eq!(status.to_string(), "at version 0 of 2, 2 pending");

    let mut conn = Connection::open(&path).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    drop(conn);
    let bytes = std::fs::read(&path).unwrap();
    let ro = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    m.verify(&ro).unwrap();
    let status = m.status(&ro).unwrap();
    assert_eq!(status.history().len(), 1);
    assert_eq!(status.history()[0].name, "users");
    assert_eq!(status.to_string(), "at version 1 of 2, 1 pending");
    // migrate on a read-only connection fails clearly and writes nothing.
    let mut ro = ro;
    let err = m.migrate(&mut ro).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReadOnly {
                version: 1,
                latest: 2
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("open it read-write to migrate"),
        "{err}"
    );
    drop(ro);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // status reports drift without failing.
    let (_d2, edited) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);",
        ),
        ("002_posts.sql", POSTS),
    ]);
    let conn = Connection::open(&path).unwrap();
    let status = edited.status(&conn).unwrap();
    assert!(status
        .problem()
        .unwrap()
        .contains("was edited after it was applied"));
}

#[test]
fn from_dir_errors_are_source_errors_naming_files() {
    let dir = migrations_dir(&[
        ("001_a.sql", "SELECT 1;"),
        ("003_c.sql", "SELECT 1;"),
        ("004_d.sql", "-- nothing"),
    ]);
    let err = Migrations::from_dir(dir.path()).unwrap_err();
    match &err {
        Error::Source { problems, .. } => {
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert!(problems[0]
                .starts_with("003_c.sql: version 2 is missing between 001_a.sql and 003_c.sql"));
            assert!(problems[1].starts_with("004_d.sql: the file has no SQL statement"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Each problem on a line of its own (their messages have semicolons).
    let text = err.to_string();
    let shown = dir.path().display().to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("invalid migrations in \"{shown}\" (2 problems):").as_str()),
        "{text}"
    );
    assert!(
        lines.next().unwrap().starts_with("  1. 003_c.sql: "),
        "{text}"
    );
    assert!(
        lines.next().unwrap().starts_with("  2. 004_d.sql: "),
        "{text}"
    );
    assert_eq!(lines.next(), None, "{text}");
    // A missing directory: its path once, and what to do.
    let missing = dir.path().join("missing");
    let err = Migrations::from_dir(&missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid migrations in \"{}\": the migrations directory does not exist; create it, \
             or fix the path",
            missing.display()
        )
    );
}

#[test]
fn foreign_keys_off_stays_off() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    m.migrate(&mut conn).unwrap();
    let fk: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(!fk);
}

#[test]
fn an_empty_set_and_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let m = Migrations::from_dir(dir.path()).unwrap();
    assert!(m.is_empty());
    let mut conn = Connection::open_in_memory().unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.version(), 0);
    assert_eq!(
        report.to_string(),
        "nothing to apply: the database is at version 0"
    );
}

#[test]
fn sqlite_full_rolls_back_and_succeeds_after_space_is_freed() {
    let big = "CREATE TABLE big (x TEXT);\n\
               WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)\n\
               INSERT INTO big SELECT hex(randomblob(200)) FROM n;";
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_big.sql", big)]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    conn.execute_batch("PRAGMA max_page_count = 20").unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version: 2,
            line: 2,
            hint,
            ..
        } => assert_eq!(*hint, migrate_core::Hint::Full),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(snapshot(&conn), before);
    conn.execute_batch("PRAGMA max_page_count = 1000000")
        .unwrap();
    m.migrate(&mut conn).unwrap();
    assert_eq!(count(&conn, "big"), 5000);
}

#[test]
fn error_messages_say_what_to_do() {
    // The messages of the variants no other test spells out, as a user sees
    // them (the others are checked where they are provoked).
    let locked = Error::Locked {
        timeout: Duration::from_secs(5),
    };
    assert_eq!(
        locked.to_string(),
        "the database is locked by another connection and stayed locked for the lock timeout (5s); \
         the migration (or revert) waiting for it did not run, and what this run committed \
         before it stays (`status` shows where the database is): retry later, or raise the \
         timeout with `migrator().lock_timeout(..)`"
    );
    let incomplete = Error::Incomplete {
        version: 7,
        file: "007_vacuum.sql".into(),
    };
    assert!(incomplete
        .to_string()
        .starts_with("migration 7 (007_vacuum.sql) is incomplete"));
    let not_db = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("text.db");
        std::fs::write(
            &path,
            "this is not a database, just some text that is long enough to fill a header..........",
        )
        .unwrap();
        let (_d, m) = load(&[("001_users.sql", USERS)]);
        let mut conn = Connection::open(&path).unwrap();
        // The path as SQLite has it (the temporary directory may be a
        // symbolic link).
        let named = format!("the file {} is not a SQLite database", conn.path().unwrap());
        let errors = [
            m.migrate(&mut conn).unwrap_err(),
            m.verify(&conn).unwrap_err(),
            m.status(&conn).unwrap_err(),
        ];
        (errors, named)
    };
    let (errors, named) = not_db;
    for not_db in errors {
        assert!(not_db.to_string().contains(&named), "{not_db}");
        assert!(matches!(not_db, Error::Sqlite { .. }));
    }
}

#[test]
fn the_up_to_date_check_still_catches_drift_and_verify_reads_every_row() {
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_posts.sql", POSTS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    // Up to date, then the first file is edited: the chain of the newest row
    // no longer matches, and the full check names the file.
    let (_d2, edited) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);",
        ),
        ("002_posts.sql", POSTS),
    ]);
    assert!(matches!(
        edited.migrate(&mut conn),
        Err(Error::Drift { version: 1, .. })
    ));
    // A history row removed behind the library's back: verify reads every row.
    conn.execute("DELETE FROM _migrate_history WHERE version = 1", [])
        .unwrap();
    assert!(matches!(m.verify(&conn), Err(Error::Inconsistent { .. })));
}

/// Makes table `t`'s rows violate its declared schema behind SQLite's back
/// (a NOT NULL column holding a NULL), which only an integrity check of `t`
/// reports.
fn corrupt_table(conn: &Connection, table: &str) {
    conn.execute_batch(&format!(
        "CREATE TABLE {table} (x INTEGER); INSERT INTO {table} VALUES (NULL);"
    ))
    .unwrap();
    conn.execute_batch(&declare_not_null(table)).unwrap();
}

/// A run with the `Changed` check (to `target`, if given), which must pass
/// it, with one transaction per migration or (`single`) all in one.
fn changed_ok(
    m: &Migrations,
    conn: &mut Connection,
    target: Option<u32>,
    single: bool,
) -> migrate_core::Report {
    let mut migrator = m
        .migrator()
        .integrity_check(IntegrityCheck::Changed)
        .single_transaction(single);
    if let Some(target) = target {
        migrator = migrator.target(target);
    }
    let report = migrator
        .migrate(conn)
        .unwrap_or_else(|e| panic!("single {single}: {e}"));
    assert_eq!(
        report.integrity(),
        IntegrityOutcome::Ok(IntegrityCheck::Changed)
    );
    report
}

/// What the `Changed` check of a run that must fail on it reports, with
/// one transaction per migration or (`single`) all in one.
fn changed_problems(m: &Migrations, conn: &mut Connection, single: bool) -> Vec<String> {
    match m
        .migrator()
        .integrity_check(IntegrityCheck::Changed)
        .single_transaction(single)
        .migrate(conn)
    {
        Err(Error::Integrity { problems, .. }) => problems,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[test]
fn changed_integrity_checks_only_what_the_migrations_touched() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        (
            "002_data.sql",
            "INSERT INTO users (email) VALUES ('a@example.com');",
        ),
    ]);
    // An untouched, damaged table: the full check fails, `changed` does not look at it.
    let setup = || {
        let conn = Connection::open_in_memory().unwrap();
        corrupt_table(&conn, "untouched");
        conn
    };
    let mut conn = setup();
    let err = m
        .migrator()
        .integrity_check(IntegrityCheck::Full)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err:?}");
    let mut conn = setup();
    let report = changed_ok(&m, &mut conn, None, false);
    assert!(
        report
            .to_string()
            .ends_with("integrity ok (changed tables)"),
        "{report}"
    );

    // A data-only migration into a damaged table: `changed` checks that table.
    let (_d, data_only) = load(&[("001_t.sql", "INSERT INTO t VALUES (1);")]);
    let mut conn = Connection::open_in_memory().unwrap();
    corrupt_table(&conn, "t");
    assert_eq!(
        changed_problems(&data_only, &mut conn, false),
        ["NULL value in t.x"]
    );
    // The authorizer is removed after the run: the connection is the user's again.
    conn.execute_batch("CREATE TABLE after_run (x)").unwrap();
}

#[test]
fn changed_integrity_checks_a_rebuilt_table() {
    // The rebuild leaves `users` with different SQL: it is checked even
    // though the damage was done through sqlite_master.
    let (_d, m) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (x INTEGER); INSERT INTO users VALUES (NULL);",
        ),
        ("002_corrupt.sql", &declare_not_null("users")),
    ]);
    // From version 1, and from a new database (no table before the run:
    // every table is the run's, and `changed` checks them all).
    for first_run_to in [Some(1), None] {
        let mut conn = Connection::open_in_memory().unwrap();
        if let Some(version) = first_run_to {
            m.migrate_to(&mut conn, version).unwrap();
        }
        let err = m
            .migrator()
            .integrity_check(IntegrityCheck::Changed)
            .migrate(&mut conn)
            .unwrap_err();
        assert!(
            matches!(err, Error::Integrity { ref problems, .. } if problems == &["NULL value in users.x"]),
            "{first_run_to:?}: {err:?}"
        );
    }
}

#[test]
fn changed_integrity_checks_a_table_under_its_new_name_and_as_the_schema_spells_it() {
    // SQLite's authorizer names a renamed table by its old name: `changed`
    // still checks it under the new one, whether the rename is the run's
    // first file or comes after another, in one transaction or one each.
    // A file that only alters or writes a table (named in another case
    // than the schema's) has it checked without any of that.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "renamed",
            &[("001_rename.sql", "ALTER TABLE t RENAME TO u;")],
            "NULL value in u.x",
        ),
        (
            "written, then renamed",
            &[
                ("001_write.sql", "INSERT INTO t VALUES (1);"),
                ("002_rename.sql", "ALTER TABLE t RENAME TO u;"),
            ],
            "NULL value in u.x",
        ),
        (
            "altered",
            &[("001_alter.sql", "ALTER TABLE t ADD COLUMN y TEXT;")],
            "NULL value in t.x",
        ),
        (
            "written in upper case",
            &[("001_write.sql", "INSERT INTO T VALUES (1);")],
            "NULL value in t.x",
        ),
    ];
    for (case, files, problem) in cases {
        for single in [false, true] {
            let (_d, m) = load(files);
            let mut conn = Connection::open_in_memory().unwrap();
            corrupt_table(&conn, "t");
            // An untouched table, which the check leaves out.
            conn.execute_batch("CREATE TABLE other (a)").unwrap();
            let problems = changed_problems(&m, &mut conn, single);
            assert_eq!(problems, [problem], "{case}, single {single}");
        }
    }
}

#[test]
fn changed_integrity_skips_what_the_run_dropped_and_checks_what_a_view_wrote() {
    // A table the run wrote and then dropped is gone, and a temporary
    // table is not in the main database: nothing to check, and no error.
    // Rows written through a view's INSTEAD OF trigger land in the
    // trigger's table, which is checked (here: the damaged one).
    let (_d, m) = load(&[
        (
            "001_scratch.sql",
            "CREATE TABLE scratch (a); INSERT INTO scratch VALUES (1); DROP TABLE scratch;\n\
             CREATE TEMP TABLE notes (a); INSERT INTO notes VALUES (1);",
        ),
        (
            "002_view.sql",
            "CREATE VIEW v AS SELECT x FROM t;\n\
             CREATE TRIGGER v_insert INSTEAD OF INSERT ON v BEGIN INSERT INTO t VALUES (NEW.x); END;",
        ),
        ("003_write.sql", "INSERT INTO v VALUES (1);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE other (a)").unwrap();
    changed_ok(&m, &mut conn, Some(1), false);
    corrupt_table(&conn, "t");
    assert_eq!(
        changed_problems(&m, &mut conn, false),
        ["NULL value in t.x"]
    );
}

#[test]
fn changed_integrity_is_not_stopped_by_a_view_the_run_left_broken() {
    // The run writes the damaged table through a view's trigger, then
    // drops the table the view reads: the view's columns can no longer be
    // worked out, which must not keep the damage from being reported.
    let (_d, m) = load(&[(
        "001_view.sql",
        "CREATE VIEW v AS SELECT x FROM src;\n\
         CREATE TRIGGER v_insert INSTEAD OF INSERT ON v BEGIN INSERT INTO t VALUES (NEW.x); END;\n\
         INSERT INTO v VALUES (1);\n\
         DROP TABLE src;",
    )]);
    for single in [false, true] {
        let mut conn = Connection::open_in_memory().unwrap();
        corrupt_table(&conn, "t");
        conn.execute_batch("CREATE TABLE src (x); CREATE TABLE other (a);")
            .unwrap();
        assert_eq!(
            changed_problems(&m, &mut conn, single),
            ["NULL value in t.x"],
            "single {single}"
        );
    }
}

#[test]
fn changed_integrity_checks_a_virtual_table_the_run_created() {
    // SQLite's check of a virtual table asks its module (here FTS5 and
    // R*Tree find their shadow tables out of step with each other).
    let cases = [
        (
            "CREATE VIRTUAL TABLE f USING fts5(x);\n\
             INSERT INTO f_content(id, c0) VALUES (1, 'hello world');",
            "malformed inverted index for FTS5 table main.f",
        ),
        (
            "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1);\n\
             INSERT INTO r_rowid VALUES (5, 99);",
            "Wrong number of entries in %_rowid table",
        ),
    ];
    for (sql, problem) in cases {
        for single in [false, true] {
            let (_d, m) = load(&[("001_virtual.sql", sql)]);
            let mut conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE TABLE other (a)").unwrap();
            let problems = changed_problems(&m, &mut conn, single);
            assert!(
                problems.iter().any(|p| p.contains(problem)),
                "{sql}, single {single}: {problems:?}"
            );
        }
    }
}

#[test]
fn changed_integrity_reads_schema_sql_that_is_not_utf8() {
    // A file edits a table's SQL under writable_schema to bytes that are
    // not UTF-8 (SQLite stores them as they are), then a later file of the
    // run renames a table: the run reads the schema around the rename all
    // the same, and checks the whole database after the edit.
    let edit = "PRAGMA writable_schema = ON;\n\
                UPDATE sqlite_master SET sql = CAST(x'435245415445205441424c4520762028782044454641554c542027ff2729' AS TEXT) WHERE name = 'v';\n\
                PRAGMA writable_schema = OFF;";
    let (_d, m) = load(&[
        ("001_edit.sql", edit),
        ("002_rename.sql", "ALTER TABLE t RENAME TO u;"),
    ]);
    for single in [false, true] {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x); CREATE TABLE v (x DEFAULT 'a');")
            .unwrap();
        assert_eq!(changed_ok(&m, &mut conn, None, single).version(), 2);
    }
    // The same SQL there before the run, which only renames.
    let (_d, rename) = load(&[("001_rename.sql", "ALTER TABLE t RENAME TO u;")]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE t (x); CREATE TABLE v (x DEFAULT 'a');")
        .unwrap();
    conn.execute_batch(edit).unwrap();
    changed_ok(&rename, &mut conn, None, false);
}

#[test]
fn foreign_key_check_covers_children_of_changed_parents() {
    // Deleting parent rows orphans rows of an untouched child table.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_purge.sql", "DELETE FROM users WHERE id > 1;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
         INSERT INTO posts (user_id, body) VALUES (1, 'kept'), (2, 'orphaned');",
    )
    .unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::ForeignKeyViolation {
            version: 3,
            violations,
            ..
        } => {
            assert_eq!(violations, &["posts row 2 has no parent in users"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(snapshot(&conn), before);

    // A rebuild whose copy loses parent rows is caught the same way.
    let rebuild = "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n\
                   INSERT INTO users_new SELECT id, email FROM users WHERE id = 1;\n\
                   DROP TABLE users;\n\
                   ALTER TABLE users_new RENAME TO users;";
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_rebuild.sql", rebuild),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
         INSERT INTO posts (user_id, body) VALUES (1, 'kept'), (2, 'orphaned');",
    )
    .unwrap();
    let before = snapshot(&conn);
    assert!(matches!(
        m.migrate(&mut conn),
        Err(Error::ForeignKeyViolation { version: 3, .. })
    ));
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn foreign_key_check_covers_tables_that_existed_before_the_first_run() {
    // The first run reads the whole state (no history yet): tables made by
    // hand, or by the user_version-only scheme, with foreign keys are
    // watched though no pending file says REFERENCES.
    let purge = "DELETE FROM users WHERE id > 1;";
    let existing = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id));
         INSERT INTO users VALUES (1, 'a@example.com'), (2, 'b@example.com');
         INSERT INTO posts (user_id) VALUES (1), (2);";
    // Never migrated.
    let (_d, m) = load(&[("001_purge.sql", purge)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(existing).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(&err, Error::ForeignKeyViolation { version: 1, violations, .. }
            if violations == &["posts row 2 has no parent in users"]),
        "{err:?}"
    );
    assert_eq!(snapshot(&conn), before);

    // Adopted at user_version 1, version 2 pending.
    // Also with the key written in lower case on a connection where LIKE is
    // case-sensitive.
    for (schema, like) in [
        (existing.to_owned(), "OFF"),
        (existing.replace("REFERENCES", "references"), "ON"),
    ] {
        let (_d, m) = load(&[("001_schema.sql", &schema), ("002_purge.sql", purge)]);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA case_sensitive_like = {like}"
        ))
        .unwrap();
        let before = snapshot(&conn);
        let err = m.migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, Error::ForeignKeyViolation { version: 2, .. }),
            "case_sensitive_like {like}: {err:?}"
        );
        // The adoption and migration 2 were one transaction: nothing stays.
        assert_eq!(snapshot(&conn), before);
    }
}

#[test]
fn foreign_key_check_does_not_blame_a_migration_for_untouched_tables() {
    // Orphan rows that were there before, in a table the migration does not
    // touch, are not the migration's doing: it applies.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_tags.sql",
            "CREATE TABLE tags (name TEXT PRIMARY KEY); INSERT INTO tags VALUES ('rust');",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; INSERT INTO posts (user_id, body) VALUES (99, 'old orphan');",
    )
    .unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate(&mut conn).unwrap();
    assert_eq!(count(&conn, "tags"), 1);
}

/// A report's durations line up, also when a `<version>.sql` file (shown by
/// its file name, having no name) is longer than the other names.
#[test]
fn report_durations_line_up_with_version_only_file_names() {
    let (_d, m) = load(&[
        ("001.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let text = m.migrate(&mut conn).unwrap().to_string();
    let ends: Vec<usize> = text
        .lines()
        .filter(|l| l.starts_with("applied "))
        .map(str::len)
        .collect();
    assert_eq!(ends.len(), 2, "{text}");
    assert_eq!(ends[0], ends[1], "the columns do not line up:\n{text}");
    assert!(text.contains("001.sql"), "{text}");
}

/// `single_transaction` with a pending `no-transaction` migration is
/// refused with steps that can be followed from where the database is
/// (never "migrate to" the version it is at, nor to version 0).
#[test]
fn the_single_transaction_refusal_gives_steps_that_can_be_followed() {
    // The refusal's text, checked to be `Error::Target`.
    let refusal = |m: &Migrations, conn: &mut Connection| {
        let err = m
            .migrator()
            .single_transaction(true)
            .migrate(conn)
            .unwrap_err();
        assert!(matches!(err, Error::Target { .. }), "{err}");
        err.to_string()
    };
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
        ("003_vacuum.sql", "-- migrate:no-transaction\nVACUUM;"),
        ("004_c.sql", "CREATE TABLE c (x);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let text = refusal(&m, &mut conn);
    assert!(
        text.contains(
            "to version 2 in one transaction, then to version 3 with single_transaction off, \
             then to version 4 in one transaction"
        ),
        "{text}"
    );
    m.migrate_to(&mut conn, 2).unwrap();
    let text = refusal(&m, &mut conn);
    assert!(
        text.contains("`migrate_to`: to version 3 with single_transaction off, then to version 4"),
        "{text}"
    );
    assert!(!text.contains("to version 2"), "{text}");
    // Following the steps works.
    m.migrate_to(&mut conn, 3).unwrap();
    m.migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(user_version(&conn), 4);

    // A new database whose migration 1 is no-transaction.
    let (_d, m) = load(&[
        (
            "001_wal.sql",
            "-- migrate:no-transaction\nPRAGMA user_version;",
        ),
        ("002_a.sql", "CREATE TABLE a (x);"),
    ]);
    let text = refusal(&m, &mut Connection::open_in_memory().unwrap());
    assert!(!text.contains("version 0"), "{text}");
    assert!(
        text.contains("to version 1 with single_transaction off, then to version 2"),
        "{text}"
    );
}

/// A `user_version` set by hand above the history's newest row is reported
/// as disagreeing with the history (both values), not blamed on a newer
/// build, whichever build looks.
#[test]
fn user_version_above_the_history_is_inconsistent_not_a_newer_build() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
        ("003_c.sql", "CREATE TABLE c (x);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn.execute_batch("PRAGMA user_version = 5").unwrap();
    let before = snapshot(&conn);
    for err in [
        m.verify(&conn).unwrap_err(),
        m.migrate(&mut conn).unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(matches!(err, Error::Inconsistent { .. }), "{text}");
        assert!(!text.contains("newer build"), "{text}");
        assert!(
            text.contains("user_version is 5") && text.contains("newest applied version is 2"),
            "{text}"
        );
    }
    assert_eq!(snapshot(&conn), before);
}

/// `UnknownVersion` for a version whose file was `<version>.sql` (recorded
/// without a name) names the file to look for.
#[test]
fn an_unknown_version_of_a_version_only_file_is_named_by_its_file() {
    let (_n, newer) = load(&[
        ("001.sql", "CREATE TABLE a (x);"),
        ("002.sql", "CREATE TABLE b (x);"),
    ]);
    let (_o, older) = load(&[("001.sql", "CREATE TABLE a (x);")]);
    let mut conn = Connection::open_in_memory().unwrap();
    newer.migrate(&mut conn).unwrap();
    let err = older.verify(&conn).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    let text = err.to_string();
    assert!(!text.contains("named \"\""), "{text}");
    assert!(text.contains("2.sql"), "{text}");
}

/// `verify` and `status` wait only as long as the connection's busy
/// timeout; when another connection holds a lock longer, the error says so
/// and what to do.
#[test]
fn verify_on_a_locked_database_says_another_connection_holds_it() {
    let (_d, m) = load(&[("001_a.sql", "CREATE TABLE a (x);")]);
    let db = tempfile::tempdir().unwrap();
    let path = db.path().join("app.db");
    let mut writer = Connection::open(&path).unwrap();
    m.migrate(&mut writer).unwrap();
    writer
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO a VALUES (1);")
        .unwrap();
    let reader = Connection::open(&path).unwrap();
    reader.busy_timeout(Duration::from_millis(50)).unwrap();
    for text in [
        m.verify(&reader).unwrap_err().to_string(),
        m.status(&reader).unwrap_err().to_string(),
    ] {
        assert!(
            text.contains("another connection held a lock on the database")
                && text.contains("busy timeout (50 ms)")
                && text.contains("retry"),
            "{text}"
        );
    }
    writer.execute_batch("COMMIT").unwrap();
    m.verify(&reader).unwrap();
}

/// With two `no-transaction` migrations pending, the refusal's steps, taken
/// one by one as written, reach the target.
#[test]
fn the_single_transaction_refusal_steps_reach_the_target_past_two_no_transaction_files() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_vacuum.sql", "-- migrate:no-transaction\nVACUUM;"),
        ("003_b.sql", "CREATE TABLE b (x);"),
        ("004_c.sql", "CREATE TABLE c (x);"),
        ("005_vacuum.sql", "-- migrate:no-transaction\nVACUUM;"),
        ("006_d.sql", "CREATE TABLE d (x);"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let text = m
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap_err()
        .to_string();
    let steps = text
        .split("`migrate_to`: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no steps: {text}"));
    assert_eq!(
        steps,
        "to version 2 with single_transaction off, then to version 4 in one transaction, then \
         to version 5 with single_transaction off, then to version 6 in one transaction"
    );
    for step in steps.split(", then ") {
        let words: Vec<&str> = step.split(' ').collect();
        let version: u32 = words[2].parse().unwrap();
        let single = step.ends_with("in one transaction");
        m.migrator()
            .single_transaction(single)
            .target(version)
            .migrate(&mut conn)
            .unwrap_or_else(|e| panic!("step {step:?}: {e}"));
    }
    assert_eq!(user_version(&conn), 6);
}
