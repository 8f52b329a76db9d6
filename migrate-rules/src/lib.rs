//! The file rules of `migrate`, written once.
//!
//! This crate is the single implementation of what a migrations directory may
//! contain: the file-name pattern, the version range, the set rules (unique,
//! contiguous from 1), the content rules (UTF-8, at least one statement,
//! directives) and the checksum. Both `embed_migrations!` (at compile time)
//! and `Migrations::from_dir` (at run time) call [`load_dir`], so a directory
//! is accepted or refused, and hashed, the same way by both.
//!
//! It is a crate of its own, and not a module of `migrate-core`, because a
//! procedural-macro crate cannot depend on the crate that re-exports it. It
//! depends on `std` and `sha2` only. Applications never use it directly.
//!
//! ```
//! use migrate_rules::{parse_file_name, Direction};
//!
//! let name = parse_file_name("001_create_users.sql")?.ok_or("not a migration")?;
//! assert_eq!((name.version, name.name, name.direction), (1, "create_users", Direction::Up));
//! assert!(parse_file_name("README.md")?.is_none());
//! assert!(parse_file_name("1-create.sql").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod lexer;
mod lock;
mod mentions;

pub use lexer::{keywords, line_of, pragma_assignment, skip_trivia};
pub use lock::{dangling_lock, LockEntry, LockFile, LOCK_FILE_NAME};
pub use mentions::{Mentions, HISTORY_TABLE};

/// The largest version a migration can have: `PRAGMA user_version` is a
/// signed 32-bit integer.
pub const MAX_VERSION: u32 = i32::MAX as u32;

/// The directive that runs a file outside a transaction.
pub const NO_TRANSACTION: &str = "no-transaction";

/// Whether a file applies a version or reverses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<version>_<name>.sql`
    Up,
    /// `<version>_<name>.down.sql`
    Down,
}

/// A file name that fits the migration pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileName<'a> {
    /// The version, 1..=[`MAX_VERSION`].
    pub version: u32,
    /// The part after `<version>_`, or `""` for `<version>.sql`.
    pub name: &'a str,
    /// Up or down.
    pub direction: Direction,
}

/// Something wrong with a migrations directory or one of its files.
///
/// The message names the file(s) and says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file (or directory) the problem is about, as the user named it.
    pub file: String,
    /// The line, where the problem has one.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl RuleError {
    fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError {
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for RuleError {}

/// Parses a file name.
///
/// Returns `Ok(None)` for a file that is not a migration and is ignored:
/// a hidden file, or one whose name does not end in `.sql`.
///
/// # Errors
///
/// A `.sql` file whose name does not fit `<version>[_<name>][.down].sql`,
/// whose version is 0 or above [`MAX_VERSION`], or whose extension is not
/// lowercase.
pub fn parse_file_name(file_name: &str) -> Result<Option<FileName<'_>>, RuleError> {
    if file_name.starts_with('.') {
        return Ok(None);
    }
    let Some(stem) = file_name.strip_suffix(".sql") else {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".sql") {
            return Err(RuleError::new(
                file_name,
                "the extension must be `.sql` in lowercase; rename the file",
            ));
        }
        return Ok(None);
    };
    let (stem, direction) = match stem.strip_suffix(".down") {
        Some(stem) => (stem, Direction::Down),
        None => (stem, Direction::Up),
    };
    let (digits, name) = match stem.split_once('_') {
        Some((digits, name)) => (digits, Some(name)),
        None => (stem, None),
    };
    let pattern = "expected `<version>_<name>.sql` (or `<version>.sql`, `<version>_<name>.down.sql`) \
                   where <version> is digits and <name> is letters, digits, `_` or `-`; rename the file";
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let leading = digits.len()
            - digits
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let message = if leading > 0 {
            let after = digits[leading..].chars().next().unwrap_or('?');
            format!(
                "after the version `{}` comes {after:?} instead of `_` (before the name) or \
                 `.sql`: {pattern}",
                &digits[..leading]
            )
        } else {
            format!("the name does not start with a version: {pattern}")
        };
        return Err(RuleError::new(file_name, message));
    }
    let name = match name {
        None => "",
        Some("") => {
            return Err(RuleError::new(
                file_name,
                format!("the name after `_` is empty: {pattern}"),
            ));
        }
        Some(name) => {
            if let Some(bad) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                let hint = if name.ends_with(".up") {
                    " (up files have no `.up`: `001_name.sql` and `001_name.down.sql`)"
                } else {
                    ""
                };
                return Err(RuleError::new(
                    file_name,
                    format!("the name contains {bad:?}{hint}: {pattern}"),
                ));
            }
            name
        }
    };
    let significant = digits.trim_start_matches('0');
    let version = if significant.is_empty() {
        0
    } else if significant.len() > 10 {
        u64::MAX
    } else {
        significant.parse::<u64>().unwrap_or(u64::MAX)
    };
    if version == 0 {
        return Err(RuleError::new(
            file_name,
            "version 0 is the empty database; versions start at 1: renumber the file",
        ));
    }
    if version > u64::from(MAX_VERSION) {
        return Err(RuleError::new(
            file_name,
            format!(
                "version {digits} is above {MAX_VERSION}, the largest `PRAGMA user_version`; \
                 number migrations 1, 2, 3... instead of by timestamp"
            ),
        ));
    }
    Ok(Some(FileName {
        version: version as u32,
        name,
        direction,
    }))
}

/// What the rules learn from a file's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    /// The file starts with `-- migrate:no-transaction`.
    pub no_transaction: bool,
    /// SHA-256 of the normalized contents (see [`checksum`]).
    pub checksum: [u8; 32],
    /// The words of the text that make the runner do more work for it.
    pub mentions: Mentions,
}

/// Checks a file's text and computes its checksum and [`Mentions`].
///
/// Directives are `-- migrate:<name>` line comments before the first
/// statement. The only one is `no-transaction`. An up file must hold a
/// statement; a down file may be only comments (a reverse with nothing to
/// undo, as real sets have).
///
/// # Errors
///
/// An up file with no SQL statement (only whitespace or comments), an
/// unknown directive, or a directive after the first statement.
pub fn check_contents(file: &str, text: &str, direction: Direction) -> Result<Contents, RuleError> {
    let text_nobom = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = text_nobom.find('\0') {
        return Err(RuleError {
            file: file.to_owned(),
            line: Some(line_of(text_nobom, at)),
            message: "the file contains a NUL character, where SQLite would stop reading and \
                      silently skip the rest; remove it (is the file saved as UTF-16?)"
                .to_owned(),
        });
    }
    let first = skip_trivia(text_nobom, 0);
    if first >= text_nobom.len() && direction == Direction::Up {
        return Err(RuleError::new(
            file,
            "the file has no SQL statement (only comments or whitespace); \
             write the migration's SQL in it, or, if it was never applied to a database, delete \
             it and renumber the files after it",
        ));
    }
    let mut no_transaction = false;
    for comment in lexer::line_comments(text_nobom) {
        let body = comment.text.trim();
        let Some(directive) = strip_prefix_ignore_case(body, "migrate:") else {
            continue;
        };
        let directive = directive.trim();
        let line = line_of(text_nobom, comment.offset);
        if comment.offset > first {
            return Err(RuleError {
                file: file.to_owned(),
                line: Some(line),
                message: format!(
                    "the directive `-- migrate:{directive}` comes after the first statement, \
                     where it has no effect; move it to the top of the file"
                ),
            });
        }
        if directive == NO_TRANSACTION {
            no_transaction = true;
        } else {
            return Err(RuleError {
                file: file.to_owned(),
                line: Some(line),
                message: format!(
                    "unknown directive `-- migrate:{directive}`; the only directive is \
                     `-- migrate:{NO_TRANSACTION}` (a typo must not change how a file runs)"
                ),
            });
        }
    }
    Ok(Contents {
        no_transaction,
        checksum: checksum(text),
        mentions: Mentions::of(text),
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The checksum rule: SHA-256 of the text after removing a leading UTF-8 BOM
/// and turning every CRLF into LF, so that a Windows checkout never looks
/// like an edit.
///
/// ```
/// use migrate_rules::{checksum, hex};
/// assert_eq!(checksum("\u{feff}SELECT 1;\r\n"), checksum("SELECT 1;\n"));
/// assert_eq!(hex(&checksum("")).len(), 64);
/// ```
pub fn checksum(text: &str) -> [u8; 32] {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut hasher = Sha256::new();
    let mut rest = text;
    while let Some(at) = rest.find("\r\n") {
        hasher.update(&rest.as_bytes()[..at]);
        hasher.update(b"\n");
        rest = &rest[at + 2..];
    }
    hasher.update(rest.as_bytes());
    hasher.finalize().into()
}

/// The running hash over a set's checksums: `chain(n) = SHA-256(chain(n-1)
/// || checksum(n))`, with `chain(0)` all zeros. Recorded with each applied
/// migration, it lets an up-to-date check compare one value instead of every
/// checksum: equal chains mean every checksum up to that version is equal.
pub fn chain(previous: &[u8; 32], checksum: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(checksum);
    hasher.finalize().into()
}

/// 64 lowercase hexadecimal characters.
pub fn hex(bytes: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    hex_to(bytes, &mut out);
    out
}

/// [`hex`] into `out`, replacing what it held (a buffer that is reused
/// allocates once).
pub fn hex_to(bytes: &[u8; 32], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 64];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    out.clear();
    // ASCII digits and letters only: always UTF-8.
    out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
}

/// The inverse of [`hex`]; `None` unless `s` is 64 hexadecimal characters.
pub fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// One file of a loaded directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The path as read (the directory joined with the file name).
    pub path: PathBuf,
    /// The file name.
    pub file_name: String,
    /// The text, exactly as in the file.
    pub text: String,
    /// Directives and checksum.
    pub contents: Contents,
}

/// One version of a loaded directory: its up file and optional down file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedMigration {
    /// The version.
    pub version: u32,
    /// The name from the file name (`""` for `<version>.sql`).
    pub name: String,
    /// The up file.
    pub up: LoadedFile,
    /// The down file, if there is one.
    pub down: Option<LoadedFile>,
    /// The running hash of the checksums of versions 1 to this one
    /// (see [`chain`]).
    pub chain: [u8; 32],
}

/// Reads a migrations directory, applies every rule, and checks the
/// directory against its lock file ([`LOCK_FILE_NAME`]) if it has one.
///
/// Returns the migrations in version order, or every problem found (each
/// naming its file), so that one run shows them all. Files not ending in
/// `.sql`, hidden files and subdirectories are ignored.
///
/// # Errors
///
/// The directory is missing, is a file or cannot be read, or a file breaks a
/// rule: see [`parse_file_name`] and [`check_contents`], plus duplicates,
/// gaps, non-UTF-8 and unreadable files, and down files without an up file;
/// or a malformed lock file, or a locked migration that was edited, removed
/// or renamed (see [`LockFile::check`]).
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedMigration>, Vec<RuleError>> {
    let loaded = load_dir_unlocked(dir)?;
    let problems = match LockFile::read(dir) {
        Ok(None) => return Ok(loaded),
        Ok(Some((lock, _))) => lock.check(&loaded),
        Err(e) => vec![e],
    };
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// [`load_dir`] without the lock check: the file rules only.
///
/// # Errors
///
/// As [`load_dir`], except for the lock file.
pub fn load_dir_unlocked(dir: &Path) -> Result<Vec<LoadedMigration>, Vec<RuleError>> {
    let shown = dir.display().to_string();
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(vec![RuleError::new(
                shown,
                "the migrations directory does not exist; create it, or fix the path",
            )]);
        }
        Err(e) => {
            return Err(vec![RuleError::new(
                shown,
                format!("cannot read the directory: {e}"),
            )])
        }
    };
    if !meta.is_dir() {
        return Err(vec![RuleError::new(
            shown,
            "this is a file, not a directory; give the directory that holds the `.sql` files",
        )]);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(vec![RuleError::new(
                shown,
                format!("cannot read the directory: {e}"),
            )])
        }
    };
    let mut problems = Vec::new();
    // Every well-named file, readable or not, takes part in the set rules, so
    // that a file with bad contents is reported once and not also as a gap.
    let mut ups: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    let mut downs: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    let mut loaded: BTreeMap<(u32, bool), LoadedFile> = BTreeMap::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(RuleError::new(
                    shown.clone(),
                    format!("cannot list the directory: {e}"),
                ));
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(file_name) = os_name.to_str() else {
            let lossy = os_name.to_string_lossy();
            if lossy.ends_with(".sql") && !lossy.starts_with('.') {
                problems.push(RuleError::new(
                    lossy,
                    "the file name is not valid UTF-8; rename the file",
                ));
            }
            continue;
        };
        let parsed = match parse_file_name(file_name) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => continue,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let path = entry.path();
        // Follow symbolic links: a linked file counts, a linked directory is
        // ignored. Anything else that is not a regular file (a FIFO, a
        // socket, a device) would block or mislead the read: refuse it.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(meta) if !meta.is_file() => {
                problems.push(RuleError::new(
                    file_name,
                    "not a regular file (a pipe, socket or device); replace it with a file",
                ));
                continue;
            }
            _ => {}
        }
        let is_down = parsed.direction == Direction::Down;
        let set = if is_down { &mut downs } else { &mut ups };
        set.entry(parsed.version)
            .or_default()
            .push((parsed.name.to_owned(), file_name.to_owned()));
        match read_file(&path, file_name, parsed.direction) {
            Ok(file) => {
                loaded.insert((parsed.version, is_down), file);
            }
            Err(e) => problems.push(e),
        }
    }

    let several = ups
        .iter_mut()
        .map(|(v, f)| (v, f, Direction::Up))
        .chain(downs.iter_mut().map(|(v, f)| (v, f, Direction::Down)));
    for (version, files, direction) in several {
        if files.len() > 1 {
            files.sort_by(|a, b| a.1.cmp(&b.1));
            let names: Vec<&str> = files.iter().map(|(_, f)| f.as_str()).collect();
            let advice = match direction {
                Direction::Up => "versions must be unique: give all but one the next free versions",
                Direction::Down => {
                    "a version has at most one down file, named as its up file with `.down.sql`: \
                     delete or merge the others"
                }
            };
            let kind = match direction {
                Direction::Up => "files",
                Direction::Down => "down files",
            };
            problems.push(RuleError::new(
                names.join(", "),
                format!("{} {kind} have version {version}; {advice}", names.len()),
            ));
        }
    }
    let mut expected = 1u32;
    let mut previous: Option<&str> = None;
    for (&version, files) in &ups {
        if version != expected {
            let missing = if version - expected == 1 {
                format!("version {expected} is missing")
            } else {
                format!("versions {expected} to {} are missing", version - 1)
            };
            let file = &files[0].1;
            let message = match previous {
                Some(prev) => format!(
                    "{missing} between {prev} and {file}; versions must be contiguous: restore the \
                     missing file if it was ever applied to a database (an applied migration must \
                     stay), otherwise renumber the files after it"
                ),
                None => format!(
                    "{missing} before {file}; versions start at 1 and must be contiguous: restore \
                     the missing file if it was ever applied to a database (an applied migration \
                     must stay), otherwise renumber the files"
                ),
            };
            problems.push(RuleError::new(file.clone(), message));
        }
        expected = version.saturating_add(1);
        previous = Some(&files[0].1);
    }
    for (version, files) in &downs {
        let (down_name, down) = &files[0];
        match ups.get(version) {
            None => problems.push(RuleError::new(
                down.clone(),
                format!("a down file without an up file for version {version}; add the up file or delete this one"),
            )),
            Some(up) if up[0].0 != *down_name => problems.push(RuleError::new(
                down.clone(),
                format!(
                    "the down file's name does not match its up file {}; rename one of them",
                    up[0].1
                ),
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        return Err(problems);
    }
    let mut running = [0u8; 32];
    Ok(ups
        .into_iter()
        .filter_map(|(version, mut names)| {
            let (name, _) = names.pop()?;
            let up = loaded.remove(&(version, false))?;
            running = chain(&running, &up.contents.checksum);
            Some(LoadedMigration {
                version,
                name,
                up,
                down: loaded.remove(&(version, true)),
                chain: running,
            })
        })
        .collect())
}

/// Reads one file and checks its contents.
fn read_file(path: &Path, file_name: &str, direction: Direction) -> Result<LoadedFile, RuleError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let advice = match e.kind() {
            std::io::ErrorKind::PermissionDenied => "check its permissions",
            std::io::ErrorKind::NotFound => {
                "it is a symbolic link to nothing, or it vanished while being read: restore the \
                 file or remove the link"
            }
            _ if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
                "it is a symbolic link that cannot be followed: point it at a file or replace it \
                 with the file"
            }
            _ => "check the file and the disk",
        };
        RuleError::new(file_name, format!("cannot read the file: {e}; {advice}"))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = line_of(std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or(""), at);
        RuleError {
            file: file_name.to_owned(),
            line: Some(line),
            message: format!("the file is not valid UTF-8 (byte {at}); save it as UTF-8"),
        }
    })?;
    let contents = check_contents(file_name, &text, direction)?;
    Ok(LoadedFile {
        path: path.to_owned(),
        file_name: file_name.to_owned(),
        text,
        contents,
    })
}

#[cfg(test)]
mod tests;
