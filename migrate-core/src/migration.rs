//! A set of migrations, embedded at compile time or loaded at run time.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use migrate_rules::Mentions;

use crate::error::{source_error, Result};

/// The SHA-256 checksum of a migration file, after removing a leading BOM
/// and turning CRLF into LF. Displays as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// The checksum of a text, by the same rule the macro and
    /// [`Migrations::from_dir`] use.
    ///
    /// ```
    /// use migrate_core::Checksum;
    /// assert_eq!(Checksum::of("SELECT 1;\r\n"), Checksum::of("SELECT 1;\n"));
    /// ```
    pub fn of(text: &str) -> Self {
        Checksum(migrate_rules::checksum(text))
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[doc(hidden)]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Checksum(bytes)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&migrate_rules::hex(&self.0))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

/// One migration: a version, a name, its SQL and checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: u32,
    name: Cow<'static, str>,
    file_name: Cow<'static, str>,
    sql: Cow<'static, str>,
    checksum: Checksum,
    chain: Checksum,
    no_transaction: bool,
    /// The words of the SQL that make the run do more work for it.
    mentions: Mentions,
    /// The down file: its name, SQL and words.
    down: Option<(Cow<'static, str>, Cow<'static, str>, Mentions)>,
}

impl Migration {
    /// Used by `embed_migrations!`; not part of the public API.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __embedded(
        version: u32,
        name: &'static str,
        file_name: &'static str,
        sql: &'static str,
        checksum: [u8; 32],
        chain: [u8; 32],
        no_transaction: bool,
        mentions: u16,
        down: Option<(&'static str, &'static str, u16)>,
    ) -> Self {
        Migration {
            version,
            name: Cow::Borrowed(name),
            file_name: Cow::Borrowed(file_name),
            sql: Cow::Borrowed(sql),
            checksum: Checksum(checksum),
            chain: Checksum(chain),
            no_transaction,
            mentions: Mentions::from_bits(mentions),
            down: match down {
                Some((file_name, sql, mentions)) => Some((
                    Cow::Borrowed(file_name),
                    Cow::Borrowed(sql),
                    Mentions::from_bits(mentions),
                )),
                None => None,
            },
        }
    }

    /// The version, from the file name (`001_x.sql` is version 1).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The name, from the file name (`create_users` for
    /// `001_create_users.sql`, empty for `001.sql`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name, such as `001_create_users.sql`.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The SQL, exactly as in the file.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The SQL of the `.down.sql` file, if there is one: what
    /// [`Migrations::migrate_to`] runs to revert this version when the
    /// target is below it.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("001_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
    /// std::fs::write(dir.path().join("001_users.down.sql"), "DROP TABLE users;")?;
    /// let migrations = migrate_core::Migrations::from_dir(dir.path())?;
    /// let first = migrations.get(1).ok_or("no version 1")?;
    /// assert_eq!(first.down_sql(), Some("DROP TABLE users;"));
    /// assert_eq!(first.down_file_name(), Some("001_users.down.sql"));
    /// # Ok(()) }
    /// ```
    pub fn down_sql(&self) -> Option<&str> {
        self.down.as_ref().map(|(_, sql, _)| &**sql)
    }

    /// The name of the `.down.sql` file, if there is one.
    pub fn down_file_name(&self) -> Option<&str> {
        self.down.as_ref().map(|(file_name, _, _)| &**file_name)
    }

    /// The down file as a migration of its own (same version and name, the
    /// down file's name and SQL), for the executor and the checks that
    /// name a file and a line.
    pub(crate) fn reverse(&self) -> Option<Migration> {
        let (file_name, sql, mentions) = self.down.as_ref()?;
        Some(Migration {
            version: self.version,
            name: self.name.clone(),
            file_name: file_name.clone(),
            sql: sql.clone(),
            checksum: self.checksum,
            chain: self.chain,
            no_transaction: false,
            mentions: *mentions,
            down: None,
        })
    }

    /// The checksum of the file.
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    /// The running hash of the checksums of versions 1 to this one, as
    /// recorded in the history when it is applied.
    pub(crate) fn chain(&self) -> Checksum {
        self.chain
    }

    /// Whether the file starts with `-- migrate:no-transaction`.
    pub fn no_transaction(&self) -> bool {
        self.no_transaction
    }

    /// The words of the SQL that make the run do more work for it,
    /// found once when the file was read.
    pub(crate) fn mentions(&self) -> Mentions {
        self.mentions
    }

    /// The same for the down file.
    pub(crate) fn down_mentions(&self) -> Option<Mentions> {
        self.down.as_ref().map(|&(_, _, mentions)| mentions)
    }
}

/// An ordered set of migrations, versions 1, 2, 3... with no gaps.
///
/// Make one with [`embed_migrations!`](crate::embed_migrations) (in a
/// `static`, with nothing hashed or parsed at run time) or with
/// [`Migrations::from_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrations {
    list: Cow<'static, [Migration]>,
}

impl Migrations {
    /// Used by `embed_migrations!`; not part of the public API. The caller
    /// guarantees the file rules (the macro applies them).
    #[doc(hidden)]
    pub const fn __embedded(list: &'static [Migration]) -> Self {
        Migrations {
            list: Cow::Borrowed(list),
        }
    }

    /// Loads a migrations directory at run time, by the same rules as
    /// `embed_migrations!`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("001_create_users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
    /// let migrations = migrate_core::Migrations::from_dir(dir.path())?;
    /// assert_eq!(migrations.len(), 1);
    /// assert_eq!(migrations.iter().next().map(|m| m.name()), Some("create_users"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Source`](crate::Error::Source), listing every problem with the directory or its
    /// files (missing directory, bad name, duplicate, gap, empty file,
    /// unknown directive, non-UTF-8, unreadable file), each naming its file.
    pub fn from_dir(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let loaded =
            migrate_rules::load_dir(path).map_err(|problems| source_error(path, &problems))?;
        let list = loaded
            .into_iter()
            .map(|m| Migration {
                version: m.version,
                name: Cow::Owned(m.name),
                file_name: Cow::Owned(m.up.file_name),
                sql: Cow::Owned(m.up.text),
                checksum: Checksum(m.up.contents.checksum),
                chain: Checksum(m.chain),
                no_transaction: m.up.contents.no_transaction,
                mentions: m.up.contents.mentions,
                down: m.down.map(|d| {
                    (
                        Cow::Owned(d.file_name),
                        Cow::Owned(d.text),
                        d.contents.mentions,
                    )
                }),
            })
            .collect();
        Ok(Migrations {
            list: Cow::Owned(list),
        })
    }

    /// The migrations in version order.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.list.iter()
    }

    /// How many migrations there are (the newest version).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The newest version (0 when there are no migrations).
    pub fn latest(&self) -> u32 {
        self.list.last().map_or(0, |m| m.version)
    }

    /// The migration with this version.
    pub fn get(&self, version: u32) -> Option<&Migration> {
        let index = usize::try_from(version).ok()?.checked_sub(1)?;
        self.list.get(index)
    }
}

impl<'a> IntoIterator for &'a Migrations {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
