//! A full disk in the middle of a migration: through the connection's
//! `PRAGMA max_page_count` (at every page the migration needs), and on a real
//! small filesystem (a tmpfs mount, when the tests run as root and the
//! machine allows mounting; otherwise that test prints why and passes
//! without running). Each time: the migration is rolled back, the error says
//! the disk is full, and the same call succeeds once space is freed.
//!
//! Environment: `MIGRATE_FULL=1` uses a larger migration (more pages to
//! fail at, a larger filesystem).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use migrate_core::{Error, Migrations};
use migrate_tests::{full_size, integrity, open, snapshot};
use rusqlite::Connection;

/// Migration 1 is small; migration 2 writes `rows` rows of about 300 bytes,
/// an index, and updates a row of migration 1.
fn migrations(rows: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_settings.sql"),
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n\
         INSERT INTO settings VALUES ('theme', 'dark'), ('lang', 'en');\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_events.sql"),
        format!(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL, tag TEXT NOT NULL);\n\
             INSERT INTO events (body, tag)\n\
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})\n\
             SELECT randomblob(250), printf('tag-%d', i % 97) FROM n;\n\
             CREATE INDEX events_by_tag ON events (tag);\n\
             UPDATE settings SET value = 'light' WHERE key = 'theme';\n"
        ),
    )
    .unwrap();
    dir
}

fn page_count(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap()
}

fn assert_says_full(err: &Error) {
    let message = err.to_string();
    assert!(
        message.contains("full") && message.contains("free space"),
        "the error must say the disk is full and what to do: {message}"
    );
}

/// Every page limit between the database's size and what migration 2 needs
/// makes `SQLITE_FULL` strike at a different point of the migration (its
/// statements, its history row, its commit): each time nothing changes.
fn max_page_count_at_every_page(wal: bool) {
    let rows = if full_size() { 4_000 } else { 600 };
    let dir = migrations(rows);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    if wal {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
    }
    migrations.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    let start = page_count(&conn);

    let mut failures = 0;
    // Where the full disk struck: a statement of the file, the history...
    let mut places: Vec<String> = Vec::new();
    let mut limit = start;
    loop {
        conn.execute_batch(&format!("PRAGMA max_page_count = {limit}"))
            .unwrap();
        match migrations.migrate(&mut conn) {
            Ok(report) => {
                assert_eq!(report.version(), 2);
                break;
            }
            Err(err) => {
                assert_says_full(&err);
                failures += 1;
                let message = err.to_string();
                let place = message.split(" (").next().unwrap_or_default().to_owned();
                if !places.contains(&place) {
                    places.push(place);
                }
                // A fresh connection sees exactly the database as before.
                let check = open(&db);
                assert_eq!(
                    snapshot(&check),
                    before,
                    "wal={wal}, max_page_count {limit}: {err}"
                );
                assert_eq!(integrity(&check), "ok");
                assert_eq!(snapshot(&conn), before);
            }
        }
        limit += 1;
        assert!(limit < start + 10_000, "migration 2 never fitted");
    }
    eprintln!(
        "wal={wal}: SQLITE_FULL at {failures} page limits from {start} to {}, each rolled back; \
         it struck at: {places:?}",
        limit - 1
    );
    assert!(failures > 10, "only {failures} limits failed");
    assert!(places.len() >= 3, "{places:?}");
    // Once there is room, it is applied, and the database is whole.
    let theme: String = conn
        .query_row("SELECT value FROM settings WHERE key = 'theme'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(theme, "light");
    assert_eq!(integrity(&conn), "ok");
    migrations.verify(&conn).unwrap();
}

#[test]
fn sqlite_full_through_max_page_count_rolls_back_rollback_journal() {
    max_page_count_at_every_page(false);
}

#[test]
fn sqlite_full_through_max_page_count_rolls_back_wal() {
    max_page_count_at_every_page(true);
}

/// On a brand-new database the framework's own writes (the history table,
/// the history row, `user_version`) come first: a full disk there leaves
/// the file as empty as it was.
#[test]
fn sqlite_full_while_recording_the_first_migration_leaves_an_empty_database() {
    let dir = migrations(10);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    for wal in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("new.db");
        let mut conn = open(&db);
        if wal {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .unwrap();
        }
        let empty = snapshot(&conn);
        let mut places: Vec<String> = Vec::new();
        for limit in 1.. {
            conn.execute_batch(&format!("PRAGMA max_page_count = {limit}"))
                .unwrap();
            match migrations.migrate_to(&mut conn, 1) {
                Ok(report) => {
                    assert_eq!(report.version(), 1);
                    break;
                }
                Err(err) => {
                    assert_says_full(&err);
                    places.push(
                        err.to_string()
                            .split(": ")
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    let check = open(&db);
                    assert_eq!(snapshot(&check), empty, "wal={wal}, limit {limit}: {err}");
                    assert_eq!(integrity(&check), "ok");
                }
            }
            assert!(limit < 100);
        }
        eprintln!("wal={wal}: SQLITE_FULL on a new database struck at {places:?}");
        assert!(!places.is_empty());
        assert_eq!(integrity(&conn), "ok");
        migrations.verify(&conn).unwrap();
    }
}

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: PathBuf,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Result<Tmpfs, String> {
        if !cfg!(target_os = "linux") {
            return Err("tmpfs mounts are a Linux feature".to_owned());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mounted = dir.path().join("mnt");
        std::fs::create_dir(&mounted).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&mounted)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (not root, or not allowed here): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir, mounted })
    }

    fn path(&self) -> &Path {
        &self.mounted
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mounted).status();
        let _ = self.dir.path();
    }
}

fn real_full_filesystem(wal: bool, size: u64) {
    let fs = match Tmpfs::mount(size) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: the full-filesystem test needs a tmpfs mount: {why}");
            return;
        }
    };
    // Migration 2 writes about the size of the filesystem.
    let rows = size / 300;
    let dir = migrations(rows);
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let db = fs.path().join("app.db");
    let mut conn = open(&db);
    if wal {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
    }
    migrations.migrate_to(&mut conn, 1).unwrap();
    let before = snapshot(&conn);
    // Ballast: leaves about a quarter of the filesystem free.
    let ballast = fs.path().join("ballast");
    std::fs::write(
        &ballast,
        vec![0xA5u8; usize::try_from(size / 4 * 3).unwrap()],
    )
    .unwrap();

    let err = migrations.migrate(&mut conn).unwrap_err();
    assert_says_full(&err);
    eprintln!("wal={wal}: {err}");
    let check = open(&db);
    assert_eq!(snapshot(&check), before, "wal={wal}: {err}");
    assert_eq!(integrity(&check), "ok");
    drop(check);

    // Free the space: the same call now succeeds.
    std::fs::remove_file(&ballast).unwrap();
    let report = migrations.migrate(&mut conn).unwrap();
    assert_eq!(report.version(), 2);
    assert_eq!(integrity(&conn), "ok");
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, i64::try_from(rows).unwrap());
    drop(conn);
}

#[test]
fn full_tmpfs_rolls_back_and_succeeds_after_space_is_freed_rollback_journal() {
    real_full_filesystem(false, tmpfs_size());
}

fn tmpfs_size() -> u64 {
    if full_size() {
        64 << 20
    } else {
        4 << 20
    }
}

#[test]
fn full_tmpfs_rolls_back_and_succeeds_after_space_is_freed_wal() {
    real_full_filesystem(true, tmpfs_size());
}

/// WAL on a 64 MiB filesystem with 16 MiB free: the disk fills just as the
/// WAL reaches 4062 frames and its index (`-shm`) must grow, and SQLite
/// reports `SQLITE_IOERR_SHMSIZE` ("disk I/O error"), not `SQLITE_FULL`.
/// The migration is rolled back and the error says that the disk is full.
#[test]
fn full_tmpfs_while_the_wal_index_grows_says_the_disk_is_full() {
    real_full_filesystem(true, 64 << 20);
}
