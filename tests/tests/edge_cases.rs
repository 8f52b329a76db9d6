//! Edge cases found in review, each pinned: a no-transaction file that
//! turns foreign keys back on, a temporary table that would hide a
//! table from the checks, statements with parameters, NUL characters,
//! savepoints across files in single-transaction mode, transactions left
//! open, odd spellings of transaction control, huge lock timeouts, a lock
//! file saved with a BOM, a migration that creates the history table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use migrate_core::{Error, IntegrityCheck, Migrations};
use migrate_tests::{migrations_dir, snapshot};
use rusqlite::Connection;

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);";
const POSTS: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, body TEXT);";
const REBUILD: &str = "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '');\n\
                       INSERT INTO users_new (id, email) SELECT id, email FROM users;\n\
                       DROP TABLE users;\n\
                       ALTER TABLE users_new RENAME TO users;";

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = migrations_dir(files);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        > 0
}

fn foreign_keys_of(conn: &Connection, table: &str) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM pragma_foreign_key_list(?1)",
        [table],
        |r| r.get(0),
    )
    .unwrap()
}

fn fk(conn: &Connection) -> bool {
    conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_no_transaction_file_turning_foreign_keys_on_does_not_make_a_later_rebuild_cascade() {
    let recipe = "-- migrate:no-transaction\n\
                  PRAGMA foreign_keys=OFF;\n\
                  BEGIN;\n\
                  CREATE TABLE tags (id INTEGER PRIMARY KEY);\n\
                  COMMIT;\n\
                  PRAGMA foreign_keys=ON;\n";
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        ("003_tags.sql", recipe),
        ("004_rebuild.sql", REBUILD),
    ]);
    // Whether the connection had foreign keys on or off.
    for foreign_keys in ["ON", "OFF"] {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("PRAGMA foreign_keys = {foreign_keys}"))
            .unwrap();
        m.migrate_to(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email) VALUES (1, 'a@x');\
             INSERT INTO posts (user_id, body) VALUES (1, 'hello');",
        )
        .unwrap();
        let report = m.migrate(&mut conn).unwrap();
        assert_eq!(report.version(), 4);
        assert_eq!(
            count(&conn, "posts"),
            1,
            "foreign_keys {foreign_keys}: the rebuild in 004 cascaded: child rows deleted"
        );
        assert_eq!(fk(&conn), foreign_keys == "ON");
    }
}

/// A parent and a child with one row each, and a migration that deletes
/// the parent row.
const PARENT: &str = "CREATE TABLE p (id INTEGER PRIMARY KEY);\n\
                      CREATE TABLE c (p INTEGER REFERENCES p (id));\n\
                      INSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1);\n";
const PURGE: &str = "DELETE FROM p;\n";

/// The foreign-key scope finds a child table whatever the case of its
/// `REFERENCES`, also on a connection with `case_sensitive_like` on (the
/// schema read filters the tables in SQL).
#[test]
fn a_child_table_is_checked_on_a_connection_with_case_sensitive_like() {
    for references in ["REFERENCES", "references", "ReFeReNcEs"] {
        let schema = PARENT.replace("REFERENCES", references);
        let (_d, m) = load(&[("001_schema.sql", &schema), ("002_purge.sql", PURGE)]);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON")
            .unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let before = snapshot(&conn);
        let err = m.migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, Error::ForeignKeyViolation { version: 2, .. }),
            "{references}: {err:?}"
        );
        assert_eq!(snapshot(&conn), before, "{references}: rolled back");
    }
}

#[test]
fn a_temporary_table_does_not_hide_the_main_table_from_the_checks() {
    // Foreign keys: a temp table named like the child.
    let (_d, m) = load(&[("001_schema.sql", PARENT), ("002_purge.sql", PURGE)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    conn.execute_batch("CREATE TEMP TABLE c (scratch)").unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::ForeignKeyViolation { version: 2, .. }),
        "{err:?}"
    );

    // `Changed`: a temp table named like the damaged table the run writes.
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (NULL);\n\
             CREATE TABLE u (z);\n",
        ),
        ("002_write.sql", "INSERT INTO main.t VALUES (1);\n"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    conn.execute_batch(
        "PRAGMA writable_schema = ON;\n\
         UPDATE sqlite_master SET sql = 'CREATE TABLE t (x INTEGER NOT NULL)' WHERE name = 't';\n\
         PRAGMA schema_version = 100;\n\
         PRAGMA writable_schema = OFF;\n\
         CREATE TEMP TABLE t (scratch);",
    )
    .unwrap();
    let err = m
        .migrator()
        .integrity_check(migrate_core::IntegrityCheck::Changed)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        matches!(err, Error::Integrity { ref problems, .. } if problems == &["NULL value in t.x"]),
        "{err:?}"
    );
}

#[test]
fn foreign_keys_off_stay_off_after_a_file_turns_them_on() {
    let recipe = "-- migrate:no-transaction\n\
                  PRAGMA foreign_keys=OFF;\n\
                  BEGIN;\n\
                  CREATE TABLE tags (id INTEGER PRIMARY KEY);\n\
                  COMMIT;\n\
                  PRAGMA foreign_keys=ON;\n";
    let (_d, m) = load(&[("001_users.sql", USERS), ("002_tags.sql", recipe)]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap(); // bundled defaults to ON
    assert!(!fk(&conn));
    m.migrate(&mut conn).unwrap();
    assert!(
        !fk(&conn),
        "foreign_keys was off before migrate and is on after"
    );
}

#[test]
fn a_statement_with_a_parameter_is_refused_and_nothing_applied() {
    let (_d, m) = load(&[(
        "001_a.sql",
        "CREATE TABLE a (x);\nINSERT INTO a VALUES (:x);\nCREATE TABLE b (x);\nCREATE TABLE c (x);\n",
    )]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            line: 2, message, ..
        } => assert!(message.contains("parameter"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!table_exists(&conn, "a"));
    let uv: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(uv, 0);
}

#[test]
fn a_nul_character_is_refused_naming_the_line() {
    for (text, line) in [
        (
            "CREATE TABLE a (x);\n-- pasted text \0 here\nCREATE TABLE b (x);\n",
            2,
        ),
        ("\0CREATE TABLE a (x);", 1),
    ] {
        let d = migrations_dir(&[("001_a.sql", text)]);
        let err = Migrations::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "001_a.sql:{line}: the file contains a NUL character"
            )),
            "{err}"
        );
    }
}

#[test]
fn single_transaction_files_cannot_roll_back_an_earlier_files_savepoint() {
    let (_d, m) = load(&[
        (
            "001_a.sql",
            "CREATE TABLE a (x);\nSAVEPOINT s;\nCREATE TABLE b (x);\n",
        ),
        ("002_c.sql", "ROLLBACK TO s;\nCREATE TABLE c (x);\n"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let before = snapshot(&conn);
    let err = m
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        matches!(err, Error::Migration { version: 2, .. }),
        "{err:?}"
    );
    // A file that says ROLLBACK runs in a savepoint of its own: rolling
    // back to an earlier file's savepoint drops it, and its release fails.
    assert!(
        err.to_string()
            .contains("rolled back to or released a savepoint it did not create"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn a_no_transaction_file_that_leaves_a_transaction_open_is_named() {
    let (_d, m) = load(&[(
        "001_a.sql",
        "-- migrate:no-transaction\nBEGIN;\nCREATE TABLE a (x);\n",
    )]);
    let mut conn = Connection::open_in_memory().unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    // Its last line, not the empty one after the final newline.
    assert!(
        matches!(
            err,
            Error::Migration {
                version: 1,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("ends inside a transaction it began"),
        "{err}"
    );
    assert!(conn.is_autocommit());
    assert!(matches!(
        m.migrator().lock_timeout(Duration::ZERO).migrate(&mut conn),
        Err(Error::Incomplete { version: 1, .. })
    ));
}

#[test]
fn transaction_control_spellings_are_refused_with_the_right_line() {
    for (sql, line) in [
        ("CREATE TABLE a (x);\ncommit/*x*/;", 2),
        ("CREATE TABLE a (x);\n\n  END\n;", 3),
        ("CREATE TABLE a (x);\r\n\r\nBEGIN DEFERRED TRANSACTION;", 3),
        ("CREATE TABLE a (x);\n-- c\nROLLBACK--x\n;", 3),
        ("CREATE TABLE a (x);\nROLLBACK TRANSACTION foo;", 2),
        (
            "CREATE TABLE a (x);\n/* a\nb */ /**/ Commit Transaction;",
            3,
        ),
        ("CREATE TABLE a (x);;;\n;\nEND TRANSACTION;", 3),
        (
            "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nEND;",
            3,
        ),
        ("\u{feff}CREATE TABLE a (x);\nCOMMIT;", 2),
    ] {
        let (_d, m) = load(&[("001_a.sql", sql)]);
        let mut conn = Connection::open_in_memory().unwrap();
        match m.migrate(&mut conn) {
            Err(Error::Migration { line: l, .. }) => assert_eq!(l, line, "{sql:?}"),
            other => panic!("{sql:?}: {other:?}"),
        }
        assert!(!table_exists(&conn, "a"), "{sql:?}");
    }
}

#[test]
fn trigger_with_end_and_line_numbers() {
    let sql = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n  INSERT INTO a VALUES (1);\nEND;\n\n-- a comment; with a semicolon\n/* and ; here */\nINSERT INTO a VALUES ('it''s; fine');\nSELECT * FROM nope;\n";
    let (_d, m) = load(&[("001_a.sql", sql)]);
    let mut conn = Connection::open_in_memory().unwrap();
    match m.migrate(&mut conn) {
        Err(Error::Migration { line, .. }) => assert_eq!(line, 10),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connection_state_restored_after_errors() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_bad.sql", "SELECT * FROM nope;"),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
    conn.busy_timeout(Duration::from_millis(1234)).unwrap();
    m.migrate(&mut conn).unwrap_err();
    assert!(conn.is_autocommit());
    assert!(fk(&conn));
    let b: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(b, 1234);
}

#[test]
fn single_transaction_foreign_key_violation_names_its_file() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_orphan.sql",
            "INSERT INTO posts (user_id, body) VALUES (42, 'orphan');",
        ),
        ("004_other.sql", "CREATE TABLE other (x);"),
    ]);
    let mut conn = at_version_2_with_foreign_keys(&m);
    let err = m
        .migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ForeignKeyViolation {
                version: 3,
                outcome: migrate_core::Outcome::AllRolledBack,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("every migration of this run was rolled back"),
        "{err}"
    );
}

#[test]
fn a_lock_timeout_of_duration_max_waits_as_long_as_sqlite_can_without_panicking() {
    let (_d, m) = load(&[("001_users.sql", USERS)]);
    let mut conn = Connection::open_in_memory().unwrap();
    let report = m
        .migrator()
        .lock_timeout(Duration::MAX)
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(report.version(), 1);
}

#[test]
fn a_lock_file_saved_with_crlf_or_a_bom_still_reads() {
    let d = migrations_dir(&[("001_users.sql", USERS)]);
    migrate_core::lock::append(d.path()).unwrap();
    let lock = d.path().join("migrate.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, text.replace('\n', "\r\n")).unwrap();
    assert_eq!(Migrations::from_dir(d.path()).unwrap().len(), 1);
    std::fs::write(&lock, format!("\u{feff}{text}")).unwrap();
    assert_eq!(Migrations::from_dir(d.path()).unwrap().len(), 1);
}

/// The history table is created in the first write transaction after that
/// transaction's files: a file that makes a table of that name is refused
/// with an error that names it, not written into, and the database stays
/// as it was.
#[test]
fn a_migration_that_creates_the_history_table_is_refused() {
    let fake = "CREATE TABLE _migrate_history (anything TEXT);";
    let quiet =
        "-- keeps its own log\nCREATE TABLE IF NOT EXISTS _Migrate_History (anything TEXT);";
    for (single, first, sql) in [
        (false, false, fake),
        (true, false, fake),
        (false, true, fake),
        (true, true, quiet),
        (false, true, quiet),
    ] {
        let files: Vec<(&str, &str)> = if first {
            vec![("001_fake.sql", sql), ("002_users.sql", USERS)]
        } else {
            vec![("001_users.sql", USERS), ("002_fake.sql", sql)]
        };
        let (_d, m) = load(&files);
        let mut conn = Connection::open_in_memory().unwrap();
        let before = snapshot(&conn);
        let err = migrate_err(&m, &mut conn, single);
        let case = format!("single={single} first={first} {sql:?}");
        let (file, line) = if first {
            ("001_fake.sql", if sql == quiet { 2 } else { 1 })
        } else {
            ("002_fake.sql", 1)
        };
        match &err {
            Error::Migration {
                file: named,
                line: at,
                ..
            } => {
                assert_eq!((named.as_str(), *at), (file, line), "{case}: {err}");
            }
            other => panic!("{case}: {other}"),
        }
        if single || first {
            // Nothing was committed.
            assert_eq!(snapshot(&conn), before, "{case}");
        } else {
            // Migration 1 committed with its history (the table exists),
            // so migration 2's CREATE fails at its own statement.
            assert!(err.to_string().contains("already exists"), "{case}: {err}");
            assert_eq!(m.status(&conn).unwrap().version(), 1);
            m.verify(&conn).unwrap();
        }
    }
}

/// When the history table cannot be created for another reason (here a
/// full database), no file is blamed and the error says what was rolled
/// back; nothing stays.
#[test]
fn a_history_table_that_does_not_fit_rolls_the_transaction_back() {
    for single in [false, true] {
        let (_d, m) = load(&[("001_users.sql", USERS)]);
        let mut conn = Connection::open_in_memory().unwrap();
        // Page 1 and the two pages of `users` (its table and its index).
        conn.execute_batch("PRAGMA max_page_count = 3").unwrap();
        let before = snapshot(&conn);
        let err = migrate_err(&m, &mut conn, single);
        let message = err.to_string();
        assert!(matches!(err, Error::Sqlite { .. }), "{message}");
        assert!(
            message.contains("cannot create the history table")
                && message.contains("rolled back")
                && message.contains("full")
                && !message.contains("001_users.sql"),
            "single={single}: {message}"
        );
        assert_eq!(snapshot(&conn), before);
    }
}

/// SQLite's recipe for schema changes ALTER TABLE cannot make: edit the
/// table's SQL in `sqlite_master` under `PRAGMA writable_schema`. A foreign
/// key added that way is checked like any other (the run makes SQLite load
/// the edited schema first, so it does not matter whether the file bumped
/// `schema_version` as the recipe says), and an edit SQLite cannot load is
/// refused before its commit.
#[test]
fn a_foreign_key_added_by_editing_the_schema_is_checked() {
    let tables = "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
                  CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER);\n\
                  INSERT INTO parent VALUES (1);\n\
                  INSERT INTO child VALUES (1, 1), (2, 42);\n";
    let edit = |bump: &str| {
        format!(
            "PRAGMA writable_schema = ON;\n\
             UPDATE sqlite_master SET sql = 'CREATE TABLE child (id INTEGER PRIMARY KEY, \
             parent_id INTEGER REFERENCES parent (id))' WHERE type = 'table' AND name = 'child';\n\
             {bump}\
             PRAGMA writable_schema = OFF;\n"
        )
    };
    for bump in ["", "PRAGMA schema_version = 1000;\n"] {
        for single in [false, true] {
            let edit = edit(bump);
            let (_d, m) = load(&[("001_tables.sql", tables), ("002_edit.sql", &edit)]);
            let mut conn = Connection::open_in_memory().unwrap();
            m.migrate_to(&mut conn, 1).unwrap();
            let before = snapshot(&conn);
            let err = migrate_err(&m, &mut conn, single);
            match &err {
                Error::ForeignKeyViolation {
                    version,
                    violations,
                    ..
                } => {
                    assert_eq!(*version, 2, "{err}");
                    assert_eq!(violations.len(), 1, "{err}");
                    assert!(violations[0].contains("child row 2"), "{err}");
                }
                other => panic!("bump={bump:?} single={single}: {other}"),
            }
            assert_eq!(snapshot(&conn), before, "bump={bump:?} single={single}");
            // The connection still sees the schema as it is on disk.
            let keys = foreign_keys_of(&conn, "child");
            assert_eq!(keys, 0);
        }
    }
    // Without the orphan row, the same edit applies.
    let fixed = tables.replace("(2, 42)", "(2, 1)");
    let (_d, m) = load(&[("001_tables.sql", &fixed), ("002_edit.sql", &edit(""))]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    let keys = foreign_keys_of(&conn, "child");
    assert_eq!(keys, 1);

    // An edit SQLite cannot load is refused, naming the file.
    let broken = "PRAGMA writable_schema = ON;\n\
                  UPDATE sqlite_master SET sql = 'CREATE TABLE child (id INTEGER PRIMARY KEY,' \
                  WHERE type = 'table' AND name = 'child';\n\
                  PRAGMA writable_schema = OFF;\n\
                  -- REFERENCES: makes the run watch this file\n";
    let (_d, m) = load(&[("001_tables.sql", &fixed), ("002_broken.sql", broken)]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("002_broken.sql") && message.contains("cannot load the schema"),
        "{message}"
    );
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn a_journal_mode_change_inside_the_transaction_is_refused_and_nothing_applied() {
    // With the journal off, a failure after the page cache spilled to the
    // file could not be rolled back: the file is refused before it runs.
    let bulk = "UPDATE t SET x = 'changed';\n\
                PRAGMA main.Journal_Mode = OFF;\n\
                PRAGMA cache_size = 10;\n\
                CREATE TABLE big (x TEXT);\n\
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)\n\
                INSERT INTO big SELECT hex(randomblob(100)) FROM n;\n\
                SELECT * FROM no_such_table;\n";
    for single in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let (_d, m) = load(&[
            (
                "001_t.sql",
                "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('keep');",
            ),
            ("002_bulk.sql", bulk),
        ]);
        let mut conn = Connection::open(&db).unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let before = snapshot(&conn);
        let err = migrate_err(&m, &mut conn, single);
        match &err {
            Error::Migration {
                version: 2,
                line: 2,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("PRAGMA journal_mode cannot change"), "{text}");
        assert!(text.contains("-- migrate:no-transaction"), "{text}");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        drop(conn);
        let conn = Connection::open(&db).unwrap();
        assert_eq!(snapshot(&conn), before);
    }
    // Reading it is fine, and a no-transaction file may change it.
    let (_d, m) = load(&[
        ("001_t.sql", "CREATE TABLE t (x);\nPRAGMA journal_mode;"),
        (
            "002_mode.sql",
            "-- migrate:no-transaction\nPRAGMA journal_mode = TRUNCATE;",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("b.db")).unwrap();
    m.migrate(&mut conn).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "truncate");
}

/// The error of a run that must fail, one transaction per migration or
/// all in one.
fn migrate_err(m: &Migrations, conn: &mut Connection, single: bool) -> Error {
    m.migrator()
        .single_transaction(single)
        .migrate(conn)
        .unwrap_err()
}

/// Migrating refuses migration `version` for the orphans it leaves, and
/// leaves the database as it was.
fn refused_for_orphans(
    m: &Migrations,
    conn: &mut Connection,
    level: IntegrityCheck,
    single: bool,
    version: u32,
) {
    let before = snapshot(conn);
    let err = m
        .migrator()
        .integrity_check(level)
        .single_transaction(single)
        .migrate(conn)
        .unwrap_err();
    assert!(
        matches!(err, Error::ForeignKeyViolation { version: v, .. } if v == version),
        "{level:?} single={single}: {err:?}"
    );
    assert_eq!(snapshot(conn), before);
}

/// A new database at version 2 of `m`, on a connection with foreign keys on.
fn at_version_2_with_foreign_keys(m: &Migrations) -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    conn
}

/// User 1 and a post of theirs.
fn seed_user_and_post(conn: &Connection) {
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@x');
         INSERT INTO posts (user_id, body) VALUES (1, 'hello');",
    )
    .unwrap();
}

/// The rows a database has that break a foreign key.
fn orphans(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn an_insert_that_replaces_a_parent_row_is_checked_for_orphans() {
    // Each replaces user 1 (same email, another id), whose post then has
    // no parent. SQLite with foreign keys on would refuse it.
    let users_replace = "CREATE TABLE users (id INTEGER PRIMARY KEY, \
                         email TEXT NOT NULL UNIQUE ON CONFLICT REPLACE);";
    let cases: [(&str, &str, &str); 5] = [
        (
            USERS,
            "INSERT OR REPLACE INTO users (id, email) VALUES (3, 'a@x');",
            "",
        ),
        (
            USERS,
            "REPLACE INTO users (id, email) VALUES (3, 'a@x');",
            "",
        ),
        (
            USERS,
            "insert or replace into users (id, email) values (3, 'a@x');",
            "",
        ),
        // The table's own conflict clause: the file never says REPLACE.
        (
            users_replace,
            "INSERT INTO users (id, email) VALUES (3, 'a@x');",
            "",
        ),
        // A trigger made before the run does the replacing.
        (
            USERS,
            "INSERT INTO log (email) VALUES ('a@x');",
            "CREATE TABLE log (email TEXT);\n\
             CREATE TRIGGER log_user AFTER INSERT ON log BEGIN \
             INSERT OR REPLACE INTO users (id, email) VALUES (3, NEW.email); END;",
        ),
    ];
    for (users, replace, setup) in cases {
        for single in [false, true] {
            let (_d, m) = load(&[
                ("001_users.sql", users),
                ("002_posts.sql", POSTS),
                (
                    "003_setup.sql",
                    if setup.is_empty() { "SELECT 1;" } else { setup },
                ),
                ("004_replace.sql", replace),
            ]);
            let mut conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
            m.migrate_to(&mut conn, 3).unwrap();
            seed_user_and_post(&conn);
            let before = snapshot(&conn);
            let err = migrate_err(&m, &mut conn, single);
            assert!(
                matches!(&err, Error::ForeignKeyViolation { version: 4, violations, .. }
                    if violations.iter().any(|v| v.contains("posts row 1 has no parent in users"))),
                "{replace:?}: {err:?}"
            );
            assert_eq!(orphans(&conn), 0, "{replace:?}");
            assert_eq!(snapshot(&conn), before, "{replace:?}");
        }
    }
    // An insert that replaces nothing a child points to is fine.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_replace.sql",
            "INSERT OR REPLACE INTO users (id, email) VALUES (1, 'b@x');",
        ),
    ]);
    let mut conn = at_version_2_with_foreign_keys(&m);
    seed_user_and_post(&conn);
    m.migrate(&mut conn).unwrap();
    assert_eq!(orphans(&conn), 0);
}

#[test]
fn a_temporary_history_table_of_a_file_does_not_take_the_history() {
    // The framework's own statements name `main`: a file's TEMP table of
    // the same name neither receives the rows nor hides the real table.
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        (
            "002_temp.sql",
            "CREATE TEMP TABLE _migrate_history (version INTEGER PRIMARY KEY, name, checksum, \
             applied_at, duration_us, chain, state);",
        ),
        ("003_b.sql", "CREATE TABLE b (x);"),
    ]);
    for single in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        if !single {
            m.migrate_to(&mut conn, 1).unwrap();
        }
        let report = m
            .migrator()
            .single_transaction(single)
            .migrate(&mut conn)
            .unwrap();
        assert_eq!(report.version(), 3);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM main._migrate_history", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 3);
        let temp_rows: i64 = conn
            .query_row("SELECT count(*) FROM temp._migrate_history", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(temp_rows, 0);
        // On this connection (the TEMP table still there) and on a new one.
        m.verify(&conn).unwrap();
        assert!(m.migrate(&mut conn).unwrap().applied().is_empty());
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        m.verify(&conn).unwrap();
        assert!(m.migrate(&mut conn).unwrap().applied().is_empty());
    }
}

#[test]
fn changed_checks_everything_after_a_file_edits_the_schema_itself() {
    // The file points an index at another column by editing sqlite_master:
    // the index no longer matches the rows. No table's SQL changed, and the
    // file wrote no table's rows; `Changed` must still find it.
    let edit = "PRAGMA writable_schema = ON;\n\
                UPDATE sqlite_master SET sql = 'CREATE INDEX t_x ON t (y)' WHERE name = 't_x';\n\
                PRAGMA schema_version = 100;\n\
                PRAGMA writable_schema = OFF;\n";
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER, y INTEGER);\nCREATE INDEX t_x ON t (x);\n\
             INSERT INTO t VALUES (1, 2), (3, 4);\nCREATE TABLE other (z);",
        ),
        ("002_edit.sql", edit),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let err = m
        .migrator()
        .integrity_check(migrate_core::IntegrityCheck::Changed)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Integrity { version: 2, problems }
            if problems.iter().any(|p| p.contains("missing from index t_x"))),
        "{err:?}"
    );
}

/// The state of the history row of `version`, if any.
fn history_state(conn: &Connection, version: u32) -> Option<String> {
    conn.query_row(
        "SELECT state FROM _migrate_history WHERE version = ?1",
        [version],
        |r| r.get(0),
    )
    .ok()
}

#[test]
fn a_no_transaction_file_that_leaves_orphans_stays_marked_incomplete() {
    // Foreign keys are off while the file runs (no cascade), so the posts
    // of the deleted user stay behind: the file ran and cannot be undone,
    // so it is not marked applied and the next run stops.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_delete.sql",
            "-- migrate:no-transaction\nDELETE FROM users WHERE id = 1;\n",
        ),
        ("004_more.sql", "CREATE TABLE more (x);"),
    ]);
    let mut conn = at_version_2_with_foreign_keys(&m);
    seed_user_and_post(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::ForeignKeyViolation {
            version: 3,
            violations,
            outcome: migrate_core::Outcome::RanNotMarked,
            ..
        } => assert!(
            violations
                .iter()
                .any(|v| v.contains("posts row 1 has no parent in users")),
            "{violations:?}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("stays marked incomplete"), "{text}");
    assert_eq!(history_state(&conn, 3).as_deref(), Some("started"));
    assert!(!table_exists(&conn, "more"));
    assert!(fk(&conn), "foreign keys restored");
    assert!(matches!(
        m.migrator().lock_timeout(Duration::ZERO).migrate(&mut conn),
        Err(Error::Incomplete { version: 3, .. })
    ));
    // With the connection's foreign keys off, there is nothing to check.
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    seed_user_and_post(&conn);
    m.migrate(&mut conn).unwrap();
    assert_eq!(history_state(&conn, 3).as_deref(), Some("applied"));
}

#[test]
fn a_no_transaction_file_that_ran_but_could_not_be_marked_says_so() {
    // In both journal modes, at a level that reads after the run: the
    // lock timeout is waited once, not again by the checks after it.
    for (wal, level) in [
        (true, IntegrityCheck::Full),
        (false, IntegrityCheck::Changed),
    ] {
        could_not_be_marked(wal, level);
    }
}

/// The lock timeout of [`migrate_locked_out`]: long enough that how long a
/// run took tells waiting once from waiting twice on a slow machine.
const LOCKED_OUT_TIMEOUT: Duration = Duration::from_secs(2);

/// A run (lock timeout [`LOCKED_OUT_TIMEOUT`]) whose file calls
/// `hold_the_lock()` (see [`lock_taker`]): its error, and how long it took.
fn migrate_locked_out(
    m: &Migrations,
    conn: &mut Connection,
    db: &std::path::Path,
    begin: &'static str,
    level: IntegrityCheck,
) -> (Error, Duration) {
    let (release, holder) = lock_taker(conn, db, begin);
    let t0 = std::time::Instant::now();
    let err = m
        .migrator()
        .lock_timeout(LOCKED_OUT_TIMEOUT)
        .integrity_check(level)
        .migrate(conn)
        .unwrap_err();
    let waited = t0.elapsed();
    release.send(()).unwrap();
    holder.join().unwrap();
    (err, waited)
}

/// Registers `hold_the_lock()` on `conn`: a file that calls it makes
/// another connection run `begin` on `db` (taking a lock it keeps), and
/// returns once that is done. Send on the returned channel to release the
/// lock, then join the thread.
fn lock_taker(
    conn: &Connection,
    db: &std::path::Path,
    begin: &'static str,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    use std::sync::mpsc;
    let (go, went) = mpsc::channel::<()>();
    let (locked, has_lock) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let other_db = db.to_owned();
    let holder = std::thread::spawn(move || {
        went.recv().unwrap();
        let other = Connection::open(&other_db).unwrap();
        other.execute_batch(begin).unwrap();
        locked.send(()).unwrap();
        released.recv().unwrap();
        other.execute_batch("ROLLBACK").unwrap();
    });
    conn.create_scalar_function(
        "hold_the_lock",
        0,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        move |_| {
            go.send(()).unwrap();
            has_lock.recv().unwrap();
            Ok(0)
        },
    )
    .unwrap();
    (release, holder)
}

fn could_not_be_marked(wal: bool, level: IntegrityCheck) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    // Migration 2 is committed by the same run (so the run's checks have
    // something to check), and 3 changes the schema.
    let (_d, m) = load(&[
        ("001_t.sql", "CREATE TABLE t (x);"),
        ("002_u.sql", "CREATE TABLE u (x);"),
        (
            "003_nt.sql",
            "-- migrate:no-transaction\nINSERT INTO t VALUES ('done');\nCREATE TABLE v (x);\n\
             SELECT hold_the_lock();\n",
        ),
    ]);
    let mut conn = Connection::open(&db).unwrap();
    if wal {
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
    }
    m.migrate_to(&mut conn, 1).unwrap();
    // The file's last statement lets another connection take the lock
    // (exclusive: readers wait too, in rollback-journal mode), and returns
    // once it has it: the run cannot mark the file.
    let timeout = LOCKED_OUT_TIMEOUT;
    let (err, waited) = migrate_locked_out(&m, &mut conn, &db, "BEGIN EXCLUSIVE", level);
    match &err {
        Error::Migration {
            version: 3,
            outcome: migrate_core::Outcome::RanNotMarked,
            hint: migrate_core::Hint::Locked,
            ..
        } => {}
        other => panic!("wal={wal}: unexpected {other:?}"),
    }
    assert!(
        waited < timeout * 2,
        "wal={wal}: waited {waited:?} for a lock timeout of {timeout:?}"
    );
    let text = err.to_string();
    assert!(text.contains("it could not be marked applied"), "{text}");
    assert!(text.contains("nothing of it was rolled back"), "{text}");
    assert!(
        text.contains("the write lock stayed taken for the lock timeout (2s)"),
        "{text}"
    );
    assert!(!text.contains("was not applied"), "{text}");
    assert_eq!(count(&conn, "t"), 1);
    assert_eq!(history_state(&conn, 2).as_deref(), Some("applied"));
    assert_eq!(history_state(&conn, 3).as_deref(), Some("started"));
    // The next run says how to finish it by hand.
    let text = m
        .migrator()
        .lock_timeout(Duration::ZERO)
        .migrate(&mut conn)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("UPDATE main._migrate_history SET state = 'applied'"),
        "{text}"
    );
}

#[test]
fn a_schema_edit_while_an_earlier_file_left_writable_schema_on_is_checked() {
    let tables = "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
                  CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER);\n\
                  INSERT INTO parent VALUES (1);\n\
                  INSERT INTO child VALUES (1, 1), (2, 42);\n";
    let edit = "UPDATE sqlite_master SET sql = 'CREATE TABLE child (id INTEGER PRIMARY KEY, \
                parent_id INTEGER REFERENCES parent (id))' WHERE type = 'table' AND name = 'child';\n";
    for single in [false, true] {
        let (_d, m) = load(&[
            ("001_tables.sql", tables),
            ("002_on.sql", "PRAGMA writable_schema = ON;"),
            ("003_edit.sql", edit),
        ]);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let err = migrate_err(&m, &mut conn, single);
        assert!(
            matches!(err, Error::ForeignKeyViolation { version: 3, .. }),
            "single={single}: {err:?}"
        );
        assert_eq!(orphans(&conn), 0);
    }
}

#[test]
fn a_file_that_only_reads_sqlite_master_changes_no_schema() {
    let schema_version = |conn: &Connection| -> i64 {
        conn.query_row("PRAGMA schema_version", [], |r| r.get(0))
            .unwrap()
    };
    for file in [
        "INSERT INTO names VALUES ('x');",
        "INSERT INTO names SELECT name FROM sqlite_master WHERE type = 'table';",
        "INSERT INTO names SELECT name FROM sqlite_schema WHERE type = 'table';",
    ] {
        let (_d, m) = load(&[
            ("001_t.sql", "CREATE TABLE names (n TEXT);"),
            ("002_data.sql", file),
        ]);
        let mut conn = Connection::open_in_memory().unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let before = schema_version(&conn);
        m.migrate(&mut conn).unwrap();
        assert_eq!(schema_version(&conn), before, "{file}");
    }
}

#[test]
fn a_foreign_key_sqlite_cannot_check_names_the_file_that_broke_it() {
    // The rebuild loses the UNIQUE that posts' foreign key needs.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        (
            "002_posts.sql",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, email TEXT REFERENCES users(email));",
        ),
        (
            "003_rebuild.sql",
            "CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n\
             INSERT INTO users_new SELECT id, email FROM users;\n\
             DROP TABLE users;\n\
             ALTER TABLE users_new RENAME TO users;",
        ),
    ]);
    let mut conn = at_version_2_with_foreign_keys(&m);
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@x');
         INSERT INTO posts (email) VALUES ('a@x');",
    )
    .unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version: 3,
            file,
            outcome: migrate_core::Outcome::RolledBack,
            ..
        } => assert_eq!(file, "003_rebuild.sql"),
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("foreign key mismatch"), "{text}");
    assert!(text.contains("columns with a UNIQUE index"), "{text}");
    assert_eq!(snapshot(&conn), before);
}

/// A logger that keeps, per thread, the messages logged at INFO: what a
/// test's own run logged.
struct Capture;

thread_local! {
    static LOGGED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOGGED.with(|logged| logged.borrow_mut().push(record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// What `run` logged on this thread.
fn logged_by(run: impl FnOnce()) -> Vec<String> {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
    LOGGED.with(|logged| logged.borrow_mut().clear());
    run();
    LOGGED.with(|logged| logged.borrow_mut().drain(..).collect())
}

#[test]
fn only_committed_migrations_are_logged_as_applied() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
        ("003_fails.sql", "SELECT * FROM nope;"),
    ]);
    let applied = |logged: &[String]| -> Vec<String> {
        logged
            .iter()
            .filter(|l| l.starts_with("applied migration"))
            .map(|l| l.split(" in ").next().unwrap_or_default().to_owned())
            .collect()
    };
    // One transaction for all: nothing was applied.
    let logged = logged_by(|| {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(m
            .migrator()
            .single_transaction(true)
            .migrate(&mut conn)
            .is_err());
    });
    assert!(applied(&logged).is_empty(), "{logged:?}");
    // One each: 1 and 2 were.
    let logged = logged_by(|| {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(m.migrate(&mut conn).is_err());
    });
    assert_eq!(
        applied(&logged),
        [
            "applied migration 1 (001_a.sql)",
            "applied migration 2 (002_b.sql)"
        ],
        "{logged:?}"
    );
}

#[test]
fn a_database_to_adopt_on_a_read_only_connection_says_what_it_needs() {
    let (_d, m) = load(&[("001_a.sql", "CREATE TABLE a (x);")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE a (x); PRAGMA user_version = 1;")
        .unwrap();
    let mut conn =
        Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReadOnly {
                version: 1,
                latest: 1
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("has no migration history yet (user_version 1)"),
        "{text}"
    );
    assert!(!text.contains("pending"), "{text}");
}

#[test]
fn orphans_that_were_there_before_a_migration_count_and_the_error_says_so() {
    // A row that was already an orphan, in a table the migration writes,
    // is listed with the migration's own, and the advice says it counts.
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_touch.sql",
            "UPDATE posts SET body = trim(body);\n\
             INSERT INTO posts (id, user_id, body) VALUES (7, 99, 'new orphan');",
        ),
    ]);
    for single in [false, true] {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        m.migrate_to(&mut conn, 2).unwrap();
        conn.execute_batch("INSERT INTO posts (id, user_id, body) VALUES (1, 42, ' old ');")
            .unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let before = snapshot(&conn);
        let err = migrate_err(&m, &mut conn, single);
        match &err {
            Error::ForeignKeyViolation { violations, .. } => assert_eq!(
                violations,
                &[
                    "posts row 1 has no parent in users",
                    "posts row 7 has no parent in users",
                ]
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("a row of a table it writes that had no parent before it ran counts too"),
            "{err}"
        );
        assert_eq!(snapshot(&conn), before);
    }
}

#[test]
fn a_replacing_trigger_dropped_by_the_file_that_fired_it_is_still_checked() {
    let (_d, m) = load(&[
        ("001_users.sql", USERS),
        ("002_posts.sql", POSTS),
        (
            "003_trigger.sql",
            "CREATE TABLE signups (email TEXT);\n\
             CREATE TRIGGER signup AFTER INSERT ON signups BEGIN \
             INSERT OR REPLACE INTO users (id, email) VALUES (3, NEW.email); END;",
        ),
        (
            "004_fire_and_drop.sql",
            "INSERT INTO signups VALUES ('a@x');\nDROP TRIGGER signup;",
        ),
    ]);
    for level in [IntegrityCheck::Full, IntegrityCheck::Changed] {
        for single in [false, true] {
            let mut conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
            m.migrate_to(&mut conn, 3).unwrap();
            seed_user_and_post(&conn);
            refused_for_orphans(&m, &mut conn, level, single, 4);
        }
    }
}

#[test]
fn dropping_the_unique_index_a_foreign_key_needs_is_refused() {
    let (_d, m) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\
             CREATE UNIQUE INDEX users_email ON users (email);",
        ),
        (
            "002_posts.sql",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, email TEXT REFERENCES users(email));",
        ),
        ("003_drop_index.sql", "DROP INDEX users_email;"),
    ]);
    let mut conn = at_version_2_with_foreign_keys(&m);
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@x'); INSERT INTO posts (email) VALUES ('a@x');",
    )
    .unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version: 3, file, ..
        } => assert_eq!(file, "003_drop_index.sql"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("foreign key mismatch"), "{err}");
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn a_schema_edit_without_a_schema_version_bump_is_checked_as_edited() {
    // The file points an index at another column and does not bump
    // schema_version: the checks must see the schema it left, with foreign
    // keys off (no authorizer), in a transaction or not, at every level
    // that checks.
    let edit = "PRAGMA writable_schema = ON;\n\
                UPDATE sqlite_master SET sql = 'CREATE INDEX t_x ON t (y)' WHERE name = 't_x';\n\
                PRAGMA writable_schema = OFF;\n";
    for no_transaction in [false, true] {
        let file = if no_transaction {
            format!("-- migrate:no-transaction\n{edit}")
        } else {
            edit.to_owned()
        };
        let (_d, m) = load(&[
            (
                "001_t.sql",
                "CREATE TABLE t (x INTEGER, y INTEGER);\nCREATE INDEX t_x ON t (x);\n\
                 INSERT INTO t VALUES (1, 2), (3, 4);\nCREATE TABLE other (z);",
            ),
            ("002_edit.sql", &file),
        ]);
        for level in [IntegrityCheck::Full, IntegrityCheck::Changed] {
            let mut conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
            m.migrate_to(&mut conn, 1).unwrap();
            let err = m
                .migrator()
                .integrity_check(level)
                .migrate(&mut conn)
                .unwrap_err();
            assert!(
                matches!(&err, Error::Integrity { version: 2, problems }
                    if problems.iter().any(|p| p.contains("missing from index t_x"))),
                "{no_transaction} {level:?}: {err:?}"
            );
        }
    }
}

#[test]
fn a_no_transaction_file_failing_inside_its_own_transaction_is_rolled_back_first() {
    // The file's open transaction holds a schema edit that damages t; its
    // failure must roll that back before anything else reads the database,
    // and the error is the file's, not damage that is no longer there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let (_d, m) = load(&[
        (
            "001_t.sql",
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (NULL);",
        ),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\n\
             CREATE TABLE before_begin (x);\n\
             BEGIN;\n\
             PRAGMA writable_schema = ON;\n\
             UPDATE sqlite_master SET sql = 'CREATE TABLE t (x INTEGER NOT NULL)' WHERE name = 't';\n\
             PRAGMA schema_version = 100;\n\
             PRAGMA writable_schema = OFF;\n\
             INSERT INTO no_such_table VALUES (1);\n\
             COMMIT;\n",
        ),
    ]);
    let mut conn = Connection::open(&path).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version: 2,
            line: 8,
            outcome: migrate_core::Outcome::PartlyApplied,
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("the transaction the file began was rolled back"),
        "{err}"
    );
    assert!(conn.is_autocommit());
    assert!(table_exists(&conn, "before_begin"));
    drop(conn);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(migrate_tests::integrity(&conn), "ok");
    assert_eq!(history_state(&conn, 2).as_deref(), Some("started"));
    // With nothing before its BEGIN, nothing of the file is left: it is
    // unmarked, and runs again once fixed.
    for ending in [
        "INSERT INTO no_such_table VALUES (1);\nCOMMIT;\n",
        // SQLite itself ends the transaction.
        "INSERT OR ROLLBACK INTO u VALUES (1);\nCOMMIT;\n",
    ] {
        let (_d, m) = load(&[
            (
                "001_t.sql",
                "CREATE TABLE t (x);\nCREATE TABLE u (x UNIQUE);\nINSERT INTO u VALUES (1);",
            ),
            (
                "002_nt.sql",
                &format!("-- migrate:no-transaction\nBEGIN;\nINSERT INTO t VALUES (1);\n{ending}"),
            ),
        ]);
        let mut conn = Connection::open_in_memory().unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let before = snapshot(&conn);
        let err = m.migrate(&mut conn).unwrap_err();
        match &err {
            Error::Migration {
                version: 2,
                line: 4,
                outcome: migrate_core::Outcome::NothingApplied,
                ..
            } => {}
            other => panic!("{ending:?}: unexpected {other:?}"),
        }
        assert!(conn.is_autocommit());
        assert_eq!(snapshot(&conn), before, "{ending:?}");
        assert_eq!(history_state(&conn, 2), None, "{ending:?}");
    }
}

#[test]
fn a_temporary_trigger_of_the_connection_that_replaces_a_parent_row_is_checked() {
    // The application made a TEMP trigger on its connection; the framework
    // does not read temporary triggers, but knows the insert came from a
    // trigger it has not read.
    for log in [
        "CREATE TABLE log (email TEXT);",
        // A harmless main trigger with the temporary trigger's name.
        "CREATE TABLE log (email TEXT);\n\
         CREATE TRIGGER log_user AFTER DELETE ON log BEGIN SELECT 1; END;",
    ] {
        let (_d, m) = load(&[
            ("001_users.sql", USERS),
            ("002_posts.sql", POSTS),
            ("003_log.sql", log),
            ("004_insert.sql", "INSERT INTO log (email) VALUES ('a@x');"),
        ]);
        temporary_trigger_case(&m);
    }
}

fn temporary_trigger_case(m: &Migrations) {
    for level in [IntegrityCheck::Full, IntegrityCheck::Changed] {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        m.migrate_to(&mut conn, 3).unwrap();
        seed_user_and_post(&conn);
        conn.execute_batch(
            "CREATE TEMP TRIGGER log_user AFTER INSERT ON main.log BEGIN \
             INSERT OR REPLACE INTO users (id, email) VALUES (3, NEW.email); END;",
        )
        .unwrap();
        refused_for_orphans(m, &mut conn, level, false, 4);
    }
}

/// Migration 2, a `no-transaction` file, fails on a new connection (with
/// `recursive_triggers` on) after migration 1: its outcome, and the
/// connection.
fn no_transaction_failure(setup: &str, file: &str) -> (migrate_core::Outcome, Connection) {
    let (_d, m) = load(&[
        ("001_setup.sql", setup),
        ("002_nt.sql", &format!("-- migrate:no-transaction\n{file}")),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA recursive_triggers = ON")
        .unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    match m.migrate(&mut conn).unwrap_err() {
        Error::Migration {
            version: 2,
            outcome,
            ..
        } => (outcome, conn),
        other => panic!("{file}: unexpected {other:?}"),
    }
}

#[test]
fn a_no_transaction_statement_that_fails_part_way_keeps_the_file_marked() {
    use migrate_core::Outcome::{NothingApplied, PartlyApplied};
    let unique = "CREATE TABLE u (x UNIQUE);\nINSERT INTO u VALUES (3);";
    let guarded = "CREATE TABLE u (x INTEGER PRIMARY KEY, v);\nINSERT INTO u VALUES (3, 'old');\n\
                   CREATE TRIGGER u_ad AFTER DELETE ON u BEGIN SELECT RAISE(FAIL, 'no deletes'); END;";
    for (setup, file, outcome, rows) in [
        // In autocommit mode an `OR FAIL` conflict keeps the rows written
        // before it.
        (
            unique,
            "INSERT OR FAIL INTO u VALUES (1), (2), (3);",
            PartlyApplied,
            3,
        ),
        // REPLACE deletes row 3 (a deletion no change counter shows), then
        // the delete trigger fails the statement: the deletion is kept.
        (
            guarded,
            "REPLACE INTO u VALUES (3, 'new');",
            PartlyApplied,
            0,
        ),
        // A statement that fails whole leaves nothing: the file is unmarked.
        (unique, "INSERT INTO u VALUES (2), (3);", NothingApplied, 1),
    ] {
        let (got, conn) = no_transaction_failure(setup, file);
        assert_eq!(got, outcome, "{file}");
        assert_eq!(count(&conn, "u"), rows, "{file}");
        let state = if outcome == PartlyApplied {
            Some("started")
        } else {
            None
        };
        assert_eq!(history_state(&conn, 2).as_deref(), state, "{file}");
    }
}

#[test]
fn a_no_transaction_file_locked_out_of_its_own_transaction_waits_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let (_d, m) = load(&[
        ("001_t.sql", "CREATE TABLE t (x);"),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nBEGIN;\nSELECT hold_the_lock();\nINSERT INTO t VALUES (1);\nCOMMIT;\n",
        ),
    ]);
    let mut conn = Connection::open(&db).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    let timeout = LOCKED_OUT_TIMEOUT;
    let (err, waited) =
        migrate_locked_out(&m, &mut conn, &db, "BEGIN IMMEDIATE", IntegrityCheck::Full);
    match &err {
        Error::Migration {
            version: 2,
            line: 4,
            outcome: migrate_core::Outcome::NothingApplied,
            hint: migrate_core::Hint::Locked,
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(waited < timeout * 2, "waited {waited:?}");
    // Its history row could not be removed under the lock: the error says
    // how, and the next run stops at it rather than guess.
    let text = err.to_string();
    assert!(
        text.contains("remove it with `DELETE FROM main._migrate_history WHERE version = 2;`"),
        "{text}"
    );
    assert_eq!(count(&conn, "t"), 0);
    assert_eq!(history_state(&conn, 2).as_deref(), Some("started"));
    assert!(matches!(
        m.migrator().lock_timeout(Duration::ZERO).migrate(&mut conn),
        Err(Error::Incomplete { version: 2, .. })
    ));
}

/// A `no-transaction` file may turn the rollback journal off to load
/// faster. Without it, a later migration that fails after SQLite wrote
/// some of its pages to the file could not be rolled back: the mode is put
/// back after the file, and the caller's connection keeps its journal.
#[test]
fn journal_mode_off_from_a_no_transaction_file_does_not_leave_a_later_failure_half_applied() {
    let (_d, m) = load(&[
        (
            "001_fast.sql",
            "-- migrate:no-transaction\nPRAGMA journal_mode = OFF;\nCREATE TABLE log (x);\n",
        ),
        (
            "002_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\
             INSERT INTO users VALUES (1, 'a@x');",
        ),
        (
            // Enough rows that SQLite spills pages to the file before the
            // failure (its page cache is about 2 MB).
            "003_bulk.sql",
            "UPDATE users SET email = 'changed';\n\
             CREATE TABLE big (id INTEGER PRIMARY KEY, pad BLOB);\n\
             INSERT INTO big (pad) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
             SELECT randomblob(4000) FROM n;\n\
             SELECT * FROM no_such_table;\n",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let mut conn = Connection::open(&path).unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::Migration { version: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the database is as before it"),
        "{err}"
    );
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        journal, "delete",
        "the caller's connection keeps its journal"
    );
    drop(conn);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let email: String = conn
        .query_row("SELECT email FROM users WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    assert_eq!(email, "a@x", "migration 3 was rolled back");
    assert!(!table_exists(&conn, "big"));
    assert_eq!(migrate_tests::integrity(&conn), "ok");
}

/// A file that switches to WAL outside a transaction keeps its choice
/// (it is persistent, and has a journal).
#[test]
fn a_no_transaction_switch_to_wal_is_kept() {
    let (_d, m) = load(&[
        (
            "001_wal.sql",
            "-- migrate:no-transaction\nPRAGMA journal_mode = WAL;\n",
        ),
        ("002_users.sql", USERS),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let mut conn = Connection::open(&path).unwrap();
    m.migrate(&mut conn).unwrap();
    drop(conn);
    let conn = Connection::open(&path).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

/// What a file changes on the connection (an attached database,
/// `writable_schema`, settings such as `ignore_check_constraints`, and,
/// outside a transaction, `synchronous`) is put back after the run, whether it
/// failed or not: the caller's later statements must not write
/// `sqlite_master` or an attached file by accident.
#[test]
fn the_connection_is_left_as_it_was_after_a_run() {
    let settings = |conn: &Connection| {
        let values: Vec<i64> = [
            "SELECT count(*) FROM pragma_database_list",
            "PRAGMA writable_schema",
            "PRAGMA synchronous",
            "PRAGMA ignore_check_constraints",
            "PRAGMA legacy_alter_table",
            "PRAGMA recursive_triggers",
            "PRAGMA cache_size",
        ]
        .iter()
        .map(|sql| conn.query_row(sql, [], |r| r.get(0)).unwrap())
        .collect();
        values
    };
    let changes = "ATTACH ':memory:' AS scratch;\n\
                   CREATE TABLE scratch.t (x);\n\
                   PRAGMA writable_schema = ON;\n\
                   PRAGMA ignore_check_constraints = ON;\n\
                   PRAGMA legacy_alter_table = ON;\n\
                   PRAGMA recursive_triggers = ON;\n\
                   PRAGMA cache_size = 123;\n";
    let (_d, failing) = load(&[(
        "001_a.sql",
        &format!("CREATE TABLE a (x);\n{changes}SELECT * FROM nope;\n"),
    )]);
    let (_d2, passing) = load(&[("001_a.sql", &format!("CREATE TABLE a (x);\n{changes}"))]);
    // SQLite takes `synchronous` only outside a transaction.
    let (_d3, no_transaction) = load(&[(
        "001_a.sql",
        &format!(
            "-- migrate:no-transaction\nCREATE TABLE a (x);\n{changes}PRAGMA synchronous = OFF;\n"
        ),
    )]);
    for (m, ok) in [(&failing, false), (&passing, true), (&no_transaction, true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
        let before = settings(&conn);
        assert_eq!(before, [1, 0, 2, 0, 0, 0, -2000]);
        let result = m.migrate(&mut conn);
        assert_eq!(result.is_ok(), ok, "{result:?}");
        assert_eq!(settings(&conn), before, "ok: {ok}");
        assert_eq!(table_exists(&conn, "a"), ok);
    }
    // A database the caller attached stays attached.
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute_batch("ATTACH ':memory:' AS mine; PRAGMA synchronous = NORMAL")
        .unwrap();
    passing.migrate(&mut conn).unwrap();
    assert_eq!(settings(&conn), [2, 0, 1, 0, 0, 0, -2000]);
}

/// A table named `_migrate_history` that another tool made is named as
/// such, with what to do, by `migrate`, `verify` and `status`, and the
/// database is left alone.
#[test]
fn a_foreign_history_table_is_named_and_the_error_says_what_to_do() {
    let (_d, m) = load(&[("001_a.sql", "CREATE TABLE a (x);")]);
    for table in [
        "CREATE TABLE _migrate_history (id INTEGER PRIMARY KEY, version TEXT, script TEXT);\
         INSERT INTO _migrate_history VALUES (1, 'V1', 'init.sql');",
        // The right columns, with values of another kind.
        "CREATE TABLE _migrate_history (version, name, checksum, applied_at, duration_us, state, chain);\
         INSERT INTO _migrate_history VALUES ('V1', 'init', 'x', 'y', 'z', 'applied', 'c');",
    ] {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(table).unwrap();
        let before = snapshot(&conn);
        let errors = [
            m.migrate(&mut conn).unwrap_err(),
            m.verify(&conn).unwrap_err(),
            m.status(&conn).unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::Inconsistent { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains("the table main._migrate_history is not this crate's migration history"),
                "{text}"
            );
            assert!(text.contains("rename it"), "{text}");
        }
        assert_eq!(snapshot(&conn), before);
    }
}

/// `REINDEX` rebuilds a table's indexes: `Changed` checks that table, as
/// `Full` does, and finds an index that no longer fits its table.
#[test]
fn changed_checks_a_table_a_migration_reindexed() {
    let (_d, m) = load(&[("001_reindex.sql", "REINDEX t;")]);
    for level in [IntegrityCheck::Full, IntegrityCheck::Changed] {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table whose SQL was edited in place to say NOT NULL over a NULL
        // it holds: only a check of `t` sees it.
        conn.execute_batch(
            "CREATE TABLE keep (a);\
             CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER); CREATE INDEX tx ON t (x);\
             INSERT INTO t VALUES (1, NULL);\
             PRAGMA writable_schema = ON;\
             UPDATE sqlite_master SET sql = 'CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL)' WHERE name = 't';\
             PRAGMA schema_version = 100;\
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
        let result = m.migrator().integrity_check(level).migrate(&mut conn);
        assert!(
            matches!(result, Err(Error::Integrity { .. })),
            "{level:?}: {result:?}"
        );
    }
    // A REINDEX of another table leaves `t` unchecked by `Changed`.
    let (_d, other) = load(&[("001_reindex.sql", "REINDEX keep_a;")]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE keep (a); CREATE INDEX keep_a ON keep (a);\
         CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER);\
         INSERT INTO t VALUES (1, NULL);\
         PRAGMA writable_schema = ON;\
         UPDATE sqlite_master SET sql = 'CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL)' WHERE name = 't';\
         PRAGMA schema_version = 100;\
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    other
        .migrator()
        .integrity_check(IntegrityCheck::Changed)
        .migrate(&mut conn)
        .unwrap();
}

/// A caller whose connection has no rollback journal on disk
/// (`journal_mode` OFF, or MEMORY, which a crash loses): the run migrates
/// with one all the same, so a failing migration is rolled back even after
/// SQLite wrote some of its pages to the file, and the caller gets its mode
/// back.
#[test]
fn a_caller_without_a_rollback_journal_still_gets_a_failed_migration_rolled_back() {
    let (_d, m) = load(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\
             INSERT INTO users VALUES (1, 'a@x');",
        ),
        (
            "002_bulk.sql",
            "UPDATE users SET email = 'changed';\n\
             CREATE TABLE big (id INTEGER PRIMARY KEY, pad BLOB);\n\
             INSERT INTO big (pad) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
             SELECT randomblob(4000) FROM n;\n\
             SELECT * FROM no_such_table;\n",
        ),
    ]);
    for mode in ["off", "memory"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let mut conn = Connection::open(&path).unwrap();
        m.migrate_to(&mut conn, 1).unwrap();
        let set: String = conn
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(set, mode);
        let err = m.migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, Error::Migration { version: 2, .. }),
            "{err:?}"
        );
        let after: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(after, mode, "the caller's mode is put back");
        drop(conn);
        let conn = Connection::open(&path).unwrap();
        let email: String = conn
            .query_row("SELECT email FROM users WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(email, "a@x", "{mode}: migration 2 was rolled back");
        assert!(!table_exists(&conn, "big"));
        assert_eq!(migrate_tests::integrity(&conn), "ok");
    }
}

/// Only the runner writes the history: a file (up, down, or outside a
/// transaction) that writes `_migrate_history` is refused, and a
/// transactional one is rolled back, so a successful run always leaves a
/// history that verifies. A file that only reads it runs.
#[test]
fn a_file_that_writes_the_history_is_refused() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
        (
            "003_c.sql",
            "CREATE TABLE c (x);\nDELETE FROM _migrate_history WHERE version = 1;\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    match &err {
        Error::Migration {
            version: 3,
            outcome: migrate_core::Outcome::RolledBack,
            // The line that names the table.
            line: 2,
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("the file wrote the migration history table `_migrate_history`"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
    m.verify(&conn).unwrap();

    // A down file.
    let (_d, down) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
        (
            "002_b.down.sql",
            "DROP TABLE b;\nUPDATE main._migrate_history SET name = 'x' WHERE version = 1;\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    down.migrate(&mut conn).unwrap();
    let before = snapshot(&conn);
    assert!(matches!(
        down.migrate_to(&mut conn, 1),
        Err(Error::Migration { version: 2, .. })
    ));
    assert_eq!(snapshot(&conn), before);

    // Outside a transaction: what ran stays, and the file stays marked.
    let (_d, nt) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nINSERT INTO _migrate_history SELECT 9, 'x', checksum, applied_at, 0, chain, 'applied' FROM _migrate_history WHERE version = 1;\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    match nt.migrate(&mut conn).unwrap_err() {
        Error::Migration {
            version: 2,
            outcome: migrate_core::Outcome::RanNotMarked,
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }

    // Reading it is fine.
    let (_d, reads) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        (
            "002_b.sql",
            "CREATE TABLE b AS SELECT count(*) AS n FROM _migrate_history;",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    reads.migrate(&mut conn).unwrap();
    reads.verify(&conn).unwrap();
}

/// A database the caller attached stays attached, to the same file, even
/// when a file (outside a transaction: SQLite refuses DETACH inside one)
/// detached it or attached another file under its name.
#[test]
fn the_callers_attached_databases_are_left_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.db");
    let other = dir.path().join("other.db");
    let file_of = |conn: &Connection| -> Option<String> {
        conn.query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'mine'",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    let (_d, replaces) = load(&[(
        "001_a.sql",
        &format!(
            "-- migrate:no-transaction\nCREATE TABLE a (x);\nDETACH DATABASE mine;\nATTACH '{}' AS mine;\n",
            other.display()
        ),
    )]);
    let (_d2, detaches) = load(&[(
        "001_a.sql",
        "-- migrate:no-transaction\nCREATE TABLE a (x);\nDETACH DATABASE mine;\n",
    )]);
    for (i, m) in [&replaces, &detaches].into_iter().enumerate() {
        let path = dir.path().join(format!("app{i}.db"));
        let mut conn = Connection::open(&path).unwrap();
        conn.execute("ATTACH ?1 AS mine", [mine.to_str().unwrap()])
            .unwrap();
        let before = file_of(&conn);
        m.migrate(&mut conn).unwrap();
        assert_eq!(file_of(&conn), before);
        conn.execute_batch("CREATE TABLE IF NOT EXISTS mine.t (x)")
            .unwrap();
    }
    // An in-memory database a file detached cannot come back: the run
    // says so.
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("ATTACH ':memory:' AS mine").unwrap();
    let err = detaches.migrate(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("a migration detached the database mine that the connection had attached"),
        "{err}"
    );
}

fn pragma_of(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

/// A down file's `PRAGMA` is put back too: after a downgrade, the caller's
/// connection does not skip CHECK constraints.
#[test]
fn a_down_files_pragma_is_put_back() {
    let (_d, m) = load(&[
        ("001_t.sql", "CREATE TABLE t (x INTEGER CHECK (x > 0));"),
        ("002_u.sql", "CREATE TABLE u (y);"),
        (
            "002_u.down.sql",
            "PRAGMA ignore_check_constraints = ON;\nDROP TABLE u;\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    m.migrate(&mut conn).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    assert_eq!(pragma_of(&conn, "ignore_check_constraints"), 0);
    assert!(conn.execute("INSERT INTO t VALUES (-1)", []).is_err());
}

/// A file's `PRAGMA locking_mode = EXCLUSIVE` ends with the run: other
/// connections can read the database afterwards.
#[test]
fn a_files_exclusive_locking_mode_ends_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let (_d, m) = load(&[(
        "001_a.sql",
        "PRAGMA locking_mode = EXCLUSIVE;\nCREATE TABLE a (x);\n",
    )]);
    let mut conn = Connection::open(&path).unwrap();
    m.migrate(&mut conn).unwrap();
    let mode: String = conn
        .query_row("PRAGMA locking_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "normal");
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let read = other.query_row("SELECT count(*) FROM a", [], |r| r.get::<_, i64>(0));
    assert_eq!(read.unwrap(), 0);
}

/// The same with the schema name, which sets only main's mode (SQLite's
/// docs show this form): other connections can read the database after
/// the run, and an attached database's mode a file set ends with it too.
#[test]
fn a_files_schema_qualified_exclusive_locking_mode_ends_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let side = dir.path().join("side.db");
    let (_d, m) = load(&[(
        "001_a.sql",
        "PRAGMA main.locking_mode = EXCLUSIVE;\nPRAGMA side.locking_mode = EXCLUSIVE;\n\
         CREATE TABLE a (x);\nCREATE TABLE side.s (x);\n",
    )]);
    let mut conn = Connection::open(&path).unwrap();
    conn.execute("ATTACH ?1 AS side", [side.to_str().unwrap()])
        .unwrap();
    m.migrate(&mut conn).unwrap();
    for schema in ["main", "side"] {
        let mode: String = conn
            .query_row(&format!("PRAGMA {schema}.locking_mode"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "normal", "{schema}");
    }
    for (file, table) in [(&path, "a"), (&side, "s")] {
        let other = Connection::open(file).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        let read = other.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        });
        assert_eq!(read.unwrap(), 0, "{table}");
    }
}

/// Settings of the connection a file may set (beyond those above) are put
/// back too: after the run, `LIKE` ignores case again, columns are named
/// as before, the page limit is gone, and an attached database's settings
/// are the caller's.
#[test]
fn more_connection_settings_of_a_file_are_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("side.db");
    let (_d, m) = load(&[(
        "001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n\
         PRAGMA case_sensitive_like = ON;\n\
         PRAGMA temp_store = MEMORY;\n\
         PRAGMA max_page_count = 20;\n\
         PRAGMA full_column_names = ON;\n\
         PRAGMA short_column_names = OFF;\n\
         PRAGMA cache_spill = OFF;\n\
         PRAGMA side.max_page_count = 30;\n\
         PRAGMA side.cache_size = 7;\n\
         PRAGMA analysis_limit = 100;\n\
         UPDATE users SET email = lower(email) WHERE email LIKE 'A%';\n",
    )]);
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute("ATTACH ?1 AS side", [side.to_str().unwrap()])
        .unwrap();
    let probes = [
        "SELECT 'a' LIKE 'A'",
        "PRAGMA temp_store",
        "PRAGMA max_page_count",
        "PRAGMA full_column_names",
        "PRAGMA short_column_names",
        "PRAGMA cache_spill",
        "PRAGMA side.max_page_count",
        "PRAGMA side.cache_size",
        "PRAGMA analysis_limit",
    ];
    let read = |conn: &Connection| -> Vec<i64> {
        probes
            .iter()
            .map(|p| conn.query_row(p, [], |r| r.get(0)).unwrap())
            .collect()
    };
    let before = read(&conn);
    m.migrate(&mut conn).unwrap();
    assert_eq!(read(&conn), before, "{probes:?}");
    conn.execute("INSERT INTO users (email) VALUES ('Alice@example.com')", [])
        .unwrap();
    let found: i64 = conn
        .query_row(
            "SELECT count(*) FROM users WHERE email LIKE 'alice%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1, "LIKE ignores case again");
    let email: String = conn
        .query_row("SELECT email FROM users", [], |r| r.get("email"))
        .unwrap();
    assert_eq!(email, "Alice@example.com");
    conn.execute(
        "INSERT INTO users (email) SELECT hex(randomblob(2000)) FROM (WITH RECURSIVE n(i) AS \
         (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)",
        [],
    )
    .unwrap();
}

/// `PRAGMA journal_mode = OFF` without a schema name turns the journal off
/// for attached databases too: a migration that fails after writing one is
/// rolled back there as well.
#[test]
fn an_attached_database_without_a_journal_is_rolled_back_too() {
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("side.db");
    let (_d, m) = load(&[
        (
            "001_a.sql",
            "CREATE TABLE side.t (x);\nINSERT INTO side.t VALUES (1);\nCREATE TABLE a (x);\n",
        ),
        (
            "002_bad.sql",
            "UPDATE side.t SET x = 2;\nCREATE TABLE side.big (pad BLOB);\n\
             INSERT INTO side.big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) SELECT randomblob(4000) FROM n;\n\
             SELECT * FROM nope;\n",
        ),
    ]);
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute("ATTACH ?1 AS side", [side.to_str().unwrap()])
        .unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0))
        .unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::Migration { version: 2, .. }),
        "{err:?}"
    );
    let mode: String = conn
        .query_row("PRAGMA side.journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "off", "the caller's mode is put back");
    drop(conn);
    let side = Connection::open(&side).unwrap();
    let x: i64 = side.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 1);
    assert!(!table_exists(&side, "big"));
    assert_eq!(migrate_tests::integrity(&side), "ok");
}

/// When one setting cannot be put back (an in-memory database a file
/// detached), the others still are, and the error says which failed.
#[test]
fn a_setting_that_cannot_be_put_back_does_not_keep_the_others_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, m) = load(&[(
        "001_a.sql",
        "-- migrate:no-transaction\nCREATE TABLE a (x);\nPRAGMA synchronous = OFF;\nDETACH DATABASE scratch;\n",
    )]);
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute_batch("PRAGMA synchronous = FULL; ATTACH ':memory:' AS scratch;")
        .unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = MEMORY", [], |r| r.get(0))
        .unwrap();
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("a migration detached the database scratch"),
        "{err}"
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (mode.as_str(), pragma_of(&conn, "synchronous")),
        ("memory", 2)
    );
}

/// A read-only database of the caller's that a file detached comes back
/// read-only.
#[test]
fn a_read_only_attached_database_comes_back_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.db");
    Connection::open(&reference)
        .unwrap()
        .execute_batch("CREATE TABLE r (x);")
        .unwrap();
    let (_d, m) = load(&[(
        "001_a.sql",
        "-- migrate:no-transaction\nCREATE TABLE a (x);\nDETACH DATABASE ref;\n",
    )]);
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute(
        "ATTACH ?1 AS ref",
        [format!("file:{}?mode=ro", reference.display())],
    )
    .unwrap();
    assert!(conn.is_readonly("ref").unwrap());
    m.migrate(&mut conn).unwrap();
    assert!(conn.is_readonly("ref").unwrap());
    assert_eq!(count(&conn, "ref.r"), 0);
}

/// A trigger that names the history could write it later, behind the
/// runner's back (when another file runs, or when the runner records a
/// migration): a file that makes one is refused, also on a new database
/// (no history yet). An edit hidden after a NUL character is seen too.
#[test]
fn a_trigger_that_could_write_the_history_is_refused() {
    let on_users = "CREATE TABLE users (id INTEGER PRIMARY KEY);\n\
                    CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN\n\
                      DELETE FROM _migrate_history WHERE version = 1;\n\
                    END;\n";
    let on_history = "CREATE TEMP TRIGGER h AFTER INSERT ON main._migrate_history BEGIN\n\
                        DELETE FROM main._migrate_history WHERE version = 1;\n\
                      END;\n";
    let after_nul =
        "UPDATE _migrate_history SET checksum = checksum || char(0) || 'x' WHERE version = 1;\n";
    let cases = [
        // The first file of a new database.
        [on_users, "INSERT INTO users VALUES (1);"],
        ["CREATE TABLE a (x);", on_history],
        ["CREATE TABLE a (x);", after_nul],
    ];
    for (i, [first, second]) in cases.into_iter().enumerate() {
        let (_d, m) = load(&[("001_a.sql", first), ("002_b.sql", second)]);
        let mut conn = Connection::open_in_memory().unwrap();
        let before = snapshot(&conn);
        let err = m.migrate(&mut conn).unwrap_err();
        let failed = if i == 0 { 1 } else { 2 };
        assert!(
            matches!(err, Error::Migration { version, .. } if version == failed),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("which only the runner may write"),
            "{err}"
        );
        if i == 0 {
            assert_eq!(snapshot(&conn), before);
        } else {
            m.verify(&conn).unwrap();
        }
    }
}

/// `PRAGMA query_only` in a file would keep the runner from recording the
/// migration, and `PRAGMA count_changes` would make the runner's own writes
/// return rows: each is refused before it runs, naming the file and line,
/// in a transaction or not, and the caller's connection keeps it off.
#[test]
fn query_only_and_count_changes_in_a_file_are_refused_naming_the_line() {
    // `PRAGMA busy_timeout` too: it would change how long the rest of the
    // run waits for locks.
    for (pragma, value) in [
        ("main.query_only", "ON"),
        ("count_changes", "ON"),
        ("busy_timeout", "0"),
    ] {
        let name = pragma.trim_start_matches("main.");
        for prefix in ["", "-- migrate:no-transaction\n"] {
            let (_d, m) = load(&[
                ("001_a.sql", "CREATE TABLE a (x);"),
                (
                    "002_b.sql",
                    &format!("{prefix}CREATE TABLE b (x);\nPRAGMA {pragma} = {value};\n"),
                ),
            ]);
            let dir = tempfile::tempdir().unwrap();
            let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
            m.migrate_to(&mut conn, 1).unwrap();
            let before = snapshot(&conn);
            let was = pragma_of(&conn, name);
            let err = m.migrate(&mut conn).unwrap_err();
            let line = if prefix.is_empty() { 2 } else { 3 };
            assert!(
                matches!(err, Error::Migration { version: 2, line: l, .. } if l == line),
                "{pragma} {prefix:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("PRAGMA {name}")), "{err}");
            assert_eq!(pragma_of(&conn, name), was);
            // Nothing of the file ran, outside a transaction too: without
            // the line, it runs as if the first attempt had not happened.
            assert_eq!(snapshot(&conn), before, "{pragma} {prefix:?}");
            let (_d2, fixed) = load(&[
                ("001_a.sql", "CREATE TABLE a (x);"),
                ("002_b.sql", &format!("{prefix}CREATE TABLE b (x);\n")),
            ]);
            fixed.migrate(&mut conn).unwrap();
            assert!(table_exists(&conn, "b"));
            // The caller's own writes work as before.
            conn.execute("INSERT INTO b VALUES (1)", []).unwrap();
        }
    }
}

/// A connection with `PRAGMA query_only` on is told so, not told to open
/// the database read-write, and nothing is written.
#[test]
fn a_query_only_connection_is_told_about_query_only() {
    let (_d, m) = load(&[("001_a.sql", "CREATE TABLE a (x);")]);
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.execute_batch("PRAGMA query_only = ON").unwrap();
    let before = snapshot(&conn);
    let err = m.migrate(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("the connection has `PRAGMA query_only` on: turn it off"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
}

/// A write interrupted by a crash leaves a hot journal, which only a
/// read-write connection can roll back: `verify` and `status` on a
/// read-only connection say so (not "open it read-write to migrate"), and
/// work once any read-write connection has opened the database.
#[test]
fn verify_read_only_after_a_crash_mid_write_says_what_to_do() {
    let (_d, m) = load(&[(
        "001_t.sql",
        "CREATE TABLE t (x TEXT);\nINSERT INTO t VALUES ('a');\n",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    m.migrate(&mut Connection::open(&db).unwrap()).unwrap();
    // A writer in the middle of a big transaction (its cache too small to
    // hold it: pages reach the file, the journal holds the originals); the
    // files as they are now are what a crash leaves.
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch(
            "PRAGMA cache_size = 2; BEGIN; INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 \
             UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT hex(randomblob(100)) FROM n;",
        )
        .unwrap();
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&db, &crashed).unwrap();
    std::fs::copy(
        dir.path().join("app.db-journal"),
        dir.path().join("crashed.db-journal"),
    )
    .unwrap();
    writer.execute_batch("ROLLBACK").unwrap();
    let ro = || {
        Connection::open_with_flags(&crashed, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    };
    for text in [
        m.verify(&ro()).unwrap_err().to_string(),
        m.status(&ro()).unwrap_err().to_string(),
    ] {
        assert!(
            text.contains("interrupted by a crash") && text.contains("read-write once"),
            "{text}"
        );
        assert!(!text.contains("to migrate"), "{text}");
    }
    m.verify(&Connection::open(&crashed).unwrap()).unwrap();
    m.verify(&ro()).unwrap();
    let rows: i64 = ro()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the interrupted write was rolled back");
}

/// A `no-transaction` file changes the page size (what such files are
/// for) and never mentions `cache_spill`: afterwards the caller's
/// connection must behave like any connection to the database, not keep a
/// spill threshold computed from the old page size.
#[test]
fn a_page_size_change_does_not_leave_a_cache_spill_the_caller_never_set() {
    let (_d, m) = load(&[
        (
            "001_a.sql",
            "CREATE TABLE a (x);\nINSERT INTO a VALUES (1);\n",
        ),
        (
            "002_pages.sql",
            "-- migrate:no-transaction\nPRAGMA page_size = 8192;\nVACUUM;\n",
        ),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    m.migrate(&mut conn).unwrap();
    let spill =
        |c: &Connection| -> i64 { c.query_row("PRAGMA cache_spill", [], |r| r.get(0)).unwrap() };
    let fresh = Connection::open(&db).unwrap();
    fresh
        .query_row("SELECT count(*) FROM a", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 8192);
    assert_eq!(
        spill(&conn),
        spill(&fresh),
        "cache_spill of the migrated connection vs a fresh one"
    );
}

/// A file that turns `cache_spill` off: after the run, the caller lowers
/// its cache (as it may at any time) and the spill threshold must follow,
/// as it did before the run.
#[test]
fn cache_spill_is_put_back_as_it_was_not_pinned_to_a_number() {
    let (_d, m) = load(&[(
        "001_a.sql",
        "PRAGMA cache_spill = OFF;\nCREATE TABLE a (x);\n",
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(tmp.path().join("app.db")).unwrap();
    let mut untouched = Connection::open(tmp.path().join("other.db")).unwrap();
    m.migrate(&mut conn).unwrap();
    // The same migration without the PRAGMA line.
    let (_d2, plain) = load(&[("001_a.sql", "CREATE TABLE a (x);\n")]);
    plain.migrate(&mut untouched).unwrap();
    let after_shrink = |c: &Connection| -> i64 {
        c.execute_batch("PRAGMA cache_size = 10").unwrap();
        c.query_row("PRAGMA cache_spill", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(
        after_shrink(&conn),
        after_shrink(&untouched),
        "cache_spill after PRAGMA cache_size = 10"
    );
}

/// A connection with the deprecated `count_changes` on (a legacy program)
/// migrates (the run turns it off for itself), and has it on again after.
#[test]
fn a_caller_connection_with_count_changes_on_migrates() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        (
            "002_b.sql",
            "-- migrate:no-transaction\nCREATE TABLE b (x);\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA count_changes = ON").unwrap();
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.version(), 2);
    assert_eq!(pragma_of(&conn, "count_changes"), 1);
    m.verify(&conn).unwrap();
}

/// The README: "Setting `PRAGMA query_only` or the deprecated `PRAGMA
/// count_changes` is refused in any file". This file sets neither.
#[test]
fn a_no_transaction_file_with_a_column_named_count_changes_is_not_refused() {
    let (_d, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        (
            "002_stats.sql",
            "-- migrate:no-transaction\n\
             CREATE TABLE stats (day TEXT PRIMARY KEY, count_changes INTEGER NOT NULL);\n\
             VACUUM;\n",
        ),
    ]);
    let mut conn = Connection::open_in_memory().unwrap();
    let result = m.migrate(&mut conn);
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

/// A database of the caller's that a file detached is attached again with
/// the settings the caller had given it, not SQLite's defaults, whether or
/// not the file names them.
#[test]
fn a_detached_database_comes_back_with_the_callers_settings() {
    for pragma in ["", "PRAGMA recursive_triggers = ON;\n"] {
        let tmp = tempfile::tempdir().unwrap();
        let side = tmp.path().join("side.db");
        let (_d, m) = load(&[(
            "001_a.sql",
            &format!(
                "-- migrate:no-transaction\nDETACH DATABASE side;\n{pragma}CREATE TABLE a (x);\n"
            ),
        )]);
        let mut conn = Connection::open(tmp.path().join("app.db")).unwrap();
        conn.execute("ATTACH ?1 AS side", [side.to_str().unwrap()])
            .unwrap();
        conn.execute_batch("PRAGMA side.synchronous = OFF; PRAGMA side.cache_size = 55;")
            .unwrap();
        m.migrate(&mut conn).unwrap();
        assert_eq!(pragma_of(&conn, "side.synchronous"), 0, "{pragma:?}");
        assert_eq!(pragma_of(&conn, "side.cache_size"), 55, "{pragma:?}");
    }
}
