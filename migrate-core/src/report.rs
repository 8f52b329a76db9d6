//! What a run did ([`Report`]) and where a database stands ([`Status`]).

use std::fmt;
use std::time::{Duration, Instant};

use crate::migration::{Migration, Migrations};
use crate::runner::{ms, IntegrityCheck};
use crate::state::{verify, DbState, HistoryRow};

/// One migration applied by a run.
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

    /// The version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name.
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
    /// Nothing was applied, so there was nothing to check.
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

/// What [`Migrations::migrate`] did: one line a migration in its `Display`,
/// then the final version and the integrity result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    from: u32,
    version: u32,
    adopted: Option<u32>,
    applied: Vec<Applied>,
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
            integrity,
            duration: started.elapsed(),
        }
    }

    /// The migrations applied, in order.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
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
        if self.applied.is_empty() {
            return write!(
                f,
                "nothing to apply: the database is at version {}",
                self.version
            );
        }
        let width = self
            .applied
            .iter()
            .map(|a| a.version.to_string().len())
            .max()
            .unwrap_or(1);
        let name_width = self
            .applied
            .iter()
            .map(|a| a.name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        for a in &self.applied {
            let name = if a.name.is_empty() {
                &a.file_name
            } else {
                &a.name
            };
            writeln!(
                f,
                "applied {:>width$}  {:<name_width$}  {:>9.1} ms",
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
