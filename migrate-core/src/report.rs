//! What a run did ([`Report`]) and where a database stands ([`Status`]).

use std::fmt;
use std::time::{Duration, Instant};

use crate::migration::{Migration, Migrations};
use crate::runner::{ms, IntegrityCheck};
use crate::state::{verify, DbState, HistoryRow};

/// One migration a run applied (its up file ran) or reverted (its down
/// file ran): see [`Report::applied`] and [`Report::reverted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    version: u32,
    name: String,
    file_name: String,
    duration: Duration,
}

impl Applied {
    pub(crate) fn new(m: &Migration, duration: Duration) -> Self {
        Applied {
            version: m.version(),
            name: m.name().to_owned(),
            file_name: m.file_name().to_owned(),
            duration,
        }
    }

    /// A reverted migration: its down file ran.
    pub(crate) fn reverted(m: &Migration, duration: Duration) -> Self {
        Applied {
            file_name: m.down_file_name().unwrap_or(m.file_name()).to_owned(),
            ..Applied::new(m, duration)
        }
    }

    /// The version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that ran: the up file for an applied migration, the
    /// `.down.sql` file for a reverted one.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// How long its SQL took.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// The result of the integrity check at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityOutcome {
    /// The check ran and SQLite said `ok`.
    Ok(IntegrityCheck),
    /// The check was turned off ([`IntegrityCheck::Off`]).
    Skipped,
    /// Nothing was applied or reverted, so there was nothing to check.
    NotRun,
}

impl fmt::Display for IntegrityOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityOutcome::Ok(IntegrityCheck::Quick) => f.write_str("quick check ok"),
            IntegrityOutcome::Ok(IntegrityCheck::Changed) => {
                f.write_str("integrity ok (changed tables)")
            }
            IntegrityOutcome::Ok(_) => f.write_str("integrity ok"),
            IntegrityOutcome::Skipped => f.write_str("integrity check off"),
            IntegrityOutcome::NotRun => f.write_str("nothing to check"),
        }
    }
}

/// What [`Migrations::migrate`] (or [`Migrations::migrate_to`]) did: one
/// line a migration in its `Display`, then the final version and the
/// integrity result.
///
/// A run goes one way: up, listing in [`applied`](Self::applied) the
/// migrations whose files ran, or down (a target below the database's
/// version), listing in [`reverted`](Self::reverted) those whose
/// `.down.sql` files ran, newest first.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
/// # std::fs::write(dir.path().join("002_posts.sql"), "CREATE TABLE posts (id INTEGER PRIMARY KEY);")?;
/// # std::fs::write(dir.path().join("002_posts.down.sql"), "DROP TABLE posts;")?;
/// let migrations = migrate_core::Migrations::from_dir(dir.path())?;
/// let mut conn = rusqlite::Connection::open_in_memory()?;
/// migrations.migrate(&mut conn)?;
/// let report = migrations.migrate_to(&mut conn, 1)?;
/// assert_eq!(report.reverted()[0].file_name(), "002_posts.down.sql");
/// assert!(report.applied().is_empty());
/// // reverted 2  posts        0.1 ms
/// // now at version 1 (was 2), integrity ok
/// assert!(report.to_string().starts_with("reverted 2  posts "));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    from: u32,
    version: u32,
    adopted: Option<u32>,
    applied: Vec<Applied>,
    reverted: Vec<Applied>,
    integrity: IntegrityOutcome,
    duration: Duration,
}

impl Report {
    pub(crate) fn new(
        from: u32,
        version: u32,
        adopted: Option<u32>,
        applied: Vec<Applied>,
        integrity: IntegrityOutcome,
        started: Instant,
    ) -> Self {
        Report {
            from,
            version,
            adopted,
            applied,
            reverted: Vec::new(),
            integrity,
            duration: started.elapsed(),
        }
    }

    /// The same report, for a run that reverted these migrations.
    pub(crate) fn with_reverted(mut self, reverted: Vec<Applied>) -> Self {
        self.reverted = reverted;
        self
    }

    /// The migrations applied, in order.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// The migrations reverted by a run to a lower version, in the order
    /// their down files ran (newest first). Each one's
    /// [`file_name`](Applied::file_name) is its `.down.sql` file and its
    /// [`duration`](Applied::duration) how long that file took.
    pub fn reverted(&self) -> &[Applied] {
        &self.reverted
    }

    /// The version before the run.
    pub fn from_version(&self) -> u32 {
        self.from
    }

    /// The version after the run.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// `Some(n)` if the run adopted a database at `user_version` n that had
    /// no history table.
    pub fn adopted(&self) -> Option<u32> {
        self.adopted
    }

    /// The integrity check's result.
    pub fn integrity(&self) -> IntegrityOutcome {
        self.integrity
    }

    /// The whole run, verification and integrity check included.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.adopted {
            writeln!(f, "adopted the existing database at version {v}")?;
        }
        if self.applied.is_empty() && self.reverted.is_empty() {
            return write!(
                f,
                "nothing to apply: the database is at version {}",
                self.version
            );
        }
        let lines = self
            .applied
            .iter()
            .map(|a| ("applied", a))
            .chain(self.reverted.iter().map(|a| ("reverted", a)));
        let width = lines
            .clone()
            .map(|(_, a)| a.version.to_string().len())
            .max()
            .unwrap_or(1);
        // Padding counts characters.
        let name_width = lines
            .clone()
            .map(|(_, a)| shown(a).chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        for (verb, a) in lines {
            let name = shown(a);
            writeln!(
                f,
                "{verb} {:>width$}  {:<name_width$}  {:>9.1} ms",
                a.version,
                name,
                ms(a.duration)
            )?;
        }
        write!(
            f,
            "now at version {} (was {}), {}",
            self.version, self.from, self.integrity
        )
    }
}

/// Where a database stands: its version, history and pending migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    version: u32,
    latest: u32,
    history: Vec<HistoryRow>,
    pending: Vec<u32>,
    problem: Option<String>,
}

impl Status {
    pub(crate) fn new(state: DbState, migrations: &Migrations) -> Self {
        let problem = verify(&state, migrations).err().map(|e| e.to_string());
        let version = u32::try_from(state.user_version).unwrap_or(0);
        let latest = migrations.latest();
        Status {
            version,
            latest,
            history: state.history.unwrap_or_default(),
            pending: (version.saturating_add(1)..=latest).collect(),
            problem,
        }
    }

    /// The database's `user_version`.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The newest migration's version.
    pub fn latest(&self) -> u32 {
        self.latest
    }

    /// The rows of `_migrate_history` (empty if the table does not exist).
    pub fn history(&self) -> &[HistoryRow] {
        &self.history
    }

    /// The versions a `migrate` would apply.
    pub fn pending(&self) -> &[u32] {
        &self.pending
    }

    /// What [`Migrations::verify`] would report, if anything.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Nothing pending and nothing wrong.
    pub fn is_up_to_date(&self) -> bool {
        self.pending.is_empty() && self.problem.is_none()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at version {} of {}", self.version, self.latest)?;
        match self.pending.len() {
            0 => {}
            1 => write!(f, ", 1 pending")?,
            n => write!(f, ", {n} pending")?,
        }
        if let Some(problem) = &self.problem {
            write!(f, "; problem: {problem}")?;
        }
        Ok(())
    }
}

/// The name a report shows for a migration: a `<version>.sql` file has
/// none, and is shown by its file name.
fn shown(a: &Applied) -> &str {
    if a.name.is_empty() {
        &a.file_name
    } else {
        &a.name
    }
}
