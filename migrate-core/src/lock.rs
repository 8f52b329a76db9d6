//! The lock file (`migrations/migrate.lock`): the checksums of released
//! migrations, committed with them, so that editing a released migration
//! fails the developer's own build or tests instead of a production start.
//!
//! `embed_migrations!` and [`Migrations::from_dir`] check a directory
//! against its lock when it has one; [`Migrations::check_source`] does the
//! same from a test and also catches a stale build. [`append`] adds the new
//! migrations to the lock; [`replace_released_checksum`] is the explicit,
//! separate action that changes a line.
//!
//! The format, one line per released version, fields separated by spaces:
//!
//! ```text
//! # comments and blank lines are ignored
//! 1 001_create_users.sql <64 hex characters: SHA-256, CRLF and BOM ignored>
//! 2 002_add_display_name.sql <...>
//! ```

use std::path::Path;

use migrate_rules::{LockFile, LOCK_FILE_NAME};

use crate::error::{source_error, Error, Result};
use crate::migration::Migrations;

/// Reads the lock and writes what `change` makes of it (the new text, or
/// `None` to leave the file alone), with no other `append` or
/// `replace_released_checksum` in between: each takes an exclusive lock on
/// the lock file itself first. The file is written in place (through a
/// symbolic link, keeping its permissions and owner). Builds read it
/// without that lock, so no state of the file on the way may read as fewer
/// released versions: when the new text only adds lines, as `append`
/// does, only those are written, in one write (a reader reads again if the
/// last line is not whole yet); otherwise the new text is written over the
/// old from the start, and only then is the file cut to its length (a
/// reader meanwhile sees lines of both: a text that does not parse, which
/// it reads again, or, rarely, a checksum no file has, an error of the
/// build that the next one does not have). `create`: make the file if there is none (not
/// through a symbolic link to nothing: see
/// [`migrate_rules::dangling_lock`]).
fn update(dir: &Path, create: bool, change: impl FnOnce() -> Result<Option<String>>) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = dir.join(LOCK_FILE_NAME);
    let fail = |what: &str, e: std::io::Error| Error::Source {
        dir: dir.display().to_string(),
        problems: vec![format!("{LOCK_FILE_NAME}: cannot {what}: {e}")],
    };
    if let Some(dangling) = migrate_rules::dangling_lock(dir) {
        return Err(source_error(dir, &[dangling]));
    }
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(&path)
    {
        Ok(file) => file,
        // No lock file to change: `change` says so.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return change().map(drop),
        Err(e) => return Err(fail("open the lock file", e)),
    };
    file.lock()
        .map_err(|e| fail("lock the lock file against other writers", e))?;
    let mut old = String::new();
    file.read_to_string(&mut old)
        .map_err(|e| fail("read the lock file", e))?;
    let Some(text) = change()? else {
        return Ok(());
    };
    let written = match text.strip_prefix(old.as_str()) {
        // The read left the position at the end.
        Some(added) => file.write_all(added.as_bytes()),
        None => file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.set_len(text.len() as u64)),
    };
    written
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write the lock file", e))
}

/// Appends a line to `dir/migrate.lock` for every migration not yet in it
/// (creating the file if needed), and returns the versions added. Existing
/// lines are never changed: if a locked migration was edited, removed or
/// renamed, nothing is written and the error says so. Two calls at once
/// (from two processes) take turns, and only the new lines are written, in
/// one write, so that a build reading the file meanwhile sees whole lines.
///
/// Call it when you release migrations, from a test or a build step:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
/// let added = migrate_core::lock::append(dir.path())?;
/// assert_eq!(added, [1]);
/// assert!(migrate_core::lock::append(dir.path())?.is_empty());
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Source`] for invalid migrations, a malformed lock, a locked
/// migration that changed, or a lock file that cannot be written.
pub fn append(dir: impl AsRef<Path>) -> Result<Vec<u32>> {
    let dir = dir.as_ref();
    // The directory's own problems (it does not exist...) first.
    migrate_rules::load_dir(dir).map_err(|p| source_error(dir, &p))?;
    let mut added = Vec::new();
    update(dir, true, || {
        let loaded = migrate_rules::load_dir(dir).map_err(|p| source_error(dir, &p))?;
        // The file `update` has just made is empty: no lock yet.
        let (lock, text) = match LockFile::read(dir).map_err(|p| source_error(dir, &[p]))? {
            Some((lock, text)) if !text.is_empty() => (lock, Some(text)),
            _ => (LockFile::default(), None),
        };
        let (new_text, new) = LockFile::appended(text.as_deref(), &lock, &loaded);
        let write = !new.is_empty() || text.is_none();
        added = new;
        Ok(write.then_some(new_text))
    })?;
    if !added.is_empty() {
        log::info!(
            "locked versions {added:?} in {}",
            dir.join(LOCK_FILE_NAME).display()
        );
    }
    Ok(added)
}

/// Replaces the locked checksum (and file name) of one released version
/// with the file's current ones: the deliberate override for a released
/// migration that had to be edited. Every database that already ran the
/// old file will then report drift for it ([`Error::Drift`]); only do this
/// when you know none did, or after fixing those databases by hand.
///
/// To fix them, run on each database that applied the old file, with the
/// 64 hex characters the lock now lists for version `N` (also
/// [`Migration::checksum`](crate::Migration::checksum)):
///
/// ```sql
/// UPDATE main._migrate_history SET checksum = '<new checksum>' WHERE version = N;
/// ```
///
/// The file is not run again: if the edit changes what it does, make that
/// change to those databases yourself. [`Migrations::verify`] and
/// [`Migrations::migrate`] then accept the database.
///
/// One side effect: the newest history row stores a hash chain over every
/// checksum, which this update does not change, so it no longer matches
/// the program's. Until the next migration is applied (its row gets the
/// new chain), every `migrate` runs the full row-by-row verification
/// instead of the one-row start-up check: still correct, a little slower.
///
/// # Errors
///
/// [`Error::Source`] if the directory is invalid, has no lock, or the lock
/// has no such version.
pub fn replace_released_checksum(dir: impl AsRef<Path>, version: u32) -> Result<()> {
    let dir = dir.as_ref();
    migrate_rules::load_dir_unlocked(dir).map_err(|p| source_error(dir, &p))?;
    update(dir, false, || {
        let loaded = migrate_rules::load_dir_unlocked(dir).map_err(|p| source_error(dir, &p))?;
        let Some((lock, text)) = LockFile::read(dir).map_err(|p| source_error(dir, &[p]))? else {
            return Err(Error::Source {
                dir: dir.display().to_string(),
                problems: vec![format!(
                    "{LOCK_FILE_NAME}: there is no lock file; create it with `lock::append`"
                )],
            });
        };
        let new_text =
            LockFile::relocked(&text, &lock, &loaded, version).ok_or_else(|| Error::Source {
                dir: dir.display().to_string(),
                problems: vec![format!(
                    "{LOCK_FILE_NAME}: cannot replace the checksum of version {version}: the lock \
                     does not list it, or its file is missing; pass a version the lock lists"
                )],
            })?;
        Ok(Some(new_text))
    })?;
    log::warn!(
        "replaced the locked checksum of version {version} in {}",
        dir.join(LOCK_FILE_NAME).display()
    );
    Ok(())
}

/// A migration's down file: its name and SQL.
fn down_of(m: Option<&crate::Migration>) -> Option<(&str, &str)> {
    m.and_then(|m| Some((m.down_file_name()?, m.down_sql()?)))
}

impl Migrations {
    /// Checks, from a test, that the migrations directory on disk agrees
    /// with its lock file and with what this program embedded.
    ///
    /// It catches an edit to a released migration (as the compile-time
    /// check does, for those who prefer a failing test) and a stale build:
    /// a file (a down file too) added, removed or edited since the program
    /// was built, which
    /// happens when `build.rs` lacks `cargo:rerun-if-changed=migrations`.
    ///
    /// ```
    /// use migrate_core::{embed_migrations, Migrations};
    /// static MIGRATIONS: Migrations = embed_migrations!("migrations");
    ///
    /// # fn main() -> Result<(), migrate_core::Error> {
    /// // In tests/migrations.rs: `#[test] fn migrations_are_locked() { ... }`
    /// // (tests run from the crate's directory).
    /// MIGRATIONS.check_source("migrations")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Source`] for invalid files or a lock mismatch (the same
    /// messages as the compile-time check), [`Error::Stale`] when the
    /// directory differs from what was embedded.
    pub fn check_source(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let on_disk = Migrations::from_dir(dir)?;
        let mut differences = Vec::new();
        let longest = self.len().max(on_disk.len());
        for version in (1..=longest).filter_map(|v| u32::try_from(v).ok()) {
            match (self.get(version), on_disk.get(version)) {
                (Some(built), Some(disk)) if built.checksum() != disk.checksum() => {
                    differences.push(format!("{} was edited", disk.file_name()));
                }
                (Some(built), Some(disk)) if built.file_name() != disk.file_name() => {
                    differences.push(format!(
                        "{} was renamed to {}",
                        built.file_name(),
                        disk.file_name()
                    ));
                }
                (Some(built), None) => {
                    differences.push(format!("{} was removed", built.file_name()))
                }
                (None, Some(disk)) => differences.push(format!("{} was added", disk.file_name())),
                _ => {}
            }
            // The down files too: `migrate_to` a lower version runs them.
            match (down_of(self.get(version)), down_of(on_disk.get(version))) {
                (Some((_, built)), Some((name, disk)))
                    if migrate_rules::checksum(built) != migrate_rules::checksum(disk) =>
                {
                    differences.push(format!("{name} was edited"));
                }
                (Some((built, _)), Some((disk, _))) if built != disk => {
                    differences.push(format!("{built} was renamed to {disk}"));
                }
                (Some((built, _)), None) => differences.push(format!("{built} was removed")),
                (None, Some((disk, _))) => differences.push(format!("{disk} was added")),
                _ => {}
            }
        }
        if differences.is_empty() {
            return Ok(());
        }
        Err(Error::Stale {
            dir: dir.display().to_string(),
            differences,
        })
    }
}
