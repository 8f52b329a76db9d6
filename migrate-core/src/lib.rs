//! Embedded, checksum-verified SQLite migrations for [rusqlite].
//!
//! Put numbered `.sql` files in a directory, embed them at compile time with
//! [`embed_migrations!`], and call [`Migrations::migrate`] when the
//! application starts. Each migration runs in its own transaction: it is
//! applied completely or not at all. The database records what was applied
//! (`PRAGMA user_version` and a `_migrate_history` table with each file's
//! SHA-256), and a migration edited after it was applied is refused instead
//! of silently skipped.
//!
//! [rusqlite]: https://docs.rs/rusqlite/0.43
//!
//! # Quick start
//!
//! ```
//! use migrate_core::{embed_migrations, Migrations};
//!
//! // migrations/001_create_users.sql, migrations/002_add_display_name.sql
//! static MIGRATIONS: Migrations = embed_migrations!("migrations");
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut conn = rusqlite::Connection::open_in_memory()?;
//!     let report = MIGRATIONS.migrate(&mut conn)?;
//!     println!("{report}");
//!     assert_eq!(report.version(), 2);
//!
//!     // A second call finds nothing to do, without taking a write lock.
//!     assert!(MIGRATIONS.migrate(&mut conn)?.applied().is_empty());
//!     Ok(())
//! }
//! ```
//!
//! In the application's `build.rs`, so that adding a file rebuilds the crate:
//!
//! ```text
//! fn main() { println!("cargo:rerun-if-changed=migrations"); }
//! ```
//!
//! # Migration files
//!
//! - `<version>_<name>.sql` or `<version>.sql`; versions are digits (leading
//!   zeros allowed), 1 to 2147483647, unique and contiguous from 1.
//!   `<version>_<name>.down.sql` is the optional reverse, run by
//!   [`Migrations::migrate_to`] a lower version.
//! - Other files, hidden files and subdirectories are ignored; a `.sql` file
//!   whose name does not fit is an error.
//! - UTF-8, with at least one statement. A comment
//!   `-- migrate:no-transaction` among the comments before the first
//!   statement runs the file outside a transaction (for `VACUUM` or
//!   `PRAGMA journal_mode`); any other `-- migrate:` directive is an error.
//! - The checksum is SHA-256 of the file after removing a BOM and turning
//!   CRLF into LF.
//!
//! # What `migrate` checks
//!
//! Before applying anything, and again inside a write transaction whenever
//! another connection committed since the last read (`PRAGMA
//! data_version`):
//!
//! | found | error |
//! | --- | --- |
//! | an applied migration whose file changed | [`Error::Drift`] |
//! | the database is newer than the program | [`Error::UnknownVersion`] |
//! | a version missing from the history, or `user_version` disagreeing | [`Error::Inconsistent`] |
//! | an unfinished `no-transaction` migration | [`Error::Incomplete`] |
//!
//! While applying: `PRAGMA foreign_keys` is turned off for the run (and
//! restored, also on error) so that a table rebuild cannot cascade;
//! `PRAGMA foreign_key_check` runs before each commit if foreign keys were
//! on; a statement that would end the framework's transaction (`COMMIT`,
//! `BEGIN`...) is refused; and `PRAGMA integrity_check` runs at the end
//! (full, quick, only the changed tables, or off: see
//! [`Migrations::migrator`] for this and the other options).
//!
//! # Catching drift in a test
//!
//! ```
//! # use migrate_core::{embed_migrations, Migrations};
//! # static MIGRATIONS: Migrations = embed_migrations!("migrations");
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let copy = dir.path().join("prod-copy.db");
//! # MIGRATIONS.migrate(&mut rusqlite::Connection::open(&copy)?)?;
//! // tests/migrations.rs
//! // 1. The directory agrees with its lock file of released checksums and
//! //    with what this build embedded (see the `lock` module).
//! MIGRATIONS.check_source("migrations")?;
//! // 2. A copy of the production database ran no migration whose file was
//! //    edited since (read-only: `verify` never writes).
//! let conn = rusqlite::Connection::open_with_flags(&copy, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
//! MIGRATIONS.verify(&conn)?;
//! # Ok(()) }
//! ```
//!
//! # Oldest SQLite
//!
//! The library links against whichever SQLite your rusqlite uses (its
//! `bundled` feature or the system library). rusqlite 0.43 needs SQLite
//! 3.45.3 or newer, so that is the oldest system library that works. The
//! history table itself uses nothing newer than 3.31, so older tools can
//! open a migrated database.

mod error;
pub mod lock;
mod migration;
mod report;
mod runner;
mod state;

pub use error::{Error, Hint, Outcome, Result};
pub use migration::{Checksum, Migration, Migrations};
pub use report::{Applied, IntegrityOutcome, Report, Status};
pub use runner::{AutoVacuum, IntegrityCheck, JournalMode, Migrator};
pub use state::HistoryRow;

/// The rusqlite this crate is built with, for a program that would rather
/// not name its version: `migrate_core::rusqlite::Connection` is the type
/// [`Migrations::migrate`] takes. (Its SQLite comes from rusqlite's
/// `bundled` feature if any crate of the program enables it, otherwise
/// from the system.)
///
/// ```
/// use migrate_core::rusqlite::Connection;
///
/// let conn = Connection::open_in_memory()?;
/// let version: String = conn.query_row("SELECT sqlite_version()", [], |r| r.get(0))?;
/// assert!(version.starts_with("3."));
/// # Ok::<(), migrate_core::rusqlite::Error>(())
/// ```
pub use rusqlite;

/// Embeds a directory of migrations at compile time.
///
/// The path is relative to the calling crate's `Cargo.toml`. The macro reads
/// the directory, applies the file rules, computes each file's SHA-256, and
/// expands to a constant [`Migrations`] (usable in a `static`) that embeds
/// the text it checked and hashed (so a file saved again during the build
/// cannot slip in unchecked), and names each file in an `include_str!`, so
/// editing a file rebuilds the crate.
/// Adding or removing a file rebuilds it only if the crate's `build.rs`
/// says `println!("cargo:rerun-if-changed=migrations");`.
///
/// The argument must be a string literal (not a constant or `concat!`), and
/// a relative path: an absolute path would build only on one machine. An
/// empty directory embeds no migrations. The expansion names the crate
/// `::migrate_core`, so depend on it under that name (no `package =`
/// renaming).
///
/// Any broken rule (a bad name, a duplicate or missing version, an empty
/// file, an unknown directive, a missing directory...) is a compile error
/// at the macro's argument that names the file and what to do. If the
/// directory has a lock file (`migrate.lock`, see [`lock`]), a released
/// migration that was edited, removed or renamed is a compile error too, and
/// editing the lock file rebuilds the crate. To have a failing test report
/// it instead (with the same message), write
/// `embed_migrations!("migrations", lock = "test")` and call
/// [`Migrations::check_source`] in a test.
///
/// ```
/// use migrate_core::{embed_migrations, Migrations};
///
/// static MIGRATIONS: Migrations = embed_migrations!("migrations");
///
/// # fn main() -> Result<(), migrate_core::Error> {
/// assert_eq!(MIGRATIONS.len(), 2);
/// let first = MIGRATIONS.iter().next().map(|m| (m.version(), m.name()));
/// assert_eq!(first, Some((1, "create_users")));
/// let mut conn = rusqlite::Connection::open_in_memory()?;
/// MIGRATIONS.migrate(&mut conn)?;
/// # Ok(()) }
/// ```
pub use migrate_macros::embed_migrations;
