//! A child process for the reliability tests: migrates a database file, or
//! holds a lock on one, so that the tests can race, kill and block real OS
//! processes.
//!
//! ```text
//! migrate_child migrate <db> <migrations dir> [--wait] [--wal] [--lock-timeout-ms N]
//! migrate_child hold <db> <immediate|exclusive> [--write]
//! ```
//!
//! `migrate` prints `ready` and waits for a line on stdin when `--wait` is
//! given (the tests' barrier), prints `start` just before calling the
//! migrator, then one line: `ok <applied versions, comma-separated>
//! from=<version found at the start> version=<v>` (exit 0) or `err <variant>: <message>` (exit 1). `--wal`
//! asks the migrator to switch a new database to WAL.
//!
//! `hold` opens the database, takes the write lock (`BEGIN IMMEDIATE` or
//! `BEGIN EXCLUSIVE`, plus a write with `--write`), prints `holding`, and
//! keeps the lock until a line (or end of file) arrives on stdin; then it
//! rolls back and exits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use migrate_core::{Error, JournalMode, Migrations};
use rusqlite::Connection;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("migrate") => migrate(&args[1..]),
        Some("hold") => hold(&args[1..]),
        _ => {
            eprintln!("usage: migrate_child migrate|hold ...");
            ExitCode::from(2)
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn wait_for_line() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn migrate(args: &[String]) -> ExitCode {
    let db = &args[0];
    let dir = &args[1];
    let flags = &args[2..];
    let wait = flags.iter().any(|f| f == "--wait");
    let wal = flags.iter().any(|f| f == "--wal");
    let timeout = flags
        .iter()
        .position(|f| f == "--lock-timeout-ms")
        .map(|i| Duration::from_millis(flags[i + 1].parse().unwrap()));

    let migrations = Migrations::from_dir(dir).unwrap();
    let mut conn = Connection::open(db).unwrap();
    if wait {
        say("ready");
        wait_for_line();
    }
    let mut migrator = migrations.migrator();
    if wal {
        migrator = migrator.journal_mode(JournalMode::Wal);
    }
    if let Some(timeout) = timeout {
        migrator = migrator.lock_timeout(timeout);
    }
    say("start");
    match migrator.migrate(&mut conn) {
        Ok(report) => {
            let applied: Vec<String> = report
                .applied()
                .iter()
                .map(|a| a.version().to_string())
                .collect();
            say(&format!(
                "ok {} from={} version={}",
                applied.join(","),
                report.from_version(),
                report.version()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("err {}: {e}", variant(&e)));
            ExitCode::FAILURE
        }
    }
}

/// The variant's name.
fn variant(e: &Error) -> &'static str {
    match e {
        Error::Drift { .. } => "Drift",
        Error::UnknownVersion { .. } => "UnknownVersion",
        Error::Inconsistent { .. } => "Inconsistent",
        Error::Incomplete { .. } => "Incomplete",
        Error::Migration { .. } => "Migration",
        Error::ForeignKeyViolation { .. } => "ForeignKeyViolation",
        Error::Integrity { .. } => "Integrity",
        Error::Source { .. } => "Source",
        Error::Stale { .. } => "Stale",
        Error::Locked { .. } => "Locked",
        Error::ReadOnly { .. } => "ReadOnly",
        Error::InTransaction => "InTransaction",
        Error::Target { .. } => "Target",
        Error::Sqlite { .. } => "Sqlite",
        _ => "Other",
    }
}

fn hold(args: &[String]) -> ExitCode {
    let db = &args[0];
    let mode = match args[1].as_str() {
        "immediate" => "IMMEDIATE",
        "exclusive" => "EXCLUSIVE",
        other => panic!("unknown lock mode {other}"),
    };
    let write = args[2..].iter().any(|f| f == "--write");
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(&format!("BEGIN {mode}")).unwrap();
    if write {
        conn.execute_batch("CREATE TABLE held_lock_marker (x)")
            .unwrap();
    }
    say("holding");
    wait_for_line();
    conn.execute_batch("ROLLBACK").unwrap();
    ExitCode::SUCCESS
}
