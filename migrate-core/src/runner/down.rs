//! Reverting applied migrations with their `.down.sql` files: a target
//! below the database's version. Each down file goes through the same
//! machinery as an up file (write lock, re-check inside the transaction,
//! the statement executor, the foreign-key and integrity checks); only the
//! bookkeeping differs: the version's history row is deleted and
//! `user_version` set to the version below.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{
    at_end_of, begin_immediate, commit, finish_watch, first_transaction, foreign_key_check,
    integrity_check, load_edited_schema, ms, rollback, run_file, set_user_version, HistoryTable,
    Known, Migrator, Start, TableWatch,
};
use crate::error::{Error, Hint, Outcome, Result};
use crate::migration::Migration;
use crate::report::{Applied, IntegrityOutcome, Report};
use crate::runner::IntegrityCheck;
use migrate_rules::Direction;

impl<'m> Migrator<'m> {
    /// Before anything is changed: every version above `target` up to
    /// `current` has a down file that can run in a transaction.
    pub(super) fn check_revertible(&self, current: u32, target: u32) -> Result<()> {
        let mut missing: Vec<&Migration> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        // The versions that stop the run: a target at or above the highest
        // of them is reachable.
        let mut blocked = target;
        for m in self.to_revert(current, target) {
            let (Some(file), Some(sql)) = (m.down_file_name(), m.down_sql()) else {
                missing.push(m);
                blocked = blocked.max(m.version());
                continue;
            };
            let problem = match migrate_rules::check_contents(file, sql, Direction::Down) {
                Ok(contents) if contents.no_transaction => format!(
                    "the down file {file} of version {version} is marked \
                     `-- migrate:no-transaction`, and down files run only inside a transaction \
                     (a failure outside one could leave the version half reverted): remove the \
                     directive if the file can run in a transaction, or revert version {version} \
                     by hand (run the file, then `DELETE FROM main._migrate_history WHERE \
                     version = {version}; PRAGMA user_version = {below};`)",
                    version = m.version(),
                    below = m.version() - 1,
                ),
                Ok(_) => continue,
                Err(e) => e.to_string(),
            };
            problems.push(problem);
            blocked = blocked.max(m.version());
        }
        if !missing.is_empty() {
            let versions: Vec<String> = missing.iter().map(|m| m.version().to_string()).collect();
            let files: Vec<String> = missing
                .iter()
                .map(|m| format!("{} for {}", expected_down_file(m), m.file_name()))
                .collect();
            let (s, have) = if missing.len() == 1 {
                ("", "has")
            } else {
                ("s", "have")
            };
            problems.insert(
                0,
                format!(
                    "the database is at version {current}, and version{s} {} {have} no down \
                     file: add {}, with the SQL that undoes the version",
                    versions.join(", "),
                    files.join(", ")
                ),
            );
        }
        if problems.is_empty() {
            log::debug!("database at version {current} verified; reverting to version {target}");
            return Ok(());
        }
        Err(Error::Target {
            target,
            reason: format!(
                "{}; or migrate to version {blocked} or above; nothing was changed",
                problems.join("; ")
            ),
        })
    }

    /// The migrations to revert from `current` down to `target`, newest
    /// first (the verification found each of them).
    fn to_revert(&self, current: u32, target: u32) -> impl Iterator<Item = &'m Migration> + '_ {
        let migrations: &'m crate::Migrations = self.migrations;
        (target.saturating_add(1)..=current)
            .rev()
            .filter_map(move |v| migrations.get(v))
    }

    /// [`Migrator::apply`] for a target below the database's version.
    pub(super) fn revert(
        &self,
        conn: &mut Connection,
        start: Start,
        target: u32,
        foreign_keys: bool,
        started: Instant,
    ) -> Result<Report> {
        let Start {
            from,
            known,
            references,
            empty,
            new_database: _,
            pending: _,
        } = start;
        let mentioned = self
            .to_revert(from, target)
            .filter_map(Migration::down_mentions)
            .any(|mentions| mentions.references);
        let keys_possible = references.map(|r| r || mentioned);
        let changed = self.integrity == IntegrityCheck::Changed && !empty;
        let watch = if changed || foreign_keys {
            Some(TableWatch::start(conn, changed, keys_possible)?)
        } else {
            None
        };
        let mut reverted: Vec<(&Migration, Duration)> = Vec::new();
        let mut adopted = None;
        let mut committed = 0;
        let outcome = self.revert_steps(
            conn,
            known,
            Plan {
                expected: from,
                target,
            },
            foreign_keys,
            watch.as_ref(),
            (&mut reverted, &mut committed),
            &mut adopted,
            started,
        );
        reverted.truncate(committed);
        let touched = finish_watch(conn, watch, &outcome)?;
        let version = match outcome {
            Ok(version) => version,
            Err(e) => {
                let committed = reverted.last().map(|&(m, _)| m.version() - 1);
                return Err(self.check_committed(conn, e, committed, touched.as_deref()));
            }
        };
        let integrity = if reverted.is_empty() {
            IntegrityOutcome::NotRun
        } else {
            integrity_check(conn, self.integrity, touched.as_deref(), version)?
        };
        if !reverted.is_empty() {
            log::info!("database reverted from version {from} to {version}");
        }
        let reverted = reverted
            .iter()
            .map(|&(m, d)| Applied::reverted(m, d))
            .collect();
        Ok(
            Report::new(from, version, adopted, Vec::new(), integrity, started)
                .with_reverted(reverted),
        )
    }

    /// One write transaction after another until the database is at the
    /// target; returns the version it is at. `reverted`: the migrations
    /// reverted, and how many of them are committed (and logged).
    #[allow(clippy::too_many_arguments)]
    fn revert_steps(
        &self,
        conn: &mut Connection,
        mut known: Option<Known>,
        mut plan: Plan,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        (reverted, committed): (&mut Vec<(&'m Migration, Duration)>, &mut usize),
        adopted: &mut Option<u32>,
        started: Instant,
    ) -> Result<u32> {
        let mut polls = 0;
        let mut first = true;
        loop {
            begin_immediate(conn, self.lock_timeout)?;
            first_transaction(conn, &mut first)?;
            match self.revert_step(conn, plan, foreign_keys, watch, known, reverted, adopted) {
                Ok((version, seen)) => {
                    commit(conn, self.lock_timeout)?;
                    log_reverted(reverted, committed);
                    if version <= plan.target {
                        return Ok(version);
                    }
                    log::debug!("reverted to version {version}");
                    known = Some(Known::committed(seen, version));
                    plan.expected = version;
                }
                Err(e) => {
                    rollback(conn);
                    // Another instance may be running a `no-transaction`
                    // migration: wait for it as an up run does.
                    if !self.wait_for_incomplete(&e, started, &mut polls) {
                        return Err(e);
                    }
                    if self.poll_incomplete(conn, &e, started, &mut polls) {
                        return Err(e);
                    }
                    known = None;
                }
            }
        }
    }

    /// One write transaction's work: read the state again (another
    /// connection may have migrated since), then revert the newest version
    /// (or, in single-transaction mode, every version above the target).
    /// Returns the version the database is then at and `PRAGMA
    /// data_version` as read at the start; the caller commits or rolls
    /// back.
    #[allow(clippy::too_many_arguments)]
    fn revert_step(
        &self,
        conn: &mut Connection,
        plan: Plan,
        foreign_keys: bool,
        watch: Option<&TableWatch>,
        known: Option<Known>,
        reverted: &mut Vec<(&'m Migration, Duration)>,
        adopted: &mut Option<u32>,
    ) -> Result<(u32, i64)> {
        let Plan { expected, target } = plan;
        // As in `Migrator::step`: read again only if another connection
        // committed since the last read or our own last commit.
        let (seen, current, needs_adoption, has_history) = self.reread(conn, watch, known)?;
        let rolled_back = if self.single_transaction {
            Outcome::AllRolledBack
        } else {
            Outcome::RevertRolledBack
        };
        if needs_adoption {
            let mut history = HistoryTable {
                exists: has_history,
            };
            history.ensure(conn, [], rolled_back)?;
            self.adopt(conn, current)?;
            *adopted = Some(current);
        }
        // Another connection moved the database since the last read: never
        // revert a version twice, nor one this run did not plan (and check)
        // to revert.
        if current > expected {
            return Err(self.moved(current, expected, target, reverted, "up"));
        }
        if current < target {
            return Err(self.moved(current, expected, target, reverted, "down"));
        }
        if current == target {
            if current < expected {
                log::info!(
                    "another connection reverted the database to version {current} meanwhile: \
                     nothing left to revert"
                );
            }
            return Ok((current, seen));
        }
        if current < expected {
            log::info!(
                "another connection reverted the database to version {current} meanwhile; \
                 reverting from there"
            );
        }
        let below = if self.single_transaction {
            target
        } else {
            current - 1
        };
        for m in self.to_revert(current, below) {
            // Checked before the run, for every version from the one it
            // started at; `current` is not above it.
            let Some(down) = m.reverse() else {
                let refused = self.check_revertible(current, target).err();
                return Err(refused.unwrap_or_else(|| Error::Target {
                    target,
                    reason: format!("version {} has no down file", m.version()),
                }));
            };
            let mentions = down.mentions();
            if let Some(watch) = watch {
                watch.start_migration(conn, mentions)?;
            }
            let t0 = Instant::now();
            log::debug!("reverting migration {} ({})", m.version(), down.file_name());
            // As for up files: in one transaction for several files, a file
            // that rolls back or releases a savepoint gets one of its own.
            let fenced = self.single_transaction && mentions.savepoint_control;
            if fenced {
                conn.execute_batch("SAVEPOINT _migrate_file")
                    .map_err(|e| Error::sqlite("cannot start a savepoint", e))?;
            }
            run_file(conn, &down, mentions, Some(rolled_back), None)?;
            if fenced {
                conn.execute_batch("RELEASE _migrate_file").map_err(|e| {
                    at_end_of(
                        &down,
                        format!(
                            "the file rolled back to or released a savepoint it did not create ({e})"
                        ),
                        Hint::TransactionControl,
                        rolled_back,
                    )
                })?;
            }
            load_edited_schema(conn, &down, &mentions, watch, rolled_back)?;
            if let Some(watch) = watch.filter(|_| foreign_keys) {
                foreign_key_check(conn, &down, &watch.step_scope(conn)?, rolled_back)?;
            }
            reverted.push((m, t0.elapsed()));
        }
        let removed = conn
            .execute(
                "DELETE FROM main._migrate_history WHERE version > ?1",
                [below],
            )
            .map_err(|e| {
                Error::sqlite(
                    format!(
                        "cannot remove the history rows of the reverted versions (above {below})"
                    ),
                    e,
                )
            })?;
        if u32::try_from(removed).ok() != Some(current - below) {
            return Err(Error::Inconsistent {
                detail: format!(
                    "reverting versions {} to {current} removed {removed} history rows instead \
                     of {}; the revert was rolled back: check the history table `_migrate_history`",
                    below + 1,
                    current - below
                ),
            });
        }
        set_user_version(conn, below)?;
        Ok((below, seen))
    }

    /// The error when another connection migrated the database (`way`: up
    /// or down) past what this run planned while it ran.
    fn moved(
        &self,
        current: u32,
        expected: u32,
        target: u32,
        reverted: &[(&Migration, Duration)],
        way: &str,
    ) -> Error {
        let done = match reverted.last() {
            Some(&(last, _)) => format!(
                "this run had already reverted it to version {} and committed that, before \
                 the other connection's change",
                last.version() - 1
            ),
            None => "this run changed nothing".to_owned(),
        };
        Error::Target {
            target,
            reason: format!(
                "while this run was reverting the database from version {expected}, another \
                 connection migrated it {way} to version {current}; {done}; run again to \
                 migrate it to version {target} from where it is now"
            ),
        }
    }
}

/// Where a down run is: the version the database should be at (as the
/// last read or commit left it), and the target.
#[derive(Debug, Clone, Copy)]
struct Plan {
    expected: u32,
    target: u32,
}

/// The down file a migration without one would have.
fn expected_down_file(m: &Migration) -> String {
    let file = m.file_name();
    let stem = file.strip_suffix(".sql").unwrap_or(file);
    format!("{stem}.down.sql")
}

/// Logs the migrations of `reverted` from `committed` on, just committed,
/// and counts them as committed.
fn log_reverted(reverted: &[(&Migration, Duration)], committed: &mut usize) {
    for &(m, duration) in reverted.get(*committed..).unwrap_or_default() {
        log::info!(
            "reverted migration {} ({}) in {:.1} ms",
            m.version(),
            m.down_file_name().unwrap_or(m.file_name()),
            ms(duration)
        );
    }
    *committed = reverted.len();
}
