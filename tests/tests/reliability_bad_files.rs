//! Bad database files: random bytes, text, a truncated database, a
//! zero-length file, a read-only file, a directory, a database locked by
//! another process. Each gets a clear error (or, for the zero-length file,
//! is treated as the empty database SQLite says it is), no panic, and
//! nothing is written: the file's bytes and the directory's listing are the
//! same before and after.
//!
//! Environment: none (these cases are small; `MIGRATE_FULL` changes
//! nothing here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use migrate_core::{Error, Migrations};
use migrate_tests::{integrity, open, snapshot, ChildProcess};
use rusqlite::{Connection, OpenFlags};

const CHILD: &str = env!("CARGO_BIN_EXE_migrate_child");

fn two_migrations() -> (tempfile::TempDir, Migrations) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_notes.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n\
         INSERT INTO notes (body) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)\n\
         SELECT printf('note number %d with some text to fill pages', i) FROM n;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_tags.sql"),
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES notes(id), tag TEXT NOT NULL);\n\
         CREATE INDEX tags_by_note ON tags (note_id);\n",
    )
    .unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    (dir, migrations)
}

/// Every file in a directory with its bytes.
fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Deterministic pseudo-random bytes (xorshift).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[3]
        })
        .collect()
}

/// Runs `migrate`, `verify` and `status` on a file that is not a usable
/// database: each returns an error (no panic) and nothing is written.
fn refused(name: &str, contents: &[u8], expected: &[&str]) -> Error {
    let (_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    std::fs::write(&db, contents).unwrap();
    let before = listing(tmp.path());

    let mut conn = Connection::open(&db).unwrap();
    let err = migrations.migrate(&mut conn).unwrap_err();
    let message = err.to_string();
    eprintln!("{name}: {message}");
    assert!(matches!(err, Error::Sqlite { .. }), "{name}: {err:?}");
    for needed in expected {
        assert!(
            message.contains(needed),
            "{name}: {needed:?} missing from: {message}"
        );
    }
    // `verify` and `status` read only the migration state: on a file SQLite
    // cannot read at all they fail too; either way they do not panic.
    let verified = migrations.verify(&conn);
    let status = migrations.status(&conn);
    if message.contains("not a SQLite database") {
        assert!(verified.is_err(), "{name}: verify");
        assert!(status.is_err(), "{name}: status");
    }
    // The connection is still usable and was left in autocommit mode.
    assert!(conn.is_autocommit());
    drop(conn);
    assert!(
        listing(tmp.path()) == before,
        "{name}: the file was written"
    );
    err
}

#[test]
fn a_file_of_random_bytes_is_refused_untouched() {
    for (len, seed) in [(4096, 1), (65536, 2), (100, 3), (2, 4)] {
        refused(
            &format!("{len} random bytes"),
            &random_bytes(len, seed),
            &["not a SQLite database", "check the path"],
        );
    }
}

#[test]
fn a_text_file_is_refused_untouched() {
    let text = "id,name\n1,alice\n2,bob\n".repeat(500);
    refused(
        "a CSV file",
        text.as_bytes(),
        &["not a SQLite database", "check the path"],
    );
    // Text that starts like a database header but is not one.
    refused(
        "a fake header",
        &b"SQLite format 3\0 but then nothing that makes sense"
            .iter()
            .copied()
            .cycle()
            .take(8192)
            .collect::<Vec<u8>>(),
        &["SQLite"],
    );
}

/// A database at version 1 with migration 2 pending (29 pages).
fn database_bytes() -> Vec<u8> {
    let (_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole.db");
    let mut conn = open(&whole);
    migrations.migrate_to(&mut conn, 1).unwrap();
    drop(conn);
    let bytes = std::fs::read(&whole).unwrap();
    assert!(bytes.len() > 8 * PAGE, "the database spans many pages");
    bytes
}

const PAGE: usize = 4096;

fn assert_truncation_refused(bytes: &[u8], cut: usize) {
    let err = refused(&format!("cut to {cut} bytes"), &bytes[..cut], &[]);
    let message = err.to_string();
    assert!(
        message.contains("malformed")
            || message.contains("not a SQLite database")
            || message.contains("corrupt")
            || message.contains("truncated"),
        "cut to {cut}: the message must say the file is damaged: {message}"
    );
}

/// Cut short inside the header, inside the first page, and by whole pages:
/// each cut is refused with a clear error and the bytes stay.
#[test]
fn a_truncated_database_is_refused_untouched() {
    let bytes = database_bytes();
    for cut in [
        50,
        99,
        100,
        1000,
        PAGE,
        PAGE + 1,
        2 * PAGE + 17,
        bytes.len() / 2,
        bytes.len() - PAGE,
        bytes.len() - PAGE - 100,
    ] {
        assert_truncation_refused(&bytes, cut);
    }
}

/// Cut short inside its last page: SQLite reads the missing bytes as zeros
/// and sees no damage until it reads the cells there. The file size is
/// not a multiple of the page size, which a healthy database file always
/// is: `migrate` refuses it before writing anything.
#[test]
fn a_database_cut_inside_its_last_page_is_refused_untouched() {
    let bytes = database_bytes();
    for tail in [2000, 100] {
        assert!(bytes[bytes.len() - tail..].iter().any(|b| *b != 0));
        assert_truncation_refused(&bytes, bytes.len() - tail);
    }
}

/// SQLite treats a zero-length file as an empty database (as `touch app.db`
/// users expect): it is migrated like a new one.
#[test]
fn a_zero_length_file_is_an_empty_database_and_is_migrated() {
    let (_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("empty.db");
    std::fs::write(&db, b"").unwrap();
    let mut conn = open(&db);
    migrations.verify(&conn).unwrap();
    assert_eq!(migrations.status(&conn).unwrap().pending(), &[1, 2]);
    let report = migrations.migrate(&mut conn).unwrap();
    assert_eq!(report.from_version(), 0);
    assert_eq!(report.version(), 2);
    assert_eq!(report.applied().len(), 2);
    assert_eq!(integrity(&conn), "ok");
}

/// A read-only connection: `migrate` with pending migrations is refused
/// with a message that says so; `verify`, `status` and an up-to-date
/// `migrate` work.
#[test]
fn a_read_only_database_is_refused_untouched() {
    let (_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    {
        let mut conn = open(&db);
        migrations.migrate_to(&mut conn, 1).unwrap();
    }
    let before = listing(tmp.path());
    let snap = snapshot(&open(&db));

    let mut ro = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    migrations.verify(&ro).unwrap();
    assert_eq!(migrations.status(&ro).unwrap().pending(), &[2]);
    let err = migrations.migrate(&mut ro).unwrap_err();
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
    let message = err.to_string();
    eprintln!("read-only connection: {message}");
    assert!(
        message.contains("read-only") || message.contains("readonly"),
        "{message}"
    );
    assert!(ro.is_autocommit());
    drop(ro);
    assert!(listing(tmp.path()) == before, "the file was written");
    assert_eq!(snapshot(&open(&db)), snap);

    // Up to date: a read-only connection migrates (finds nothing to do).
    {
        let mut conn = open(&db);
        migrations.migrate(&mut conn).unwrap();
    }
    let before = listing(tmp.path());
    let mut ro = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let report = migrations.migrate(&mut ro).unwrap();
    assert!(report.applied().is_empty());
    drop(ro);
    assert!(listing(tmp.path()) == before);
}

/// A file without write permission, opened the ordinary way (SQLite then
/// opens it read-only). Root may write any file, so as root the migration
/// runs in a child process switched to the `nobody` user (with `setpriv`);
/// where that is not possible the test says so and stops.
#[test]
fn a_file_without_write_permission_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;

    let (migrations_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    {
        let mut conn = open(&db);
        migrations.migrate_to(&mut conn, 1).unwrap();
    }
    let read_only = std::fs::Permissions::from_mode(0o444);
    let readable_dir = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(&db, read_only).unwrap();
    // Others may enter both directories but not write to them.
    std::fs::set_permissions(tmp.path(), readable_dir.clone()).unwrap();
    std::fs::set_permissions(migrations_dir.path(), readable_dir).unwrap();
    let before = listing(tmp.path());

    let message = if std::fs::OpenOptions::new().write(true).open(&db).is_err() {
        let mut conn = Connection::open(&db).unwrap();
        let err = migrations.migrate(&mut conn).unwrap_err();
        assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
        err.to_string()
    } else {
        let spawned = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", CHILD])
            .args(["migrate", db.to_str().unwrap()])
            .arg(migrations_dir.path())
            .output();
        let output = match spawned {
            Ok(out) if String::from_utf8_lossy(&out.stdout).starts_with("start") => out,
            other => {
                eprintln!(
                    "SKIPPED: running as root, and cannot run the migration as another user \
                     with setpriv: {other:?}"
                );
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(!output.status.success(), "{stdout}");
        let result = stdout.lines().nth(1).unwrap_or_default().to_owned();
        assert!(result.starts_with("err ReadOnly: "), "{result}");
        result
    };
    eprintln!("a file without write permission: {message}");
    assert!(
        message.contains("read-only") || message.contains("readonly"),
        "{message}"
    );
    assert!(listing(tmp.path()) == before, "the file was written");
}

/// A directory given as the database path: opening it, or migrating
/// through it, fails with an error; nothing appears in the directory.
#[test]
fn a_directory_as_the_database_path_is_refused() {
    let (_dir, migrations) = two_migrations();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "untouched").unwrap();
    let before_dir = listing(&dir);
    let before_parent = listing(tmp.path());
    match Connection::open(&dir) {
        Err(e) => {
            eprintln!("opening a directory: {e}");
            assert!(e.to_string().contains("unable to open"), "{e}");
        }
        Ok(mut conn) => {
            let err = migrations.migrate(&mut conn).unwrap_err();
            let message = err.to_string();
            eprintln!("migrating a directory: {message}");
            assert!(matches!(err, Error::Sqlite { .. }), "{err:?}");
            assert!(message.contains("open"), "{message}");
            assert!(migrations.verify(&conn).is_err());
        }
    }
    assert!(listing(&dir) == before_dir);
    assert!(listing(tmp.path()) == before_parent);
}

/// Another process holds an exclusive lock. `migrate` gives up after the
/// lock timeout with [`Error::Locked`], and the file is untouched.
fn locked_by_another_process(wal: bool) {
    {
        let (_dir, migrations) = two_migrations();
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
        let bytes = std::fs::read(&db).unwrap();
        let mut holder = ChildProcess::spawn(CHILD, &["hold", db.to_str().unwrap(), "exclusive"]);
        assert_eq!(holder.line(), "holding");

        let mut conn = Connection::open(&db).unwrap();
        let timeout = Duration::from_millis(300);
        let t0 = Instant::now();
        let err = migrations
            .migrator()
            .lock_timeout(timeout)
            .migrate(&mut conn)
            .unwrap_err();
        let waited = t0.elapsed();
        let message = err.to_string();
        eprintln!("wal={wal}: locked by another process, after {waited:?}: {message}");
        assert!(message.contains("locked"), "wal={wal}: {message}");
        assert!(
            matches!(err, Error::Locked { timeout: t } if t == timeout),
            "wal={wal}: expected Error::Locked naming the 300 ms timeout, got {err:?}"
        );
        assert!(
            waited < Duration::from_secs(4),
            "wal={wal}: waited {waited:?}"
        );
        assert!(conn.is_autocommit());
        holder.send("release");
        assert!(holder.wait().success());
        drop(conn);
        assert!(
            std::fs::read(&db).unwrap() == bytes,
            "wal={wal}: the file was written"
        );
        // Once released, the same call succeeds.
        let mut conn = open(&db);
        assert_eq!(migrations.migrate(&mut conn).unwrap().version(), 2);
    }
}

/// WAL: the exclusive lock keeps out writers only.
#[test]
fn a_database_locked_by_another_process_is_refused_untouched_wal() {
    locked_by_another_process(true);
}

/// Rollback journal: an exclusive lock keeps out readers too, so even the
/// read of `user_version` waits: it must wait the migrator's lock timeout
/// (not the connection's own busy timeout) and return `Error::Locked`.
#[test]
fn a_database_locked_by_another_process_is_refused_untouched_rollback_journal() {
    locked_by_another_process(false);
}

/// A database whose tables were all dropped (user_version 0, no history,
/// free pages left) reads as a new one; cut inside its last page, it is
/// refused before the settings of a new database (`journal_mode(Wal)`)
/// write its header: no byte written.
#[test]
fn a_cut_short_database_without_tables_is_refused_before_new_database_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole.db");
    {
        let c = Connection::open(&whole).unwrap();
        c.execute_batch(
            "CREATE TABLE big (x);\n\
             INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
             WHERE i < 50) SELECT randomblob(3000) FROM n;\n\
             DROP TABLE big;",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&whole).unwrap();
    assert!(bytes.len() > 8 * 4096);
    let cut = tempfile::tempdir().unwrap();
    let db = cut.path().join("app.db");
    std::fs::write(&db, &bytes[..bytes.len() - 100]).unwrap();
    let before = listing(cut.path());
    let (_d, m) = two_migrations();
    let mut conn = Connection::open(&db).unwrap();
    let err = m
        .migrator()
        .journal_mode(migrate_core::JournalMode::Wal)
        .migrate(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    drop(conn);
    assert!(
        listing(cut.path()) == before,
        "the file was written before it was refused"
    );
}
