//! Helpers shared by the end-to-end tests: temporary migration directories,
//! schema dumps in the corpus format, and whole-database snapshots.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The repository's `tests/` directory.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus sets under `tests/corpus`.
pub fn corpus_sets() -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(tests_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("numbered").is_dir())
        .collect();
    sets.sort();
    sets
}

/// A temporary directory holding the given migration files.
pub fn migrations_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The schema in the format of `corpus/*/expected_schema.sql`, without the
/// framework's own table.
pub fn schema_dump(conn: &Connection) -> String {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '_migrate_history' ORDER BY type, name",
        )
        .unwrap();
    let mut out = String::new();
    let rows = stmt
        .query_map([], |r| {
            Ok([
                r.get::<_, Option<String>>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
            ])
        })
        .unwrap();
    for row in rows {
        let fields: Vec<String> = row
            .unwrap()
            .iter()
            .map(|f| escape(f.as_deref().unwrap_or("")))
            .collect();
        writeln!(out, "{}", fields.join(" | ")).unwrap();
    }
    out
}

fn escape(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// Writes `user_version` to `out` and returns every schema object as
/// (type, name, table, SQL), in a stable order.
fn version_and_objects(
    conn: &Connection,
    out: &mut String,
) -> Vec<(String, String, String, String)> {
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    writeln!(out, "user_version = {user_version}").unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Everything a failed migration must leave as it was: the full schema
/// (the framework's table included), `user_version`, the history rows and
/// every table's rows.
pub fn snapshot(conn: &Connection) -> String {
    let mut out = String::new();
    let objects = version_and_objects(conn, &mut out);
    for (kind, name, table, sql) in &objects {
        writeln!(out, "{kind} {name} on {table}: {sql}").unwrap();
        if kind == "table" && !name.starts_with("sqlite_") {
            let rows = dump_table(conn, name);
            writeln!(out, "  rows: {rows}").unwrap();
        }
    }
    out
}

fn dump_table(conn: &Connection, table: &str) -> String {
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let Ok(mut stmt) = conn.prepare(&format!("SELECT * FROM {quoted} ORDER BY 1")) else {
        return "(virtual or unreadable)".to_owned();
    };
    let columns = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let values: Vec<String> = (0..columns)
            .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
            .collect();
        out.push(format!("({})", values.join(", ")));
    }
    out.join(" ")
}

/// `PRAGMA integrity_check` as one string (`"ok"` when healthy).
pub fn integrity(conn: &Connection) -> String {
    let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.join("; ")
}

/// Opens a database file.
pub fn open(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

/// Opens a database file, switched to WAL if `wal` (before any table).
pub fn open_journal(path: &Path, wal: bool) -> Connection {
    let conn = open(path);
    if wal {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    conn
}

pub use reliability::{fingerprint, full_size, ChildProcess};

/// Helpers of the reliability tests (processes, large databases). Test
/// helpers panic on any unexpected failure, which is what a test wants.
#[allow(clippy::missing_panics_doc)]
mod reliability {
    use std::fmt::Write as _;

    use rusqlite::Connection;

    /// Whether the reliability tests run at full size (`MIGRATE_FULL=1`): a
    /// million rows and more, more rounds. The default sizes are small but
    /// still exercise every fault.
    pub fn full_size() -> bool {
        std::env::var("MIGRATE_FULL").is_ok_and(|v| v == "1")
    }

    /// A database's state as a comparable text, cheap on large tables: the
    /// `user_version`, every schema object with its SQL, the history rows, and
    /// for every other table its row count and an order-independent hash of its
    /// rows. With `timing == false` the history's `applied_at` and
    /// `duration_us` are left out, to compare databases migrated at different
    /// times.
    pub fn fingerprint(conn: &Connection, timing: bool) -> String {
        use std::hash::{Hash, Hasher};

        let mut out = String::new();
        let objects = super::version_and_objects(conn, &mut out);
        for (kind, name, table, sql) in &objects {
            writeln!(out, "{kind} {name} on {table}: {sql}").unwrap();
            if kind != "table" || name.starts_with("sqlite_") {
                continue;
            }
            if name == "_migrate_history" {
                let columns = if timing {
                    "version, name, checksum, state, applied_at, duration_us"
                } else {
                    "version, name, checksum, state"
                };
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {columns} FROM _migrate_history ORDER BY version"
                    ))
                    .unwrap();
                let n = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    let values: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                        .collect();
                    writeln!(out, "  history: {}", values.join(", ")).unwrap();
                }
                continue;
            }
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            let Ok(mut stmt) = conn.prepare(&format!("SELECT * FROM {quoted}")) else {
                writeln!(out, "  rows: (virtual or unreadable)").unwrap();
                continue;
            };
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            let (mut count, mut sum, mut xor) = (0u64, 0u64, 0u64);
            while let Some(row) = rows.next().unwrap() {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for i in 0..n {
                    match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => 0u8.hash(&mut hasher),
                        rusqlite::types::ValueRef::Integer(v) => (1u8, v).hash(&mut hasher),
                        rusqlite::types::ValueRef::Real(v) => (2u8, v.to_bits()).hash(&mut hasher),
                        rusqlite::types::ValueRef::Text(v) => (3u8, v).hash(&mut hasher),
                        rusqlite::types::ValueRef::Blob(v) => (4u8, v).hash(&mut hasher),
                    }
                }
                let h = hasher.finish();
                count += 1;
                sum = sum.wrapping_add(h);
                xor ^= h.rotate_left(17);
            }
            writeln!(out, "  rows: {count}, hash {sum:016x}{xor:016x}").unwrap();
        }
        out
    }

    /// A child process of the reliability tests (the `migrate_child` binary),
    /// with its stdin and stdout piped.
    pub struct ChildProcess {
        /// The process.
        pub child: std::process::Child,
        stdout: std::io::BufReader<std::process::ChildStdout>,
    }

    impl ChildProcess {
        /// Starts `exe` with `args`.
        pub fn spawn(exe: &str, args: &[&str]) -> Self {
            let mut child = std::process::Command::new(exe)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            ChildProcess { child, stdout }
        }

        /// The next line it prints, without the newline (empty at its end).
        pub fn line(&mut self) -> String {
            use std::io::BufRead;
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            line.trim_end().to_owned()
        }

        /// Sends it a line on stdin.
        pub fn send(&mut self, line: &str) {
            use std::io::Write;
            let stdin = self.child.stdin.as_mut().unwrap();
            writeln!(stdin, "{line}").unwrap();
            stdin.flush().unwrap();
        }

        /// Waits for it to exit; its exit status.
        pub fn wait(mut self) -> std::process::ExitStatus {
            drop(self.child.stdin.take());
            self.child.wait().unwrap()
        }
    }
}
