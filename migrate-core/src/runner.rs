//! Applying migrations (DESIGN section 5) and the builder of its options.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migrate_rules::Mentions;
use rusqlite::config::DbConfig;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection, OptionalExtension};

use crate::error::{is_busy, is_full, with_path, Error, Hint, Outcome, Result};
use crate::migration::{Migration, Migrations};
use crate::report::{Applied, IntegrityOutcome, Report, Status};
use crate::state::{
    self, read_state, read_state_snapshot, verify, Quick, Verified, CREATE_HISTORY,
};

mod down;

/// Which integrity check runs after migrations were applied.
///
/// Choosing one: [`Full`](Self::Full) (the default) for small and medium
/// databases, where it costs milliseconds to seconds and finds everything.
/// [`Changed`](Self::Changed) for large databases whose migrations touch a
/// few tables: it checks those tables completely (a rebuilt table in full)
/// and nothing else, so its cost follows the migration, not the database.
/// [`Quick`](Self::Quick) when a whole-database look is wanted in linear
/// time and index contents need not be cross-checked. [`Off`](Self::Off)
/// only when another process checks the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IntegrityCheck {
    /// `PRAGMA integrity_check`: everything, including that every index
    /// matches its table. O(N log N) in the size of the database.
    #[default]
    Full,
    /// `PRAGMA quick_check`: the b-tree structure, NOT NULL and CHECK
    /// constraints and index entry counts, but not index contents or
    /// UNIQUE-ness. Linear time.
    Quick,
    /// `PRAGMA integrity_check(<table>)` on each table (with its indexes)
    /// that the applied migrations created, rebuilt, altered, reindexed or
    /// wrote rows to, as SQLite's authorizer reports them (and, for a table
    /// a file renamed, a comparison of the schema before and after that
    /// file shows). The cost follows what the migrations touched, not the
    /// size of the database or of its schema. On a new database (no table
    /// before the run), every table is the run's, and one `PRAGMA
    /// integrity_check` runs instead: cheaper than one per table, and it
    /// covers more; so it does after a file that wrote `sqlite_master`
    /// itself (`PRAGMA writable_schema`), which may have changed anything.
    /// The run installs its own authorizer on the connection and removes
    /// it at the end, as it also does when the connection has foreign keys
    /// on (a connection can have one: install yours again after
    /// `migrate`).
    Changed,
    /// No check.
    Off,
}

/// `PRAGMA auto_vacuum` for a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AutoVacuum {
    /// `NONE`: freed pages stay in the file until `VACUUM`.
    None,
    /// `FULL`: the file shrinks at every commit.
    Full,
    /// `INCREMENTAL`: the file shrinks at `PRAGMA incremental_vacuum`.
    Incremental,
}

/// `PRAGMA journal_mode` for a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalMode {
    /// Write-ahead log: readers never block the writer, nor it them.
    Wal,
    /// The rollback journal, SQLite's default.
    Delete,
}

/// Settings SQLite can only take before a database has its first table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct NewDatabase {
    page_size: Option<u32>,
    auto_vacuum: Option<AutoVacuum>,
    journal_mode: Option<JournalMode>,
}

/// Runs [`Migrations`] with options: made by [`Migrations::migrator`].
///
/// ```
/// use std::time::Duration;
/// use migrate_core::{IntegrityCheck, Migrations};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
/// let migrations = Migrations::from_dir(dir.path())?;
/// let mut conn = rusqlite::Connection::open_in_memory()?;
/// let report = migrations
///     .migrator()
///     .lock_timeout(Duration::from_secs(30))
///     .integrity_check(IntegrityCheck::Quick)
///     .migrate(&mut conn)?;
/// assert_eq!(report.version(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Migrator<'m> {
    migrations: &'m Migrations,
    lock_timeout: Duration,
    single_transaction: bool,
    integrity: IntegrityCheck,
    target: Option<u32>,
    new_database: NewDatabase,
}

impl Migrations {
    /// A [`Migrator`] with the default options: 5 s lock timeout, one
    /// transaction per migration, full integrity check, up to the newest
    /// version.
    pub fn migrator(&self) -> Migrator<'_> {
        Migrator {
            migrations: self,
            lock_timeout: Duration::from_secs(5),
            single_transaction: false,
            integrity: IntegrityCheck::Full,
            target: None,
            new_database: NewDatabase::default(),
        }
    }

    /// Applies every pending migration, each in its own transaction, then
    /// checks the database's integrity. Returns at once, without taking a
    /// write lock, when nothing is pending.
    ///
    /// The connection's `foreign_keys` and busy timeout are restored at the
    /// end, and so is what a migration file changed on it: a database it
    /// attached is detached, `writable_schema`, `synchronous` and the other
    /// connection settings a file may set with `PRAGMA` are put
    /// back, and a `journal_mode` of `OFF` or `MEMORY` set by a
    /// `no-transaction` file is put back right after that file (so that the
    /// migrations after it can still roll back). A connection to a database
    /// file in `journal_mode` `OFF` or `MEMORY` (no rollback journal on
    /// disk) migrates in `DELETE` mode and gets its mode back after: without
    /// a journal, a failed migration could not be rolled back. While
    /// migrating, the run installs its own authorizer (and, while
    /// a `no-transaction` file runs, its own commit hook) and removes them
    /// at the end: install yours again after the call.
    ///
    /// # Errors
    ///
    /// - [`Error::Drift`], [`Error::UnknownVersion`], [`Error::Inconsistent`],
    ///   [`Error::Incomplete`]: verification failed; nothing was touched.
    /// - [`Error::Migration`]: a statement failed; that migration was rolled
    ///   back, earlier ones stay applied.
    /// - [`Error::ForeignKeyViolation`]: a migration left orphan rows; it was
    ///   rolled back (a `no-transaction` one stays marked incomplete).
    /// - [`Error::Integrity`]: the check after migrating failed.
    /// - [`Error::Locked`]: another connection held the write lock past the
    ///   timeout.
    /// - [`Error::ReadOnly`]: migrations are pending on a read-only
    ///   connection.
    /// - [`Error::InTransaction`], [`Error::Sqlite`].
    pub fn migrate(&self, conn: &mut Connection) -> Result<Report> {
        self.migrator().migrate(conn)
    }

    /// Migrates to `version`: applies the pending migrations up to and
    /// including it, or, when it is below the database's version, reverts
    /// the applied ones above it with their `.down.sql` files, newest
    /// first. `0` reverts every version.
    ///
    /// A down run is checked as an up run is: the same verification first
    /// (drift, an unknown version, an inconsistent or incomplete history
    /// are refused), then every version to revert must have a down file,
    /// or nothing is changed. Each down file runs as a migration does: in a
    /// transaction of its own (or all in one with
    /// [`single_transaction`](Migrator::single_transaction)) taken with
    /// `BEGIN IMMEDIATE`, after the history is read again inside it;
    /// statement by statement, so that a failure names the down file and
    /// line and rolls the whole file back; with foreign keys off and
    /// checked before the commit, which also deletes the version's history
    /// row and sets `user_version` to the version below. The integrity
    /// check runs at the end, and [`Report::reverted`] lists what ran.
    /// A down file marked `-- migrate:no-transaction` is refused before
    /// anything is changed: a failure in it could leave the version half
    /// reverted. The history table itself stays, even at version 0.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
    /// # std::fs::write(dir.path().join("002_posts.sql"), "CREATE TABLE posts (id INTEGER PRIMARY KEY);")?;
    /// # std::fs::write(dir.path().join("002_posts.down.sql"), "DROP TABLE posts;")?;
    /// // 001_users.sql, 002_posts.sql and 002_posts.down.sql
    /// let migrations = migrate_core::Migrations::from_dir(dir.path())?;
    /// let mut conn = rusqlite::Connection::open_in_memory()?;
    /// assert_eq!(migrations.migrate_to(&mut conn, 1)?.version(), 1); // up
    /// migrations.migrate(&mut conn)?; // up to 2
    /// let report = migrations.migrate_to(&mut conn, 1)?; // down: runs 002_posts.down.sql
    /// assert_eq!(report.reverted().len(), 1);
    /// assert_eq!(report.version(), 1);
    /// // 001_users.sql has no down file: going to 0 is refused, nothing changes.
    /// let refused = migrations.migrate_to(&mut conn, 0).unwrap_err();
    /// assert!(refused.to_string().contains("001_users.down.sql"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Migrations::migrate`] (for a down file too: [`Error::Migration`]
    /// names the `.down.sql` file and line, and that file was rolled back),
    /// and [`Error::Target`] when `version` is above the newest migration,
    /// when a version to revert has no down file or has a `no-transaction`
    /// one (nothing was changed), or when another connection moved the
    /// database while the run was reverting it (the run stops; what it
    /// reverted before stays reverted).
    pub fn migrate_to(&self, conn: &mut Connection, version: u32) -> Result<Report> {
        self.migrator().target(version).migrate(conn)
    }

    /// Checks the database against these migrations without writing: see
    /// the verification table in the crate documentation. Works on a
    /// read-only connection and on a database that was never migrated.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
    /// let migrations = migrate_core::Migrations::from_dir(dir.path())?;
    /// let mut conn = rusqlite::Connection::open_in_memory()?;
    /// migrations.verify(&conn)?; // never migrated: fine, version 1 is pending
    /// migrations.migrate(&mut conn)?;
    /// migrations.verify(&conn)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Drift`], [`Error::UnknownVersion`], [`Error::Inconsistent`],
    /// [`Error::Incomplete`], or [`Error::Sqlite`] if the database cannot be
    /// read.
    pub fn verify(&self, conn: &Connection) -> Result<()> {
        let state = read_state_snapshot(conn).map_err(|e| read_error(e, conn))?;
        verify(&state, self).map(|_| ())
    }

    /// The database's version, its history and what is pending, without
    /// writing and without failing on drift (use [`Migrations::verify`]).
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] if the database cannot be read.
    pub fn status(&self, conn: &Connection) -> Result<Status> {
        let state = read_state_snapshot(conn).map_err(|e| read_error(e, conn))?;
        Ok(Status::new(state, self))
    }
}

/// How the error of a run that applied its migrations, and then could not
/// put a setting of the connection back, begins.
const AFTER_RUN: &str = "the run migrated the database to version";

/// The error of [`Migrations::verify`] or [`Migrations::status`], which
/// wait for a lock only as long as the connection's own busy timeout: say
/// so when that was not enough.
fn read_error(e: Error, conn: &Connection) -> Error {
    match with_path(e, conn) {
        Error::Sqlite { mut context, cause } if is_busy(&cause) => {
            let waited = conn
                .query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0))
                .map_or_else(|_| String::new(), |ms| format!(" ({ms} ms)"));
            context.push_str(&format!(
                "; another connection held a lock on the database (a write being committed) for \
                 longer than this connection's busy timeout{waited}: retry, or raise it with \
                 `Connection::busy_timeout`"
            ));
            Error::Sqlite { context, cause }
        }
        e => e,
    }
}

impl<'m> Migrator<'m> {
    /// How long to wait for another connection's write lock before
    /// returning [`Error::Locked`] (default 5 s).
    ///
    /// It also bounds the wait for another instance's `no-transaction`
    /// migration that the run finds marked started: counted from the start
    /// of the run, after which the answer is [`Error::Incomplete`].
    ///
    /// The run sets the connection's busy timeout to this and restores the
    /// previous number of milliseconds afterwards; a custom busy handler
    /// installed with `busy_handler` is not restored (rusqlite cannot read
    /// it back): install it again after `migrate`.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        // SQLite's busy timeout is an i32 of milliseconds (about 24.8 days);
        // longer means "as long as SQLite can wait".
        self.lock_timeout = timeout.min(Duration::from_millis(i32::MAX as u64));
        self
    }

    /// Apply all pending migrations in one transaction (all or nothing)
    /// instead of one transaction each (the default). Refused when a pending
    /// migration is `no-transaction`.
    pub fn single_transaction(mut self, yes: bool) -> Self {
        self.single_transaction = yes;
        self
    }

    /// The integrity check after applying (default [`IntegrityCheck::Full`]).
    pub fn integrity_check(mut self, check: IntegrityCheck) -> Self {
        self.integrity = check;
        self
    }

    /// Stop at this version instead of the newest. A version below the
    /// database's reverts the versions above it with their `.down.sql`
    /// files, newest first, as [`Migrations::migrate_to`] describes.
    pub fn target(mut self, version: u32) -> Self {
        self.target = Some(version);
        self
    }

    /// `PRAGMA page_size` for a brand-new database (no tables yet), set
    /// before migration 1. Ignored for an existing database. A power of two
    /// from 512 to 65536: `migrate` refuses any other value with
    /// [`Error::InvalidOption`] before doing anything.
    ///
    /// Like `auto_vacuum` and `journal_mode`, it is set before migration 1
    /// runs, outside its transaction (SQLite takes it only there), so it
    /// stays even if migration 1 fails: the new database is then empty,
    /// with these settings, and the next run applies migration 1 to it.
    pub fn page_size(mut self, bytes: u32) -> Self {
        self.new_database.page_size = Some(bytes);
        self
    }

    /// `PRAGMA auto_vacuum` for a brand-new database, set before migration 1.
    /// Ignored for an existing database.
    pub fn auto_vacuum(mut self, mode: AutoVacuum) -> Self {
        self.new_database.auto_vacuum = Some(mode);
        self
    }

    /// `PRAGMA journal_mode` for a brand-new database, set before migration
    /// 1 (WAL is persistent: it stays for every later connection). Ignored
    /// for an existing database.
    pub fn journal_mode(mut self, mode: JournalMode) -> Self {
        self.new_database.journal_mode = Some(mode);
        self
    }

    /// Applies the pending migrations with these options.
    ///
    /// # Errors
    ///
    /// As [`Migrations::migrate`]; for a target, as
    /// [`Migrations::migrate_to`]; [`Error::InvalidOption`] for a bad
    /// `page_size`; [`Error::Target`] for `single_transaction(true)` with a
    /// pending `no-transaction` migration (nothing was done).
    pub fn migrate(&self, conn: &mut Connection) -> Result<Report> {
        let started = Instant::now();
        if let Some(size) = self.new_database.page_size {
            if !(512..=65536).contains(&size) || !size.is_power_of_two() {
                return Err(Error::InvalidOption {
                    option: format!("page_size({size})"),
                    reason: "SQLite takes a power of two from 512 to 65536".to_owned(),
                });
            }
        }
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        let latest = self.migrations.latest();
        let target = self.target.unwrap_or(latest);
        if target > latest {
            return Err(Error::Target {
                target,
                reason: format!("the newest migration is version {latest}"),
            });
        }
        // Every read and write of the run waits for other connections up to
        // the lock timeout, the up-to-date check included: in rollback-journal
        // mode another process's exclusive lock keeps readers out too.
        let previous_timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .map_err(|e| Error::sqlite("cannot read busy_timeout", e))?;
        conn.busy_timeout(self.lock_timeout)
            .map_err(|e| Error::sqlite("cannot set busy_timeout", e))?;
        let result = self
            .migrate_with_timeout(conn, target, started)
            .map_err(|e| match e {
                Error::Sqlite {
                    ref cause,
                    ref context,
                } if is_busy(cause) && !context.starts_with(AFTER_RUN) => Error::Locked {
                    timeout: self.lock_timeout,
                },
                e => e,
            });
        let previous = Duration::from_millis(u64::try_from(previous_timeout).unwrap_or(0));
        match (result, conn.busy_timeout(previous)) {
            (Ok(_), Err(e)) => Err(Error::sqlite("cannot restore busy_timeout", e)),
            (result, _) => result.map_err(|e| with_path(e, conn)),
        }
    }

    /// [`Migrator::migrate`] once the connection waits up to the lock timeout.
    fn migrate_with_timeout(
        &self,
        conn: &mut Connection,
        target: u32,
        started: Instant,
    ) -> Result<Report> {
        // The version the database was at when the run found another
        // instance's `no-transaction` migration running, and waited for it.
        let mut waited_at: Option<u32> = None;
        // The fast path: one read transaction, no write lock, constant time.
        // When it vouches for an older version it also spares the full
        // read, and the first write transaction's re-read when no other
        // connection committed since.
        let (current, needs_adoption, new_database, known, references, empty) =
            match state::quick_check(conn, self.migrations, target)? {
                Quick::UpToDate(version) => (version, false, false, None, None, false),
                Quick::Pending {
                    version,
                    data_version,
                } => {
                    log::debug!(
                        "database at version {version} verified; migrating to version {target}"
                    );
                    let known = Known {
                        data_version,
                        version,
                        needs_adoption: false,
                        has_history: true,
                    };
                    (version, false, false, Some(known), None, false)
                }
                Quick::Unknown => {
                    let mut polls = 0;
                    // The `Incomplete` the run is waiting on, if it is.
                    let mut waiting: Option<Error> = None;
                    let (state, data_version, verified) = loop {
                        // The full read and verification, in one read
                        // transaction.
                        let read_once = || {
                            state::snapshot(conn, |conn| {
                                Ok((read_state(conn)?, state::data_version(conn)?))
                            })
                            .and_then(|(state, data_version)| {
                                let verified = verify(&state, self.migrations)?;
                                Ok((state, data_version, verified))
                            })
                        };
                        // A poll waits for a lock no later than the end of
                        // the wait.
                        let read = match waiting {
                            Some(_) => self.within_deadline(conn, started, read_once),
                            None => read_once(),
                        };
                        // A file cut short inside a page (the history's,
                        // say) reads as zeros there: say so rather than what
                        // the zeros looked like.
                        let read = read.map_err(|e| cut_short(conn, e));
                        // A poll that finds the database locked (by the
                        // instance at work, say) learns nothing new.
                        let read = match (read, waiting.take()) {
                            (Err(e), Some(incomplete)) if is_lock_error(&e) => Err(incomplete),
                            (read, _) => read,
                        };
                        match read {
                            Err(e) if self.wait_for_incomplete(&e, started, &mut polls) => {
                                if let Error::Incomplete { version, .. } = &e {
                                    waited_at.get_or_insert(version.saturating_sub(1));
                                }
                                waiting = Some(e);
                            }
                            read => break read?,
                        }
                    };
                    let known = Known {
                        data_version,
                        version: verified.current,
                        needs_adoption: verified.needs_adoption,
                        has_history: state.history.is_some(),
                    };
                    (
                        verified.current,
                        verified.needs_adoption,
                        state.history.is_none() && state.user_version == 0,
                        Some(known),
                        Some(state.references),
                        !state.has_tables,
                    )
                }
            };
        // A run that waited for another instance's `no-transaction`
        // migration does not revert what that instance applied meanwhile:
        // the caller did not see it applied.
        if let Some(before) = waited_at.filter(|&before| current > target && current > before) {
            return Err(Error::Target {
                target,
                reason: format!(
                    "while this run waited for another instance to finish migration {} (marked \
                     started), it brought the database to version {current}; nothing was \
                     reverted: run again to revert it to version {target}",
                    u64::from(before) + 1
                ),
            });
        }
        if current > target {
            self.check_revertible(current, target)?;
        }
        if current == target && !needs_adoption {
            log::debug!("database is up to date at version {current}");
            return Ok(Report::new(
                current,
                current,
                None,
                Vec::new(),
                IntegrityOutcome::NotRun,
                started,
            ));
        }
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::ReadOnly {
                version: current,
                latest: target,
            });
        }
        if let Some(refused) = self.single_transaction_refusal(current, target) {
            return Err(refused);
        }

        // `PRAGMA foreign_keys` through the C interface: no statement to
        // prepare, and the same flag.
        let foreign_keys = conn
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY)
            .map_err(|e| Error::sqlite("cannot read PRAGMA foreign_keys", e))?;
        // The files the run may execute: the up files above the database's
        // version, or the down files of the versions to revert.
        // (Their words were found when the files were read: nothing here
        // scans their text.)
        let files: Vec<(&str, Mentions)> = if target < current {
            (target.saturating_add(1)..=current)
                .filter_map(|v| self.migrations.get(v))
                .filter_map(|m| Some((m.down_sql()?, m.down_mentions()?)))
                .collect()
        } else {
            (current.saturating_add(1)..=target)
                .filter_map(|v| self.migrations.get(v))
                .map(|m| (m.sql(), m.mentions()))
                .collect()
        };
        let pending = files
            .iter()
            .fold(Mentions::default(), |all, &(_, one)| all.union(one));
        // What a file may change on the connection and the run puts back:
        // the settings the files name that the run may execute, also
        // those below the version read now (another instance may revert
        // the database before the write lock), and every setting of an
        // attached database when a file says DETACH (attached again, it
        // would have SQLite's defaults).
        let names_settings = |&(_, mentions): &(&str, Mentions)| mentions.pragma || mentions.detach;
        let reachable: Vec<&str> = if target < current {
            files
                .into_iter()
                .filter(names_settings)
                .map(|(sql, _)| sql)
                .collect()
        } else {
            (1..=target)
                .filter_map(|v| self.migrations.get(v))
                .map(|m| (m.sql(), m.mentions()))
                .filter(names_settings)
                .map(|(sql, _)| sql)
                .collect()
        };
        let settings = Settings::capture(conn, (!reachable.is_empty()).then_some(&reachable[..]))?;
        let mut restore_error = None;
        if foreign_keys {
            if let Err(e) = set_foreign_keys(conn, false) {
                restore_error = Some(e);
            }
        }
        let result = match restore_error.take() {
            Some(e) => Err(e),
            None => self.apply(
                conn,
                Start {
                    from: current,
                    new_database,
                    known,
                    references,
                    empty,
                    pending,
                },
                target,
                foreign_keys,
                started,
            ),
        };
        // Restore the connection, also on error.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Restore what the connection had, also when a no-transaction file
        // changed it.
        if let Err(e) = set_foreign_keys(conn, foreign_keys) {
            restore_error = Some(e);
        }
        if let Err(e) = settings.restore(conn) {
            restore_error.get_or_insert(e);
        }
        match (result, restore_error) {
            // Applied, and then a setting could not be put back: say both
            // (not `Locked`, which would say the migrations did not run).
            (Ok(report), Some(Error::Sqlite { context, cause })) => Err(Error::Sqlite {
                context: format!("{AFTER_RUN} {}, but {context}", report.version()),
                cause,
            }),
            (Ok(_), Some(e)) => Err(e),
            (result, Some(e)) => {
                // The run's own error says more; this one is not lost.
                log::error!("{e}");
                result
            }
            (result, None) => result,
        }
    }

    fn check_not_above(&self, current: u32, target: u32) -> Result<()> {
        if current > target {
            return Err(Error::Target {
                target,
                reason: format!(
                    "another connection migrated the database to version {current} while this \
                     run was migrating it; run again to revert it to version {target} with the \
                     down files"
                ),
            });
        }
        Ok(())
    }

    fn apply(
        &self,
        conn: &mut Connection,
        start: Start,
        target: u32,
        foreign_keys: bool,
        started: Instant,
    ) -> Result<Report> {
        if target < start.from {
            return self.revert(conn, start, target, foreign_keys, started);
        }
        let Start {
            from,
            new_database,
            known,
            references,
            empty,
            pending,
        } = start;
        if new_database {
            // Before the settings of a new database write its header (the
            // first write transaction checks again).
            check_whole_pages(conn)?;
            self.new_database_settings(conn)?;
        }
        // What was applied, turned into the report's owned rows at the end:
        // allocations that live through the run, made while SQLite
        // allocates and frees schemas, slow its allocations down.
        let mut applied: Vec<(&Migration, Duration)> = Vec::new();
        let mut adopted = None;
        // SQLite's authorizer tells which tables each migration writes: the
        // foreign-key check before each commit looks at those (and at the
        // children of the parents it changed), and `Changed` checks them.
        // Only a table whose SQL says `REFERENCES` has a foreign key, and
        // only a statement that says it makes one: when neither the schema
        // (if the full read looked) nor a pending file does, there is no
        // foreign key to check and nothing to watch for it. (Another
        // migrator that commits before our write lock applies these same
        // files, or newer ones, which the re-check inside the write
        // transaction refuses.)
        let keys_possible = references.map(|r| r || pending.references);
        // `Changed` on a database without tables: every table there will be
        // is the run's, and one whole check covers them (see `finish`).
        let changed = self.integrity == IntegrityCheck::Changed && !empty;
        let watch = if changed || foreign_keys {
            Some(TableWatch::start(conn, changed, keys_possible)?)
        } else {
            None
        };
        let outcome = self.apply_all(
            conn,
            known,
            target,
            foreign_keys,
            watch.as_ref(),
            &mut applied,
            &mut adopted,
            started,
        );
        let touched = finish_watch(conn, watch, &outcome)?;
        let version = match outcome {
            Ok(version) => version,
            Err(mut e) => {
                // A database made before migrations were used: say how to
                // adopt it.
                if let Error::Migration {
                    version: 1,
                    message,
                    hint,
                    ..
                } = &mut e
                {
                    if new_database && !empty && message.contains("already exists") {
                        *hint = Hint::ExistingSchema;
                    }
                }
                let committed = applied.last().map(|&(m, _)| m.version());
                return Err(self.check_committed(conn, e, committed, touched.as_deref()));
            }
        };
        let integrity = if applied.is_empty() {
            IntegrityOutcome::NotRun
        } else {
            integrity_check(conn, self.integrity, touched.as_deref(), version)?
        };
        if !applied.is_empty() {
            log::info!("database migrated from version {from} to {version}");
        }
        let applied = applied.iter().map(|&(m, d)| Applied::new(m, d)).collect();
        Ok(Report::new(
            from, version, adopted, applied, integrity, started,
        ))
    }

    /// A run failed after some of its migrations were committed (the
    /// database is then at version `committed`; `None`: nothing was): check
    /// what they left as a successful run would. Damage found there is the
    /// error to return (the failure is logged, and met again by the next
    /// run); otherwise the failure is.
    fn check_committed(
        &self,
        conn: &Connection,
        failure: Error,
        committed: Option<u32>,
        touched: Option<&[String]>,
    ) -> Error {
        let Some(version) = committed else {
            return failure;
        };
        if self.integrity == IntegrityCheck::Off {
            return failure;
        }
        if is_lock_error(&failure) {
            log::warn!(
                "the run's commits (the database is at version {version}) were not checked: the \
                 database was locked"
            );
            return failure;
        }
        match integrity_check(conn, self.integrity, touched, version) {
            Err(damage @ Error::Integrity { .. }) => {
                log::error!("{failure}");
                damage
            }
            Err(e) => {
                log::warn!(
                    "the run's commits (the database is at version {version}) could not be \
                     checked: {e}"
                );
                failure
            }
            Ok(_) => failure,
        }
    }

    /// Applies the pending migrations, leaving in `applied` those that were
    /// committed.
    #[allow(clippy::too_many_arguments)]
    fn apply_all(
        &self,
        conn: &mut Connection,
        known: Option<Known>,
        target: u32,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        applied: &mut Vec<(&'m Migration, Duration)>,
        adopted: &mut Option<u32>,
        started: Instant,
    ) -> Result<u32> {
        let mut committed = applied.len();
        let result = self.apply_steps(
            conn,
            known,
            target,
            foreign_keys,
            watch,
            applied,
            &mut committed,
            adopted,
            started,
        );
        applied.truncate(committed);
        result
    }

    /// [`Migrator::apply_all`]'s steps; `committed`: how many of `applied`
    /// are committed (and logged).
    #[allow(clippy::too_many_arguments)]
    fn apply_steps(
        &self,
        conn: &mut Connection,
        mut known: Option<Known>,
        target: u32,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        applied: &mut Vec<(&'m Migration, Duration)>,
        committed: &mut usize,
        adopted: &mut Option<u32>,
        started: Instant,
    ) -> Result<u32> {
        let mut polls = 0;
        let mut first = true;
        // `known`: the state as the last read or step left it, with `PRAGMA
        // data_version` then. Another connection's commit changes
        // data_version (our own do not); if it did not change, the state is
        // what we read or committed and need not be read again.
        loop {
            begin_immediate(conn, self.lock_timeout)?;
            first_transaction(conn, &mut first)?;
            let step = self.step(conn, target, foreign_keys, watch, known, applied, adopted);
            match step {
                Ok((Step::Commit(version), seen)) => {
                    commit(conn, self.lock_timeout)?;
                    log_committed(applied, committed);
                    log::debug!("committed version {version}");
                    known = Some(Known::committed(seen, version));
                }
                Ok((Step::Done(version), _)) => {
                    commit(conn, self.lock_timeout)?;
                    log_committed(applied, committed);
                    return Ok(version);
                }
                Ok((Step::NoTransaction(m), seen)) => {
                    commit(conn, self.lock_timeout)?;
                    log_committed(applied, committed);
                    self.run_no_transaction(conn, m, foreign_keys, watch, applied)?;
                    log_committed(applied, committed);
                    // The file may have run `PRAGMA foreign_keys = ON` (the
                    // last step of SQLite's table-rebuild recipe): the rest
                    // of the run must not cascade.
                    // Off whatever the connection had: the original value
                    // is restored at the end of the run.
                    set_foreign_keys(conn, false)?;
                    known = Some(Known::committed(seen, m.version()));
                }
                Err(e) => {
                    rollback(conn);
                    if !self.wait_for_incomplete(&e, started, &mut polls) {
                        return Err(e);
                    }
                    if self.poll_incomplete(conn, &e, started, &mut polls) {
                        return Err(e);
                    }
                    // Read everything again once it is done.
                    known = None;
                }
            }
        }
    }

    /// `e` says a `no-transaction` migration was started and not finished.
    /// Another instance of the program may be running it right now: wait
    /// for it as for a write lock, up to the lock timeout from the start
    /// of the run, polling. Returns whether to read again (after a pause),
    /// or `false` to return `e`.
    fn wait_for_incomplete(&self, e: &Error, started: Instant, polls: &mut u32) -> bool {
        if !matches!(e, Error::Incomplete { .. }) {
            return false;
        }
        let left = self.lock_timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return false;
        }
        if *polls == 0 {
            log::info!("{e}: waiting up to the lock timeout for it to finish");
        }
        // 5 ms, doubling up to 160 ms.
        let pause = Duration::from_millis(5 << (*polls).min(5)).min(left);
        *polls += 1;
        std::thread::sleep(pause);
        true
    }

    /// After [`Migrator::wait_for_incomplete`]'s first pause: wait on with
    /// reads, which take no write lock (the `no-transaction` migration that
    /// other instance runs may need it: SQLite does not wait for it on some
    /// journal-mode changes), until the migration is no longer marked
    /// started or the wait is over. The write transaction after it reads
    /// and decides again.
    /// Returns whether the wait is over with the migration still marked
    /// started (or the database still locked): then `e` is the answer.
    #[must_use]
    fn poll_incomplete(
        &self,
        conn: &Connection,
        e: &Error,
        started: Instant,
        polls: &mut u32,
    ) -> bool {
        loop {
            match self.within_deadline(conn, started, || state::has_started(conn)) {
                Ok(true) => {}
                Err(read) if is_lock_error(&read) => {}
                Ok(false) | Err(_) => return false,
            }
            if !self.wait_for_incomplete(e, started, polls) {
                return true;
            }
        }
    }

    /// `read` with the connection's busy timeout cut to what is left of
    /// the lock timeout from the start of the run: a poll never waits for
    /// a lock past the end of the wait it is part of.
    fn within_deadline<T>(
        &self,
        conn: &Connection,
        started: Instant,
        read: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let left = self.lock_timeout.saturating_sub(started.elapsed());
        conn.busy_timeout(left)
            .map_err(|e| Error::sqlite("cannot set busy_timeout", e))?;
        let result = read();
        conn.busy_timeout(self.lock_timeout)
            .map_err(|e| Error::sqlite("cannot set busy_timeout", e))?;
        result
    }

    /// At the start of a write transaction: the database's version, whether
    /// it needs adoption and has a history table, and `PRAGMA data_version`.
    /// Another process may have migrated since the last read: read again
    /// inside the write transaction, unless nobody else committed since
    /// that read or our own last commit. The newest row's chain and the
    /// number of rows suffice when they match (so each step costs the same
    /// however many migrations there are); otherwise the full read and
    /// verification decide.
    fn reread(
        &self,
        conn: &mut Connection,
        watch: Option<&TableWatch>,
        known: Option<Known>,
    ) -> Result<(i64, u32, bool, bool)> {
        let seen = state::data_version(conn)?;
        let unchanged = known.filter(|k| k.data_version == seen);
        if unchanged.is_none() {
            if let Some(watch) = watch {
                watch.invalidate(conn)?;
            }
        }
        let (current, needs_adoption, has_history) = match unchanged {
            Some(k) => (k.version, k.needs_adoption, k.has_history),
            None => match state::newest_verified(conn, self.migrations, true)? {
                Some(version) => (version, false, true),
                None => {
                    let state = read_state(conn)?;
                    let Verified {
                        current,
                        needs_adoption,
                    } = verify(&state, self.migrations)?;
                    (current, needs_adoption, state.history.is_some())
                }
            },
        };
        Ok((seen, current, needs_adoption, has_history))
    }

    /// One write transaction's work; the caller commits or rolls back.
    /// Returns what to do next and `PRAGMA data_version` as read at the
    /// start of the transaction.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        conn: &mut Connection,
        target: u32,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        known: Option<Known>,
        applied: &mut Vec<(&'m Migration, Duration)>,
        adopted: &mut Option<u32>,
    ) -> Result<(Step<'m>, i64)> {
        let (seen, current, needs_adoption, has_history) = self.reread(conn, watch, known)?;
        self.check_not_above(current, target)?;
        // A missing history table is created in this transaction just before
        // its first row, after the files: every `ALTER TABLE` makes SQLite
        // parse each table's SQL again, and the history table's is long.
        let mut history = HistoryTable {
            exists: has_history,
        };
        let rolled_back = if self.single_transaction {
            Outcome::AllRolledBack
        } else {
            Outcome::RolledBack
        };
        if needs_adoption {
            history.ensure(conn, [], rolled_back)?;
            self.adopt(conn, current)?;
            *adopted = Some(current);
        }
        if current >= target {
            return Ok((Step::Done(current), seen));
        }
        // Checked before the run from the version it read then; another
        // connection may have reverted the database since, which brings a
        // `no-transaction` migration into the one transaction: refuse it
        // (the caller rolls back), nothing done.
        if let Some(refused) = self.single_transaction_refusal(current, target) {
            return Err(refused);
        }
        let pending: Vec<&'m Migration> = (current + 1..=target)
            .filter_map(|v| self.migrations.get(v))
            .collect();
        let batch: &[&'m Migration] = if self.single_transaction {
            &pending
        } else {
            &pending[..1]
        };
        // The history rows of this transaction, written after the last
        // file: between files every schema change would make SQLite prepare
        // the INSERT again.
        let mut done: Vec<(&Migration, Duration)> = Vec::with_capacity(batch.len());
        for &m in batch {
            let mentions = m.mentions();
            if let Some(watch) = watch {
                watch.start_migration(conn, mentions)?;
            }
            if m.no_transaction() {
                history.record_applied(conn, &done, rolled_back)?;
                record_all(conn, [(m, 0)], state::STATE_STARTED)?;
                return Ok((Step::NoTransaction(m), seen));
            }
            let t0 = Instant::now();
            log::debug!("applying migration {} ({})", m.version(), m.file_name());
            // In one transaction for several files, a file that says
            // ROLLBACK or RELEASE runs in a savepoint of its own: rolling back
            // to, or releasing, a savepoint of an earlier file (undoing part
            // of that file) then fails instead of going unnoticed.
            let fenced = self.single_transaction && mentions.savepoint_control;
            if fenced {
                conn.execute_batch("SAVEPOINT _migrate_file")
                    .map_err(|e| Error::sqlite("cannot start a savepoint", e))?;
            }
            run_file(conn, m, mentions, Some(rolled_back), None)?;
            if fenced {
                conn.execute_batch("RELEASE _migrate_file").map_err(|e| {
                    at_end_of(
                        m,
                        format!(
                            "the file rolled back to or released a savepoint it did not create ({e})"
                        ),
                        Hint::TransactionControl,
                        rolled_back,
                    )
                })?;
            }
            // A file that wrote `sqlite_master` itself: make SQLite load
            // the schema it left, so that the checks see it (a schema it
            // cannot load fails the migration here, before its commit).
            load_edited_schema(conn, m, &mentions, watch, rolled_back)?;
            // Before each commit (in single-transaction mode, after each
            // file, so that a violation names the file that made it).
            if let Some(watch) = watch.filter(|_| foreign_keys) {
                foreign_key_check(conn, m, &watch.step_scope(conn)?, rolled_back)?;
            }
            let duration = t0.elapsed();
            done.push((m, duration));
            applied.push((m, duration));
        }
        history.record_applied(conn, &done, rolled_back)?;
        let Some(&last) = batch.last() else {
            return Ok((Step::Done(current), seen));
        };
        set_user_version(conn, last.version())?;
        let next = if last.version() == target {
            Step::Done(target)
        } else {
            Step::Commit(last.version())
        };
        Ok((next, seen))
    }

    /// In single-transaction mode, the refusal of a run whose pending
    /// migrations (above `current`, up to `target`) include a
    /// `no-transaction` one, with the steps that get there.
    fn single_transaction_refusal(&self, current: u32, target: u32) -> Option<Error> {
        if !self.single_transaction {
            return None;
        }
        let m = (current.saturating_add(1)..=target)
            .filter_map(|v| self.migrations.get(v))
            .find(|m| m.no_transaction())?;
        // The steps that get there, from where the database is: each run
        // of ordinary migrations in one transaction, each `no-transaction`
        // one alone.
        let mut steps = Vec::new();
        let mut batch_end = None;
        for m in (current.saturating_add(1)..=target).filter_map(|v| self.migrations.get(v)) {
            if m.no_transaction() {
                if let Some(end) = batch_end.take() {
                    steps.push(format!("to version {end} in one transaction"));
                }
                steps.push(format!(
                    "to version {} with single_transaction off",
                    m.version()
                ));
            } else {
                batch_end = Some(m.version());
            }
        }
        if let Some(end) = batch_end {
            steps.push(format!("to version {end} in one transaction"));
        }
        Some(Error::Target {
            target,
            reason: format!(
                "migration {} ({}) runs outside a transaction, so the pending migrations cannot \
                 all run in one: turn single_transaction off, or go in steps with `migrate_to`: \
                 {}",
                m.version(),
                m.file_name(),
                steps.join(", then ")
            ),
        })
    }

    fn adopt(&self, conn: &Connection, version: u32) -> Result<()> {
        record_all(
            conn,
            (1..=version).filter_map(|v| self.migrations.get(v).map(|m| (m, 0))),
            state::STATE_APPLIED,
        )?;
        log::info!(
            "adopted a database at user_version {version} without a history table: recorded \
             versions 1 to {version} as applied with the current checksums"
        );
        Ok(())
    }

    /// Marked started and committed by the caller; runs in autocommit mode,
    /// then marks it applied.
    fn run_no_transaction(
        &self,
        conn: &mut Connection,
        m: &'m Migration,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        applied: &mut Vec<(&'m Migration, Duration)>,
    ) -> Result<()> {
        let t0 = Instant::now();
        log::debug!(
            "applying migration {} ({}) outside a transaction",
            m.version(),
            m.file_name()
        );
        // Whether SQLite committed while a statement ran: in autocommit
        // mode, a statement that fails part way (`OR FAIL`, `RAISE(FAIL)`)
        // keeps what it wrote, deletions by `REPLACE` included, which no
        // change counter shows.
        // A file may turn the rollback journal off for itself (`PRAGMA
        // journal_mode = OFF` to load faster): it is put back after the
        // file, so that the migrations after it can still roll back. Only
        // a file that says PRAGMA can (and only then is the mode read: the
        // read waits for another connection's exclusive lock).
        let mentions = m.mentions();
        let journal = if mentions.pragma {
            Some(
                journal_mode(conn)
                    .map_err(|e| Error::sqlite("cannot read PRAGMA journal_mode", e))?,
            )
        } else {
            None
        };
        let commits = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink = Arc::clone(&commits);
        conn.commit_hook(Some(move || {
            sink.store(true, std::sync::atomic::Ordering::Relaxed);
            false
        }))
        .map_err(|e| Error::sqlite("cannot install a commit hook", e))?;
        let ran = run_file(conn, m, mentions, None, Some(&commits));
        if let Err(e) = conn.commit_hook(None::<fn() -> bool>) {
            log::error!("cannot remove the commit hook: {e}");
        }
        if let Err(mut e) = ran {
            // Failed inside a transaction the file began: roll it back now,
            // not after the checks that follow a failure.
            if !conn.is_autocommit() {
                rollback(conn);
                if let Error::Migration {
                    message,
                    outcome: Outcome::PartlyApplied,
                    ..
                } = &mut e
                {
                    message.push_str(
                        " (the transaction the file began was rolled back: of the file, only \
                         what ran before its BEGIN is applied)",
                    );
                }
            }
            if let Err(r) = put_journal_back(conn, journal.as_deref()) {
                log::error!("{r}");
                if let Error::Migration { message, .. } = &mut e {
                    message.push_str(&format!(" ({r})"));
                }
            }
            if let Error::Migration {
                outcome: Outcome::NothingApplied,
                message,
                hint,
                ..
            } = &mut e
            {
                // Nothing of the file is in the database: unmark it. After
                // a lock timeout, one try without waiting again.
                if *hint == Hint::Locked {
                    let _ = conn.busy_timeout(Duration::ZERO);
                }
                let unmark = conn.execute(
                    "DELETE FROM main._migrate_history WHERE version = ?1",
                    [m.version()],
                );
                if let Err(u) = unmark {
                    log::error!("cannot unmark migration {}: {u}", m.version());
                    message.push_str(&format!(
                        " (its history row still says it started, and could not be removed: \
                         {u}; remove it with `DELETE FROM main._migrate_history WHERE version = \
                         {};` before the next run, which otherwise stops at it)",
                        m.version()
                    ));
                }
            }
            return Err(e);
        }
        let duration = t0.elapsed();
        let open = !conn.is_autocommit();
        if open {
            rollback(conn);
        }
        // What stops the file from being marked applied after it ran: it
        // stays marked started, and a lock says so (not `Locked`, which
        // says that nothing ran).
        let not_marked = |e: Error| {
            let hint = lock_hint(&e);
            at_end_of(
                m,
                format!("it could not be marked applied: {e}"),
                hint,
                Outcome::RanNotMarked,
            )
        };
        if let Err(e) = put_journal_back(conn, journal.as_deref()) {
            return Err(not_marked(e));
        }
        if open {
            return Err(at_end_of(
                m,
                "the file ends inside a transaction it began (the open transaction was rolled \
                 back); end it with COMMIT"
                    .to_owned(),
                Hint::None,
                Outcome::PartlyApplied,
            ));
        }
        // The same checks as before a commit; the file's changes are
        // already in, so a failure leaves it marked incomplete.
        load_edited_schema(conn, m, &mentions, watch, Outcome::RanNotMarked)?;
        if let Some(watch) = watch.filter(|_| foreign_keys) {
            // Reading the schema may wait for another connection's lock.
            let scope = watch.step_scope(conn).map_err(not_marked)?;
            foreign_key_check(conn, m, &scope, Outcome::RanNotMarked)?;
        }
        let marked = begin_immediate(conn, self.lock_timeout)
            .and_then(|()| {
                conn.execute(
                    "UPDATE main._migrate_history SET state = 'applied', duration_us = ?2, \
                     applied_at = ?3 WHERE version = ?1",
                    rusqlite::params![m.version(), duration_us(duration), now_utc()],
                )
                .map_err(|e| Error::sqlite("cannot update its history row", e))
            })
            .and_then(|_| set_user_version(conn, m.version()))
            .and_then(|()| commit(conn, self.lock_timeout));
        if let Err(e) = marked {
            rollback(conn);
            let (detail, hint) = match &e {
                Error::Locked { timeout } => (
                    format!("the write lock stayed taken for the lock timeout ({timeout:?})"),
                    Hint::Locked,
                ),
                e if is_lock_error(e) => (e.to_string(), Hint::Locked),
                e => (e.to_string(), Hint::None),
            };
            return Err(at_end_of(
                m,
                format!("it could not be marked applied: {detail}"),
                hint,
                Outcome::RanNotMarked,
            ));
        }
        applied.push((m, duration));
        Ok(())
    }

    fn new_database_settings(&self, conn: &Connection) -> Result<()> {
        let NewDatabase {
            page_size,
            auto_vacuum,
            journal_mode,
        } = self.new_database;
        if page_size.is_none() && auto_vacuum.is_none() && journal_mode.is_none() {
            return Ok(());
        }
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM main.sqlite_master", [], |r| r.get(0))
            .map_err(|e| Error::sqlite("cannot read the database's schema", e))?;
        if objects > 0 {
            log::debug!(
                "not a new database: page_size, auto_vacuum and journal_mode left as they are"
            );
            return Ok(());
        }
        if let Some(size) = page_size {
            conn.execute_batch(&format!("PRAGMA page_size = {size}"))
                .map_err(|e| Error::sqlite("cannot set page_size", e))?;
            // The size was checked before the run; SQLite may still keep
            // its own (silently), e.g. for a database already in WAL mode.
            let now: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| Error::sqlite("cannot read page_size", e))?;
            if now != i64::from(size) {
                log::warn!(
                    "page_size {size} was asked for, SQLite kept {now} (it takes a power of two \
                     from 512 to 65536)"
                );
            }
        }
        if let Some(mode) = auto_vacuum {
            let mode = match mode {
                AutoVacuum::None => "NONE",
                AutoVacuum::Full => "FULL",
                AutoVacuum::Incremental => "INCREMENTAL",
            };
            conn.execute_batch(&format!("PRAGMA auto_vacuum = {mode}"))
                .map_err(|e| Error::sqlite("cannot set auto_vacuum", e))?;
        }
        if let Some(mode) = journal_mode {
            let mode = match mode {
                JournalMode::Wal => "WAL",
                JournalMode::Delete => "DELETE",
            };
            // Changing the journal mode needs an exclusive lock, and SQLite
            // does not always call the busy handler for it: retry until the
            // lock timeout.
            let deadline = Instant::now() + self.lock_timeout;
            loop {
                match conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| {
                    r.get::<_, String>(0)
                }) {
                    Ok(now) => {
                        if !now.eq_ignore_ascii_case(mode) {
                            log::warn!("journal_mode {mode} was asked for, SQLite kept {now}");
                        }
                        break;
                    }
                    Err(e) if is_busy(&e) && Instant::now() < deadline => {
                        // Another process may have switched it, or already
                        // created tables (after switching, as this one
                        // would have): then there is nothing left to do.
                        if journal_mode_is(conn, mode) || has_tables(conn) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) if is_busy(&e) => {
                        return Err(Error::Locked {
                            timeout: self.lock_timeout,
                        })
                    }
                    Err(e) => return Err(Error::sqlite("cannot set journal_mode", e)),
                }
            }
        }
        Ok(())
    }
}

/// The error of a read that failed, or the one of [`check_whole_pages`] if
/// the file is a database that is not a whole number of pages.
fn cut_short(conn: &Connection, e: Error) -> Error {
    if let Error::Sqlite { cause, .. } = &e {
        if crate::error::code(cause) == Some(rusqlite::ErrorCode::NotADatabase) {
            return e; // no page size to speak of
        }
    }
    match not_whole_pages(conn) {
        Ok(Some(cut)) => cut,
        _ => e,
    }
}

/// At the start of the run's first write transaction (`first`: whether
/// this is it), where SQLite has just read the file's header and no other
/// connection writes it: the file is a whole number of pages. Rolls back
/// and fails otherwise.
fn first_transaction(conn: &Connection, first: &mut bool) -> Result<()> {
    if std::mem::take(first) {
        if let Err(e) = check_whole_pages(conn) {
            rollback(conn);
            return Err(e);
        }
    }
    Ok(())
}

/// A database file is a whole number of pages. A file cut short inside its
/// last page reads as zeros there, and SQLite notices only when it reads
/// those cells, after a migration was written onto it: refuse it first.
fn check_whole_pages(conn: &Connection) -> Result<()> {
    match not_whole_pages(conn)? {
        Some(cut) => Err(cut),
        None => Ok(()),
    }
}

/// The error to give when the database file is not a whole number of
/// pages, if it is not.
fn not_whole_pages(conn: &Connection) -> Result<Option<Error>> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return Ok(None); // in memory or temporary
    };
    // The file's length and page size as of now: SQLite reads the page
    // size from the file when a read transaction starts (another process
    // may have made the database since this connection last looked, with
    // another page size), and while the transaction holds its read lock no
    // other connection changes the file, except a WAL checkpoint: a
    // length that is not whole pages is believed only if it holds still
    // (see below).
    // (A database damaged so that its schema cannot be read is measured
    // without the transaction.)
    let now = |conn: &Connection| -> Result<(u64, u64)> {
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| Error::sqlite("cannot read page_size", e))?;
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        Ok((len, u64::try_from(page_size).unwrap_or(0)))
    };
    // Without waiting for a lock: the run waits for one once, for its
    // write transaction. Another connection writing the database now (it
    // holds a lock that keeps readers out) is not one cut short: no check.
    let measure = || -> Result<Option<(u64, u64)>> {
        // In the run's write transaction, which read the header when it
        // began, and keeps other writers out.
        if !conn.is_autocommit() {
            return now(conn).map(Some);
        }
        let waits = busy_timeout(conn);
        conn.busy_timeout(Duration::ZERO)
            .map_err(|e| Error::sqlite("cannot set busy_timeout", e))?;
        let read = state::snapshot(conn, |conn| {
            conn.query_row("SELECT count(*) FROM main.sqlite_master", [], |_| Ok(()))
                .map_err(|e| Error::sqlite("cannot read the schema", e))?;
            now(conn)
        });
        conn.busy_timeout(waits)
            .map_err(|e| Error::sqlite("cannot set busy_timeout", e))?;
        match read {
            Ok(measured) => Ok(Some(measured)),
            Err(e) if is_lock_error(&e) => Ok(None),
            Err(_) => now(conn).map(Some),
        }
    };
    // SQLite reads a file of 0 or 1 byte as an empty database.
    let cut = |(len, page_size): (u64, u64)| len > 1 && page_size > 0 && len % page_size != 0;
    // A file cut short keeps its length. One that a WAL checkpoint of
    // another connection is extending right now (it may, during our write
    // transaction too) grows, and on some file systems (tmpfs) shows a
    // large page being written in 4 KiB steps: believe only a length that
    // holds still for 100 ms (a checkpointer held up that long inside one
    // write is not likely even on a busy machine).
    let mut measured = measure()?;
    for _ in 0..5 {
        let Some(first) = measured.filter(|&m| cut(m)) else {
            break;
        };
        std::thread::sleep(Duration::from_millis(20));
        measured = measure()?.filter(|&again| again == first);
    }
    let Some((len, page_size)) = measured.filter(|&m| cut(m)) else {
        return Ok(None);
    };
    Ok(Some(Error::sqlite(
        format!(
            "the database file {path} is {len} bytes, not a whole number of {page_size}-byte \
             pages: it was cut short or damaged; nothing was applied: restore a backup"
        ),
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        ),
    )))
}

/// `Hint::Locked` for an error that another connection's lock caused
/// (also a plain SQLite busy error), `Hint::None` for any other.
fn lock_hint(e: &Error) -> Hint {
    if is_lock_error(e) || matches!(e, Error::Sqlite { cause, .. } if is_busy(cause)) {
        Hint::Locked
    } else {
        Hint::None
    }
}

/// Whether the run failed waiting for another connection's lock.
fn is_lock_error(e: &Error) -> bool {
    match e {
        Error::Locked { .. }
        | Error::Migration {
            hint: Hint::Locked, ..
        } => true,
        Error::Sqlite { cause, .. } => is_busy(cause),
        _ => false,
    }
}

/// Logs the migrations of `applied` from `committed` on, just committed,
/// and counts them as committed.
fn log_committed(applied: &[(&Migration, Duration)], committed: &mut usize) {
    for &(m, duration) in applied.get(*committed..).unwrap_or_default() {
        log::info!(
            "applied migration {} ({}) in {:.1} ms",
            m.version(),
            m.file_name(),
            ms(duration)
        );
    }
    *committed = applied.len();
}

/// `needle` (ASCII) anywhere in `text`, in any case.
fn contains_ignore_case(text: &str, needle: &str) -> bool {
    find_ignore_case(text, needle).is_some()
}

/// Where `needle` (ASCII) first is in `text`, in any case.
fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    let (bytes, needle) = (text.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let last_start = bytes.len().checked_sub(needle.len())?;
    // Find each candidate by its first byte in a tight loop, then compare
    // the rest: every pending file is scanned at each run.
    let first = first.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = bytes[from..=last_start]
        .iter()
        .position(|b| b.to_ascii_lowercase() == first)
    {
        let start = from + at;
        if bytes[start + 1..start + needle.len()].eq_ignore_ascii_case(rest) {
            return Some(start);
        }
        from = start + 1;
        if from > last_start {
            break;
        }
    }
    None
}

fn journal_mode(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("PRAGMA main.journal_mode", [], |r| r.get(0))
}

/// After a `no-transaction` file: if it left the main database without a
/// rollback journal on disk (`OFF`, or `MEMORY`, which a crash loses), put
/// back the mode it had before. (A file that switches to WAL, or between
/// the on-disk modes, keeps its choice.) `before`: `None` when the file
/// cannot have changed it.
fn put_journal_back(conn: &Connection, before: Option<&str>) -> Result<()> {
    let Some(before) = before else {
        return Ok(()); // the file cannot have changed it
    };
    let now = journal_mode(conn)
        .map_err(|e| Error::sqlite("cannot read PRAGMA journal_mode after the file", e))?;
    let unsafe_mode = now.eq_ignore_ascii_case("off") || now.eq_ignore_ascii_case("memory");
    if !unsafe_mode || now.eq_ignore_ascii_case(before) {
        return Ok(());
    }
    let mode: String = conn
        .query_row(&format!("PRAGMA main.journal_mode = {before}"), [], |r| {
            r.get(0)
        })
        .map_err(|e| {
            Error::sqlite(
                format!(
                    "the file set journal_mode to {now}, and it could not be put back to {before}"
                ),
                e,
            )
        })?;
    if mode.eq_ignore_ascii_case(before) {
        Ok(())
    } else {
        Err(Error::sqlite(
            format!(
                "the file set journal_mode to {now}, and SQLite kept {mode} when it was put back \
                 to {before}"
            ),
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                None,
            ),
        ))
    }
}

fn journal_mode_is(conn: &Connection, mode: &str) -> bool {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .is_ok_and(|now| now.eq_ignore_ascii_case(mode))
}

fn has_tables(conn: &Connection) -> bool {
    conn.query_row("SELECT count(*) FROM main.sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .is_ok_and(|n| n > 0)
}

/// Where a run starts, as the reads before it found.
struct Start {
    /// The database's version.
    from: u32,
    /// No history and `user_version` 0: the settings for a new database
    /// apply.
    new_database: bool,
    /// The state the reads before the run verified.
    known: Option<Known>,
    /// Whether any table's SQL says `REFERENCES`, when the full read looked.
    references: Option<bool>,
    /// The full read found no table (other than SQLite's own).
    empty: bool,
    /// What the pending files say.
    pending: Mentions,
}

/// The verified state as of a `PRAGMA data_version` (see
/// `Migrator::apply_all`).
#[derive(Debug, Clone, Copy)]
struct Known {
    data_version: i64,
    /// The database's version.
    version: u32,
    /// `user_version` without a history table: to be adopted.
    needs_adoption: bool,
    /// Whether the history table exists.
    has_history: bool,
}

impl Known {
    /// What our own commit left: the history at `version`.
    fn committed(data_version: i64, version: u32) -> Self {
        Known {
            data_version,
            version,
            needs_adoption: false,
            has_history: true,
        }
    }
}

enum Step<'m> {
    /// Commit (the database is then at this version) and take the next
    /// migration.
    Commit(u32),
    /// Commit and stop: the database is then at this version.
    Done(u32),
    /// Commit the "started" mark, then run this migration outside a transaction.
    NoTransaction(&'m Migration),
}

/// `PRAGMA foreign_keys = ON` or `OFF` through the C interface (outside a
/// transaction, where the pragma takes effect too).
fn set_foreign_keys(conn: &Connection, on: bool) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, on)
        .map(|_| ())
        .map_err(|e| {
            let what = if on { "on" } else { "off" };
            Error::sqlite(format!("cannot turn foreign_keys {what}"), e)
        })
}

/// Connection settings a migration file may change, put back after the run
/// (also after a failure): a database it attached, or one of the caller's
/// it detached or replaced, `PRAGMA writable_schema`, and those of the
/// settings in [`CONNECTION_PRAGMAS`] and [`DATABASE_PRAGMAS`] that a file
/// the run may execute names (see [`Settings::capture`]). (`PRAGMA
/// journal_mode`, which only a
/// `no-transaction` file may change, is put back after that file.) Read
/// through the C interface where SQLite has one.
///
/// Also the caller's own journal mode: a database file (main or attached)
/// whose connection has no rollback journal on disk (`OFF`, which cannot
/// roll back at all once pages reached the file, or `MEMORY`, which a crash
/// loses) is migrated in `DELETE` mode, and gets its mode back after.
struct Settings {
    writable_schema: bool,
    attached: Vec<Attached>,
    /// The values of [`CONNECTION_PRAGMAS`], then of [`DATABASE_PRAGMAS`]
    /// for main and each attached database, when read (those SQLite has a
    /// value for): the `PRAGMA` as it reads the setting, and the value.
    pragmas: Vec<(String, rusqlite::types::Value)>,
    /// The databases whose journal mode the run replaced with `DELETE`:
    /// schema name and the caller's mode.
    journals: Vec<(String, String)>,
    /// The caller's connection had `PRAGMA count_changes` on (every write
    /// then returns a row, which the runner's own writes do not take): off
    /// for the run, on again after.
    count_changes: bool,
}

/// An attached database (after `main` and `temp`).
#[derive(PartialEq, Eq)]
struct Attached {
    name: String,
    /// Empty for one in memory or temporary.
    file: String,
    read_only: bool,
}

impl Settings {
    /// `files`: those the run may execute that say `PRAGMA` or `DETACH`, if
    /// any: the settings they name are read (reading some takes a lock, and
    /// reads of the others cost time), and every setting of the attached
    /// databases when one says `DETACH`.
    fn capture(conn: &Connection, files: Option<&[&str]>) -> Result<Self> {
        let writable_schema = conn
            .db_config(DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA)
            .map_err(|e| Error::sqlite("cannot read PRAGMA writable_schema", e))?;
        let attached = attached(conn)?;
        let pragmas = if let Some(files) = files {
            let named = |name: &str| files.iter().any(|sql| contains_ignore_case(sql, name));
            let detaches = named("detach");
            let schemas = std::iter::once("main").chain(attached.iter().map(|db| db.name.as_str()));
            let per_database = DATABASE_PRAGMAS.into_iter().flat_map(|name| {
                let named = named(name);
                schemas
                    .clone()
                    .filter(move |&schema| named || (detaches && schema != "main"))
                    .map(move |schema| {
                        let quoted = schema.replace('"', "\"\"");
                        format!("\"{quoted}\".{name}")
                    })
            });
            let connection = CONNECTION_PRAGMAS
                .into_iter()
                .filter(|name| named(name))
                .map(str::to_owned);
            let mut values = Vec::new();
            for name in connection.chain(per_database) {
                if let Some(value) = read_pragma(conn, &name)? {
                    values.push((name, value));
                }
            }
            values
        } else {
            Vec::new()
        };
        let count_changes =
            read_pragma(conn, "count_changes")? == Some(rusqlite::types::Value::Integer(1));
        // Last: nothing after it can fail and leave the modes switched.
        let journals = with_rollback_journal(conn, &attached)?;
        // (Should this fail, the run's first write says so.)
        if count_changes {
            if let Err(e) = conn.execute_batch("PRAGMA count_changes = OFF") {
                log::warn!("cannot turn PRAGMA count_changes off for the run: {e}");
            }
        }
        Ok(Settings {
            writable_schema,
            attached,
            pragmas,
            journals,
            count_changes,
        })
    }

    /// Puts everything back, each setting independently: returns the first
    /// failure (the others are logged).
    fn restore(&self, conn: &Connection) -> Result<()> {
        let mut first = None;
        keep(&mut first, self.restore_writable_schema(conn));
        keep(&mut first, self.restore_attached(conn));
        let mut locking = false;
        for (name, value) in &self.pragmas {
            match restore_pragma(conn, name, value) {
                Ok(restored) => locking |= restored && name.ends_with("locking_mode"),
                Err(e) => keep(&mut first, Err(e)),
            }
        }
        // Leaving EXCLUSIVE locking mode releases a database's lock only at
        // its next access.
        if locking {
            for schema in
                std::iter::once("main").chain(self.attached.iter().map(|db| db.name.as_str()))
            {
                let quoted = schema.replace('"', "\"\"");
                let touched = conn
                    .query_row(&format!("SELECT count(*) FROM \"{quoted}\".sqlite_master"), [], |_| Ok(()))
                    .map_err(|e| Error::sqlite(format!("cannot release the lock on {schema} after putting PRAGMA locking_mode back"), e));
                keep(&mut first, touched);
            }
        }
        for (schema, mode) in &self.journals {
            keep(&mut first, restore_journal(conn, schema, mode));
        }
        if self.count_changes {
            keep(
                &mut first,
                conn.execute_batch("PRAGMA count_changes = ON")
                    .map_err(|e| Error::sqlite("cannot put PRAGMA count_changes back on", e)),
            );
        }
        first.map_or(Ok(()), Err)
    }

    fn restore_writable_schema(&self, conn: &Connection) -> Result<()> {
        let now = conn
            .db_config(DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA)
            .map_err(|e| Error::sqlite("cannot read PRAGMA writable_schema", e))?;
        if now != self.writable_schema {
            conn.set_db_config(
                DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA,
                self.writable_schema,
            )
            .map_err(|e| Error::sqlite("cannot put PRAGMA writable_schema back", e))?;
        }
        Ok(())
    }

    /// What a file attached (or attached under a name the caller used for
    /// another file) is detached; what the caller had and a file detached
    /// is attached again, read-only if it was.
    fn restore_attached(&self, conn: &Connection) -> Result<()> {
        let now = attached(conn)?;
        let mut first = None;
        for db in &now {
            if !self.attached.contains(db) {
                let detached = conn.execute("DETACH DATABASE ?1", [&db.name]).map_err(|e| {
                    Error::sqlite(
                        format!(
                            "cannot detach the database {} a migration attached",
                            db.name
                        ),
                        e,
                    )
                });
                keep(&mut first, detached.map(|_| ()));
            }
        }
        for db in &self.attached {
            if !now.contains(db) {
                keep(&mut first, attach_again(conn, db));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Keeps the first error in `first`, and logs the ones after it.
fn keep(first: &mut Option<Error>, result: Result<()>) {
    if let Err(e) = result {
        if first.is_some() {
            log::error!("{e}");
        } else {
            *first = Some(e);
        }
    }
}

/// Attaches again a database of the caller's that a migration detached.
fn attach_again(conn: &Connection, db: &Attached) -> Result<()> {
    let Attached {
        name,
        file,
        read_only,
    } = db;
    if file.is_empty() {
        return Err(Error::sqlite(
            format!(
                "a migration detached the database {name} that the connection had attached; it \
                 was in memory or temporary, so its contents are gone"
            ),
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                None,
            ),
        ));
    }
    let target = if *read_only {
        // A URI keeps it read-only (rusqlite opens connections with URI
        // file names enabled).
        let escaped = file
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23");
        format!("file:{escaped}?mode=ro")
    } else {
        file.clone()
    };
    conn.execute("ATTACH DATABASE ?1 AS ?2", [&target, name])
        .map(|_| ())
        .map_err(|e| {
            Error::sqlite(
                format!("cannot attach {file} as {name} again, after a migration detached it"),
                e,
            )
        })
}

/// The connection's settings a migration file may change with `PRAGMA`
/// and the run puts back, each lasting for the connection, restored before
/// [`DATABASE_PRAGMAS`]. (`foreign_keys`, `busy_timeout`, `writable_schema`
/// and `journal_mode` have their own handling; `defer_foreign_keys` ends
/// with each transaction; `count_changes` and `query_only` are refused in
/// files; `temp_store` is set back only if a file changed it, which already
/// dropped the temporary tables; `case_sensitive_like` cannot be read, and
/// is told by what `LIKE` does.) Those SQLite was built without read as
/// nothing and are skipped.
const CONNECTION_PRAGMAS: [&str; 20] = [
    // Without a schema name: the default for the connection and every
    // database, which is what a file's plain `PRAGMA locking_mode` sets.
    "locking_mode",
    "wal_autocheckpoint",
    "automatic_index",
    "cell_size_check",
    "ignore_check_constraints",
    "legacy_alter_table",
    "query_only",
    "recursive_triggers",
    "reverse_unordered_selects",
    "trusted_schema",
    "temp_store",
    CASE_SENSITIVE_LIKE,
    "full_column_names",
    "short_column_names",
    "empty_result_callbacks",
    "read_uncommitted",
    "analysis_limit",
    "threads",
    "fullfsync",
    "checkpoint_fullfsync",
];

/// The settings of each database (main and attached) a migration file may
/// change with `PRAGMA schema.name = ...` (or, for some, without a schema
/// name, which sets main's), put back as [`CONNECTION_PRAGMAS`] are.
const DATABASE_PRAGMAS: [&str; 8] = [
    "synchronous",
    "cache_size",
    "secure_delete",
    "locking_mode",
    "mmap_size",
    "journal_size_limit",
    "max_page_count",
    "cache_spill",
];

/// `PRAGMA case_sensitive_like` cannot be read: the setting is told by
/// whether `LIKE` tells `a` from `A`.
const CASE_SENSITIVE_LIKE: &str = "case_sensitive_like";

/// A setting's value (`None` where SQLite has none, as `mmap_size` in
/// memory).
fn read_pragma(conn: &Connection, name: &str) -> Result<Option<rusqlite::types::Value>> {
    if name == CASE_SENSITIVE_LIKE {
        // A `like()` function of the caller's may not answer: then nothing
        // is known, and nothing is put back.
        let sensitive = conn
            .query_row("SELECT NOT ('a' LIKE 'A')", [], |r| r.get::<_, i64>(0))
            .ok();
        return Ok(sensitive.map(rusqlite::types::Value::Integer));
    }
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .optional()
        .map_err(|e| Error::sqlite(format!("cannot read PRAGMA {name}"), e))
}

/// Sets a setting back if it is not `value`; returns whether it did.
fn restore_pragma(conn: &Connection, name: &str, value: &rusqlite::types::Value) -> Result<bool> {
    use rusqlite::types::Value;
    if read_pragma(conn, name)?.as_ref() == Some(value) {
        return Ok(false);
    }
    // `cache_spill` reads as the number of pages the cache holds before it
    // spills (the larger of the cache's size and the spill size), or 0 when
    // off; written as a number, it becomes the spill size, which would then
    // no longer follow the cache's size. Put the flag back on with the
    // default spill size (1), and the number only if that reads otherwise
    // (the caller had set a larger one).
    if name.ends_with("cache_spill") && *value != Value::Integer(0) {
        let set = |text: &str| {
            conn.query_row(&format!("PRAGMA {name} = {text}"), [], |_| Ok(()))
                .optional()
                .map_err(|e| Error::sqlite(format!("cannot put PRAGMA {name} back to {text}"), e))
        };
        set("1")?;
        if read_pragma(conn, name)?.as_ref() != Some(value) {
            if let Value::Integer(pages) = value {
                set(&pages.to_string())?;
            }
        }
        return Ok(true);
    }
    let text = match value {
        // `secure_delete` reads FAST as 2, and takes 2 as ON.
        Value::Integer(2) if name.ends_with("secure_delete") => "FAST".to_owned(),
        Value::Integer(i) => i.to_string(),
        // SQLite's own words (`normal`, `exclusive`).
        Value::Text(t) => t.clone(),
        other => {
            log::warn!("PRAGMA {name} read as {other:?}: not put back");
            return Ok(false);
        }
    };
    conn.query_row(&format!("PRAGMA {name} = {text}"), [], |_| Ok(()))
        .optional()
        .map_err(|e| Error::sqlite(format!("cannot put PRAGMA {name} back to {text}"), e))?;
    Ok(true)
}

/// The attached databases (after `main` and `temp`). Without any, no
/// statement runs.
fn attached(conn: &Connection) -> Result<Vec<Attached>> {
    if conn.db_name(2).is_err() {
        return Ok(Vec::new());
    }
    let read = || -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt =
            conn.prepare("SELECT name, file FROM pragma_database_list WHERE seq >= 2")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    let names = read().map_err(|e| Error::sqlite("cannot read the attached databases", e))?;
    Ok(names
        .into_iter()
        .map(|(name, file)| Attached {
            read_only: conn.is_readonly(name.as_str()).unwrap_or(false),
            name,
            file,
        })
        .collect())
}

/// `PRAGMA <schema>.journal_mode`, the schema name quoted.
fn schema_journal(schema: &str, value: Option<&str>) -> String {
    let quoted = schema.replace('"', "\"\"");
    match value {
        Some(mode) => format!("PRAGMA \"{quoted}\".journal_mode = {mode}"),
        None => format!("PRAGMA \"{quoted}\".journal_mode"),
    }
}

/// Gives each database file of the connection (main and attached, not
/// read-only) a rollback journal on disk for the run if it has none:
/// returns those switched, with the mode each had.
fn with_rollback_journal(
    conn: &Connection,
    attached: &[Attached],
) -> Result<Vec<(String, String)>> {
    let main = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(|_| "main".to_owned());
    // In memory: nothing survives a crash anyway, and `MEMORY` rolls back.
    let files = main.into_iter().chain(
        attached
            .iter()
            .filter(|db| !db.file.is_empty() && !db.read_only)
            .map(|db| db.name.clone()),
    );
    let mut switched = Vec::new();
    for schema in files {
        match switch_journal(conn, &schema) {
            Ok(Some(mode)) => switched.push((schema, mode)),
            Ok(None) => {}
            Err(e) => {
                for (schema, mode) in &switched {
                    if let Err(r) = restore_journal(conn, schema, mode) {
                        log::error!("{r}");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(switched)
}

/// Switches one database from `OFF` or `MEMORY` to `DELETE`: returns the
/// mode it had, or `None` if it had a journal on disk.
fn switch_journal(conn: &Connection, schema: &str) -> Result<Option<String>> {
    let mode: String = conn
        .query_row(&schema_journal(schema, None), [], |r| r.get(0))
        .map_err(|e| Error::sqlite("cannot read PRAGMA journal_mode", e))?;
    if !(mode.eq_ignore_ascii_case("off") || mode.eq_ignore_ascii_case("memory")) {
        return Ok(None);
    }
    let now: String = conn
        .query_row(&schema_journal(schema, Some("DELETE")), [], |r| r.get(0))
        .map_err(|e| Error::sqlite("cannot set PRAGMA journal_mode", e))?;
    if !now.eq_ignore_ascii_case("delete") {
        return Err(Error::sqlite(
            format!(
                "the connection's journal_mode for {schema} is {mode}, so a failed migration \
                 could not be rolled back there (or a crash would leave it half applied), and \
                 SQLite kept {now} when the run set DELETE for itself; migrate with a connection \
                 in DELETE, TRUNCATE, PERSIST or WAL mode"
            ),
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                None,
            ),
        ));
    }
    log::debug!("journal_mode {mode} of {schema} replaced with DELETE for the run");
    Ok(Some(mode))
}

/// Puts a journal mode back, unless the run chose another since (a new
/// database's WAL).
fn restore_journal(conn: &Connection, schema: &str, mode: &str) -> Result<()> {
    let now: String = conn
        .query_row(&schema_journal(schema, None), [], |r| r.get(0))
        .map_err(|e| Error::sqlite("cannot read PRAGMA journal_mode", e))?;
    if now.eq_ignore_ascii_case("delete") {
        conn.query_row(&schema_journal(schema, Some(mode)), [], |_| Ok(()))
            .map_err(|e| Error::sqlite("cannot put PRAGMA journal_mode back", e))?;
    }
    Ok(())
}

fn begin_immediate(conn: &Connection, timeout: Duration) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
        if is_busy(&e) {
            Error::Locked { timeout }
        } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
            && conn
                .query_row("PRAGMA query_only", [], |r| r.get::<_, bool>(0))
                .unwrap_or(false)
        {
            // Not the file: the connection refuses writes.
            Error::Sqlite {
                context: format!(
                    "cannot start a write transaction: {e}; the connection has `PRAGMA \
                     query_only` on: turn it off (`PRAGMA query_only = OFF`) to migrate, or \
                     migrate with another connection"
                ),
                cause: e,
            }
        } else {
            Error::sqlite("cannot start a write transaction", e)
        }
    })
}

fn commit(conn: &Connection, timeout: Duration) -> Result<()> {
    conn.execute_batch("COMMIT").map_err(|e| {
        rollback(conn);
        if is_busy(&e) {
            Error::Locked { timeout }
        } else {
            Error::sqlite("cannot commit the migration", e)
        }
    })
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            log::error!("rollback failed: {e}");
        }
    }
}

/// The history table of a write transaction: created when its first row
/// is written, if it did not exist when the transaction began.
struct HistoryTable {
    exists: bool,
}

impl HistoryTable {
    /// `files`: those this transaction ran, in order; `outcome`: what a
    /// failure leaves.
    fn ensure<'a>(
        &mut self,
        conn: &Connection,
        files: impl IntoIterator<Item = &'a Migration>,
        outcome: Outcome,
    ) -> Result<()> {
        if self.exists {
            return Ok(());
        }
        // Without IF NOT EXISTS: it did not exist when the transaction
        // began, so a table of that name now is a file's, and is refused
        // rather than written into.
        if let Err(e) = conn.execute_batch(CREATE_HISTORY) {
            let taken = e.to_string().contains("already exists");
            let by = files
                .into_iter()
                .find_map(|m| find_ignore_case(m.sql(), state::HISTORY_TABLE).map(|at| (m, at)));
            if let (true, Some((m, at))) = (taken, by) {
                let sql = m.sql();
                let start = sql[..at].rfind('\n').map_or(0, |i| i + 1);
                let statement = sql[start..].lines().next().unwrap_or("").trim();
                return Err(Error::Migration {
                    version: m.version(),
                    file: m.file_name().to_owned(),
                    line: migrate_rules::line_of(sql, at),
                    statement_line: migrate_rules::line_of(sql, start),
                    statement: shorten(statement),
                    message: format!(
                        "the file makes a table named {}, the name of the history table the \
                         framework keeps; give the table another name",
                        state::HISTORY_TABLE
                    ),
                    hint: Hint::None,
                    outcome,
                });
            }
            let what = match outcome {
                Outcome::AllRolledBack => "every migration of this run was rolled back",
                _ => "the migration was rolled back",
            };
            return Err(Error::sqlite(
                format!("cannot create the history table `_migrate_history` ({what})"),
                e,
            ));
        }
        self.exists = true;
        Ok(())
    }

    /// The rows of the files this transaction applied (with how long each
    /// took), creating the table first if needed.
    fn record_applied(
        &mut self,
        conn: &Connection,
        done: &[(&Migration, Duration)],
        outcome: Outcome,
    ) -> Result<()> {
        self.ensure(conn, done.iter().map(|&(m, _)| m), outcome)?;
        record_all(
            conn,
            done.iter().map(|&(m, d)| (m, duration_us(d))),
            state::STATE_APPLIED,
        )
    }
}

/// A migration's error found after its last statement.
fn at_end_of(m: &Migration, message: String, hint: Hint, outcome: Outcome) -> Error {
    Error::Migration {
        version: m.version(),
        file: m.file_name().to_owned(),
        line: migrate_rules::line_of(m.sql(), m.sql().trim_end().len()),
        statement_line: migrate_rules::line_of(m.sql(), m.sql().trim_end().len()),
        statement: "(end of file)".to_owned(),
        message,
        hint,
        outcome,
    }
}

/// History rows for these migrations (with how long each took, in
/// microseconds), through one prepared statement.
fn record_all<'a>(
    conn: &Connection,
    rows: impl IntoIterator<Item = (&'a Migration, i64)>,
    state: &str,
) -> Result<()> {
    let mut stmt = None;
    // The rows written together are applied together, when their
    // transaction commits.
    let applied_at = now_utc();
    let (mut checksum, mut chain) = (String::new(), String::new());
    for (m, duration_us) in rows {
        let context = || {
            format!(
                "cannot record migration {} in `_migrate_history`",
                m.version()
            )
        };
        let stmt = match &mut stmt {
            Some(stmt) => stmt,
            None => stmt.insert(
                conn.prepare_cached(
                    "INSERT INTO main._migrate_history \
                     (version, name, checksum, applied_at, duration_us, chain, state) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| Error::sqlite(context(), e))?,
            ),
        };
        migrate_rules::hex_to(m.checksum().as_bytes(), &mut checksum);
        migrate_rules::hex_to(m.chain().as_bytes(), &mut chain);
        stmt.execute(rusqlite::params![
            m.version(),
            m.name(),
            checksum,
            applied_at,
            duration_us,
            chain,
            state
        ])
        .map_err(|e| Error::sqlite(context(), e))?;
    }
    Ok(())
}

/// The time now, UTC, as `applied_at` records it: ISO 8601 with
/// milliseconds (`2026-01-31T12:00:00.000Z`, as SQLite's
/// `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` writes it, without a statement).
fn now_utc() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

fn set_user_version(conn: &Connection, version: u32) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA user_version = {version}"))
        .map_err(|e| Error::sqlite(format!("cannot set user_version to {version}"), e))
}

/// `PRAGMA foreign_key_check` on the tables of `scope` in the main database
/// (a table that no longer exists is skipped; a temporary table of the same
/// name does not hide it).
/// `outcome`: what a failure leaves.
fn foreign_key_check(
    conn: &Connection,
    m: &Migration,
    scope: &[String],
    outcome: Outcome,
) -> Result<()> {
    // A foreign key SQLite cannot check (its parent key has no unique
    // index, or a column count that differs) is the file's to fix.
    let failed = |e: rusqlite::Error| {
        let mut message = format!(
            "after the file, SQLite cannot check its foreign keys: {}",
            sqlite_message(&e)
        );
        if message.contains("foreign key mismatch") {
            message.push_str(
                " (a foreign key must name its parent's primary key, or columns with a UNIQUE \
                 index, and as many of them as it has columns)",
            );
        }
        at_end_of(m, message, hint_for(&e), outcome)
    };
    let (mut violations, more) = orphan_rows(conn, scope).map_err(failed)?;
    if more > 0 {
        violations.push(format!("and {more} more"));
    }
    if violations.is_empty() {
        return Ok(());
    }
    Err(Error::ForeignKeyViolation {
        version: m.version(),
        file: m.file_name().to_owned(),
        violations,
        outcome,
    })
}

/// The rows of the tables of `scope` (in the main database; a table that
/// no longer exists is skipped) that break a foreign key, described, the
/// first 20 of them; and how many more there are.
fn orphan_rows(conn: &Connection, scope: &[String]) -> rusqlite::Result<(Vec<String>, usize)> {
    const LISTED: usize = 20;
    let mut violations = Vec::new();
    let mut more = 0usize;
    for table in scope {
        let pragma = format!(
            "PRAGMA main.foreign_key_check('{}')",
            table.replace('\'', "''")
        );
        let mut stmt = match conn.prepare(&pragma) {
            Ok(stmt) => stmt,
            Err(e) if e.to_string().contains("no such table") => continue,
            Err(e) => return Err(e),
        };
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if violations.len() == LISTED {
                more += 1;
                continue;
            }
            let table: String = row.get(0).unwrap_or_default();
            let rowid: Option<i64> = row.get(1).unwrap_or(None);
            let parent: String = row.get(2).unwrap_or_default();
            violations.push(match rowid {
                Some(id) => format!("{table} row {id} has no parent in {parent}"),
                None => format!("a {table} row has no parent in {parent}"),
            });
        }
    }
    Ok((violations, more))
}

fn integrity_check(
    conn: &Connection,
    check: IntegrityCheck,
    touched: Option<&[String]>,
    version: u32,
) -> Result<IntegrityOutcome> {
    // Each check, with the table it is limited to.
    let pragmas: Vec<(String, Option<&str>)> = match (check, touched) {
        (IntegrityCheck::Full, _) => vec![("PRAGMA main.integrity_check".to_owned(), None)],
        (IntegrityCheck::Quick, _) => vec![("PRAGMA main.quick_check".to_owned(), None)],
        (IntegrityCheck::Changed, Some(tables)) => tables
            .iter()
            .map(|t| {
                let pragma = format!("PRAGMA main.integrity_check('{}')", t.replace('\'', "''"));
                (pragma, Some(t.as_str()))
            })
            .collect(),
        (IntegrityCheck::Changed, None) => {
            vec![("PRAGMA main.integrity_check".to_owned(), None)]
        }
        (IntegrityCheck::Off, _) => return Ok(IntegrityOutcome::Skipped),
    };
    let mut problems = Vec::new();
    for (pragma, table) in &pragmas {
        let context = format!(
            "cannot run {pragma} after migrating to version {version} (the migrations were \
             committed; check the database by hand)"
        );
        let mut stmt = match conn.prepare(pragma) {
            Ok(stmt) => stmt,
            // A table the run wrote and then dropped: SQLite refuses to
            // check a table it does not have. (A view, even one the run left
            // unreadable, is checked as nothing to check.) Only when the
            // schema says so is the table passed over.
            Err(e) => match table.map(|table| table_exists(conn, table)) {
                Some(Ok(false)) => continue,
                _ => return Err(Error::sqlite(context, e)),
            },
        };
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| Error::sqlite(context.clone(), e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| Error::sqlite(context, e))?;
        problems.extend(rows.into_iter().filter(|r| r != "ok"));
    }
    if problems.is_empty() {
        return Ok(IntegrityOutcome::Ok(check));
    }
    Err(Error::Integrity { version, problems })
}

/// The tables a run touches, from SQLite's authorizer (every table a
/// statement writes, including through triggers, as each statement is
/// prepared): for the foreign-key check of each step, and for
/// [`IntegrityCheck::Changed`], which adds the tables whose schema changed
/// (created, rebuilt, altered).
struct TableWatch {
    /// Whether the run checks [`IntegrityCheck::Changed`]: then the
    /// tables it touched are what [`TableWatch::finish`] returns.
    changed: bool,
    /// For `Changed`, the tables and their SQL before the first file of the
    /// run that says `RENAME` (not yet, or no such file: `None`). SQLite's
    /// authorizer reports every table a statement writes, creates, alters
    /// or drops, but a renamed table by its old name only: the comparison
    /// of this read with the schema after the run finds the new name.
    before: std::cell::RefCell<Option<BTreeMap<String, TableSql>>>,
    /// The tables and their SQL as last read (not yet: `None`); read again
    /// only after a statement that may have changed the schema.
    schema: std::cell::RefCell<Option<BTreeMap<String, TableSql>>>,
    seen: Arc<Mutex<Seen>>,
    /// Whether any table may have a foreign key: one did when the schema
    /// was read, or a migration of the run since says `REFERENCES` (no
    /// other statement creates one). While not, there is nothing for
    /// `foreign_key_check` to find. `None` until the schema is read.
    foreign_keys_possible: std::cell::Cell<Option<bool>>,
    /// Whether the authorizer is installed.
    installed: std::cell::Cell<bool>,
    /// Whether the schema, as last read, says `REPLACE` anywhere (a
    /// table's `ON CONFLICT REPLACE`, a trigger's `INSERT OR REPLACE`):
    /// then any insert may delete rows.
    schema_replaces: std::cell::Cell<bool>,
    /// Whether this step's file says `REPLACE`.
    step_replaces: std::cell::Cell<bool>,
    /// The main database's triggers, as last read.
    triggers: std::cell::RefCell<BTreeSet<String>>,
}

#[derive(Default)]
struct Seen {
    /// Every table written during the run.
    run: BTreeSet<String>,
    /// Every index rebuilt by `REINDEX` during the run (`Changed` checks
    /// its table).
    reindexed: BTreeSet<String>,
    /// Tables of this step whose own rows (or columns) may now break their
    /// foreign keys: inserted into, updated, created, altered.
    step_children: BTreeSet<String>,
    /// Tables of this step that may have lost rows their children point
    /// to: deleted from, updated, dropped, altered.
    step_parents: BTreeSet<String>,
    /// Tables of this step inserted into: they lose rows too when the
    /// insert replaces the rows it conflicts with.
    step_inserted: BTreeSet<String>,
    /// A statement of this step dropped a trigger.
    step_dropped_trigger: bool,
    /// The triggers that inserted rows in this step: one that is not the
    /// main database's (a temporary trigger, whose SQL is not read) may
    /// have replaced rows.
    step_trigger_inserts: BTreeSet<String>,
    /// A statement since the last read of the schema may have changed it.
    schema_changed: bool,
    /// A statement of this step set `PRAGMA writable_schema`, after which
    /// the file may write `sqlite_master` itself: which tables it changed
    /// is not known.
    step_schema_edited: bool,
    /// The same, for any step of the run: `Changed` then checks the whole
    /// database.
    run_schema_edited: bool,
}

impl TableWatch {
    /// `keys_possible`: whether a table may have a foreign key during the
    /// run, if known. `changed`: whether the run checks `Changed`.
    fn start(conn: &mut Connection, changed: bool, keys_possible: Option<bool>) -> Result<Self> {
        let watch = TableWatch {
            changed,
            before: std::cell::RefCell::new(None),
            schema: std::cell::RefCell::new(None),
            seen: Arc::new(Mutex::new(Seen::default())),
            foreign_keys_possible: std::cell::Cell::new(keys_possible),
            installed: std::cell::Cell::new(false),
            schema_replaces: std::cell::Cell::new(false),
            step_replaces: std::cell::Cell::new(false),
            triggers: std::cell::RefCell::new(BTreeSet::new()),
        };
        // Without `Changed`, and while no table can have a foreign key,
        // there is nothing to record.
        if changed || keys_possible != Some(false) {
            watch.install(conn)?;
        }
        Ok(watch)
    }

    /// For `Changed`, before the first file of the run that may rename a
    /// table (inside its write transaction, before it runs): reads the
    /// tables as they are then (which also tell whether a foreign key
    /// exists). The tables the files before it touched are the
    /// authorizer's, and none of those files renamed one.
    fn read_before(&self, conn: &Connection) -> Result<()> {
        // After a file that wrote sqlite_master itself, the run checks the
        // whole database: no comparison needed.
        if !self.changed || self.before.borrow().is_some() || lock(&self.seen).run_schema_edited {
            return Ok(());
        }
        let Schema {
            tables: schema,
            replaces,
            triggers,
        } = tables(conn, true)?;
        self.schema_replaces.set(replaces);
        *self.triggers.borrow_mut() = triggers;
        self.foreign_keys_possible
            .set(Some(schema.values().any(|table| table.references)));
        *self.schema.borrow_mut() = Some(schema.clone());
        *self.before.borrow_mut() = Some(schema);
        lock(&self.seen).schema_changed = false;
        Ok(())
    }

    /// Installs the authorizer that records the tables each statement
    /// writes (from then on: call before the statements to watch).
    fn install(&self, conn: &mut Connection) -> Result<()> {
        if self.installed.get() {
            return Ok(());
        }
        let sink = Arc::clone(&self.seen);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let inserted = matches!(ctx.action, AuthAction::Insert { .. });
            // An insert coded from a trigger's body names the trigger.
            let trigger_insert = if inserted { ctx.accessor } else { None };
            let (table, child, parent) = match ctx.action {
                AuthAction::Insert { table_name } | AuthAction::CreateTable { table_name } => {
                    (Some(table_name), true, false)
                }
                AuthAction::Update { table_name, .. }
                | AuthAction::AlterTable { table_name, .. } => (Some(table_name), true, true),
                // Dropping an index may take away the UNIQUE a child's
                // foreign key needs: its children are checked too.
                AuthAction::Delete { table_name }
                | AuthAction::DropTable { table_name }
                | AuthAction::DropIndex { table_name, .. } => (Some(table_name), false, true),
                // A virtual table's contents are its module's to check
                // (`integrity_check(<table>)` asks it); it has no foreign
                // keys.
                AuthAction::CreateIndex { table_name, .. }
                | AuthAction::CreateVtable { table_name, .. } => (Some(table_name), false, false),
                _ => (None, false, false),
            };
            // A trigger the step drops may have replaced rows before it
            // went (and the schema read after the step no longer has it).
            let dropped_trigger = matches!(
                ctx.action,
                AuthAction::DropTrigger { .. } | AuthAction::DropTempTrigger { .. }
            );
            let reindexed = match ctx.action {
                AuthAction::Reindex { index_name } => Some(index_name),
                _ => None,
            };
            let schema = may_change_schema(&ctx.action);
            // A file can write sqlite_master only after setting `PRAGMA
            // writable_schema` (CREATE, ALTER and DROP are reported as
            // writes to it too, so the writes themselves do not tell).
            let edited = matches!(
                ctx.action,
                AuthAction::Pragma { pragma_name, pragma_value: Some(_) }
                    if pragma_name.eq_ignore_ascii_case("writable_schema")
            );
            let table = table.filter(|t| !t.starts_with("sqlite_") && *t != state::HISTORY_TABLE);
            // Most actions (every column read) record nothing: no lock.
            if !schema && !edited && table.is_none() && !dropped_trigger && reindexed.is_none() {
                return Authorization::Allow;
            }
            let mut seen = lock(&sink);
            if let Some(index) = reindexed {
                note_table(&mut seen.reindexed, index);
            }
            seen.step_dropped_trigger |= dropped_trigger;
            if let Some(trigger) = trigger_insert {
                note_table(&mut seen.step_trigger_inserts, trigger);
            }
            seen.schema_changed |= schema;
            seen.step_schema_edited |= edited;
            seen.run_schema_edited |= edited;
            if let Some(table) = table {
                note_table(&mut seen.run, table);
                if child {
                    note_table(&mut seen.step_children, table);
                }
                if parent {
                    note_table(&mut seen.step_parents, table);
                }
                if inserted {
                    note_table(&mut seen.step_inserted, table);
                }
            }
            Authorization::Allow
        }))
        .map_err(|e| Error::sqlite("cannot install the authorizer", e))?;
        self.installed.set(true);
        Ok(())
    }

    /// Another connection committed since the last read: what this watch
    /// knows of the schema may be out of date (a table, a foreign key may
    /// have appeared). Read it again when next needed, and watch from now on.
    fn invalidate(&self, conn: &mut Connection) -> Result<()> {
        lock(&self.seen).schema_changed = true;
        if self.foreign_keys_possible.get() == Some(false) {
            self.foreign_keys_possible.set(None);
        }
        self.install(conn)
    }

    /// Before each migration: forget the previous one's tables, and note
    /// whether this one may create a foreign key (then watch it) or
    /// replace rows.
    fn start_migration(&self, conn: &mut Connection, mentions: Mentions) -> Result<()> {
        if mentions.rename {
            self.read_before(conn)?;
        }
        if self.foreign_keys_possible.get() != Some(true) && mentions.references {
            self.foreign_keys_possible.set(Some(true));
            self.install(conn)?;
        }
        self.step_replaces.set(mentions.replace);
        let mut seen = lock(&self.seen);
        seen.step_children.clear();
        seen.step_parents.clear();
        seen.step_inserted.clear();
        seen.step_dropped_trigger = false;
        seen.step_trigger_inserts.clear();
        seen.step_schema_edited = false;
        Ok(())
    }

    /// Whether a statement of this step set `PRAGMA writable_schema`.
    fn schema_edited(&self) -> bool {
        lock(&self.seen).step_schema_edited
    }

    /// A file may have edited `sqlite_master` (by its text): treat the
    /// step as the authorizer would one that set `writable_schema`.
    fn note_schema_edit(&self) {
        let mut seen = lock(&self.seen);
        seen.step_schema_edited = true;
        seen.run_schema_edited = true;
    }

    /// The tables and their SQL now: the last read, or a new one if a
    /// statement since may have changed the schema.
    fn current_schema(&self, conn: &Connection) -> Result<()> {
        let changed = std::mem::replace(&mut lock(&self.seen).schema_changed, false);
        if changed || self.schema.borrow().is_none() {
            // `Changed`, once it has read the tables before a rename,
            // compares every table before and after; the foreign-key scope
            // needs only the tables that may have a foreign key.
            let all = self.before.borrow().is_some();
            let Schema {
                tables: schema,
                replaces,
                triggers,
            } = tables(conn, all)?;
            *self.triggers.borrow_mut() = triggers;
            // Sticky: a trigger that replaced rows may be gone by now.
            self.schema_replaces
                .set(self.schema_replaces.get() || replaces);
            if schema.values().any(|table| table.references) {
                self.foreign_keys_possible.set(Some(true));
            } else if self.foreign_keys_possible.get().is_none() {
                self.foreign_keys_possible.set(Some(false));
            }
            *self.schema.borrow_mut() = Some(schema);
        }
        Ok(())
    }

    /// The tables whose foreign keys this step may have broken: those it
    /// wrote as a child, and the children of those it changed as a parent.
    /// Only a table whose SQL says `REFERENCES` has foreign keys, and only
    /// one whose SQL names a parent can point to it, so the others are left
    /// out without asking SQLite about each.
    fn step_scope(&self, conn: &Connection) -> Result<Vec<String>> {
        let (written, mut parents, inserted, edited, dropped_trigger, trigger_inserts) = {
            let seen = lock(&self.seen);
            (
                seen.step_children.clone(),
                seen.step_parents.clone(),
                seen.step_inserted.clone(),
                seen.step_schema_edited,
                seen.step_dropped_trigger,
                seen.step_trigger_inserts.clone(),
            )
        };
        if (written.is_empty() && parents.is_empty() && !edited)
            || self.foreign_keys_possible.get() == Some(false)
        {
            return Ok(Vec::new());
        }
        self.current_schema(conn)?;
        // An insert that replaces the rows it conflicts with deletes them
        // (the authorizer reports only the insert): when the file or the
        // schema (as any read of this run saw it) says REPLACE, or the step
        // dropped a trigger, or a trigger that is not the main database's
        // inserted rows (either may have replaced some), the tables
        // inserted into are parents too.
        // A trigger is known when it is the main database's and no
        // temporary trigger has its name (the temporary ones are read only
        // here, when a trigger inserted rows: reading them sets up the
        // temporary database).
        let unknown_trigger = !trigger_inserts.is_empty()
            && (trigger_inserts
                .iter()
                .any(|t| !self.triggers.borrow().contains(t))
                || temporary_triggers(conn)?
                    .iter()
                    .any(|t| trigger_inserts.contains(t)));
        if self.step_replaces.get()
            || self.schema_replaces.get()
            || dropped_trigger
            || unknown_trigger
        {
            parents.extend(inserted);
        }
        let context = "cannot read the database's foreign keys";
        let schema = self.schema.borrow();
        let mut scope = Vec::new();
        let with_keys = schema
            .iter()
            .flatten()
            .filter(|(_, table)| table.references);
        for (table, TableSql { sql, .. }) in with_keys {
            // A table whose SQL was edited in place may have any foreign
            // key now: check every table that can have one.
            let mut check = edited
                || written.iter().any(|w| w.eq_ignore_ascii_case(table))
                || parents.iter().any(|p| p.eq_ignore_ascii_case(table));
            if !check && parents.iter().any(|p| may_name(sql, p)) {
                let pragma = format!(
                    "PRAGMA main.foreign_key_list('{}')",
                    table.replace('\'', "''")
                );
                let referenced = conn
                    .prepare(&pragma)
                    .and_then(|mut stmt| {
                        stmt.query_map([], |r| r.get::<_, String>(2))?
                            .collect::<rusqlite::Result<Vec<String>>>()
                    })
                    .map_err(|e| Error::sqlite(context, e))?;
                check = referenced
                    .iter()
                    .any(|parent| parents.iter().any(|p| p.eq_ignore_ascii_case(parent)));
            }
            if check {
                scope.push(table.clone());
            }
        }
        Ok(scope)
    }

    /// Removes the authorizer; for `Changed`, returns the touched tables
    /// (some may have been dropped by the run since: `integrity_check`
    /// passes those over), or `None` for a whole check (after a file that
    /// wrote `sqlite_master` itself, or when nothing may be read).
    /// `read`: whether the schema may be read (not after a lock timeout).
    fn finish(self, conn: &mut Connection, read: bool) -> Result<Option<Vec<String>>> {
        if self.installed.get() {
            conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
                .map_err(|e| Error::sqlite("cannot remove the authorizer", e))?;
        }
        if !self.changed || !read {
            return Ok(None);
        }
        // A file that wrote sqlite_master itself may have changed any
        // table or index (an index's SQL too, which the comparison of
        // tables would not see): check everything.
        if lock(&self.seen).run_schema_edited {
            return Ok(None);
        }
        let (mut written, reindexed) = {
            let seen = lock(&self.seen);
            (seen.run.clone(), seen.reindexed.clone())
        };
        // A rebuilt index is checked with its table.
        for index in &reindexed {
            let table = conn
                .query_row(
                    "SELECT tbl_name FROM main.sqlite_master WHERE type = 'index' AND name = ?1",
                    [index],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(|e| Error::sqlite("cannot read the schema", e))?;
            written.extend(table);
        }
        let is_user_table =
            |name: &str| !name.starts_with("sqlite_") && name != state::HISTORY_TABLE;
        // The authorizer names a table as the statement spelled it.
        let was_written = |name: &str| {
            written.contains(name) || written.iter().any(|w| w.eq_ignore_ascii_case(name))
        };
        let before = self.before.borrow();
        if let Some(before) = before.as_ref() {
            // A file renamed a table: compare every table now with before.
            self.current_schema(conn)?;
            let after = self.schema.borrow();
            let touched = after
                .iter()
                .flatten()
                .filter(|(name, sql)| {
                    is_user_table(name)
                        && (was_written(name) || before.get(name.as_str()) != Some(sql))
                })
                .map(|(name, _)| name.clone())
                .collect();
            return Ok(Some(touched));
        }
        // Every table the run touched is the authorizer's, once each (it
        // names a table as each statement spelled it). One the run dropped
        // is passed over by the check itself (see `integrity_check`).
        let mut touched: Vec<String> = Vec::new();
        for name in written.iter().filter(|name| is_user_table(name)) {
            if !touched.iter().any(|t| t.eq_ignore_ascii_case(name)) {
                touched.push(name.clone());
            }
        }
        Ok(Some(touched))
    }
}

/// Ends a run's watch (see [`TableWatch::finish`]). After a lock timeout,
/// nothing more is read: it would wait as long again. A failure here is the
/// error only when the run itself succeeded (the run's own failure says
/// more).
fn finish_watch(
    conn: &mut Connection,
    watch: Option<TableWatch>,
    outcome: &Result<u32>,
) -> Result<Option<Vec<String>>> {
    let locked = outcome.as_ref().is_err_and(is_lock_error);
    match watch.map(|watch| watch.finish(conn, !locked)) {
        Some(Ok(touched)) => Ok(touched),
        Some(Err(e)) if outcome.is_ok() => Err(e),
        Some(Err(_)) | None => Ok(None),
    }
}

/// The tables seen so far. The authorizer cannot panic while holding the
/// lock, so a poisoned lock still holds complete sets: use them rather than
/// check less.
fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds a table name to a set, allocating only when it is new.
fn note_table(set: &mut BTreeSet<String>, table: &str) {
    if !set.contains(table) {
        set.insert(table.to_owned());
    }
}

/// Whether an action may change which tables exist or their SQL. Reading,
/// and writing rows of ordinary tables, do not; anything else (DDL, writes
/// to `sqlite_master`, actions this list does not know) is taken to.
fn may_change_schema(action: &AuthAction<'_>) -> bool {
    match action {
        AuthAction::Read { .. }
        | AuthAction::Select
        | AuthAction::Function { .. }
        | AuthAction::Transaction { .. }
        | AuthAction::Savepoint { .. }
        | AuthAction::Recursive
        | AuthAction::Pragma { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::DropTempIndex { .. } => false,
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => table_name.starts_with("sqlite_"),
        _ => true,
    }
}

/// After a file that may have written `sqlite_master` itself (its text
/// names `writable_schema`, or the schema table while the pragma is on, or
/// the authorizer saw the pragma set): makes SQLite load the schema it left, so that the checks
/// see it, whether or not the file bumped `schema_version`; a schema SQLite
/// cannot load fails the migration (`outcome`: what that leaves). A file
/// that names `writable_schema` also makes `Changed` check everything.
fn load_edited_schema(
    conn: &Connection,
    m: &Migration,
    mentions: &Mentions,
    watch: Option<&TableWatch>,
    outcome: Outcome,
) -> Result<()> {
    // sqlite_master can be written only while writable_schema is on: a
    // file that names the schema table edited it only if the pragma is on
    // after it (an earlier file may have left it on), or if it names the
    // pragma too.
    let edited = mentions.writable_schema
        || watch.is_some_and(TableWatch::schema_edited)
        || (mentions.schema_table
            && conn
                .query_row("PRAGMA writable_schema", [], |r| r.get::<_, bool>(0))
                .unwrap_or(true));
    if !edited {
        return Ok(());
    }
    if let Some(watch) = watch {
        watch.note_schema_edit();
    }
    reload_schema(conn).map_err(|e| {
        let (message, hint) = if is_busy(&e) {
            (
                format!("cannot make SQLite load the schema the file left: {e}"),
                Hint::Locked,
            )
        } else {
            (
                format!(
                    "the file wrote sqlite_master directly (PRAGMA writable_schema), and SQLite \
                     cannot load the schema it left: {e}"
                ),
                Hint::None,
            )
        };
        at_end_of(m, message, hint, outcome)
    })
}

/// Makes SQLite load the main database's schema again, as SQLite's own
/// recipe for editing `sqlite_master` does: one more `schema_version`.
fn reload_schema(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA main.schema_version", [], |r| r.get(0))?;
    conn.execute_batch(&format!(
        "PRAGMA main.schema_version = {}",
        version.wrapping_add(1)
    ))?;
    // Any statement now reads the schema again; this one fails if SQLite
    // cannot.
    conn.query_row("SELECT count(*) FROM main.sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|_| ())
}

/// Whether a table's SQL may name `table` (as the parent of a foreign key).
/// A name with a quote or bracket in it is written escaped, so for such a
/// name the answer is yes.
fn may_name(sql: &str, table: &str) -> bool {
    table.contains(['"', '\'', '`', ']']) || contains_ignore_case(sql, table)
}

/// The names of the connection's temporary triggers.
fn temporary_triggers(conn: &Connection) -> Result<Vec<String>> {
    let context = "cannot read the connection's temporary triggers";
    let mut stmt = conn
        .prepare("SELECT name FROM temp.sqlite_master WHERE type = 'trigger'")
        .map_err(|e| Error::sqlite(context, e))?;
    let names = stmt
        .query_map([], |r| r.get(0))
        .map_err(|e| Error::sqlite(context, e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| Error::sqlite(context, e))?;
    Ok(names)
}

/// Whether the main database has a table of that name, as its schema
/// table says (SQLite compares table names without regard to ASCII case).
fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    conn.prepare(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
    )
    .and_then(|mut stmt| stmt.exists([name]))
    .map_err(|e| Error::sqlite("cannot read the database's schema", e))
}

/// The main database's tables and their SQL, its triggers, and whether a
/// table or a trigger says `REPLACE`. (Temporary triggers are not read
/// here: that makes SQLite set up the temporary database, which costs more
/// than the rest of a small run; see `Seen::step_trigger_inserts`.)
struct Schema {
    tables: BTreeMap<String, TableSql>,
    replaces: bool,
    /// The names of the main database's triggers.
    triggers: BTreeSet<String>,
}

/// A table's SQL as the schema holds it.
#[derive(Clone, PartialEq, Eq)]
struct TableSql {
    sql: String,
    /// Whether the SQL says `REFERENCES`: only then may the table have a
    /// foreign key.
    references: bool,
}

/// `all`: every table; otherwise only those whose SQL says `REFERENCES` or
/// `REPLACE` (the others, which a large schema has many of, are scanned but
/// not copied).
fn tables(conn: &Connection, all: bool) -> Result<Schema> {
    let context = "cannot read the database's schema";
    // Every table's SQL is looked at here, in place, and copied only for
    // the tables kept: asking SQLite to filter (`instr(lower(sql), ...)`)
    // costs more than this scan, four times more with 500 tables.
    let mut stmt = conn
        .prepare(
            "SELECT type = 'table', name, sql FROM main.sqlite_master \
             WHERE type IN ('table', 'trigger')",
        )
        .map_err(|e| Error::sqlite(context, e))?;
    let mut rows = stmt.query([]).map_err(|e| Error::sqlite(context, e))?;
    let mut schema = Schema {
        tables: BTreeMap::new(),
        replaces: false,
        triggers: BTreeSet::new(),
    };
    while let Some(row) = rows.next().map_err(|e| Error::sqlite(context, e))? {
        let is_table: bool = row.get(0).map_err(|e| Error::sqlite(context, e))?;
        // The SQL as bytes: SQL that is not UTF-8 (written under `PRAGMA
        // writable_schema`) is compared and scanned all the same.
        let sql = match row.get_ref(2).map_err(|e| Error::sqlite(context, e))? {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes),
            _ => std::borrow::Cow::Borrowed(""),
        };
        // One pass over each table's SQL, at each read.
        let mentions = Mentions::of(&sql);
        schema.replaces |= mentions.replace;
        if !is_table {
            let name: String = row.get(1).map_err(|e| Error::sqlite(context, e))?;
            schema.triggers.insert(name);
        } else if all || mentions.references || mentions.replace {
            let name: String = row.get(1).map_err(|e| Error::sqlite(context, e))?;
            let references = mentions.references;
            let sql = sql.into_owned();
            schema.tables.insert(name, TableSql { sql, references });
        }
    }
    Ok(schema)
}

/// Settings a migration file may not set, and why: they would break the
/// runner's own writes after the file, which record it, or its lock waits.
const REFUSED_PRAGMAS: [(&str, &str); 3] = [
    (
        "query_only",
        "would make the database read-only to the runner as well, which records the migration \
         after the file runs",
    ),
    (
        "count_changes",
        "(deprecated) would make every write return a row, which the runner's own writes that \
         record the migration do not expect",
    ),
    (
        "busy_timeout",
        "would change how long the runner waits for other connections' locks for the rest of \
         the run (its lock timeout, see `Migrator::lock_timeout`)",
    ),
];

/// Runs a migration file: [`run_statements`], refusing a file that wrote
/// the history table (which only the runner may), or made a trigger that
/// names it (which could write it later, when the runner records a
/// migration or another file runs): both are compared before and after the
/// file, when the file names the table (no file can do either without
/// naming it). A `no-transaction` file that sets one of
/// [`REFUSED_PRAGMAS`] (anywhere in its text, a comment or a string
/// included) is refused before any of it runs.
fn run_file(
    conn: &Connection,
    m: &Migration,
    mentions: Mentions,
    rolled_back: Option<Outcome>,
    commits: Option<&std::sync::atomic::AtomicBool>,
) -> Result<()> {
    // Outside a transaction, a refusal at the statement would come after
    // the statements before it were applied for good: refuse the file
    // before any of it runs, by its text (each `PRAGMA <name> =` or `(`,
    // in a comment too, which the error then points at).
    if rolled_back.is_none() {
        let sql = m.sql();
        let mut from = 0;
        let found = loop {
            let Some(at) = find_ignore_case(&sql[from..], "pragma").map(|at| at + from) else {
                break None;
            };
            let refused = migrate_rules::pragma_assignment(sql, at).and_then(|assigned| {
                REFUSED_PRAGMAS
                    .iter()
                    .find(|(name, _)| assigned.eq_ignore_ascii_case(name))
            });
            if let Some(&(name, why)) = refused {
                break Some((at, name, why));
            }
            from = at + "pragma".len();
        };
        if let Some((at, name, why)) = found {
            let sql = m.sql();
            let line = migrate_rules::line_of(sql, at);
            let start = sql[..at].rfind('\n').map_or(0, |n| n + 1);
            return Err(Error::Migration {
                version: m.version(),
                file: m.file_name().to_owned(),
                line,
                statement_line: line,
                statement: shorten(sql[start..].lines().next().unwrap_or("").trim()),
                message: format!(
                    "PRAGMA {name} {why}; the file runs outside a transaction, so it is refused \
                     before any of it runs: remove the line"
                ),
                hint: Hint::None,
                outcome: Outcome::NothingApplied,
            });
        }
    }
    let before = mentions
        .history
        .then(|| (history_text(conn), history_triggers(conn)));
    run_statements(conn, m, rolled_back, commits)?;
    let Some((rows, triggers)) = before else {
        return Ok(());
    };
    let refuse = |what: String| {
        let mut e = at_end_of(
            m,
            format!(
                "the file {what}, which only the runner may write; remove those statements (the \
                 history says what was applied: editing it makes the next run skip or repeat \
                 migrations)"
            ),
            Hint::None,
            rolled_back.unwrap_or(Outcome::RanNotMarked),
        );
        // Point at the first line that names the table.
        if let (
            Error::Migration {
                line,
                statement_line,
                statement,
                ..
            },
            Some(at),
        ) = (&mut e, find_ignore_case(m.sql(), "_migrate_history"))
        {
            let sql = m.sql();
            let start = sql[..at].rfind('\n').map_or(0, |n| n + 1);
            *line = migrate_rules::line_of(sql, at);
            *statement_line = *line;
            *statement = shorten(sql[start..].lines().next().unwrap_or("").trim());
        }
        Err(e)
    };
    if history_text(conn) != rows {
        return refuse("wrote the migration history table `_migrate_history`".to_owned());
    }
    let made: Vec<String> = history_triggers(conn)
        .into_iter()
        .filter(|t| !triggers.contains(t))
        .collect();
    if !made.is_empty() {
        return refuse(format!(
            "made the trigger {} that names the migration history table `_migrate_history`",
            made.join(", ")
        ));
    }
    Ok(())
}

/// The history table's rows as text (`None` if it cannot be read, for one
/// not made yet; empty for one without rows). Every value in hex, with its
/// type, so that no two histories read the same.
fn history_text(conn: &Connection) -> Option<String> {
    conn.query_row(
        "SELECT coalesce(group_concat(typeof(version) || hex(version) || ',' || typeof(name) \
         || hex(name) || ',' || typeof(checksum) || hex(checksum) || ',' || typeof(applied_at) \
         || hex(applied_at) || ',' || typeof(duration_us) || hex(duration_us) || ',' \
         || typeof(chain) || hex(chain) || ',' || typeof(state) || hex(state), ';'), '') \
         FROM (SELECT * FROM main._migrate_history ORDER BY rowid)",
        [],
        |r| r.get::<_, String>(0),
    )
    .ok()
}

/// The triggers, main and temporary, whose SQL names `_migrate_history`.
fn history_triggers(conn: &Connection) -> Vec<String> {
    let read = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(
            "SELECT 'main.' || name FROM main.sqlite_master WHERE type = 'trigger' \
             AND instr(lower(sql), '_migrate_history') > 0 \
             UNION ALL SELECT 'temp.' || name FROM temp.sqlite_master WHERE type = 'trigger' \
             AND instr(lower(sql), '_migrate_history') > 0",
        )?;
        let names = stmt.query_map([], |r| r.get(0))?;
        names.collect()
    };
    read().unwrap_or_default()
}

/// Runs a migration's statements one at a time, as SQLite's parser splits
/// them, so that a failure names the line of the statement.
/// `rolled_back` is what a failure leaves when the migration runs in a
/// transaction; `None` for a `no-transaction` migration.
/// `commits`: for a `no-transaction` migration, set by a commit hook
/// whenever SQLite commits.
fn run_statements(
    conn: &Connection,
    m: &Migration,
    rolled_back: Option<Outcome>,
    commits: Option<&std::sync::atomic::AtomicBool>,
) -> Result<()> {
    let in_transaction = rolled_back.is_some();
    let sql = m.sql();
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    // NUL-terminated, so that SQLite parses the text in place instead of
    // copying the rest of the file for every statement (quadratic).
    let terminated = format!("{sql}\0");
    let mut batch = Batch::new(conn, &terminated);
    let mut cursor = 0;
    // Outside a transaction: whether a statement of the file is in the
    // database for good (it ran in autocommit mode, or ended a transaction
    // the file began). Until one is, a failure leaves nothing of the file:
    // what ran inside a transaction it began is rolled back.
    let committed = std::cell::Cell::new(false);
    loop {
        let start = migrate_rules::skip_trivia(sql, cursor);
        if start >= sql.len() {
            return Ok(());
        }
        // `at`: where in the file SQLite located the error, if it did.
        let fail_at = |message: String, hint: Hint, at: Option<usize>| {
            let outcome = if let Some(outcome) = rolled_back {
                outcome
            } else if !committed.get() {
                Outcome::NothingApplied
            } else {
                Outcome::PartlyApplied
            };
            let statement = sql[start..].lines().next().unwrap_or("").trim_end();
            let statement_line = migrate_rules::line_of(sql, start);
            Error::Migration {
                version: m.version(),
                file: m.file_name().to_owned(),
                line: at.map_or(statement_line, |at| migrate_rules::line_of(sql, at)),
                statement_line,
                statement: shorten(statement),
                message,
                hint,
                outcome,
            }
        };
        let fail = |message: String, hint: Hint| fail_at(message, hint, None);
        if in_transaction && is_transaction_control(sql, start) {
            return Err(fail(
                "a statement that would end or nest the framework's transaction".to_owned(),
                Hint::TransactionControl,
            ));
        }
        // SQLite lets some journal-mode changes through inside a
        // transaction; with `OFF` or `MEMORY`, a later failure could no
        // longer roll the migration back.
        let assigned = migrate_rules::pragma_assignment(sql, start);
        if in_transaction && assigned.is_some_and(|name| name.eq_ignore_ascii_case("journal_mode"))
        {
            return Err(fail(
                "PRAGMA journal_mode cannot change inside the framework's transaction: SQLite \
                 could then not roll the migration back"
                    .to_owned(),
                Hint::NeedsNoTransaction,
            ));
        }
        let refused = assigned.and_then(|assigned| {
            REFUSED_PRAGMAS
                .iter()
                .find(|(name, _)| assigned.eq_ignore_ascii_case(name))
        });
        if let Some((name, why)) = refused {
            return Err(fail(
                format!(
                    "PRAGMA {name} {why}; remove the statement (the run puts the connection's \
                     settings back after it anyway)"
                ),
                Hint::None,
            ));
        }
        let mut stmt = match batch.next() {
            Ok(Some(stmt)) => stmt,
            Ok(None) => {
                return Err(fail(
                    "SQLite found no statement here although the file goes on".to_owned(),
                    Hint::None,
                ))
            }
            Err(e) => {
                let at = error_offset(&e, &terminated).filter(|&at| at >= start);
                return Err(fail_at(sqlite_message(&e), hint_for(&e), at));
            }
        };
        if stmt.parameter_count() > 0 {
            return Err(fail(
                "the statement has a parameter (`?`, `:name`, `@name` or `$name`), which a \
                 migration cannot bind; write the value as a literal"
                    .to_owned(),
                Hint::None,
            ));
        }
        cursor = match stmt
            .expanded_sql()
            .and_then(|text| advance(sql, cursor, start, &text))
        {
            Some(next) => next,
            None => {
                return Err(fail(
                    "cannot find where this statement ends in the file".to_owned(),
                    Hint::None,
                ))
            }
        };
        // Outside any transaction, a statement SQLite refused a lock
        // without waiting for it (as it does for some journal-mode changes
        // while another connection holds the write lock) changed nothing
        // and is run again, until the connection's busy timeout (the run's
        // lock timeout) from its first try.
        let autocommit = conn.is_autocommit();
        let first_try = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut timeout = None;
        'retry: loop {
            let changes = conn.total_changes();
            if let Some(commits) = commits {
                commits.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            let mut rows = stmt.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break 'retry,
                    Err(e) => {
                        // In autocommit mode, a statement that fails part
                        // way (`OR FAIL`, `RAISE(FAIL)`) keeps what it
                        // wrote: SQLite committed it.
                        drop(rows);
                        let kept = conn.total_changes() != changes
                            || commits
                                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
                        if conn.is_autocommit() && kept {
                            committed.set(true);
                        }
                        if !in_transaction && autocommit && conn.is_autocommit() && !kept {
                            let timeout = *timeout.get_or_insert_with(|| busy_timeout(conn));
                            if is_busy(&e) && first_try.elapsed() + pause < timeout {
                                std::thread::sleep(pause);
                                pause = (pause * 2).min(Duration::from_millis(50));
                                continue 'retry;
                            }
                        }
                        return Err(fail(sqlite_message(&e), hint_for(&e)));
                    }
                }
            }
        }
        if in_transaction && conn.is_autocommit() {
            return Err(fail(
                "the statement ended the framework's transaction".to_owned(),
                Hint::TransactionControl,
            ));
        }
        if conn.is_autocommit() {
            committed.set(true);
        }
    }
}

/// The connection's busy timeout (zero if it cannot be read).
fn busy_timeout(conn: &Connection) -> Duration {
    conn.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0))
        .ok()
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(Duration::ZERO, Duration::from_millis)
}

/// Where in `text` (the whole input of the batch) SQLite located a prepare
/// error: the token it stopped at, for a syntax error or an unknown name.
/// SQLite reports it in the text it was given, the rest of the input.
fn error_offset(e: &rusqlite::Error, text: &str) -> Option<usize> {
    let rusqlite::Error::SqlInputError { sql, offset, .. } = e else {
        return None;
    };
    if !text.ends_with(sql.as_str()) {
        return None;
    }
    let at = text.len() - sql.len() + usize::try_from(*offset).ok()?;
    (at < text.len()).then_some(at)
}

/// Where the next statement's text starts: SQLite's statement text is the
/// input from where it started parsing, or from the statement's first token.
fn advance(sql: &str, cursor: usize, start: usize, text: &str) -> Option<usize> {
    let text = text.trim_end_matches('\0');
    if sql[cursor..].starts_with(text) {
        Some(cursor + text.len())
    } else if sql[start..].starts_with(text) {
        Some(start + text.len())
    } else {
        None
    }
}

fn is_transaction_control(sql: &str, start: usize) -> bool {
    let mut words = migrate_rules::keywords(sql, start);
    let [first, second, third] = [words.next(), words.next(), words.next()];
    let is =
        |word: Option<&str>, keyword: &str| word.is_some_and(|w| w.eq_ignore_ascii_case(keyword));
    if is(first, "BEGIN") || is(first, "COMMIT") || is(first, "END") {
        return true;
    }
    // ROLLBACK TO <savepoint> and ROLLBACK TRANSACTION TO <savepoint> stay
    // inside the transaction.
    is(first, "ROLLBACK") && !(is(second, "TO") || (is(second, "TRANSACTION") && is(third, "TO")))
}

fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg)) => {
            let _ = f;
            msg.clone()
        }
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn hint_for(e: &rusqlite::Error) -> Hint {
    if is_full(e) {
        return Hint::Full;
    }
    if is_busy(e) {
        return Hint::Locked;
    }
    let message = sqlite_message(e);
    if message.contains("within a transaction") {
        Hint::NeedsNoTransaction
    } else {
        Hint::None
    }
}

fn shorten(line: &str) -> String {
    const MAX: usize = 80;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}

fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The search agrees with the obvious one on every placement of the
    /// needle and of partial matches, in both cases, at the edges too.
    #[test]
    fn contains_ignore_case_agrees_with_a_window_search() {
        let naive = |text: &str, needle: &str| {
            needle.is_empty()
                || text
                    .as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        };
        let pieces = [
            "",
            "r",
            "R",
            "ref",
            "REFERENCES",
            "references",
            "x",
            "é",
            "rreferences",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    for needle in ["references", "r", "ReF", "", "é", "xr"] {
                        assert_eq!(
                            contains_ignore_case(&text, needle),
                            naive(&text, needle),
                            "{text:?} {needle:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn transaction_control_is_recognized_by_first_keywords() {
        for sql in [
            "BEGIN;",
            "begin immediate;",
            "COMMIT",
            "commit transaction;",
            "END;",
            "end transaction",
            "ROLLBACK;",
            "rollback transaction;",
            "/* c */ -- d\n  BEGIN",
        ] {
            assert!(is_transaction_control(sql, 0), "{sql}");
        }
        for sql in [
            "ROLLBACK TO sp;",
            "rollback transaction to savepoint sp",
            "SAVEPOINT sp;",
            "RELEASE sp;",
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;",
            "SELECT 'BEGIN';",
            "ENDING",
        ] {
            assert!(!is_transaction_control(sql, 0), "{sql}");
        }
    }

    #[test]
    fn advance_follows_sqlite_statement_text() {
        let sql = "-- c\nSELECT 1;\nSELECT 2;";
        // SQLite's text may start where parsing began or at the first token.
        assert_eq!(advance(sql, 0, 5, "-- c\nSELECT 1;"), Some(14));
        assert_eq!(advance(sql, 0, 5, "SELECT 1;"), Some(14));
        assert_eq!(advance(sql, 14, 15, "SELECT 2;"), Some(sql.len()));
        // Unknown text: an error, never a silent stop.
        assert_eq!(advance(sql, 0, 5, "nothing like it"), None);
    }

    #[test]
    fn shorten_keeps_80_characters() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(shorten(&long), format!("{}...", "é".repeat(80)));
    }

    #[test]
    fn statement_lines_follow_comments_and_blank_lines() {
        let conn = Connection::open_in_memory().unwrap();
        let m = Migration::__embedded(1, "x", "001_x.sql",
            "-- header\n\n/* multi\nline */ CREATE TABLE a (x);\n\n-- gap\n\nSELECT * FROM missing;\n",
            [0; 32], [0; 32], false, 0, None);
        conn.execute_batch("BEGIN").unwrap();
        match run_statements(&conn, &m, Some(Outcome::RolledBack), None).unwrap_err() {
            Error::Migration {
                line, statement, ..
            } => {
                assert_eq!(line, 8);
                assert_eq!(statement, "SELECT * FROM missing;");
            }
            other => panic!("{other:?}"),
        }
    }
}
