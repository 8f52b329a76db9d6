//! The example's migrations on databases that already hold data: what a
//! real upgrade meets, which the demo (it writes its rows after migrating)
//! does not show.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use migrations_example::{configure, migrator, MIGRATIONS};
use rusqlite::Connection;

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A database at version `version`, with the production settings.
fn database_at(version: u32) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("app.db")).unwrap();
    configure(&conn).unwrap();
    migrator().target(version).migrate(&mut conn).unwrap();
    (dir, conn)
}

/// Migration 6 rebuilds `users`, the parent of `posts` and `events` (both
/// ON DELETE CASCADE), on a connection with foreign keys on: the child rows,
/// the ids, the AUTOINCREMENT counter and the search index survive.
#[test]
fn the_users_rebuild_keeps_child_rows_ids_and_the_search_index() {
    let (_dir, mut conn) = database_at(5);
    conn.execute_batch(
        "INSERT INTO users (email, name, bio) VALUES
             ('ada@example.com', 'Ada', 'Writes the first program.'),
             ('grace@example.com', 'Grace', 'Finds the first bug.'),
             ('gone@example.com', 'Gone', 'Deleted before the upgrade.');
         DELETE FROM users WHERE email = 'gone@example.com';
         INSERT INTO posts (author_id, title, body) VALUES (1, 'Notes', 'On the engine'), (2, 'Bugs', 'A moth');
         INSERT INTO events (user_id, payload) VALUES (1, '{\"kind\": \"signup\"}'), (2, '{\"kind\": \"login\"}');",
    )
    .unwrap();
    let fk_on: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(fk_on);

    let report = migrator().migrate(&mut conn).unwrap();
    let applied: Vec<u32> = report.applied().iter().map(|a| a.version()).collect();
    assert_eq!(applied, [6, 7]);

    assert_eq!(count(&conn, "SELECT count(*) FROM posts"), 2);
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM posts JOIN users ON users.id = posts.author_id"
        ),
        2
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    // Foreign keys are on again, and the cascade still works.
    let fk_on: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(fk_on);

    // The deleted user's id 3 is not given out again.
    conn.execute(
        "INSERT INTO users (email, name) VALUES ('new@example.com', 'New')",
        [],
    )
    .unwrap();
    assert_eq!(conn.last_insert_rowid(), 4);

    // The search index still finds the old rows, and follows new ones.
    let found: String = conn
        .query_row(
            "SELECT u.email FROM users_fts JOIN users AS u ON u.id = users_fts.rowid \
             WHERE users_fts MATCH 'moth OR bug'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, "grace@example.com");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM users_fts WHERE users_fts MATCH 'new'"
        ),
        1
    );
    conn.execute_batch("INSERT INTO users_fts (users_fts, rank) VALUES ('integrity-check', 1)")
        .unwrap();

    // The new rules hold.
    let upper: i64 = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'ADA@EXAMPLE.COM'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(upper, 1);

    conn.execute("DELETE FROM users WHERE id = 1", []).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM posts"), 1, "cascade");
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 1, "cascade");
}

/// Emails that differ only in case cannot become one account silently:
/// migration 6 fails on its unique index, and rolls back completely.
#[test]
fn the_rebuild_refuses_emails_that_differ_only_in_case() {
    let (_dir, mut conn) = database_at(5);
    conn.execute_batch(
        "INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada'), ('Ada@Example.com', 'Ada 2');
         INSERT INTO posts (author_id, title, body) VALUES (1, 'T', 'B');",
    )
    .unwrap();
    let err = migrator().migrate(&mut conn).unwrap_err();
    assert!(
        matches!(err, migrate_core::Error::Migration { version: 6, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert_eq!(MIGRATIONS.status(&conn).unwrap().version(), 5);
    assert_eq!(count(&conn, "SELECT count(*) FROM users"), 2);
    assert_eq!(count(&conn, "SELECT count(*) FROM posts"), 1);
    // The old table, its triggers and indexes are as before.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE name IN \
             ('users_email', 'users_fts_insert', 'new_users')"
        ),
        2
    );
}

/// From every version a deployed database can be at, the rest applies.
#[test]
fn every_version_upgrades_to_the_latest() {
    for version in 0..=MIGRATIONS.latest() {
        let (_dir, mut conn) = database_at(version);
        let report = migrator().migrate(&mut conn).unwrap();
        assert_eq!(report.version(), MIGRATIONS.latest(), "from {version}");
        MIGRATIONS.verify(&conn).unwrap();
    }
}

/// The new-database settings apply only to a new database: an existing one
/// (made by an older release, in rollback-journal mode, 4096-byte pages)
/// keeps its page size, and `ensure_wal` switches it to WAL.
#[test]
fn an_existing_database_keeps_its_page_size_and_is_switched_to_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE settings (key TEXT PRIMARY KEY)")
        .unwrap();
    configure(&conn).unwrap();
    migrator().migrate(&mut conn).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 4096);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    assert_eq!(migrations_example::ensure_wal(&conn).unwrap(), "wal");
}

/// The program embedded the `migrations/` directory as it is on disk: no
/// stale build (a file added, removed or edited since the last build).
#[test]
fn the_embedded_migrations_match_the_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    MIGRATIONS.check_source(&dir).unwrap();
    assert_eq!(MIGRATIONS.len(), 7);
    let no_transaction: Vec<u32> = MIGRATIONS
        .iter()
        .filter(|m| m.no_transaction())
        .map(|m| m.version())
        .collect();
    assert_eq!(no_transaction, [7]);
}

/// Migration 7 is `no-transaction` because it has to be: SQLite refuses
/// its VACUUM inside a transaction.
#[test]
fn the_vacuum_migration_cannot_run_in_a_transaction() {
    let (_dir, conn) = database_at(6);
    let sql = MIGRATIONS.get(7).unwrap().sql();
    let err = conn
        .execute_batch(&format!("BEGIN; {sql}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("within a transaction"), "{err}");
}

/// Every migration of the example is released: the lock lists each one, and
/// `check_source` (above) proves none was edited since.
#[test]
fn the_lock_covers_every_migration() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let lock = std::fs::read_to_string(dir.join("migrate.lock")).unwrap();
    let locked: Vec<String> = lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let expected: Vec<String> = MIGRATIONS
        .iter()
        .map(|m| format!("{} {}", m.version(), m.file_name()))
        .collect();
    assert_eq!(
        locked, expected,
        "run `cargo run --example migrate -- lock`"
    );
}
