//! Helpers shared by the end-to-end tests: temporary migration directories,
//! schema dumps in the corpus format, and whole-database snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

/// Everything a failed migration must leave as it was: the full schema
/// (the framework's table included), `user_version`, the history rows and
/// every table's rows.
pub fn snapshot(conn: &Connection) -> String {
    let mut out = String::new();
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    writeln!(out, "user_version = {user_version}").unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
        )
        .unwrap();
    let objects: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
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
