//! The database layer of a small application, kept the way a real project
//! would keep it: the migrations embedded at compile time, and how a
//! connection is set up for production use.
//!
//! The `migrate` example (`cargo run --example migrate`) opens a database
//! with these, migrates it and exercises the schema in `migrations/`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = rusqlite::Connection::open_in_memory()?;
//! migrations_example::configure(&conn)?;
//! let report = migrations_example::migrator().migrate(&mut conn)?;
//! assert_eq!(report.version(), migrations_example::MIGRATIONS.latest());
//! # Ok(()) }
//! ```

use std::time::Duration;

use migrate_core::{JournalMode, Migrations, Migrator};
use rusqlite::Connection;

/// The files of `migrations/`, checked and embedded at compile time.
pub static MIGRATIONS: Migrations = migrate_core::embed_migrations!("migrations");

/// The page size of a new database, in bytes.
///
/// SQLite fixes the page size when the first table is created (and a
/// database in WAL mode cannot change it even with `VACUUM`), so it is set
/// through the migrator, before migration 1. Larger pages than the 4096
/// default suit rows with text and the full-text index: fewer, fuller pages.
pub const PAGE_SIZE: u32 = 8192;

/// How long a statement waits for another connection's lock before failing
/// with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The per-connection settings of a production database: run on every new
/// connection, before migrating.
///
/// - `busy_timeout`: wait for a writer instead of failing at once. Set it
///   first: the other settings may need a lock.
/// - `foreign_keys = ON`: SQLite does not enforce `REFERENCES` without it.
/// - `synchronous = NORMAL`: in WAL mode, a commit survives a crash of the
///   application; only a power loss can undo the last commits, never
///   corrupt the file. Saves an `fsync` per commit over `FULL`.
/// - `cache_size = -20000`: about 20 MB of page cache (negative: KiB)
///   instead of 2 MB.
/// - `temp_store = MEMORY`: temporary tables and sort files in memory.
/// - `mmap_size`: read the file through memory mapping, 128 MiB of it.
///
/// `journal_mode = WAL` is a property of the file, not of the connection:
/// [`migrator`] sets it on a new database and [`ensure_wal`] on an older
/// one.
///
/// # Errors
///
/// SQLite's error if a setting is refused.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -20000;
         PRAGMA temp_store = MEMORY;
         PRAGMA mmap_size = 134217728;",
    )
}

/// The migrator for [`MIGRATIONS`], with the settings a new database can
/// only get before its first table: [`PAGE_SIZE`] and WAL.
pub fn migrator() -> Migrator<'static> {
    MIGRATIONS
        .migrator()
        .lock_timeout(BUSY_TIMEOUT)
        .page_size(PAGE_SIZE)
        .journal_mode(JournalMode::Wal)
}

/// Switches a database created elsewhere (in the default rollback-journal
/// mode) to WAL, which stays for every later connection; returns the mode
/// the database is in. A no-op on a database already in WAL mode.
///
/// # Errors
///
/// SQLite's error, for example `SQLITE_BUSY` when another connection keeps
/// the database open in rollback-journal mode.
pub fn ensure_wal(conn: &Connection) -> rusqlite::Result<String> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(mode);
    }
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
}
