//! What the database says about its migrations, and the verification of it
//! against the migrations this program has (DESIGN section 6).

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::migration::Migrations;

/// The history table.
pub(crate) use migrate_rules::HISTORY_TABLE;

/// Uses nothing newer than SQLite 3.31: no STRICT, typed columns and CHECKs.
pub(crate) const CREATE_HISTORY: &str = "CREATE TABLE main._migrate_history (
    version     INTEGER PRIMARY KEY NOT NULL CHECK (version BETWEEN 1 AND 2147483647),
    name        TEXT    NOT NULL,
    checksum    TEXT    NOT NULL CHECK (length(checksum) = 64),
    applied_at  TEXT    NOT NULL,
    duration_us INTEGER NOT NULL CHECK (duration_us >= 0),
    chain       TEXT    NOT NULL CHECK (length(chain) = 64),
    state       TEXT    NOT NULL CHECK (state IN ('applied', 'started'))
)";

pub(crate) const STATE_APPLIED: &str = "applied";
pub(crate) const STATE_STARTED: &str = "started";

/// One row of `_migrate_history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The version.
    pub version: u32,
    /// The migration's name when it was applied.
    pub name: String,
    /// The checksum recorded when it was applied (64 hex characters).
    pub checksum: String,
    /// When it was applied, UTC, ISO 8601.
    pub applied_at: String,
    /// How long it took, in microseconds.
    pub duration_us: i64,
    /// `applied`, or `started` for an unfinished `no-transaction` migration.
    pub state: String,
}

/// The raw state: `user_version` and the history, if the table exists.
#[derive(Debug)]
pub(crate) struct DbState {
    pub user_version: i64,
    pub history: Option<Vec<HistoryRow>>,
    /// Whether the SQL of any table says `REFERENCES`: only such a table
    /// can have a foreign key.
    pub references: bool,
    /// Whether the database has a table (other than SQLite's own).
    pub has_tables: bool,
}

/// The verified state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verified {
    /// The version the database is at.
    pub current: u32,
    /// `user_version > 0` without a history table: to be adopted.
    pub needs_adoption: bool,
}

pub(crate) fn read_state(conn: &Connection) -> Result<DbState> {
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| Error::sqlite("cannot read the database's user_version", e))?;
    let (has_history, references, has_tables): (bool, bool, bool) = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1), \
             EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' \
             AND instr(upper(sql), 'REFERENCES') > 0), \
             EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' \
             AND substr(name, 1, 7) <> 'sqlite_')",
            [HISTORY_TABLE],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| Error::sqlite("cannot read the database's schema", e))?;
    if !has_history {
        return Ok(DbState {
            user_version,
            history: None,
            references,
            has_tables,
        });
    }
    let context = "cannot read the migration history table `_migrate_history`";
    // (`chain` is read only by the start-up check, but a table without it
    // is not this crate's.)
    let mut stmt = conn
        .prepare(
            "SELECT version, name, checksum, applied_at, duration_us, state, chain \
             FROM main._migrate_history ORDER BY version",
        )
        .map_err(|e| match &e {
            rusqlite::Error::SqlInputError { msg: message, .. }
            | rusqlite::Error::SqliteFailure(_, Some(message))
                if message.starts_with("no such column") =>
            {
                foreign_history(message)
            }
            _ => Error::sqlite(context, e),
        })?;
    let rows = stmt
        .query_map([], |row| {
            Ok(HistoryRow {
                version: row.get(0)?,
                name: row.get(1)?,
                checksum: row.get(2)?,
                applied_at: row.get(3)?,
                duration_us: row.get(4)?,
                state: row.get(5)?,
            })
        })
        .map_err(|e| Error::sqlite(context, e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| match e {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::FromSqlConversionFailure(..) => {
                foreign_history(&format!("a value of the wrong type: {e}"))
            }
            e => Error::sqlite(context, e),
        })?;
    Ok(DbState {
        user_version,
        history: Some(rows),
        references,
        has_tables,
    })
}

/// A table named `_migrate_history` that is not this crate's history.
fn foreign_history(problem: &str) -> Error {
    Error::Inconsistent {
        detail: format!(
            "the table main._migrate_history is not this crate's migration history ({problem}); \
             it may belong to another tool, or have been edited by hand: if it is another \
             tool's, rename it (`ALTER TABLE _migrate_history RENAME TO ...`) or migrate this \
             database with that tool; if it is this crate's, restore it from a backup"
        ),
    }
}

/// Reads the state in one read transaction (a consistent snapshot), unless
/// the caller's connection is already inside a transaction.
pub(crate) fn read_state_snapshot(conn: &Connection) -> Result<DbState> {
    snapshot(conn, read_state)
}

/// `read` in one read transaction (a consistent snapshot), unless the
/// caller's connection is already inside a transaction.
pub(crate) fn snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    if !conn.is_autocommit() {
        return read(conn);
    }
    run_cached(conn, "BEGIN").map_err(|e| Error::sqlite("cannot start a read transaction", e))?;
    let found = read(conn);
    if !conn.is_autocommit() {
        // Ending a read transaction cannot lose anything; report its error
        // only if the reads succeeded.
        if let Err(e) = run_cached(conn, "COMMIT") {
            // Never leave the caller's connection inside our transaction.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            if found.is_ok() {
                return Err(Error::sqlite("cannot end the read transaction", e));
            }
        }
    }
    found
}

/// What the start-up read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quick {
    /// At this version, which is the target: nothing to do.
    UpToDate(u32),
    /// At this version, below the target, with a complete history (rows 1
    /// to it), as of this `PRAGMA data_version`.
    Pending { version: u32, data_version: i64 },
    /// The full read and verification must decide (no history table yet,
    /// a version above the target, or anything that does not match).
    Unknown,
}

/// The start-up check, in one read transaction of cached statements:
/// `user_version` and the newest history row, whose chain covers every
/// checksum before it. Constant time whatever the number of migrations
/// when the database is up to date; when it is not, also the number of
/// history rows and `PRAGMA data_version`, so that the first write
/// transaction need not read the history again if no other connection
/// committed in between.
///
/// # Errors
///
/// Only a lock held past the busy timeout; any other failure (no history
/// table, a file that is not a database...) is left to the full read.
pub(crate) fn quick_check(
    conn: &Connection,
    migrations: &Migrations,
    target: u32,
) -> Result<Quick> {
    snapshot(conn, |conn| {
        Ok(match newest_verified(conn, migrations, false)? {
            Some(version) if version == target => Quick::UpToDate(version),
            Some(version) if version < target && complete(conn, version)? => Quick::Pending {
                version,
                data_version: data_version(conn)?,
            },
            _ => Quick::Unknown,
        })
    })
}

/// `user_version` and the newest history row: `Some(version)` when that
/// row is applied, agrees with `user_version` and its chain matches this
/// program's, and (with `complete`) the history has a row for every version
/// up to it; `None` when the full read and verification must decide. Call
/// inside a transaction, so that both reads see the same state.
///
/// # Errors
///
/// As [`quick_check`].
pub(crate) fn newest_verified(
    conn: &Connection,
    migrations: &Migrations,
    with_count: bool,
) -> Result<Option<u32>> {
    let user_version = conn
        .prepare_cached("PRAGMA user_version")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)));
    let row = user_version.and_then(|user_version| {
        conn.prepare_cached(
            "SELECT version, chain, state FROM main._migrate_history ORDER BY version DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([], |r| {
                Ok((
                    user_version,
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
        })
    });
    let (user_version, version, chain, state) = match row {
        Ok(row) => row,
        Err(e) if crate::error::is_busy(&e) => {
            return Err(Error::sqlite("cannot read the migration history", e))
        }
        Err(_) => return Ok(None),
    };
    let Some(m) = u32::try_from(version).ok().and_then(|v| migrations.get(v)) else {
        return Ok(None);
    };
    let version = m.version();
    let fresh = user_version == i64::from(version)
        && state == STATE_APPLIED
        && migrate_rules::parse_hex(&chain).as_ref() == Some(m.chain().as_bytes());
    if !fresh || (with_count && !complete(conn, version)?) {
        return Ok(None);
    }
    Ok(Some(version))
}

/// Whether the history has a row for every version up to `newest`:
/// versions are distinct integers from 1 (the table's key and CHECK), so
/// as many rows as the newest version means all of them.
fn complete(conn: &Connection, newest: u32) -> Result<bool> {
    let rows = conn
        .prepare_cached("SELECT count(*) FROM main._migrate_history")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)));
    match rows {
        Ok(rows) => Ok(rows == i64::from(newest)),
        Err(e) if crate::error::is_busy(&e) => {
            Err(Error::sqlite("cannot read the migration history", e))
        }
        Err(_) => Ok(false),
    }
}

/// Whether a `no-transaction` migration is marked started (a read, which
/// takes no write lock: another instance running that migration may need
/// it).
pub(crate) fn has_started(conn: &Connection) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM main._migrate_history WHERE state = 'started')",
        [],
        |r| r.get(0),
    )
    .map_err(|e| Error::sqlite("cannot read the history", e))
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(crate) fn data_version(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(|e| Error::sqlite("cannot read PRAGMA data_version", e))
}

/// A statement without results, through the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
}

/// Section 6 of the design: every row of its table is one check here.
pub(crate) fn verify(state: &DbState, migrations: &Migrations) -> Result<Verified> {
    let latest = migrations.latest();
    let user_version = state.user_version;
    if user_version < 0 {
        return Err(Error::Inconsistent {
            detail: format!(
                "PRAGMA user_version is {user_version}, which no migration sets; set it to the \
                 version the schema is at"
            ),
        });
    }
    let Some(history) = &state.history else {
        if user_version > i64::from(latest) {
            return Err(Error::UnknownVersion {
                database: clamp(user_version),
                latest,
                name: None,
            });
        }
        let current = clamp(user_version);
        return Ok(Verified {
            current,
            needs_adoption: current > 0,
        });
    };
    let file = |version: u32, recorded: &str| {
        migrations
            .get(version)
            .map_or_else(|| recorded.to_owned(), |m| m.file_name().to_owned())
    };
    if let Some(row) = history.iter().find(|r| r.state == STATE_STARTED) {
        return Err(Error::Incomplete {
            version: row.version,
            file: file(row.version, &row.name),
        });
    }
    if let Some(row) = history.iter().find(|r| r.state != STATE_APPLIED) {
        return Err(Error::Inconsistent {
            detail: format!(
                "the history row of version {} has the unknown state {:?}; it must be 'applied' \
                 or 'started'",
                row.version, row.state
            ),
        });
    }
    let newest = history.last().map_or(0, |r| r.version);
    // Only the history says what a newer build applied (it records each
    // version with `user_version`, in one transaction): a `user_version`
    // above the history's newest row was set by hand, and is reported
    // below as disagreeing with it.
    if newest > latest {
        let first_unknown = u64::from(latest) + 1;
        return Err(Error::UnknownVersion {
            database: newest,
            latest,
            name: history
                .iter()
                .find(|r| u64::from(r.version) == first_unknown)
                .map(|r| r.name.clone()),
        });
    }
    for (expected, row) in (1u32..).zip(history) {
        if row.version != expected {
            return Err(Error::Inconsistent {
                detail: format!(
                    "the history has no row for version {expected} ({}), though version {newest} \
                     is applied; restore the row, or a backup of the database",
                    file(expected, "unknown file")
                ),
            });
        }
    }
    if user_version != i64::from(newest) {
        return Err(Error::Inconsistent {
            detail: format!(
                "PRAGMA user_version is {user_version} but the history's newest applied version \
                 is {newest}; something other than this library changed one of them: if the \
                 schema is at version {newest}, run `PRAGMA user_version = {newest}`"
            ),
        });
    }
    for row in history {
        if let Some(m) = migrations.get(row.version) {
            let current = m.checksum();
            if migrate_rules::parse_hex(&row.checksum).as_ref() != Some(current.as_bytes()) {
                return Err(Error::Drift {
                    version: row.version,
                    file: m.file_name().to_owned(),
                    recorded: row.checksum.clone(),
                    current,
                });
            }
        }
    }
    Ok(Verified {
        current: newest,
        needs_adoption: false,
    })
}

fn clamp(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::migration::Migration;

    static LIST: [Migration; 2] = [
        Migration::__embedded(
            1,
            "a",
            "001_a.sql",
            "SELECT 1;",
            [1; 32],
            [1; 32],
            false,
            0,
            None,
        ),
        Migration::__embedded(
            2,
            "b",
            "002_b.sql",
            "SELECT 2;",
            [2; 32],
            [2; 32],
            false,
            0,
            None,
        ),
    ];

    fn row(version: u32, checksum: [u8; 32], state: &str) -> HistoryRow {
        HistoryRow {
            version,
            name: String::new(),
            checksum: migrate_rules::hex(&checksum),
            applied_at: String::new(),
            duration_us: 0,
            state: state.to_owned(),
        }
    }

    fn check(user_version: i64, history: Option<Vec<HistoryRow>>) -> Result<Verified> {
        verify(
            &DbState {
                user_version,
                history,
                references: false,
                has_tables: false,
            },
            &Migrations::__embedded(&LIST),
        )
    }

    #[test]
    fn each_row_of_the_verification_table() {
        let ok = check(
            2,
            Some(vec![row(1, [1; 32], "applied"), row(2, [2; 32], "applied")]),
        )
        .unwrap();
        assert_eq!((ok.current, ok.needs_adoption), (2, false));
        let fresh = check(0, None).unwrap();
        assert_eq!((fresh.current, fresh.needs_adoption), (0, false));
        let adopt = check(1, None).unwrap();
        assert_eq!((adopt.current, adopt.needs_adoption), (1, true));

        let drift = check(
            2,
            Some(vec![row(1, [1; 32], "applied"), row(2, [9; 32], "applied")]),
        );
        assert!(matches!(drift, Err(Error::Drift { version: 2, .. })));
        let newer = check(
            3,
            Some(vec![
                row(1, [1; 32], "applied"),
                row(2, [2; 32], "applied"),
                row(3, [3; 32], "applied"),
            ]),
        );
        assert!(matches!(
            newer,
            Err(Error::UnknownVersion {
                database: 3,
                latest: 2,
                ..
            })
        ));
        assert!(matches!(
            check(3, None),
            Err(Error::UnknownVersion {
                database: 3,
                latest: 2,
                ..
            })
        ));
        let missing = check(2, Some(vec![row(2, [2; 32], "applied")]));
        assert!(matches!(missing, Err(Error::Inconsistent { .. })));
        let disagree = check(
            1,
            Some(vec![row(1, [1; 32], "applied"), row(2, [2; 32], "applied")]),
        );
        assert!(matches!(disagree, Err(Error::Inconsistent { .. })));
        let incomplete = check(
            1,
            Some(vec![row(1, [1; 32], "applied"), row(2, [2; 32], "started")]),
        );
        assert!(matches!(
            incomplete,
            Err(Error::Incomplete { version: 2, .. })
        ));
        assert!(matches!(check(-1, None), Err(Error::Inconsistent { .. })));
        let odd = check(1, Some(vec![row(1, [1; 32], "weird")]));
        assert!(matches!(odd, Err(Error::Inconsistent { .. })));
    }
}
