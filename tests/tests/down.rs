//! Down migrations: `migrate_to` (and `migrator().target(..)`) with a
//! version below the database's runs the `.down.sql` files of the applied
//! versions, newest first, each as a migration runs (DESIGN section 8).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;

use migrate_core::{Error, IntegrityCheck, IntegrityOutcome, Migrations, Outcome};
use migrate_tests::{fingerprint, integrity, migrations_dir, open_journal, schema_dump, snapshot};
use rusqlite::{Connection, OpenFlags};

/// Three versions, each with a down file; every down file notes in
/// `reverts` that it ran (the table is version 1's, so its own down file
/// drops it).
const FILES: &[(&str, &str)] = &[
    (
        "001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n\
         CREATE TABLE reverts (version INTEGER NOT NULL);\n",
    ),
    (
        "001_users.down.sql",
        "DROP TABLE reverts;\nDROP TABLE users;\n",
    ),
    (
        "002_posts.sql",
        "CREATE TABLE posts (\n    id INTEGER PRIMARY KEY,\n    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE\n);\n\
         CREATE INDEX posts_user ON posts (user_id);\n",
    ),
    (
        "002_posts.down.sql",
        "-- the index goes with the table\nINSERT INTO reverts VALUES (2);\nDROP TABLE posts;\n",
    ),
    (
        "003_seed.sql",
        "ALTER TABLE users ADD COLUMN name TEXT;\n\
         INSERT INTO users (email, name) VALUES ('a@example.com', 'A'), ('b@example.com', 'B');\n",
    ),
    (
        "003_seed.down.sql",
        "INSERT INTO reverts VALUES (3);\n\
         DELETE FROM users WHERE email IN ('a@example.com', 'b@example.com');\n\
         ALTER TABLE users DROP COLUMN name;\n",
    ),
];

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = migrations_dir(files);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

/// The files without the down files of these versions.
fn without_down(versions: &[u32]) -> Vec<(&'static str, &'static str)> {
    FILES
        .iter()
        .copied()
        .filter(|(name, _)| {
            !(name.ends_with(".down.sql")
                && versions
                    .iter()
                    .any(|v| name.starts_with(&format!("{v:03}_"))))
        })
        .collect()
}

fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn history(conn: &Connection) -> Vec<u32> {
    let mut stmt = conn
        .prepare("SELECT version FROM _migrate_history ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The versions whose down files ran, in order.
fn reverts(conn: &Connection) -> Vec<u32> {
    let mut stmt = conn
        .prepare("SELECT version FROM reverts ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A fresh database migrated up to `version` (without timing columns).
fn fresh(migrations: &Migrations, version: u32) -> String {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations.migrate_to(&mut conn, version).unwrap();
    fingerprint(&conn, false)
}

fn newest_chain(conn: &Connection) -> String {
    conn.query_row(
        "SELECT chain FROM _migrate_history ORDER BY version DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn versions(reported: &[migrate_core::Applied]) -> Vec<(u32, String)> {
    reported
        .iter()
        .map(|a| (a.version(), a.file_name().to_owned()))
        .collect()
}

/// A logger that records, on each test's thread, the messages logged, and
/// runs a closure when a message starting with a given text is logged: the
/// way to make another connection commit at an exact point of a run.
struct Capture;

type Hook = (&'static str, Box<dyn FnOnce()>);

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    static LOGGED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let message = record.args().to_string();
        LOGGED.with(|logged| logged.borrow_mut().push(message.clone()));
        let hook = HOOK.with(|hook| {
            let mut hook = hook.borrow_mut();
            match hook.as_ref() {
                Some((prefix, _)) if message.starts_with(prefix) => hook.take(),
                _ => None,
            }
        });
        if let Some((_, run)) = hook {
            run();
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

fn install_logger() {
    // Once per test process; the tests that use it may run in any order.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

/// What this thread logged since the last call.
fn logged() -> Vec<String> {
    LOGGED.with(|logged| std::mem::take(&mut *logged.borrow_mut()))
}

fn arm(prefix: &'static str, run: impl FnOnce() + 'static) {
    HOOK.with(|hook| *hook.borrow_mut() = Some((prefix, Box::new(run))));
}

fn hook_ran() -> bool {
    HOOK.with(|hook| hook.borrow().is_none())
}

#[test]
fn reverts_newest_first_to_a_middle_version_and_to_zero() {
    install_logger();
    let (_d, m) = load(FILES);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate(&mut conn).unwrap();
    conn.execute("INSERT INTO users (email) VALUES ('kept@example.com')", [])
        .unwrap();
    logged();

    let report = m.migrate_to(&mut conn, 1).unwrap();
    assert_eq!((report.from_version(), report.version()), (3, 1));
    assert!(report.applied().is_empty());
    assert_eq!(
        versions(report.reverted()),
        [
            (3, "003_seed.down.sql".to_owned()),
            (2, "002_posts.down.sql".to_owned())
        ]
    );
    assert_eq!(
        report.integrity(),
        IntegrityOutcome::Ok(IntegrityCheck::Full)
    );
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("reverted 3  seed "), "{text}");
    assert!(lines[1].starts_with("reverted 2  posts "), "{text}");
    assert!(lines[1].ends_with(" ms"), "{text}");
    assert_eq!(lines[2], "now at version 1 (was 3), integrity ok");
    // The log says what ran, as for an up run.
    let log = logged();
    for expected in [
        "reverting migration 3 (003_seed.down.sql)",
        "reverted migration 3 (003_seed.down.sql) in ",
        "reverted migration 2 (002_posts.down.sql) in ",
        "database reverted from version 3 to 1",
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(expected)),
            "{expected:?} not in {log:#?}"
        );
    }

    // The schema, the history and user_version of a database migrated to
    // version 1, plus the row the application wrote and the notes of the
    // down files, in the order they ran.
    assert_eq!(user_version(&conn), 1);
    assert_eq!(history(&conn), [1]);
    assert_eq!(reverts(&conn), [3, 2]);
    conn.execute("DELETE FROM reverts", []).unwrap();
    conn.execute("DELETE FROM users", []).unwrap();
    assert_eq!(fingerprint(&conn, false), fresh(&m, 1));
    assert_eq!(integrity(&conn), "ok");
    m.verify(&conn).unwrap();

    // To 0, through the builder, with the check of the changed tables.
    let report = m
        .migrator()
        .target(0)
        .integrity_check(IntegrityCheck::Changed)
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(
        versions(report.reverted()),
        [(1, "001_users.down.sql".to_owned())]
    );
    assert_eq!(report.version(), 0);
    assert_eq!(schema_dump(&conn), "");
    assert_eq!(user_version(&conn), 0);
    assert!(history(&conn).is_empty(), "the history table stays, empty");
    assert_eq!(integrity(&conn), "ok");
    m.verify(&conn).unwrap();
    assert_eq!(m.status(&conn).unwrap().pending(), [1, 2, 3]);
}

#[test]
fn a_missing_down_file_is_refused_and_nothing_changes() {
    // Versions 2 and 3 have no down file; version 4 has one.
    let mut files = without_down(&[2, 3]);
    files.push(("004_more.sql", "CREATE TABLE more (x);\n"));
    files.push(("004_more.down.sql", "DROP TABLE more;\n"));
    let (_d, m) = load(&files);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate(&mut conn).unwrap();
    let before = snapshot(&conn);

    for target in [0, 1, 2] {
        let err = m.migrate_to(&mut conn, target).unwrap_err();
        assert!(
            matches!(err, Error::Target { target: t, .. } if t == target),
            "{err}"
        );
        let text = err.to_string();
        let needed = if target < 2 {
            "versions 3, 2 have"
        } else {
            "version 3 has"
        };
        assert!(text.contains(needed), "{text}");
        assert!(
            text.contains("003_seed.down.sql for 003_seed.sql"),
            "{text}"
        );
        assert_eq!(
            text.contains("002_posts.down.sql for 002_posts.sql"),
            target < 2,
            "{text}"
        );
        assert!(
            text.contains("migrate to version 3 or above; nothing was changed"),
            "{text}"
        );
        // Version 4's down file did not run either.
        assert_eq!(snapshot(&conn), before, "target {target}");
    }
    // Version 4 can be reverted.
    let report = m.migrate_to(&mut conn, 3).unwrap();
    assert_eq!(
        versions(report.reverted()),
        [(4, "004_more.down.sql".to_owned())]
    );
}

#[test]
fn a_no_transaction_down_file_is_refused_and_nothing_changes() {
    let mut files = without_down(&[3]);
    files.push((
        "003_seed.down.sql",
        "-- migrate:no-transaction\nDELETE FROM users;\nVACUUM;\n",
    ));
    let (_d, m) = load(&files);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate(&mut conn).unwrap();
    let before = snapshot(&conn);
    let err = m.migrate_to(&mut conn, 1).unwrap_err();
    assert!(matches!(err, Error::Target { target: 1, .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("003_seed.down.sql of version 3 is marked `-- migrate:no-transaction`"),
        "{text}"
    );
    assert!(text.contains("migrate to version 3 or above"), "{text}");
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn a_failing_down_statement_is_rolled_back_and_names_the_file_and_line() {
    let mut files = without_down(&[2]);
    files.push((
        "002_posts.down.sql",
        "INSERT INTO reverts VALUES (2);\nDROP TABLE posts;\n\n-- then a mistake\nINSERT INTO nowhere\n  VALUES (1);\n",
    ));
    for single in [false, true] {
        let (_d, m) = load(&files);
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut conn = Connection::open(file.path()).unwrap();
        m.migrate(&mut conn).unwrap();
        let before = snapshot(&conn);

        let err = m
            .migrator()
            .single_transaction(single)
            .target(1)
            .migrate(&mut conn)
            .unwrap_err();
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
                assert_eq!(*version, 2, "{err}");
                assert_eq!(file, "002_posts.down.sql", "{err}");
                assert_eq!(*line, 5, "{err}");
                assert_eq!(statement, "INSERT INTO nowhere", "{err}");
                assert!(message.contains("no such table: nowhere"), "{err}");
                let expected = if single {
                    Outcome::AllRolledBack
                } else {
                    Outcome::RevertRolledBack
                };
                assert_eq!(*outcome, expected, "{err}");
            }
            other => panic!("single={single}: {other}"),
        }
        assert!(
            err.to_string().contains("failed at 002_posts.down.sql:5"),
            "{err}"
        );
        if !single {
            // Said as a revert, not as an up migration rolled back.
            assert!(
                err.to_string()
                    .contains("the revert was rolled back: this version stays applied"),
                "{err}"
            );
        }
        assert!(conn.is_autocommit());
        if single {
            // One transaction: version 3's revert is rolled back too.
            assert_eq!(snapshot(&conn), before, "single={single}");
        } else {
            // Version 3's revert was committed; nothing of version 2's is.
            assert_eq!(user_version(&conn), 2);
            assert_eq!(history(&conn), [1, 2]);
            assert_eq!(reverts(&conn), [3]);
            conn.execute("DELETE FROM reverts", []).unwrap();
            assert_eq!(fingerprint(&conn, false), fresh(&m, 2));
        }
        assert_eq!(integrity(&conn), "ok");
    }
}

#[test]
fn a_downgrade_is_verified_first_and_refused_untouched() {
    let (dir, m) = load(FILES);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate(&mut conn).unwrap();
    let before = snapshot(&conn);

    // Drift: version 2's up file was edited after it was applied.
    std::fs::write(
        dir.path().join("002_posts.sql"),
        "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let edited = Migrations::from_dir(dir.path()).unwrap();
    let err = edited.migrate_to(&mut conn, 1).unwrap_err();
    assert!(
        matches!(&err, Error::Drift { version: 2, file, .. } if file == "002_posts.sql"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);

    // A history that disagrees with user_version.
    conn.execute_batch("PRAGMA user_version = 2").unwrap();
    let before = snapshot(&conn);
    let err = m.migrate_to(&mut conn, 1).unwrap_err();
    assert!(matches!(err, Error::Inconsistent { .. }), "{err}");
    assert_eq!(snapshot(&conn), before);
    conn.execute_batch("PRAGMA user_version = 3").unwrap();

    // An unfinished no-transaction migration.
    conn.execute(
        "UPDATE _migrate_history SET state = 'started' WHERE version = 3",
        [],
    )
    .unwrap();
    let before = snapshot(&conn);
    // (Not waiting for another instance to finish it.)
    let err = m
        .migrator()
        .lock_timeout(std::time::Duration::ZERO)
        .target(1)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(matches!(err, Error::Incomplete { version: 3, .. }), "{err}");
    assert_eq!(snapshot(&conn), before);

    // A database newer than the program.
    conn.execute(
        "UPDATE _migrate_history SET state = 'applied' WHERE version = 3",
        [],
    )
    .unwrap();
    let (_older_dir, older) = load(&without_down(&[])[..4]);
    let before = snapshot(&conn);
    let err = older.migrate_to(&mut conn, 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownVersion {
                database: 3,
                latest: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn down_then_up_again_reapplies_and_the_start_up_check_still_holds() {
    install_logger();
    let (dir, m) = load(FILES);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate(&mut conn).unwrap();
    m.migrate_to(&mut conn, 1).unwrap();
    conn.execute("DELETE FROM reverts", []).unwrap();

    // The newest row is version 1's, with the hash chain of version 1: the
    // start-up check vouches for it without the full read.
    let mut at_one = Connection::open_in_memory().unwrap();
    m.migrate_to(&mut at_one, 1).unwrap();
    assert_eq!(newest_chain(&conn), newest_chain(&at_one));
    logged();
    let report = m.migrate(&mut conn).unwrap();
    let log = logged();
    assert!(
        log.iter()
            .any(|l| l == "database at version 1 verified; migrating to version 3"),
        "the start-up check did not vouch for version 1: {log:#?}"
    );

    // Re-applied and recorded as on a fresh database.
    assert_eq!(
        versions(report.applied()),
        [
            (2, "002_posts.sql".to_owned()),
            (3, "003_seed.sql".to_owned())
        ]
    );
    assert!(report.reverted().is_empty());
    assert_eq!(history(&conn), [1, 2, 3]);
    assert_eq!(user_version(&conn), 3);
    assert_eq!(fingerprint(&conn, false), fresh(&m, 3));
    let mut at_three = Connection::open_in_memory().unwrap();
    m.migrate(&mut at_three).unwrap();
    assert_eq!(newest_chain(&conn), newest_chain(&at_three));
    m.verify(&conn).unwrap();

    // Down and up once more, in one transaction each way.
    m.migrator()
        .single_transaction(true)
        .target(0)
        .migrate(&mut conn)
        .unwrap();
    assert!(history(&conn).is_empty());
    m.migrator()
        .single_transaction(true)
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(fingerprint(&conn, false), fresh(&m, 3));

    // After a downgrade, an up-to-date run at that version is the start-up
    // check alone, and it still refuses an edited file.
    m.migrate_to(&mut conn, 2).unwrap();
    logged();
    let again = m.migrate_to(&mut conn, 2).unwrap();
    assert!(again.applied().is_empty() && again.reverted().is_empty());
    assert_eq!(
        logged(),
        ["database is up to date at version 2"],
        "one read, nothing more"
    );
    std::fs::write(
        dir.path().join("001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let edited = Migrations::from_dir(dir.path()).unwrap();
    let err = edited.migrate_to(&mut conn, 2).unwrap_err();
    assert!(matches!(err, Error::Drift { version: 1, .. }), "{err}");
}

#[test]
fn a_down_file_that_breaks_a_foreign_key_is_rolled_back() {
    let files = [
        (
            "001_parent.sql",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\n\
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\n",
        ),
        ("002_seed.sql", "INSERT INTO parent VALUES (1, 'one');\n"),
        ("002_seed.down.sql", "DELETE FROM parent WHERE id = 1;\n"),
        (
            "003_rebuild.sql",
            "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT, extra TEXT);\n\
             INSERT INTO parent_new SELECT id, name, NULL FROM parent;\n\
             DROP TABLE parent;\n\
             ALTER TABLE parent_new RENAME TO parent;\n",
        ),
        (
            "003_rebuild.down.sql",
            "CREATE TABLE parent_old (id INTEGER PRIMARY KEY, name TEXT);\n\
             INSERT INTO parent_old SELECT id, name FROM parent;\n\
             DROP TABLE parent;\n\
             ALTER TABLE parent_old RENAME TO parent;\n",
        ),
    ];
    let (_d, m) = load(&files);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    m.migrate(&mut conn).unwrap();
    conn.execute("INSERT INTO child VALUES (10, 1)", [])
        .unwrap();

    // The rebuild in version 3's down file drops the parent table: with
    // foreign keys off for the run, the child row is kept.
    let report = m.migrate_to(&mut conn, 2).unwrap();
    assert_eq!(report.reverted().len(), 1);
    let children: i64 = conn
        .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
        .unwrap();
    assert_eq!(children, 1, "the down file's table rebuild cascaded");

    // Version 2's down file deletes the parent the child row points to.
    let before = snapshot(&conn);
    let err = m.migrate_to(&mut conn, 1).unwrap_err();
    match &err {
        Error::ForeignKeyViolation {
            version,
            file,
            violations,
            outcome,
        } => {
            assert_eq!(*version, 2);
            assert_eq!(file, "002_seed.down.sql");
            assert_eq!(violations.len(), 1, "{err}");
            assert!(violations[0].contains("child row 10"), "{err}");
            assert_eq!(*outcome, Outcome::RevertRolledBack);
        }
        other => panic!("{other}"),
    }
    assert_eq!(snapshot(&conn), before);
    let on: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(on, "foreign_keys restored after the failed run");
}

#[test]
fn a_target_equal_to_the_current_version_does_nothing() {
    let (_d, m) = load(FILES);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut conn = Connection::open(file.path()).unwrap();
    m.migrate_to(&mut conn, 2).unwrap();
    let before = snapshot(&conn);
    let report = m.migrate_to(&mut conn, 2).unwrap();
    assert!(report.applied().is_empty() && report.reverted().is_empty());
    assert_eq!((report.from_version(), report.version()), (2, 2));
    assert_eq!(report.integrity(), IntegrityOutcome::NotRun);
    assert_eq!(
        report.to_string(),
        "nothing to apply: the database is at version 2"
    );
    assert_eq!(snapshot(&conn), before);

    // A read-only connection can check that much, and is refused a
    // downgrade with a message that says why, untouched.
    let mut read_only =
        Connection::open_with_flags(file.path(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    assert_eq!(m.migrate_to(&mut read_only, 2).unwrap().version(), 2);
    let err = m.migrate_to(&mut read_only, 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReadOnly {
                version: 2,
                latest: 1
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is at version 2: reverting it to version 1 needs a write"),
        "{err}"
    );
    assert_eq!(snapshot(&conn), before);
}

/// Another connection moves the database between this run's read and its
/// write lock, or between two of its steps: the run re-reads inside the
/// write transaction, never reverts a version twice, and stops rather
/// than revert what it did not plan to.
#[test]
fn another_connection_that_migrated_meanwhile_is_handled() {
    install_logger();
    let mut files = FILES.to_vec();
    files.push(("004_more.sql", "CREATE TABLE more (x);\n"));
    files.push((
        "004_more.down.sql",
        "INSERT INTO reverts VALUES (4);\nDROP TABLE more;\n",
    ));
    for wal in [false, true] {
        let (dir, m) = load(&files);
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let other = move |db: &std::path::Path, dir: &std::path::Path, target: u32| {
            let db = db.to_owned();
            let migrations = Migrations::from_dir(dir).unwrap();
            move || {
                let mut other = Connection::open(&db).unwrap();
                migrations.migrate_to(&mut other, target).unwrap();
            }
        };

        // 1. The same downgrade, done by the other connection first: this
        // run finds it done and reverts nothing.
        let mut conn = open_journal(&db, wal);
        m.migrate_to(&mut conn, 3).unwrap();
        arm(
            "database at version 3 verified; reverting to version 1",
            other(&db, dir.path(), 1),
        );
        let report = m.migrate_to(&mut conn, 1).unwrap();
        assert!(hook_ran(), "wal={wal}: the hook did not run");
        assert_eq!(report.version(), 1, "wal={wal}");
        assert!(
            report.reverted().is_empty(),
            "wal={wal}: reverted {:?} again",
            report.reverted()
        );
        assert_eq!(reverts(&conn), [3, 2], "wal={wal}: each down file ran once");
        assert_eq!(history(&conn), [1]);
        conn.execute("DELETE FROM reverts", []).unwrap();

        // 2. Between two steps of this run, the other connection reverts
        // the next version: this run goes on from where it finds the
        // database, and reverts that version only once.
        m.migrate_to(&mut conn, 3).unwrap();
        arm(
            "reverted migration 3 (003_seed.down.sql)",
            other(&db, dir.path(), 1),
        );
        let report = m.migrate_to(&mut conn, 0).unwrap();
        assert!(hook_ran(), "wal={wal}: the hook did not run");
        assert_eq!(
            versions(report.reverted()),
            [
                (3, "003_seed.down.sql".to_owned()),
                (1, "001_users.down.sql".to_owned())
            ],
            "wal={wal}"
        );
        assert_eq!(report.version(), 0);
        assert!(history(&conn).is_empty());
        assert_eq!(schema_dump(&conn), "");

        // 3. The other connection (a newer deploy) migrates up between this
        // run's read and its write lock: this run stops, changing nothing.
        m.migrate_to(&mut conn, 3).unwrap();
        arm(
            "database at version 3 verified; reverting to version 1",
            other(&db, dir.path(), 4),
        );
        let err = m.migrate_to(&mut conn, 1).unwrap_err();
        assert!(hook_ran(), "wal={wal}: the hook did not run");
        assert!(matches!(err, Error::Target { target: 1, .. }), "{err}");
        assert!(
            err.to_string().contains(
                "another connection migrated it up to version 4; this run changed nothing"
            ),
            "{err}"
        );
        assert_eq!(user_version(&conn), 4);
        assert_eq!(history(&conn), [1, 2, 3, 4]);
        assert!(reverts(&conn).is_empty());
        assert_eq!(fingerprint(&conn, false), fresh(&m, 4));
        m.verify(&conn).unwrap();
        assert_eq!(integrity(&conn), "ok");

        // 4. The same between two steps, after this run committed one
        // revert: the error says what this run did, and not that its
        // version stays (the other connection moved the database on).
        m.migrate_to(&mut conn, 3).unwrap();
        conn.execute("DELETE FROM reverts", []).unwrap();
        arm(
            "reverted migration 3 (003_seed.down.sql)",
            other(&db, dir.path(), 4),
        );
        let err = m.migrate_to(&mut conn, 1).unwrap_err();
        assert!(hook_ran(), "wal={wal}: the hook did not run");
        assert!(matches!(err, Error::Target { target: 1, .. }), "{err}");
        assert!(
            err.to_string().contains(
                "another connection migrated it up to version 4; this run had already \
                 reverted it to version 2 and committed that, before the other connection's \
                 change; run again"
            ),
            "{err}"
        );
        assert_eq!(user_version(&conn), 4);
        assert_eq!(history(&conn), [1, 2, 3, 4]);
        assert_eq!(reverts(&conn), [3], "wal={wal}: each down file ran once");
        m.verify(&conn).unwrap();
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        std::fs::remove_file(&db).unwrap();
        let _ = std::fs::remove_file(tmp.path().join("app.db-wal"));
        let _ = std::fs::remove_file(tmp.path().join("app.db-shm"));
    }
}
