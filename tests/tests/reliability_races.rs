//! Races between OS processes: eight processes migrate one fresh database
//! file at the same moment; a migration waits for another process's write
//! lock only up to the lock timeout; an up-to-date database never waits;
//! another connection that migrates between a run's first read and its
//! write lock is noticed.
//!
//! Environment: `MIGRATE_FULL=1` runs more rounds of each race (default 2
//! rounds per journal mode, 10 at full size).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use migrate_core::{Error, Migrations};
use migrate_tests::{
    full_size, integrity, migrations_dir, open, open_journal, snapshot, ChildProcess,
};
use rusqlite::Connection;

const CHILD: &str = env!("CARGO_BIN_EXE_migrate_child");
const PROCESSES: usize = 8;
const MIGRATIONS: u32 = 30;

/// 30 migrations; each creates a table, fills it, and appends its version to
/// `applied_log`, so that a migration run twice, or out of order, shows.
fn thirty_migrations() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for v in 1..=MIGRATIONS {
        let mut sql = String::new();
        if v == 1 {
            sql.push_str(
                "CREATE TABLE applied_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL);\n",
            );
        }
        sql.push_str(&format!(
            "CREATE TABLE t{v} (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);\n\
             INSERT INTO t{v} (payload) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) \
             SELECT printf('row %d of migration {v}', i) FROM n;\n\
             INSERT INTO applied_log (version) VALUES ({v});\n"
        ));
        std::fs::write(dir.path().join(format!("{v:03}_step_{v}.sql")), sql).unwrap();
    }
    dir
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Journal {
    /// The fresh file stays in rollback-journal mode.
    Rollback,
    /// The file was switched to WAL before the race (no tables yet).
    WalBefore,
    /// Every process asks the migrator to switch the new file to WAL.
    WalByMigrator,
}

fn race(journal: Journal) {
    let migrations_dir = thirty_migrations();
    let migrations = Migrations::from_dir(migrations_dir.path()).unwrap();
    let rounds = if full_size() { 10 } else { 2 };
    let mut contended = 0;
    for round in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("race.db");
        if journal == Journal::WalBefore {
            let conn = Connection::open(&db).unwrap();
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
        let db_arg = db.to_str().unwrap();
        let dir_arg = migrations_dir.path().to_str().unwrap();
        let mut args = vec!["migrate", db_arg, dir_arg, "--wait"];
        if journal == Journal::WalByMigrator {
            args.push("--wal");
        }
        let mut children: Vec<ChildProcess> = (0..PROCESSES)
            .map(|_| ChildProcess::spawn(CHILD, &args))
            .collect();
        // The barrier: every process has loaded the migrations and opened
        // the file before any of them starts.
        for child in &mut children {
            assert_eq!(child.line(), "ready");
        }
        for child in &mut children {
            child.send("go");
        }
        let mut applied_by_all = Vec::new();
        // Processes that applied something, and processes that found
        // migrations pending when they started (and so took the write path).
        let (mut appliers, mut contenders) = (0, 0);
        for mut child in children {
            assert_eq!(child.line(), "start");
            let result = child.line();
            let status = child.wait();
            assert!(
                result.starts_with("ok ") && status.success(),
                "{journal:?} round {round}: a process failed: {result:?} ({status})"
            );
            let (applied, rest) = result["ok ".len()..].split_once(" from=").unwrap();
            let (from, version) = rest.split_once(" version=").unwrap();
            assert_eq!(version, MIGRATIONS.to_string(), "{result}");
            appliers += usize::from(!applied.is_empty());
            contenders += usize::from(from != version);
            applied_by_all.extend(
                applied
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<u32>().unwrap()),
            );
        }
        eprintln!(
            "{journal:?} round {round}: {contenders} of {PROCESSES} processes found migrations \
             pending, {appliers} applied some"
        );
        contended += contenders;
        applied_by_all.sort_unstable();
        assert_eq!(
            applied_by_all,
            (1..=MIGRATIONS).collect::<Vec<_>>(),
            "{journal:?} round {round}: each migration must be applied by exactly one process"
        );

        let conn = open(&db);
        assert_eq!(integrity(&conn), "ok");
        let logged: Vec<u32> = conn
            .prepare("SELECT version FROM applied_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            logged,
            (1..=MIGRATIONS).collect::<Vec<_>>(),
            "{journal:?}: every migration ran once, in order"
        );
        let history: Vec<u32> = conn
            .prepare("SELECT version FROM _migrate_history WHERE state = 'applied' ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(history, (1..=MIGRATIONS).collect::<Vec<_>>());
        let user_version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(user_version, MIGRATIONS);
        for v in 1..=MIGRATIONS {
            let rows: i64 = conn
                .query_row(&format!("SELECT count(*) FROM t{v}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 300, "table t{v}");
        }
        migrations.verify(&conn).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let expected = if journal == Journal::Rollback {
            "delete"
        } else {
            "wal"
        };
        assert_eq!(mode, expected, "{journal:?}");
    }
    // The test must race: more than one process found work to do.
    assert!(
        contended > rounds,
        "{journal:?}: in {rounds} rounds only {contended} processes contended for the write lock"
    );
}

#[test]
fn eight_processes_race_on_a_fresh_file_in_rollback_journal_mode() {
    race(Journal::Rollback);
}

#[test]
fn eight_processes_race_on_a_fresh_file_in_wal_mode() {
    race(Journal::WalBefore);
}

#[test]
fn eight_processes_race_while_the_migrator_switches_the_fresh_file_to_wal() {
    race(Journal::WalByMigrator);
}

/// Two migrations; the database at version 1.
fn database_at_version_1(wal: bool) -> (tempfile::TempDir, Migrations, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n\
         INSERT INTO users (email) VALUES ('a@example.com'), ('b@example.com');\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("002_posts.sql"),
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id));\n",
    )
    .unwrap();
    let migrations = Migrations::from_dir(&dir).unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open_journal(&db, wal);
    migrations.migrate_to(&mut conn, 1).unwrap();
    (tmp, migrations, db)
}

fn hold_write_lock(db: &std::path::Path) -> ChildProcess {
    let mut holder = ChildProcess::spawn(
        CHILD,
        &["hold", db.to_str().unwrap(), "immediate", "--write"],
    );
    assert_eq!(holder.line(), "holding");
    holder
}

#[test]
fn migrate_waits_for_a_writer_up_to_the_lock_timeout_then_returns_locked() {
    for wal in [false, true] {
        let (_tmp, migrations, db) = database_at_version_1(wal);
        let mut conn = open(&db);
        let before = snapshot(&conn);
        let holder = hold_write_lock(&db);

        let timeout = Duration::from_millis(400);
        let t0 = Instant::now();
        let result = migrations
            .migrator()
            .lock_timeout(timeout)
            .migrate(&mut conn);
        let waited = t0.elapsed();
        let err = result.expect_err("the write lock is held by another process");
        assert!(
            matches!(err, Error::Locked { timeout: t } if t == timeout),
            "wal={wal}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("400ms") && message.contains("lock timeout"),
            "the message names the timeout: {message}"
        );
        assert!(
            waited >= Duration::from_millis(350),
            "wal={wal}: it gave up after {waited:?}, before the timeout"
        );
        assert!(
            waited < Duration::from_secs(4),
            "wal={wal}: it waited {waited:?}, far past the timeout"
        );

        holder.wait();
        assert_eq!(snapshot(&conn), before, "wal={wal}: nothing was applied");
        assert_eq!(integrity(&conn), "ok");
        // Once the writer is gone, the same call succeeds.
        let report = migrations.migrate(&mut conn).unwrap();
        assert_eq!(report.version(), 2);
    }
}

#[test]
fn an_up_to_date_database_never_waits_for_a_writer() {
    for wal in [false, true] {
        let (_tmp, migrations, db) = database_at_version_1(wal);
        let mut conn = open(&db);
        migrations.migrate(&mut conn).unwrap();
        let holder = hold_write_lock(&db);

        // A lock timeout long enough that any wait for the writer shows.
        let t0 = Instant::now();
        let report = migrations
            .migrator()
            .lock_timeout(Duration::from_secs(20))
            .migrate(&mut conn)
            .unwrap();
        let took = t0.elapsed();
        assert!(report.applied().is_empty());
        assert_eq!(report.version(), 2);
        assert!(
            took < Duration::from_secs(2),
            "wal={wal}: an up-to-date check took {took:?} while another process held the write lock"
        );
        // verify and status do not wait either.
        let t0 = Instant::now();
        migrations.verify(&conn).unwrap();
        assert_eq!(migrations.status(&conn).unwrap().pending().len(), 0);
        assert!(t0.elapsed() < Duration::from_secs(2));
        holder.wait();
    }
}

/// A logger that, on the thread that armed it, runs a closure when a
/// message starting with a given text is logged: the way to make another
/// connection commit at an exact point of a run.
struct Interleave;

type Hook = (&'static str, Box<dyn FnOnce()>);

thread_local! {
    static HOOK: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

impl log::Log for Interleave {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let message = record.args().to_string();
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

static LOGGER: Interleave = Interleave;

fn install_interleave_logger() {
    // Once per test process; the tests that use it may run in any order.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

#[test]
fn a_foreign_key_another_connection_creates_between_two_steps_is_checked() {
    // A rolling deploy: this run (files 1 to 4) commits version 2; before
    // its next step, an older build (files 1 to 3) applies version 3, which
    // adds a child table. Version 4 then deletes a parent row that the new
    // child points to: the check before its commit must see the new table.
    install_interleave_logger();
    let files = [
        (
            "001_parent.sql",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
             CREATE TABLE child1 (p INTEGER REFERENCES parent (id));\n\
             INSERT INTO parent VALUES (1), (2);\n",
        ),
        ("002_more.sql", "INSERT INTO parent VALUES (3);\n"),
        (
            "003_child2.sql",
            "CREATE TABLE child2 (p INTEGER REFERENCES parent (id));\n\
             INSERT INTO child2 VALUES (1);\n",
        ),
        ("004_purge.sql", "DELETE FROM parent WHERE id = 1;\n"),
    ];
    for wal in [false, true] {
        let (new_dir, old_dir) = (migrations_dir(&files), migrations_dir(&files[..3]));
        let new = Migrations::from_dir(new_dir.path()).unwrap();
        let old = Migrations::from_dir(old_dir.path()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let mut conn = open_journal(&db, wal);
        new.migrate_to(&mut conn, 1).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let other_db = db.clone();
        HOOK.with(|hook| {
            *hook.borrow_mut() = Some((
                "committed version 2",
                Box::new(move || {
                    let mut other = open(&other_db);
                    other.execute_batch("PRAGMA foreign_keys = ON").unwrap();
                    let report = old.migrate(&mut other).unwrap();
                    assert_eq!(report.version(), 3);
                }),
            ));
        });
        let err = new.migrate(&mut conn).unwrap_err();
        let hook_ran = HOOK.with(|hook| hook.borrow().is_none());
        assert!(hook_ran, "wal={wal}: the other connection did not run");
        assert!(
            matches!(&err, Error::ForeignKeyViolation { version: 4, violations, .. }
                if violations == &["child2 row 1 has no parent in parent"]),
            "wal={wal}: {err:?}"
        );
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3, "wal={wal}");
        let orphans: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(orphans, 0, "wal={wal}");
    }
}

#[test]
fn a_migration_committed_by_another_connection_after_the_first_read_is_not_run_again() {
    install_interleave_logger();
    for wal in [false, true] {
        let (_tmp, migrations, db) = database_at_version_1(wal);
        let mut conn = open(&db);
        // Between this run's start-up read (version 1 verified, 2 pending)
        // and its write lock, another connection applies version 2.
        let (other_db, other_migrations) = (
            db.clone(),
            Migrations::from_dir(migrations_dir_of(&db)).unwrap(),
        );
        HOOK.with(|hook| {
            *hook.borrow_mut() = Some((
                "database at version 1 verified",
                Box::new(move || {
                    let mut other = open(&other_db);
                    let report = other_migrations.migrate(&mut other).unwrap();
                    assert_eq!(report.applied().len(), 1);
                }),
            ));
        });
        let report = migrations.migrate(&mut conn).unwrap();
        let hook_ran = HOOK.with(|hook| hook.borrow().is_none());
        assert!(hook_ran, "the run did not take the verified-pending path");
        assert_eq!(report.from_version(), 1, "wal={wal}");
        assert_eq!(report.version(), 2, "wal={wal}");
        assert!(
            report.applied().is_empty(),
            "wal={wal}: the run applied {:?}, which the other connection had applied",
            report.applied()
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM _migrate_history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "wal={wal}");
        migrations.verify(&conn).unwrap();
        assert_eq!(integrity(&conn), "ok");
    }
}

fn migrations_dir_of(db: &std::path::Path) -> std::path::PathBuf {
    db.parent().unwrap().join("migrations")
}

#[test]
fn a_lock_timeout_after_a_committed_migration_is_waited_once() {
    // Migration 1 commits; another connection then takes an exclusive lock
    // and keeps it. The run fails after one lock timeout: the check of
    // what was committed is skipped, not made to wait a second time.
    install_interleave_logger();
    let files = [
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        ("002_b.sql", "CREATE TABLE b (x);\n"),
    ];
    let dir = migrations_dir(&files);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open_journal(&db, false);
    let (go, went) = std::sync::mpsc::channel::<()>();
    let (taken, is_taken) = std::sync::mpsc::channel::<()>();
    let other_db = db.clone();
    let holder = std::thread::spawn(move || {
        went.recv().unwrap();
        let other = open(&other_db);
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        taken.send(()).unwrap();
        // Longer than two lock timeouts: a second wait would show.
        std::thread::sleep(Duration::from_millis(4500));
        other.execute_batch("ROLLBACK").unwrap();
    });
    HOOK.with(|hook| {
        *hook.borrow_mut() = Some((
            "applied migration 1",
            Box::new(move || {
                go.send(()).unwrap();
                is_taken.recv().unwrap();
            }),
        ));
    });
    let timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let err = migrations
        .migrator()
        .lock_timeout(timeout)
        .migrate(&mut conn)
        .unwrap_err();
    let waited = t0.elapsed();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    // Once is the timeout and the run's own work; twice, at least double.
    assert!(
        waited < timeout * 9 / 5,
        "it waited {waited:?}: the lock timeout twice"
    );
    holder.join().unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}

/// Two instances start while the first runs a `no-transaction` migration
/// (marked started in the history, run outside any transaction, so no lock
/// shows it): the second waits for it, as for a write lock, and finds the
/// work done, rather than failing with `Incomplete`.
#[test]
fn a_second_instance_starting_during_a_no_transaction_migration_waits_and_finds_it_done() {
    let dir = migrations_dir(&[
        ("001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);"),
        (
            "002_compact.sql",
            "-- migrate:no-transaction\nCREATE TABLE log (x);\nINSERT INTO log SELECT slow();\nVACUUM;\n",
        ),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let path = db_dir.path().join("app.db");
    m.migrate_to(&mut open(&path), 1).unwrap();
    // The first is inside its no-transaction file: the history says started.
    let first = migrate_in_a_slow_instance(&m, &path);
    let mut conn = open(&path);
    let state: String = conn
        .query_row(
            "SELECT state FROM _migrate_history WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "started");
    let second = m.migrate(&mut conn);
    let first = first.join().unwrap();
    assert_eq!(first.unwrap().applied().len(), 1);
    let second = second.unwrap();
    assert!(second.applied().is_empty(), "{second}");
    assert_eq!(second.version(), 2);
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 1, "the file ran once");
}

/// A database whose version 2, a `no-transaction` migration, is marked
/// started (its process died, or is still at work): the migrations
/// directory, the migrations, the database's directory and path, and a
/// connection.
fn incomplete_at_version_2() -> (
    tempfile::TempDir,
    Migrations,
    tempfile::TempDir,
    std::path::PathBuf,
    Connection,
) {
    let dir = migrations_dir(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);",
        ),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nCREATE TABLE log (x);\n",
        ),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let path = db_dir.path().join("app.db");
    let mut conn = open(&path);
    m.migrate(&mut conn).unwrap();
    conn.execute_batch(
        "UPDATE _migrate_history SET state = 'started' WHERE version = 2; PRAGMA user_version = 1",
    )
    .unwrap();
    (dir, m, db_dir, path, conn)
}

/// A `no-transaction` migration that stays marked started (its process
/// died) is reported once the lock timeout has passed, with the database
/// untouched.
#[test]
fn an_incomplete_migration_is_reported_after_the_lock_timeout() {
    let (_dir, m, _db_dir, _path, mut conn) = incomplete_at_version_2();
    let before = snapshot(&conn);
    let timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    let result = m.migrator().lock_timeout(timeout).migrate(&mut conn);
    assert!(
        matches!(result, Err(Error::Incomplete { version: 2, .. })),
        "{result:?}"
    );
    assert!(
        t0.elapsed() >= timeout,
        "it waited for a running instance first"
    );
    assert_eq!(snapshot(&conn), before);
    // `verify` and `status` never wait.
    let t0 = Instant::now();
    assert!(matches!(m.verify(&conn), Err(Error::Incomplete { .. })));
    assert!(t0.elapsed() < timeout);
}

/// A run asked to stay at (or go down to) a version, that waits for
/// another instance's `no-transaction` migration, does not then revert
/// what that instance applied meanwhile: it stops, saying so, with
/// nothing reverted.
#[test]
fn a_down_run_that_waited_does_not_revert_what_the_other_instance_applied() {
    let dir = migrations_dir(&[
        (
            "001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);",
        ),
        (
            "002_log.sql",
            "-- migrate:no-transaction\nCREATE TABLE log (x);\nINSERT INTO log SELECT slow();\n",
        ),
        ("002_log.down.sql", "DROP TABLE log;\n"),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let path = db_dir.path().join("app.db");
    m.migrate_to(&mut open(&path), 1).unwrap();
    let first = migrate_in_a_slow_instance(&m, &path);
    let mut conn = open(&path);
    let second = m.migrate_to(&mut conn, 1);
    first.join().unwrap().unwrap();
    match &second {
        Err(Error::Target { reason, .. }) => assert!(
            reason.contains("nothing was reverted: run again to revert it to version 1"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 1);
}

/// A `single_transaction` run is checked for `no-transaction` migrations
/// from the version its first read found. If another instance reverts the
/// database before the run's write lock, a `no-transaction` migration
/// comes into the one transaction: the run is refused then, nothing done,
/// rather than committed in pieces with `user_version` behind the history.
#[test]
fn a_single_transaction_run_refuses_a_no_transaction_file_a_concurrent_revert_brings_in() {
    install_interleave_logger();
    let files = [
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        ("002_b.sql", "CREATE TABLE b (x);\n"),
        ("002_b.down.sql", "DROP TABLE b;\n"),
        (
            "003_c.sql",
            "-- migrate:no-transaction\nCREATE TABLE c (x);\nINSERT INTO c VALUES (1);\n",
        ),
        ("003_c.down.sql", "DROP TABLE c;\n"),
        ("004_d.sql", "CREATE TABLE d (x);\n"),
        ("004_d.down.sql", "DROP TABLE d;\n"),
        ("005_e.sql", "CREATE TABLE e (x);\n"),
    ];
    for wal in [false, true] {
        let dir = migrations_dir(&files);
        let migrations = Migrations::from_dir(dir.path()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let mut conn = open_journal(&db, wal);
        migrations.migrate_to(&mut conn, 4).unwrap();
        // Right after this run's first read (5 pending, none of them
        // `no-transaction`), another instance reverts to version 1.
        let (other_db, other_dir) = (db.clone(), dir.path().to_owned());
        HOOK.with(|hook| {
            *hook.borrow_mut() = Some((
                "database at version 4 verified",
                Box::new(move || {
                    let other = Migrations::from_dir(&other_dir).unwrap();
                    other.migrate_to(&mut open(&other_db), 1).unwrap();
                }),
            ));
        });
        let result = migrations
            .migrator()
            .single_transaction(true)
            .migrate(&mut conn);
        assert!(
            HOOK.with(|hook| hook.borrow().is_none()),
            "wal={wal}: the other instance did not run"
        );
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::Target { .. }) && err.to_string().contains("migration 3"),
            "wal={wal}: {err}"
        );
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1, "wal={wal}: nothing done after the revert");
        migrations.verify(&conn).unwrap();
        // The steps the error gives work.
        migrations.migrate_to(&mut conn, 2).unwrap();
        migrations.migrate_to(&mut conn, 3).unwrap();
        migrations
            .migrator()
            .single_transaction(true)
            .migrate(&mut conn)
            .unwrap();
        assert_eq!(integrity(&conn), "ok");
    }
}

/// Two instances with `page_size(1024)` start on a new, empty file. This
/// one read the file empty; the other creates the database (1,024-byte
/// pages) just before this one checks that the file is a whole number of
/// pages. The check reads the page size the file has now, not the 4,096
/// this connection had for the empty file: no "cut short or damaged"
/// error for a healthy database.
#[test]
fn a_database_another_instance_creates_with_small_pages_is_not_called_cut_short() {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        ("002_b.sql", "CREATE TABLE b (x);\n"),
        ("003_c.sql", "CREATE TABLE c (x);\n"),
    ]);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    for wal in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let mut conn = Connection::open(&db).unwrap();
        // Right after this run's reads of the empty file (the statement
        // after them reads the journal mode), the other instance creates
        // the database and applies version 1.
        let done = Arc::new(AtomicBool::new(false));
        let (other_db, other_dir, other_done) =
            (db.clone(), dir.path().to_owned(), Arc::clone(&done));
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_PROFILE,
            Some(move |event: TraceEvent<'_>| {
                let TraceEvent::Profile(stmt, _) = event else {
                    return;
                };
                if stmt.sql().contains("journal_mode") && !other_done.swap(true, Ordering::SeqCst) {
                    let other = Migrations::from_dir(&other_dir).unwrap();
                    let mut migrator = other.migrator().page_size(1024).target(1);
                    if wal {
                        migrator = migrator.journal_mode(migrate_core::JournalMode::Wal);
                    }
                    migrator.migrate(&mut open(&other_db)).unwrap();
                }
            }),
        )
        .unwrap();
        let mut migrator = migrations.migrator().page_size(1024);
        if wal {
            migrator = migrator.journal_mode(migrate_core::JournalMode::Wal);
        }
        let report = migrator.migrate(&mut conn);
        conn.trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)
            .unwrap();
        assert!(
            done.load(Ordering::SeqCst),
            "wal={wal}: the other instance did not run"
        );
        let report = report.unwrap();
        assert_eq!(report.version(), 3, "wal={wal}");
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, 1024, "wal={wal}");
        migrations.verify(&conn).unwrap();
        assert_eq!(integrity(&conn), "ok");
    }
}

/// A `no-transaction` file that switches the journal to WAL (what such a
/// file is for) while another connection holds the write lock for a
/// moment (another instance polling, the application itself): SQLite
/// refuses that switch the lock without waiting, and the run tries it
/// again up to the lock timeout instead of failing at once and leaving the
/// migration marked started.
#[test]
fn a_no_transaction_journal_mode_switch_waits_for_a_short_write_lock() {
    install_interleave_logger();
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        (
            "002_wal.sql",
            "-- migrate:no-transaction\nPRAGMA journal_mode = WAL;\n",
        ),
        ("003_b.sql", "CREATE TABLE b (x);\n"),
    ]);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    migrations.migrate_to(&mut conn, 1).unwrap();
    // Another connection takes the write lock just as the file starts,
    // and keeps it 300 ms.
    let holder_db = db.clone();
    let holder = std::rc::Rc::new(std::cell::RefCell::new(None));
    let holder_slot = holder.clone();
    HOOK.with(|hook| {
        *hook.borrow_mut() = Some((
            "applying migration 2 (002_wal.sql) outside a transaction",
            Box::new(move || {
                let (taken, is_taken) = std::sync::mpsc::channel();
                *holder_slot.borrow_mut() = Some(std::thread::spawn(move || {
                    let other = open(&holder_db);
                    other
                        .execute_batch("BEGIN IMMEDIATE; SELECT count(*) FROM a;")
                        .unwrap();
                    taken.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(300));
                    other.execute_batch("COMMIT").unwrap();
                }));
                is_taken.recv().unwrap();
            }),
        ));
    });
    let result = migrations
        .migrator()
        .lock_timeout(Duration::from_secs(10))
        .migrate(&mut conn);
    let holder = holder.borrow_mut().take();
    holder.expect("the hook did not run").join().unwrap();
    let report = result.unwrap();
    assert_eq!(report.version(), 3);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    migrations.verify(&conn).unwrap();
}

/// Runs `run` on `conn` while another connection takes an exclusive lock
/// on `locked` as soon as a statement of `conn` whose SQL `after` accepts
/// has finished, and holds it for `hold`: the run's result, and how long
/// it took.
fn with_a_lock_taken_after<T>(
    conn: &mut Connection,
    locked: &std::path::Path,
    after: fn(&str) -> bool,
    hold: Duration,
    run: impl FnOnce(&mut Connection) -> T,
) -> (T, Duration) {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let fired = Arc::new(AtomicBool::new(false));
    let (holder_tx, holder_rx) = mpsc::channel::<std::thread::JoinHandle<()>>();
    let (path, hook_fired) = (locked.to_owned(), Arc::clone(&fired));
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(move |event: TraceEvent<'_>| {
            let TraceEvent::Profile(stmt, _) = event else {
                return;
            };
            if after(&stmt.sql()) && !hook_fired.swap(true, Ordering::SeqCst) {
                let (taken, is_taken) = mpsc::channel();
                let path = path.clone();
                let holder = std::thread::spawn(move || {
                    let other = Connection::open(&path).unwrap();
                    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
                    taken.send(()).unwrap();
                    std::thread::sleep(hold);
                    other.execute_batch("ROLLBACK").unwrap();
                });
                is_taken.recv().unwrap();
                holder_tx.send(holder).unwrap();
            }
        }),
    )
    .unwrap();
    let started = Instant::now();
    let result = run(conn);
    let elapsed = started.elapsed();
    conn.trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)
        .unwrap();
    assert!(
        fired.load(Ordering::SeqCst),
        "the other connection did not run"
    );
    holder_rx.recv().unwrap().join().unwrap();
    (result, elapsed)
}

/// Another process takes the database's lock just after this run's first
/// read, and keeps it: the run fails with `Locked` after the lock timeout,
/// not after twice the lock timeout (the check that the file is whole
/// pages, between the two, does not wait for it). Also for a database
/// that needs the full read (no history table yet), locked right after
/// the start-up check.
#[test]
fn a_lock_taken_after_the_first_read_is_waited_once_not_twice() {
    let timeout = Duration::from_secs(2);
    // (files, the database before the run, the statement after which the
    // lock is taken)
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        fn(&str) -> bool,
    );
    let cases: [Case; 2] = [
        (
            &[
                ("001_a.sql", "CREATE TABLE a (x);\n"),
                ("002_b.sql", "CREATE TABLE b (x);\n"),
            ],
            "migrated to version 1",
            // The statement after the run's reads reads the journal mode.
            |sql| sql.contains("journal_mode"),
        ),
        (
            &[("001_a.sql", "CREATE TABLE a (x);\n")],
            "CREATE TABLE t (x); PRAGMA user_version = 1;",
            // The start-up check ends with its read transaction's COMMIT.
            |sql| sql.trim() == "COMMIT",
        ),
    ];
    for (files, before, after) in cases {
        let (_d, m) = load(files);
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let mut conn = Connection::open(&db).unwrap();
        if before.starts_with("migrated") {
            m.migrate_to(&mut conn, 1).unwrap();
        } else {
            conn.execute_batch(before).unwrap();
        }
        let (result, elapsed) =
            with_a_lock_taken_after(&mut conn, &db, after, 5 * timeout / 2, |conn| {
                m.migrator().lock_timeout(timeout).migrate(conn)
            });
        assert!(
            matches!(result, Err(Error::Locked { .. })),
            "{before}: {result:?}"
        );
        // Once is the timeout and the run's own work; twice, at least
        // double.
        assert!(
            elapsed < timeout * 9 / 5,
            "{before}: Locked after {elapsed:?}, with a lock timeout of {timeout:?}"
        );
    }
}

/// After the commit, another process holds the database's lock: the
/// settings the file changed are put back without waiting for it.
#[test]
fn a_committed_migration_is_not_reported_as_locked_by_the_settings_restore() {
    let (result, version) = committed_then_locked("app.db", false, "defer_foreign_keys = ON");
    assert_eq!(version, 1);
    result.unwrap();
}

/// The same when the database locked after the commit is one the caller
/// attached, which the run never used.
#[test]
fn an_attached_database_locked_after_the_commit_does_not_fail_the_run() {
    let (result, version) = committed_then_locked("side.db", true, "defer_foreign_keys = ON");
    assert_eq!(version, 1);
    result.unwrap();
}

/// Runs a migration whose file sets `PRAGMA <pragma>` while, from its
/// integrity check on, another process holds an exclusive lock on
/// `locked`: the result and `user_version` after it.
fn committed_then_locked(
    locked: &str,
    attach: bool,
    pragma: &str,
) -> (Result<migrate_core::Report, Error>, i64) {
    let (_d, m) = load(&[(
        "001_a.sql",
        &format!("PRAGMA {pragma};\nCREATE TABLE a (x);\n"),
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let side = tmp.path().join("side.db");
    Connection::open(&side)
        .unwrap()
        .execute_batch("CREATE TABLE s (x);")
        .unwrap();
    let mut conn = Connection::open(&db).unwrap();
    if attach {
        conn.execute("ATTACH ?1 AS side", [side.to_str().unwrap()])
            .unwrap();
    }
    let timeout = Duration::from_millis(500);
    let (result, _) = with_a_lock_taken_after(
        &mut conn,
        &tmp.path().join(locked),
        |sql| sql.contains("integrity_check"),
        4 * timeout,
        |conn| m.migrator().lock_timeout(timeout).migrate(conn),
    );
    (result, user_version(&conn))
}

/// A setting the file changed that cannot be put back after the commit
/// (reading `max_page_count` takes a lock another process holds): the
/// error says the migration was applied, and is not `Locked`, which says
/// it did not run.
#[test]
fn a_setting_that_cannot_be_put_back_after_the_commit_says_the_run_applied() {
    let (result, version) = committed_then_locked("app.db", false, "max_page_count = 1000000");
    assert_eq!(version, 1);
    let err = result.unwrap_err();
    assert!(!matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the run migrated the database to version 1, but"),
        "{err}"
    );
}

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Migrations) {
    let dir = migrations_dir(files);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// The database is at version 2; right after this run's first read (one
/// file pending, 003, which sets `recursive_triggers`), another instance
/// reverts to version 1. This run then applies 002 too, which sets
/// `ignore_check_constraints`: that setting is put back as well (the run
/// reads the settings that every file it may reach names).
#[test]
fn a_file_a_concurrent_revert_brings_in_has_its_settings_put_back() {
    install_interleave_logger();
    let (dir, m) = load(&[
        ("001_a.sql", "CREATE TABLE a (x INTEGER CHECK (x > 0));\n"),
        (
            "002_b.sql",
            "PRAGMA ignore_check_constraints = ON;\nCREATE TABLE b (x);\n",
        ),
        ("002_b.down.sql", "DROP TABLE b;\n"),
        (
            "003_c.sql",
            "PRAGMA recursive_triggers = ON;\nCREATE TABLE c (x);\n",
        ),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    m.migrate_to(&mut conn, 2).unwrap();
    let (other_db, other_dir) = (db.clone(), dir.path().to_owned());
    HOOK.with(|hook| {
        *hook.borrow_mut() = Some((
            "database at version 2 verified",
            Box::new(move || {
                let other = Migrations::from_dir(&other_dir).unwrap();
                other.migrate_to(&mut open(&other_db), 1).unwrap();
            }),
        ));
    });
    let report = m.migrate(&mut conn).unwrap();
    assert!(
        HOOK.with(|hook| hook.borrow().is_none()),
        "the other instance did not run"
    );
    assert_eq!(report.version(), 3);
    assert_eq!(report.applied().len(), 2, "{report}");
    for pragma in ["ignore_check_constraints", "recursive_triggers"] {
        let on: i64 = conn
            .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 0, "{pragma}");
    }
    assert!(conn.execute("INSERT INTO a VALUES (-1)", []).is_err());
}

/// Starts another instance migrating `path` on a thread, with a `slow()`
/// SQL function that takes 1.5 s, and returns once that function has
/// started (inside the instance's `no-transaction` file that calls it).
fn migrate_in_a_slow_instance(
    m: &Migrations,
    path: &std::path::Path,
) -> std::thread::JoinHandle<Result<migrate_core::Report, Error>> {
    use rusqlite::functions::FunctionFlags;
    let (first_m, first_path) = (m.clone(), path.to_owned());
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let first = std::thread::spawn(move || {
        let mut conn = open(&first_path);
        conn.create_scalar_function("slow", 0, FunctionFlags::SQLITE_UTF8, move |_| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            Ok(0)
        })
        .unwrap();
        first_m.migrate(&mut conn)
    });
    started_rx.recv().unwrap();
    first
}

/// A WAL checkpoint of another connection may extend the main file while
/// a run's first write transaction checks that the file is whole pages; on
/// tmpfs a 64 KiB page shows up 4 KiB at a time. A healthy database is not
/// called cut short.
#[test]
fn a_checkpoint_growing_the_file_during_the_first_write_transaction_is_not_cut_short() {
    // tmpfs, where a write shows up in steps (ext4 showed none).
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm: skipped");
        return;
    }
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE big (x BLOB);\n"),
        ("002_b.sql", "CREATE TABLE b (x);\n"),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let mut refused = Vec::new();
    let rounds = if full_size() { 20 } else { 8 };
    for round in 0..rounds {
        let Ok(tmp) = tempfile::tempdir_in(shm) else {
            eprintln!("cannot write to /dev/shm: skipped");
            return;
        };
        let db = tmp.path().join("app.db");
        let mut conn = Connection::open(&db).unwrap();
        m.migrator()
            .page_size(65536)
            .journal_mode(migrate_core::JournalMode::Wal)
            .target(1)
            .migrate(&mut conn)
            .unwrap();
        // The application: 128 MiB in the WAL, not yet checkpointed (a
        // small /dev/shm, as in some containers, cannot hold it: skipped).
        let app = open(&db);
        let filled = app.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             SELECT zeroblob(65000) FROM n;",
        );
        if let Err(e) = filled {
            eprintln!("cannot fill the WAL in /dev/shm ({e}): skipped");
            return;
        }
        let before = std::fs::metadata(&db).unwrap().len();
        let checkpoint = std::thread::spawn(move || {
            let t0 = Instant::now();
            let row = app.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            });
            (row, t0.elapsed())
        });
        // The checkpoint has started extending the main file (or ended).
        while std::fs::metadata(&db).unwrap().len() <= before && !checkpoint.is_finished() {
            std::thread::yield_now();
        }
        let t0 = Instant::now();
        let result = m.migrate(&mut conn);
        let took = t0.elapsed();
        let (row, ckpt) = checkpoint.join().unwrap();
        // A /dev/shm too small for the checkpoint's copy: nothing to learn.
        let Ok(row) = row else {
            eprintln!("the checkpoint failed in /dev/shm ({row:?}): skipped");
            return;
        };
        eprintln!(
            "round {round}: checkpoint {row:?} in {ckpt:?}; migrate in {took:?}: {:?}",
            result.as_ref().map(|r| r.version())
        );
        match result {
            Ok(report) => assert_eq!(report.version(), 2),
            Err(e) => refused.push(e.to_string()),
        }
        if !refused.is_empty() {
            break;
        }
        // Healthy all along: whole pages, intact, and migrated by a retry.
        assert_eq!(std::fs::metadata(&db).unwrap().len() % 65536, 0);
        assert_eq!(integrity(&conn), "ok");
        assert_eq!(m.migrate(&mut conn).unwrap().version(), 2);
    }
    assert!(
        refused.is_empty(),
        "{} of {rounds} runs refused a healthy database: {refused:#?}",
        refused.len()
    );
}

/// Takes an exclusive lock on `db` (rollback journal: it keeps readers
/// out too) on another thread, holds it `hold`, and returns once taken.
fn exclusive_lock(db: &std::path::Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let (taken, is_taken) = std::sync::mpsc::channel();
    let db = db.to_owned();
    let holder = std::thread::spawn(move || {
        let other = Connection::open(&db).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        taken.send(()).unwrap();
        std::thread::sleep(hold);
        other.execute_batch("ROLLBACK").unwrap();
    });
    is_taken.recv().unwrap();
    holder
}

/// Waiting for an incomplete migration, at start-up. Version 2 (`no-transaction`) is marked
/// started: the run polls, up to the lock timeout from its start. Late in
/// that wait (at 80 % of it) another connection takes an exclusive lock
/// (a VACUUM, a big write of that instance's file) and keeps it. The run
/// must end about at the lock timeout, not a whole lock timeout later.
#[test]
fn an_exclusive_lock_late_in_the_wait_for_an_incomplete_migration_is_not_waited_twice() {
    let (_dir, m, _tmp, db, mut conn) = incomplete_at_version_2();
    let timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let (lock_db, lock_at) = (db.clone(), timeout * 4 / 5);
    let locker = std::thread::spawn(move || {
        std::thread::sleep(lock_at.saturating_sub(t0.elapsed()));
        exclusive_lock(&lock_db, timeout * 3 / 2)
    });
    let result = m.migrator().lock_timeout(timeout).migrate(&mut conn);
    let elapsed = t0.elapsed();
    eprintln!("lock timeout {timeout:?}: {result:?} after {elapsed:?}");
    locker.join().unwrap().join().unwrap();
    assert!(
        matches!(result, Err(Error::Incomplete { version: 2, .. })),
        "{result:?}"
    );
    assert!(
        elapsed < timeout * 5 / 4,
        "gave up after {elapsed:?} with a lock timeout of {timeout:?}: {result:?}"
    );
}

/// Runs `run` on `conn` (at a version below `version`, a `no-transaction`
/// migration) while another instance marks `version` started just after
/// the run's first read (the first COMMIT after `after`, a statement of
/// the start-up read), then takes an exclusive lock on the database once
/// the run's write transaction that found it started rolled back, and
/// holds it for 1.5 lock timeouts. The run must end with `Incomplete` at
/// about the lock timeout: not after waiting a whole timeout more for the
/// lock in its poll and again for `BEGIN IMMEDIATE`, and not with `Locked`.
fn incomplete_then_locked_while_polling(
    conn: &mut Connection,
    db: &std::path::Path,
    version: u32,
    after: &'static str,
    timeout: Duration,
    run: impl FnOnce(&mut Connection) -> Result<migrate_core::Report, Error>,
) {
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::{Arc, Mutex};
    // 0: wait for `after`; 1: mark `version` started at the next COMMIT;
    // 2: take the exclusive lock at the next ROLLBACK; 3: done.
    let stage = Arc::new(Mutex::new((0, None::<std::thread::JoinHandle<()>>)));
    let (hook_db, hook_stage) = (db.to_owned(), Arc::clone(&stage));
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(move |event: TraceEvent<'_>| {
            let TraceEvent::Profile(stmt, _) = event else {
                return;
            };
            let sql = stmt.sql();
            let sql = sql.trim();
            let mut stage = hook_stage.lock().unwrap();
            if stage.0 == 0 && sql == after {
                stage.0 = 1;
            } else if stage.0 == 1 && sql == "COMMIT" {
                open(&hook_db)
                    .execute(
                        "INSERT INTO _migrate_history VALUES (?1, 'nt', hex(zeroblob(32)), '', \
                         0, hex(zeroblob(32)), 'started')",
                        [version],
                    )
                    .unwrap();
                stage.0 = 2;
            } else if stage.0 == 2 && sql == "ROLLBACK" {
                stage.1 = Some(exclusive_lock(&hook_db, timeout * 3 / 2));
                stage.0 = 3;
            }
        }),
    )
    .unwrap();
    let t0 = Instant::now();
    let result = run(conn);
    let elapsed = t0.elapsed();
    conn.trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)
        .unwrap();
    eprintln!("lock timeout {timeout:?}: {result:?} after {elapsed:?}");
    let holder = stage.lock().unwrap().1.take();
    assert_eq!(stage.lock().unwrap().0, 3, "the hooks did not run");
    holder.unwrap().join().unwrap();
    assert!(
        matches!(result, Err(Error::Incomplete { version: v, .. }) if v == version),
        "{result:?}"
    );
    assert!(
        elapsed < timeout * 5 / 4,
        "gave up after {elapsed:?} with a lock timeout of {timeout:?}: {result:?}"
    );
}

/// Waiting for an incomplete migration, in the poll after the write
/// transaction found it started (another instance marked it after this
/// run's first read), while the other instance holds an exclusive lock.
#[test]
fn an_exclusive_lock_during_the_poll_for_an_incomplete_migration_is_not_waited_twice() {
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        (
            "002_nt.sql",
            "-- migrate:no-transaction\nCREATE TABLE log (x);\n",
        ),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    m.migrate_to(&mut conn, 1).unwrap();
    let timeout = Duration::from_secs(2);
    incomplete_then_locked_while_polling(&mut conn, &db, 2, "BEGIN", timeout, |conn| {
        m.migrator().lock_timeout(timeout).migrate(conn)
    });
}

/// The same for a revert: its write transaction finds another instance's
/// `no-transaction` migration (version 3) marked started.
#[test]
fn a_revert_polling_for_an_incomplete_migration_does_not_wait_twice() {
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);\n"),
        ("001_a.down.sql", "DROP TABLE a;\n"),
        ("002_b.sql", "CREATE TABLE b (x);\n"),
        ("002_b.down.sql", "DROP TABLE b;\n"),
        (
            "003_nt.sql",
            "-- migrate:no-transaction\nCREATE TABLE log (x);\n",
        ),
    ]);
    let m = Migrations::from_dir(dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    m.migrate_to(&mut conn, 2).unwrap();
    let timeout = Duration::from_secs(2);
    incomplete_then_locked_while_polling(
        &mut conn,
        &db,
        3,
        "PRAGMA data_version",
        timeout,
        |conn| m.migrator().lock_timeout(timeout).target(1).migrate(conn),
    );
}

/// A `no-transaction` file that ran to its end, after which another
/// connection holds an exclusive lock past the lock timeout: the error
/// says the file ran and could not be recorded because of the lock
/// (`Hint::Locked`), whether or not the file says PRAGMA (after which the
/// run reads the journal mode it may have changed).
#[test]
fn a_lock_after_a_no_transaction_file_ran_is_reported_as_a_lock() {
    use migrate_core::{Hint, Outcome};
    use rusqlite::functions::FunctionFlags;
    for file in [
        "-- migrate:no-transaction\nCREATE TABLE log (x);\nSELECT lock_now();\n",
        "-- migrate:no-transaction\nPRAGMA cache_size = 100;\nCREATE TABLE log (x);\nSELECT lock_now();\n",
    ] {
        let dir = migrations_dir(&[
            ("001_a.sql", "CREATE TABLE a (x);\n"),
            ("002_nt.sql", file),
        ]);
        let m = Migrations::from_dir(dir.path()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let mut conn = open(&db);
        m.migrate_to(&mut conn, 1).unwrap();
        let timeout = Duration::from_millis(300);
        let holder = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (lock_db, lock_holder) = (db.clone(), std::sync::Arc::clone(&holder));
        // The file's last statement: another connection takes an exclusive
        // lock (it waits for this statement's own lock to go) and keeps it
        // past the lock timeout.
        conn.create_scalar_function("lock_now", 0, FunctionFlags::SQLITE_UTF8, move |_| {
            let db = lock_db.clone();
            let (taken, is_taken) = std::sync::mpsc::channel();
            *lock_holder.lock().unwrap() = Some(std::thread::spawn(move || {
                let other = Connection::open(&db).unwrap();
                other.busy_timeout(Duration::from_secs(5)).unwrap();
                other.execute_batch("BEGIN EXCLUSIVE").unwrap();
                taken.send(()).unwrap();
                std::thread::sleep(timeout * 3);
                other.execute_batch("ROLLBACK").unwrap();
            }));
            // Not yet taken: this statement holds a lock until it ends.
            let _ = is_taken.recv_timeout(Duration::from_millis(50));
            Ok(0)
        })
        .unwrap();
        let result = m.migrator().lock_timeout(timeout).migrate(&mut conn);
        let handle = holder.lock().unwrap().take();
        handle.unwrap().join().unwrap();
        match &result {
            Err(Error::Migration {
                version: 2,
                hint,
                outcome,
                ..
            }) => {
                assert_eq!(*hint, Hint::Locked, "{file:?}: {result:?}");
                assert_eq!(*outcome, Outcome::RanNotMarked, "{file:?}: {result:?}");
                let said = result.as_ref().unwrap_err().to_string();
                eprintln!("{said}");
                assert!(
                    said.contains("could not be marked applied") && said.contains("lock timeout"),
                    "{file:?}: {said}"
                );
            }
            other => panic!("{file:?}: {other:?}"),
        }
        // It stays marked started: the next run says so.
        assert!(
            matches!(m.verify(&conn), Err(Error::Incomplete { version: 2, .. })),
            "{file:?}"
        );
    }
}
