//! The one error type of the crate.

use std::fmt;
use std::time::Duration;

use crate::migration::Checksum;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with what happened, to which version and
/// file, and what to do about it.
///
/// Whenever an error is returned while migrating, the migration that failed
/// left nothing behind: its schema changes, rows, history row and
/// `user_version` were rolled back. The only exceptions are said in the
/// variant's documentation ([`Error::Integrity`], and a failure in the
/// middle of a `no-transaction` migration, which [`Error::Incomplete`]
/// reports on the next run).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An applied migration's file was edited after it was applied.
    #[error(
        "migration {version} ({file}) was edited after it was applied: the database recorded \
         checksum {recorded}, the file now has {current}; revert the edit and put the change \
         in a new migration"
    )]
    Drift {
        /// The version.
        version: u32,
        /// The file name.
        file: String,
        /// The checksum recorded when the migration was applied.
        recorded: String,
        /// The checksum of the migration as this program has it.
        current: Checksum,
    },

    /// The database is at a version this program does not know: it was
    /// migrated by a newer build, or a file it applied was deleted or
    /// renamed since. Nothing was touched.
    #[error(
        "the database is at version {database}, but the newest migration this program knows is \
         {latest}{}",
        unknown_version_advice(*.latest, .name.as_deref())
    )]
    UnknownVersion {
        /// The database's version.
        database: u32,
        /// The newest version this program has.
        latest: u32,
        /// The migration name (the file name's part after the version)
        /// the database's history records for version `latest + 1`, the
        /// first one this program does not have (`None` when the database
        /// has no history, only `user_version`).
        name: Option<String>,
    },

    /// The database's migration records contradict each other.
    #[error("the database's migration state is inconsistent: {detail}")]
    Inconsistent {
        /// What disagrees and what to do.
        detail: String,
    },

    /// A `no-transaction` migration was started and never finished.
    /// `migrate` first waits for it up to the lock timeout, polling (another
    /// instance of the program may be running it: such a migration holds no
    /// lock while it runs); `verify` and `status` never wait.
    #[error(
        "migration {version} ({file}) is incomplete: it runs outside a transaction and was \
         started but not finished, so some of its statements may have been applied; if another \
         instance of the program may be running it right now, wait for it to finish and retry; \
         otherwise check the database by hand and finish or undo the migration, then either run \
         `DELETE FROM main._migrate_history WHERE version = {version};` (to run it again) or, if \
         it is complete, `UPDATE main._migrate_history SET state = 'applied' WHERE version = \
         {version}; \
         PRAGMA user_version = {version};`"
    )]
    Incomplete {
        /// The version.
        version: u32,
        /// The file name.
        file: String,
    },

    /// A statement of a migration failed. The migration was rolled back.
    #[error(
        "migration {version} failed at {file}:{line} ({}): {message}{hint}; {outcome}",
        statement_at(.line, .statement_line, .statement)
    )]
    Migration {
        /// The version.
        version: u32,
        /// The file name.
        file: String,
        /// The 1-based line of the error: where SQLite located it (the
        /// token it stopped at, for a syntax error or an unknown column or
        /// function),
        /// otherwise where the failing statement starts.
        line: usize,
        /// The 1-based line where the failing statement starts.
        statement_line: usize,
        /// The first line of the failing statement.
        statement: String,
        /// SQLite's message.
        message: String,
        /// Advice for a known cause, or empty.
        hint: Hint,
        /// What was left in the database.
        outcome: Outcome,
    },

    /// A migration left rows that break a foreign key: it was rolled back
    /// (or, for a `no-transaction` migration, left marked incomplete).
    #[error(
        "migration {version} ({file}) leaves rows that violate foreign keys: {}; {outcome}{}",
        violations.join("; "),
        foreign_key_advice(.outcome)
    )]
    ForeignKeyViolation {
        /// The version.
        version: u32,
        /// The file name.
        file: String,
        /// One line per violating row: table, rowid, parent table.
        violations: Vec<String>,
        /// What was left in the database.
        outcome: Outcome,
    },

    /// `PRAGMA integrity_check` found a problem after migrating. The
    /// migrations themselves were committed. Also returned when a later
    /// migration of the run failed after earlier ones were committed and
    /// the check of those found damage: the failure is then logged, and
    /// met again by the next run.
    #[error(
        "the integrity check after migrating to version {version} failed: {}; the migrations \
         were committed; restore a backup or repair the database before using it",
        problems.join("; ")
    )]
    Integrity {
        /// The version the database is at.
        version: u32,
        /// What SQLite reported.
        problems: Vec<String>,
    },

    /// The migration files are not valid (from [`crate::Migrations::from_dir`]).
    #[error("invalid migrations in \"{dir}\"{}", ProblemList(.problems))]
    Source {
        /// The directory.
        dir: String,
        /// One message per problem, each naming its file.
        problems: Vec<String>,
    },

    /// The migrations directory on disk differs from what the program
    /// embedded when it was built (from [`crate::Migrations::check_source`]).
    #[error(
        "the program was built with other migrations than {dir} holds now ({}); rebuild it, and \
         make sure build.rs prints `cargo:rerun-if-changed={dir}` so that adding or removing a \
         file rebuilds it",
        differences.join(", ")
    )]
    Stale {
        /// The directory.
        dir: String,
        /// What differs, one entry per file.
        differences: Vec<String>,
    },

    /// Another connection held the write lock for longer than the timeout.
    #[error(
        "the database is locked by another connection and stayed locked for the lock timeout \
         ({timeout:?}); the migration (or revert) waiting for it did not run, and what this \
         run committed before it stays (`status` shows where the database is): retry later, or \
         raise the timeout with `migrator().lock_timeout(..)`"
    )]
    Locked {
        /// The configured lock timeout.
        timeout: Duration,
    },

    /// `migrate` was called on a read-only connection with migrations
    /// pending (or to revert, for a target below the database's version),
    /// or on a database to adopt (`user_version` without a history table),
    /// which takes a write too.
    #[error(
        "the database is opened read-only and {}; open it read-write to migrate (`verify` and \
         `status` work read-only)",
        read_only_need(*.version, *.latest)
    )]
    ReadOnly {
        /// The database's version.
        version: u32,
        /// The newest version, or the target of the run.
        latest: u32,
    },

    /// `migrate` was called on a connection inside a transaction.
    #[error(
        "the connection is inside a transaction; migrations manage their own transactions: \
         commit or roll back first"
    )]
    InTransaction,

    /// An option of the [`crate::Migrator`] has a value SQLite would not
    /// take. Nothing was done.
    #[error("invalid option {option}: {reason}; nothing was done")]
    InvalidOption {
        /// The option, as the builder method names it.
        option: String,
        /// What values it takes.
        reason: String,
    },

    /// `migrate_to` was given a target it cannot reach: above the newest
    /// migration; below the database's version while a version to revert
    /// has no down file, or has one marked `-- migrate:no-transaction`
    /// (nothing was changed); or another connection moved the database
    /// while the run was reverting it (what the run reverted before that
    /// stays reverted); or `single_transaction(true)` with a pending
    /// `no-transaction` migration (nothing was done).
    #[error("cannot migrate to version {target}: {reason}")]
    Target {
        /// The requested version.
        target: u32,
        /// Why not, and what to do.
        reason: String,
    },

    /// SQLite failed outside any migration's SQL (opening, reading the
    /// history, locking, a full disk while recording).
    #[error("{context}")]
    Sqlite {
        /// What was being done, SQLite's message and the advice for a
        /// known cause.
        context: String,
        /// SQLite's error (its message is already part of `context`).
        cause: rusqlite::Error,
    },
}

/// The same text as `Display`, so that `fn main() -> Result<(), Box<dyn
/// Error>>`, `unwrap()` and `?` in tests show the message that says what to
/// do, not a dump of fields (match on the variant for the data).
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What to do about [`Error::UnknownVersion`].
fn unknown_version_advice(latest: u32, name: Option<&str>) -> String {
    const RUN_IT: &str = "run that build, or restore a backup made for this one";
    let version = u64::from(latest) + 1;
    match name {
        Some(name) => {
            // A `<version>.sql` file has no name to record.
            let named = if name.is_empty() {
                format!("the file {version}.sql, or with leading zeros, by its history")
            } else {
                format!("named \"{name}\" in the database's history")
            };
            format!(
                ": version {version} ({named}) is not among this program's migrations; if its \
                 file was deleted or renamed, restore it (an applied migration must stay); if the \
                 database was migrated by a newer build of the program, {RUN_IT}"
            )
        }
        None => format!("; it was migrated by a newer build of the program: {RUN_IT}"),
    }
}

/// What [`Error::ReadOnly`]'s run would have written.
fn read_only_need(version: u32, latest: u32) -> String {
    if version < latest {
        format!("has migrations pending (version {version} of {latest})")
    } else if version > latest {
        format!("is at version {version}: reverting it to version {latest} needs a write")
    } else {
        format!(
            "has no migration history yet (user_version {version}): recording it, as the first \
             run does, needs a write"
        )
    }
}

/// What to do about a migration that left orphan rows, when the outcome
/// does not say it already.
fn foreign_key_advice(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::RolledBack | Outcome::AllRolledBack | Outcome::RevertRolledBack => {
            ": fix the migration so that every row it leaves has its parent (a row of a table it \
             writes that had no parent before it ran counts too)"
        }
        _ => "",
    }
}

/// The problems of [`Error::Source`]: after a colon if there is one,
/// otherwise numbered, one per line (each message has semicolons of its
/// own).
struct ProblemList<'a>(&'a [String]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, ": {one}"),
            many => {
                write!(f, " ({} problems):", many.len())?;
                for (i, problem) in many.iter().enumerate() {
                    write!(f, "\n  {}. {problem}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// [`Error::Source`] for the rule errors found in `dir`. A problem with the
/// directory itself is not prefixed with its path a second time.
pub(crate) fn source_error(dir: &std::path::Path, problems: &[migrate_rules::RuleError]) -> Error {
    let dir = dir.display().to_string();
    let problems = problems
        .iter()
        .map(|p| {
            if p.file == dir && p.line.is_none() {
                p.message.clone()
            } else {
                p.to_string()
            }
        })
        .collect();
    Error::Source { dir, problems }
}

/// The statement part of [`Error::Migration`]'s message: its first line,
/// and the line it starts on when the error is on another one.
struct StatementAt<'a> {
    line: usize,
    statement_line: usize,
    statement: &'a str,
}

fn statement_at<'a>(line: &usize, statement_line: &usize, statement: &'a str) -> StatementAt<'a> {
    StatementAt {
        line: *line,
        statement_line: *statement_line,
        statement,
    }
}

impl fmt::Display for StatementAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == self.statement_line {
            write!(f, "statement `{}`", self.statement)
        } else {
            write!(
                f,
                "in the statement from line {}: `{}`",
                self.statement_line, self.statement
            )
        }
    }
}

/// Advice attached to [`Error::Migration`] for a known cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// No advice.
    None,
    /// The statement cannot run inside a transaction.
    NeedsNoTransaction,
    /// The statement would end or nest the framework's transaction.
    TransactionControl,
    /// The database or disk is full.
    Full,
    /// Another connection held a lock past the lock timeout.
    Locked,
    /// Migration 1 failed because what it creates already exists, on a
    /// database that had tables but no migration history and
    /// `user_version` 0: a database made before migrations were used.
    ExistingSchema,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hint::None => "",
            Hint::NeedsNoTransaction => {
                " (this statement cannot run inside a transaction: put it in a migration of its \
                 own that starts with the line `-- migrate:no-transaction`)"
            }
            Hint::TransactionControl => {
                " (the framework runs each migration in its own transaction: remove the \
                 statement, or start the file with `-- migrate:no-transaction` to manage \
                 transactions yourself)"
            }
            Hint::Full => {
                " (the disk or the database's max_page_count is full: free space and run again)"
            }
            Hint::Locked => {
                " (another connection held a lock on the database past the lock timeout: see \
                 `Migrator::lock_timeout`)"
            }
            Hint::ExistingSchema => {
                " (the database already has tables but no migration history: if its schema is \
                 what migrations 1 to N create, set `PRAGMA user_version = N` on it once, and \
                 the next run records 1 to N as applied without running them)"
            }
        })
    }
}

/// What a failed migration left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Everything of the migration was rolled back.
    RolledBack,
    /// In single-transaction mode: every migration of the run was rolled
    /// back.
    AllRolledBack,
    /// A down file failed: its revert was rolled back, so its version
    /// stays applied (the versions the run reverted before it stay
    /// reverted).
    RevertRolledBack,
    /// A `no-transaction` migration failed before any of its statements
    /// was in the database for good (at its first statement, or inside a
    /// transaction it began, which was rolled back): nothing of it was
    /// applied and it was unmarked (if that failed too, the message says
    /// how to do it by hand).
    NothingApplied,
    /// A `no-transaction` migration failed after some of what it ran was
    /// in the database for good (earlier statements, or rows the failing
    /// statement wrote before it failed); it stays marked incomplete.
    PartlyApplied,
    /// A `no-transaction` migration ran to its end, but the check after it
    /// failed or it could not be marked applied; it stays marked
    /// incomplete.
    RanNotMarked,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::RolledBack => {
                "the migration was rolled back and the database is as before it (the migrations \
                 applied before it, by this run or earlier, stay applied: `status` lists them)"
            }
            Outcome::RevertRolledBack => {
                "the revert was rolled back: this version stays applied and the database is as \
                 before the down file ran (the versions this run reverted before it stay \
                 reverted: `status` lists them)"
            }
            Outcome::AllRolledBack => {
                "every migration of this run was rolled back (they ran in one transaction) and \
                 the database is as before the run"
            }
            Outcome::NothingApplied => "nothing of the migration was applied",
            Outcome::PartlyApplied => {
                "what the file ran before this error was applied and cannot be rolled back (the \
                 file runs outside a transaction); the migration is marked incomplete: fix the \
                 database by hand before running again"
            }
            Outcome::RanNotMarked => {
                "the file ran to its end outside a transaction, so nothing of it was rolled back; \
                 it stays marked incomplete: fix by hand what the error names, if it is in the \
                 database (a lock needs nothing fixed), then mark it applied as the next run \
                 explains"
            }
        })
    }
}

impl Error {
    pub(crate) fn sqlite(context: impl Into<String>, cause: rusqlite::Error) -> Self {
        let mut context = format!("{}: {cause}", context.into());
        if is_full(&cause) {
            context.push_str(
                "; the disk or the database's max_page_count is full; free space and run again",
            );
        } else if is_not_a_database(&cause) {
            context.push_str(
                "; the file is not a SQLite database (or is encrypted or corrupt); check the path",
            );
        } else if needs_recovery(&cause) {
            context.push_str(
                "; a write interrupted by a crash left a journal (or a WAL) that must be rolled \
                 back before the database can be read, and only a read-write connection can: \
                 open the database read-write once (any read does it), then read-only again; \
                 nothing is damaged",
            );
        } else if is_read_only(&cause) {
            context.push_str("; the database is read-only; open it read-write to migrate");
        }
        Error::Sqlite { context, cause }
    }
}

pub(crate) fn code(e: &rusqlite::Error) -> Option<rusqlite::ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        _ => None,
    }
}

pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        code(e),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    // SQLite reports a full disk as SQLITE_FULL, except when the WAL index
    // (the `-shm` file) cannot grow: SQLITE_IOERR_SHMSIZE, "disk I/O error".
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE =>
        {
            true
        }
        _ => matches!(code(e), Some(rusqlite::ErrorCode::DiskFull)),
    }
}

/// Names the database file in an error that says it is not a database
/// (the caller may have opened the wrong path).
pub(crate) fn with_path(e: Error, conn: &rusqlite::Connection) -> Error {
    match e {
        Error::Sqlite { context, cause } if is_not_a_database(&cause) => {
            let context = match conn.path().filter(|p| !p.is_empty()) {
                Some(path) => context.replace(
                    "the file is not a SQLite database",
                    &format!("the file {path} is not a SQLite database"),
                ),
                None => context,
            };
            Error::Sqlite { context, cause }
        }
        e => e,
    }
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(code(e), Some(rusqlite::ErrorCode::NotADatabase))
}

/// A read-only connection found a hot journal, or a WAL to recover.
fn needs_recovery(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK
                || f.extended_code == rusqlite::ffi::SQLITE_READONLY_RECOVERY
    )
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(code(e), Some(rusqlite::ErrorCode::ReadOnly))
}

/// For `?` on rusqlite calls in functions that return this crate's
/// [`Result`]; the error becomes [`Error::Sqlite`].
impl From<rusqlite::Error> for Error {
    fn from(cause: rusqlite::Error) -> Self {
        Error::sqlite("SQLite failed", cause)
    }
}
