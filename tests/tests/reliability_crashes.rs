//! Crashes: a child process is SIGKILLed in the middle of a long migration
//! (rollback journal and WAL, at several points), and between the steps of a
//! `no-transaction` migration. Afterwards the database is exactly as before
//! the migration or exactly as after it, never in between, and
//! `PRAGMA integrity_check` says ok.
//!
//! Environment: `MIGRATE_FULL=1` rebuilds a table of 1,200,000 rows (the
//! default is 200,000 rows, which still takes long enough to be killed at
//! several points).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use migrate_core::{Error, IntegrityCheck, Migrations};
use migrate_tests::{fingerprint, full_size, integrity, open, snapshot, ChildProcess};
use rusqlite::Connection;

const CHILD: &str = env!("CARGO_BIN_EXE_migrate_child");

fn rows() -> u64 {
    if full_size() {
        1_200_000
    } else {
        200_000
    }
}

/// Migration 1 fills `items`; migration 2 rebuilds it (create, copy, drop,
/// rename), indexes it and updates every row: a long transaction that
/// touches every page.
fn long_migration_dir(rows: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_items.sql"),
        format!(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);\n\
             INSERT INTO items (id, name, qty)\n\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})\n\
             SELECT i, printf('item-%08d', (i * 7919) % {rows}), i % 100 FROM n;\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_rebuild_items.sql"),
        "CREATE TABLE items_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL, note TEXT NOT NULL);\n\
         INSERT INTO items_new (id, name, qty, note) SELECT id, name, qty * 2, 'rebuilt ' || name FROM items;\n\
         DROP TABLE items;\n\
         ALTER TABLE items_new RENAME TO items;\n\
         CREATE INDEX items_by_name ON items (name);\n\
         UPDATE items SET qty = qty + 1;\n",
    )
    .unwrap();
    dir
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Bytes in the rollback journal or the WAL next to `db`.
fn journal_bytes(db: &Path) -> u64 {
    ["-journal", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(sidecar(db, s)).ok())
        .map(|m| m.len())
        .sum()
}

fn sigkill_during_long_migration(wal: bool) {
    let rows = rows();
    let migrations_dir = long_migration_dir(rows);
    let migrations = Migrations::from_dir(migrations_dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.db");
    {
        let mut conn = open(&base);
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .unwrap();
        }
        migrations.migrate_to(&mut conn, 1).unwrap();
    }
    // Closing the last connection checkpointed the WAL: the file alone is
    // the database at version 1.
    let before = fingerprint(&open(&base), false);
    let dir_arg = migrations_dir.path().to_str().unwrap().to_owned();
    let run = |db: &Path| {
        std::fs::copy(&base, db).unwrap();
        let mut child = ChildProcess::spawn(CHILD, &["migrate", db.to_str().unwrap(), &dir_arg]);
        assert_eq!(child.line(), "start");
        (child, Instant::now())
    };

    // A complete run in a child: the state after migration 2.
    let complete = tmp.path().join("complete.db");
    let (mut child, _) = run(&complete);
    let result = child.line();
    assert!(child.wait().success(), "{result}");
    let after = fingerprint(&open(&complete), false);
    assert_ne!(before, after);
    assert!(after.contains("items_by_name"), "{after}");
    // How long migration 2 itself takes (without the integrity check).
    let timed = tmp.path().join("timed.db");
    std::fs::copy(&base, &timed).unwrap();
    let t0 = Instant::now();
    migrations
        .migrator()
        .integrity_check(IntegrityCheck::Off)
        .migrate(&mut open(&timed))
        .unwrap();
    let migration_time = t0.elapsed();

    let mut killed_in_the_middle = 0;
    let mut killed_with_journal = 0;
    for fraction in [0.02, 0.1, 0.25, 0.45, 0.7, 0.9] {
        let db = tmp.path().join(format!("killed-{fraction}.db"));
        let (mut child, t0) = run(&db);
        std::thread::sleep(
            migration_time
                .mul_f64(fraction)
                .saturating_sub(t0.elapsed()),
        );
        let running = child.child.try_wait().unwrap().is_none();
        let journal = journal_bytes(&db);
        child.child.kill().unwrap(); // SIGKILL
        let status = child.wait();
        if running {
            assert!(!status.success(), "{status}");
        }

        let conn = open(&db);
        assert_eq!(
            integrity(&conn),
            "ok",
            "wal={wal}, killed at {fraction} of the run"
        );
        let state = fingerprint(&conn, false);
        let label = if state == before {
            "before"
        } else if state == after {
            "after"
        } else {
            panic!(
                "wal={wal}, killed at {fraction} of the run: the database is neither as before \
                 migration 2 nor as after it:\n{state}\nbefore:\n{before}\nafter:\n{after}"
            );
        };
        eprintln!(
            "wal={wal}: killed at {:.0}% of {migration_time:?} (running: {running}, journal/WAL bytes: \
             {journal}): database as {label} migration 2",
            fraction * 100.0
        );
        if running && state == before {
            killed_in_the_middle += 1;
            if journal > 0 {
                killed_with_journal += 1;
            }
        }
        // The next run finishes the job.
        drop(conn);
        let mut conn = open(&db);
        migrations.migrate(&mut conn).unwrap();
        assert_eq!(fingerprint(&conn, false), after);
        assert_eq!(integrity(&conn), "ok");
    }
    assert!(
        killed_in_the_middle >= 3,
        "wal={wal}: only {killed_in_the_middle} kills landed inside the migration"
    );
    assert!(
        killed_with_journal >= 1,
        "wal={wal}: no kill left a journal or WAL to recover from"
    );
}

#[test]
fn sigkill_in_the_middle_of_a_long_migration_rollback_journal() {
    sigkill_during_long_migration(false);
}

#[test]
fn sigkill_in_the_middle_of_a_long_migration_wal() {
    sigkill_during_long_migration(true);
}

/// Migration 2 runs outside a transaction: its first statement creates a
/// table, its second is slow (it counts to 100 million before writing one
/// row), so the child is killed between the two steps.
fn no_transaction_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_base.sql"),
        "CREATE TABLE base (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO base (v) VALUES ('x'), ('y');\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_two_steps.sql"),
        "-- migrate:no-transaction\n\
         CREATE TABLE step_one (id INTEGER PRIMARY KEY, n INTEGER);\n\
         INSERT INTO step_one (n) SELECT count(*) FROM\n\
         (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000000) SELECT i FROM c);\n",
    )
    .unwrap();
    dir
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn sigkill_inside_no_transaction_migration(wal: bool) {
    let migrations_dir = no_transaction_dir();
    let migrations = Migrations::from_dir(migrations_dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    {
        let mut conn = open(&db);
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .unwrap();
        }
        migrations.migrate_to(&mut conn, 1).unwrap();
    }
    let mut child = ChildProcess::spawn(
        CHILD,
        &[
            "migrate",
            db.to_str().unwrap(),
            migrations_dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(child.line(), "start");
    // Wait until the first step is committed, then kill the child while it
    // is in the second.
    let watcher = open(&db);
    watcher.busy_timeout(Duration::ZERO).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !table_exists(&watcher, "step_one").unwrap_or(false) {
        assert!(Instant::now() < deadline, "the first step never committed");
        assert!(
            child.child.try_wait().unwrap().is_none(),
            "the child exited"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(watcher);
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the child finished the slow step before it was killed"
    );
    child.child.kill().unwrap();
    assert!(!child.wait().success());

    let mut conn = open(&db);
    assert_eq!(integrity(&conn), "ok");
    let killed = snapshot(&conn);
    assert!(
        killed.contains("user_version = 1\n"),
        "user_version not yet set: {killed}"
    );
    let rows_in_step_one: i64 = conn
        .query_row("SELECT count(*) FROM step_one", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows_in_step_one, 0,
        "the second step was rolled back by SQLite"
    );

    // The next run refuses to run it again and says what to do.
    let err = migrations
        .migrator()
        .lock_timeout(Duration::ZERO)
        .migrate(&mut conn)
        .unwrap_err();
    match &err {
        Error::Incomplete { version, file } => {
            assert_eq!(*version, 2);
            assert_eq!(file, "002_two_steps.sql");
        }
        other => panic!("wal={wal}: expected Error::Incomplete, got {other:?}"),
    }
    let message = err.to_string();
    for needed in [
        "migration 2",
        "002_two_steps.sql",
        "incomplete",
        "by hand",
        "_migrate_history",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
    assert_eq!(snapshot(&conn), killed, "nothing ran again");
    assert!(matches!(
        migrations.verify(&conn),
        Err(Error::Incomplete { version: 2, .. })
    ));

    // Following the advice (undo the first step, delete the row) lets the
    // migration run again from the start.
    conn.execute_batch("DROP TABLE step_one; DELETE FROM _migrate_history WHERE version = 2;")
        .unwrap();
    let fixed_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        migrations_dir.path().join("001_base.sql"),
        fixed_dir.path().join("001_base.sql"),
    )
    .unwrap();
    // (a shorter second step, so that the test does not count to 100 million)
    std::fs::write(
        fixed_dir.path().join("002_two_steps.sql"),
        "-- migrate:no-transaction\n\
         CREATE TABLE step_one (id INTEGER PRIMARY KEY, n INTEGER);\n\
         INSERT INTO step_one (n) VALUES (1);\n",
    )
    .unwrap();
    let fixed = Migrations::from_dir(fixed_dir.path()).unwrap();
    let report = fixed.migrate(&mut conn).unwrap();
    assert_eq!(report.version(), 2);
    assert_eq!(report.applied().len(), 1);
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn sigkill_between_the_steps_of_a_no_transaction_migration_rollback_journal() {
    sigkill_inside_no_transaction_migration(false);
}

#[test]
fn sigkill_between_the_steps_of_a_no_transaction_migration_wal() {
    sigkill_inside_no_transaction_migration(true);
}
