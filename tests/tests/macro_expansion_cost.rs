//! How much embedding 1,000 migration files adds to a build of the user's
//! crate. A benchmark, ignored by default:
//!
//! ```text
//! cargo test -p migrate-tests --test macro_expansion_cost -- --ignored --nocapture
//! ```
//!
//! It writes two crates that differ only in their migrations directory, one
//! file or 1,000 files, builds both once so that every dependency is
//! compiled, then rebuilds each crate several times, alternating, after
//! touching its `src/main.rs`, and compares the medians. Two settings: the
//! dev profile as is (incremental), and `CARGO_INCREMENTAL=0` (the whole
//! crate compiled again). The builds share the target directory of
//! `macro_rebuild.rs`, so the bundled SQLite is compiled once for both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const ROUNDS: usize = 7;

const MAIN_RS: &str = r#"use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("migrations");

fn main() {
    let bytes: usize = MIGRATIONS.iter().map(|m| m.sql().len()).sum();
    println!("{} migrations, {bytes} bytes of SQL", MIGRATIONS.len());
}
"#;

/// A migration of a realistic size (about 600 bytes).
fn migration(version: usize) -> String {
    format!(
        "-- Version {version}: the table of things number {version}.\n\
         CREATE TABLE thing_{version} (\n    \
             id INTEGER PRIMARY KEY,\n    \
             owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,\n    \
             name TEXT NOT NULL,\n    \
             description TEXT,\n    \
             created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n    \
             updated_at TEXT,\n    \
             UNIQUE (owner_id, name)\n\
         );\n\
         CREATE INDEX thing_{version}_owner ON thing_{version} (owner_id);\n\
         CREATE INDEX thing_{version}_created ON thing_{version} (created_at);\n\
         INSERT INTO thing_{version} (owner_id, name, description)\n    \
             SELECT id, 'first', 'made by migration {version}' FROM users;\n"
    )
}

struct BenchCrate {
    name: String,
    dir: PathBuf,
    target: PathBuf,
}

impl BenchCrate {
    fn create(root: &Path, target: &Path, files: usize) -> Self {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let name = format!("embed-cost-{files}");
        let dir = root.join(&name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        let manifest = format!(
            r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
migrate-core = {{ path = '{}' }}
rusqlite = {{ version = "0.43", features = ["bundled"] }}

[workspace]
"#,
            workspace.join("migrate-core").display()
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
        std::fs::write(
            dir.join("migrations/0001_create_users.sql"),
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n",
        )
        .unwrap();
        for version in 2..=files {
            std::fs::write(
                dir.join(format!("migrations/{version:04}_thing_{version}.sql")),
                migration(version),
            )
            .unwrap();
        }
        BenchCrate {
            name,
            dir,
            target: target.to_owned(),
        }
    }

    fn executable(&self) -> PathBuf {
        self.target
            .join("debug")
            .join(format!("{}{}", self.name, std::env::consts::EXE_SUFFIX))
    }

    /// Changes `src/main.rs` so that the next build compiles the crate, with
    /// a modification time clearly after the last build.
    fn touch(&self, round: usize) {
        if let Ok(built) = std::fs::metadata(self.executable()).and_then(|m| m.modified()) {
            while SystemTime::now() < built + Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::fs::write(
            self.dir.join("src/main.rs"),
            format!("{MAIN_RS}// round {round}\n"),
        )
        .unwrap();
    }

    /// `cargo build`, timed.
    fn build(&self, incremental: bool) -> Duration {
        let start = Instant::now();
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(self.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_INCREMENTAL", if incremental { "1" } else { "0" })
            .current_dir(&self.dir)
            .output()
            .unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "cargo build of {} failed:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn run(&self) -> String {
        let out = Command::new(self.executable()).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn embedding_1000_files_adds_under_2_seconds() {
    let workspace_target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("target"),
    };
    let root = workspace_target.join("tests").join("macro-expansion-cost");
    let target = workspace_target
        .join("tests")
        .join("macro-rebuild")
        .join("target");
    let one = BenchCrate::create(&root, &target, 1);
    let thousand = BenchCrate::create(&root, &target, 1000);
    let size: u64 = std::fs::read_dir(thousand.dir.join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    // Warm up: dependencies, then one build of each crate per setting.
    for incremental in [true, false] {
        for c in [&one, &thousand] {
            c.touch(0);
            c.build(incremental);
        }
    }
    assert!(one.run().starts_with("1 migrations"));
    assert!(thousand.run().starts_with("1000 migrations"));

    let mut report = String::new();
    let mut added = Vec::new();
    for incremental in [true, false] {
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for round in 1..=ROUNDS {
            for (i, c) in [&one, &thousand].into_iter().enumerate() {
                c.touch(round);
                times[i].push(c.build(incremental));
            }
        }
        let all: Vec<String> = times
            .iter()
            .map(|t| {
                t.iter()
                    .map(|d| format!("{:.2}", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let m1 = median(&mut times[0]);
        let m1000 = median(&mut times[1]);
        let setting = if incremental {
            "dev profile (incremental)"
        } else {
            "CARGO_INCREMENTAL=0"
        };
        writeln!(
            report,
            "{setting}: 1 file {} (runs: {}), 1,000 files {} (runs: {}), added {}",
            secs(m1),
            all[0],
            secs(m1000),
            all[1],
            secs(m1000.saturating_sub(m1))
        )
        .unwrap();
        added.push(m1000.saturating_sub(m1));
    }
    println!("1,000 files, {size} bytes of SQL; medians of {ROUNDS} builds each, alternating");
    print!("{report}");
    for a in added {
        assert!(
            a < Duration::from_secs(2),
            "embedding 1,000 files added {a:?}"
        );
    }
}
