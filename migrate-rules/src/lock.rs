//! The lock file: the checksums of released migrations, committed next to
//! them, so that an edit to a released migration is caught at the
//! developer's own build instead of in production.
//!
//! Format (`migrations/migrate.lock`), one line per released version, in
//! version order, fields separated by one space:
//!
//! ```text
//! # migrate.lock: checksums of released migrations (append-only).
//! 1 001_create_users.sql 6f1ed002ab5595859014ebf0951522d9f2a9b2b1d3e1c8e9a1e7c6a5c2f4d1e0
//! 2 002_add_display_name.sql 1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014
//! ```
//!
//! Lines starting with `#` and blank lines are comments.

use std::path::Path;

use crate::{hex, parse_hex, LoadedMigration, RuleError, MAX_VERSION};

/// The lock file's name inside the migrations directory.
pub const LOCK_FILE_NAME: &str = "migrate.lock";

const HEADER: &str = "# migrate.lock: checksums of released migrations (append-only).\n\
# An edit to a listed file is an error: put changes in a new migration.\n\
# Format: <version> <file name> <sha256 of the file, CRLF and BOM ignored>\n";

/// One line of the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The version.
    pub version: u32,
    /// The file name.
    pub file_name: String,
    /// The checksum.
    pub checksum: [u8; 32],
    /// The line in the lock file (1-based).
    pub line: usize,
}

/// A parsed lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockFile {
    /// The entries, in version order.
    pub entries: Vec<LockEntry>,
}

impl LockFile {
    /// Parses a lock file's text.
    ///
    /// # Errors
    ///
    /// A malformed line, a bad checksum, or versions that are not 1, 2, 3...
    /// in order; the error names the line.
    pub fn parse(text: &str) -> Result<LockFile, RuleError> {
        let mut entries: Vec<LockEntry> = Vec::new();
        // An editor may save the file with a BOM.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim_end_matches('\r').trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let bad = |message: String| RuleError {
                file: LOCK_FILE_NAME.to_owned(),
                line: Some(line),
                message,
            };
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [version, file_name, checksum] = fields[..] else {
                return Err(bad(format!(
                    "expected `<version> <file name> <sha256>`, found {content:?}; restore the line \
                     from version control"
                )));
            };
            let version = version
                .parse::<u32>()
                .ok()
                .filter(|v| (1..=MAX_VERSION).contains(v))
                .ok_or_else(|| {
                    bad(format!(
                        "{version:?} is not a version; restore the line from version control"
                    ))
                })?;
            let checksum = parse_hex(checksum).ok_or_else(|| {
                bad(format!(
                    "{checksum:?} is not a SHA-256 checksum (64 hex characters); restore the line \
                     from version control"
                ))
            })?;
            let expected = entries.last().map_or(1, |e| e.version + 1);
            if version != expected {
                return Err(bad(format!(
                    "version {version} where version {expected} was expected: the lock lists \
                     versions 1, 2, 3... in order, once each; restore the file from version control"
                )));
            }
            entries.push(LockEntry {
                version,
                file_name: file_name.to_owned(),
                checksum,
                line,
            });
        }
        Ok(LockFile { entries })
    }

    /// Reads `dir/migrate.lock`; `Ok(None)` when there is none.
    ///
    /// A writer changes the file while holding a lock that readers do not
    /// take: a text that does not parse, and is not what the previous read
    /// gave, is read again, briefly. (Every state a writer passes through
    /// either parses as the old or the new lock, or does not parse, or
    /// lists a checksum no file has: never as fewer released versions.)
    ///
    /// # Errors
    ///
    /// An unreadable or malformed lock file, or one that is a symbolic link
    /// to nothing (a lock that cannot be read protects nothing).
    pub fn read(dir: &Path) -> Result<Option<(LockFile, String)>, RuleError> {
        let path = dir.join(LOCK_FILE_NAME);
        let mut tries = 0;
        let mut previous: Option<String> = None;
        loop {
            match std::fs::read_to_string(&path) {
                Ok(text) => match LockFile::parse(&text) {
                    Err(_) if tries < 5 && previous.as_deref() != Some(text.as_str()) => {
                        tries += 1;
                        previous = Some(text);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    parsed => return Ok(Some((parsed?, text))),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return match dangling_lock(dir) {
                        Some(dangling) => Err(dangling),
                        None => Ok(None),
                    }
                }
                Err(e) => {
                    return Err(RuleError {
                        file: LOCK_FILE_NAME.to_owned(),
                        line: None,
                        message: format!("cannot read the lock file: {e}"),
                    })
                }
            }
        }
    }

    /// Compares the lock with a directory's migrations: every locked version
    /// must still be there, under the same name, with the same checksum.
    /// Versions beyond the lock are new and fine.
    pub fn check(&self, migrations: &[LoadedMigration]) -> Vec<RuleError> {
        let mut problems = Vec::new();
        for entry in &self.entries {
            let found = migrations.iter().find(|m| m.version == entry.version);
            // Name the file as it is now (for a rename, the new name).
            let file = found.map_or(&entry.file_name, |m| &m.up.file_name);
            let at = |message: String| RuleError {
                file: file.clone(),
                line: None,
                message,
            };
            match found {
                None => problems.push(at(format!(
                    "version {} is locked in {LOCK_FILE_NAME} (line {}) but its file is gone; \
                     released migrations must stay: restore the file",
                    entry.version, entry.line
                ))),
                Some(m) if m.up.file_name != entry.file_name => problems.push(at(format!(
                    "version {} is locked in {LOCK_FILE_NAME} (line {}) as {}, but the file is now \
                     {}; released migrations must keep their names: rename it back",
                    entry.version, entry.line, entry.file_name, m.up.file_name
                ))),
                Some(m) if m.up.contents.checksum != entry.checksum => problems.push(at(format!(
                    "version {} was edited after it was released: {LOCK_FILE_NAME} (line {}) has \
                     checksum {}, the file now has {}; revert the edit and put the change in a new \
                     migration",
                    entry.version,
                    entry.line,
                    hex(&entry.checksum),
                    hex(&m.up.contents.checksum)
                ))),
                Some(_) => {}
            }
        }
        problems
    }

    /// The text of the lock with a line appended for every migration beyond
    /// it. Existing text is kept byte for byte. Returns the new text and the
    /// versions added.
    pub fn appended(
        existing: Option<&str>,
        lock: &LockFile,
        migrations: &[LoadedMigration],
    ) -> (String, Vec<u32>) {
        let mut text = existing.map_or_else(|| HEADER.to_owned(), str::to_owned);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let locked = lock.entries.last().map_or(0, |e| e.version);
        let mut added = Vec::new();
        for m in migrations.iter().filter(|m| m.version > locked) {
            text.push_str(&line_for(m));
            added.push(m.version);
        }
        (text, added)
    }

    /// The text of the lock with the line of `version` replaced by the
    /// file's current name and checksum; every other line is kept byte for
    /// byte. `None` if the version is not locked or has no file.
    pub fn relocked(
        existing: &str,
        lock: &LockFile,
        migrations: &[LoadedMigration],
        version: u32,
    ) -> Option<String> {
        let entry = lock.entries.iter().find(|e| e.version == version)?;
        let m = migrations.iter().find(|m| m.version == version)?;
        let mut out = String::with_capacity(existing.len());
        for (index, raw) in existing.split_inclusive('\n').enumerate() {
            if index + 1 == entry.line {
                out.push_str(&line_for(m));
            } else {
                out.push_str(raw);
            }
        }
        Some(out)
    }
}

/// The lock line of a migration, with its line end: the one place the
/// format is written.
fn line_for(m: &LoadedMigration) -> String {
    format!(
        "{} {} {}\n",
        m.version,
        m.up.file_name,
        hex(&m.up.contents.checksum)
    )
}

/// The error for a `dir/migrate.lock` that is a symbolic link to a file
/// that does not exist, if it is one. Such a lock (kept elsewhere, and
/// moved, or not checked out) must not read as "no lock", and must not be
/// created again from the files as they are now.
pub fn dangling_lock(dir: &Path) -> Option<RuleError> {
    let path = dir.join(LOCK_FILE_NAME);
    let link = std::fs::symlink_metadata(&path).ok()?;
    if !link.file_type().is_symlink() || path.exists() {
        return None;
    }
    let target =
        std::fs::read_link(&path).map_or_else(|_| "a file".to_owned(), |t| t.display().to_string());
    Some(RuleError {
        file: LOCK_FILE_NAME.to_owned(),
        line: None,
        message: format!(
            "the lock file is a symbolic link to {target}, which does not exist: restore the file \
             it points to (a lock that cannot be read protects no released migration), or \
             remove the link if the lock is no longer kept there"
        ),
    })
}
