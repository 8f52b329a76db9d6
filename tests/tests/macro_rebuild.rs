//! End to end: a user's crate that embeds its migrations sees an edited
//! file after the next `cargo build` (the macro names each file in an
//! `include_str!`, which cargo tracks, and embeds the text it read and
//! checked), and sees an added or removed file once
//! its build.rs says `cargo:rerun-if-changed=migrations`. Editing the lock
//! file (`migrate.lock`) rebuilds it and checks the migrations again.
//!
//! The test writes a small crate that depends on `migrate-core` alone (plus
//! rusqlite with `bundled`, to link without a system SQLite), then builds and
//! runs it with cargo after each change. All builds use one target directory,
//! `<workspace target>/tests/macro-rebuild`, kept between runs so that
//! SQLite compiles once; being separate from the outer `cargo test`'s, it
//! does not wait on that command's lock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use migrate_core::Checksum;

const MAIN_RS: &str = r#"use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("migrations");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for m in MIGRATIONS.iter() {
        println!("{} {} {}", m.version(), m.file_name(), m.checksum());
    }
    let mut conn = rusqlite::Connection::open_in_memory()?;
    let report = MIGRATIONS.migrate(&mut conn)?;
    println!("migrated to {}", report.version());
    Ok(())
}
"#;

const BUILD_RS: &str = r#"fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
"#;

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n";
const POSTS: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n";
const POSTS_EDITED: &str =
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, body TEXT NOT NULL DEFAULT '');\n";
const INDEX: &str = "CREATE INDEX posts_title ON posts (title);\n";

/// The user's crate and how to build it.
struct UserCrate {
    dir: PathBuf,
    target: PathBuf,
}

impl UserCrate {
    fn migrations(&self) -> PathBuf {
        self.dir.join("migrations")
    }

    /// The executable the last build wrote.
    fn executable(&self) -> PathBuf {
        self.target
            .join("debug")
            .join(format!("rebuild-check{}", std::env::consts::EXE_SUFFIX))
    }

    /// Waits until a file written now gets a modification time clearly after
    /// the last build's (file systems with one- or two-second timestamps
    /// would otherwise show an edit as no newer than the build).
    fn wait_past_last_build(&self) {
        let Ok(built) = std::fs::metadata(self.executable()).and_then(|m| m.modified()) else {
            return;
        };
        let after = built + Duration::from_secs(2);
        while SystemTime::now() < after {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes a file after the last build, with a modification time that
    /// says so.
    fn write(&self, relative: &str, text: &str) {
        self.wait_past_last_build();
        let path = self.dir.join(relative);
        std::fs::write(&path, text).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now()).unwrap();
    }

    fn remove(&self, relative: &str) {
        self.wait_past_last_build();
        std::fs::remove_file(self.dir.join(relative)).unwrap();
    }

    /// `cargo run`: the lines the program printed.
    fn run(&self) -> Vec<String> {
        let out = Command::new(env!("CARGO"))
            .args(["run", "--quiet", "--offline", "--manifest-path"])
            .arg(self.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "cargo run failed: {}\n{stdout}\n{stderr}",
            out.status
        );
        stdout.lines().map(str::to_owned).collect()
    }
}

impl UserCrate {
    /// `cargo build` that must fail: its standard error.
    fn failed_build(&self) -> String {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(self.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "the build should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// What the program prints for these files.
fn expected(files: &[(&str, &str)]) -> Vec<String> {
    let mut lines: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, (name, text))| format!("{} {name} {}", i + 1, Checksum::of(text)))
        .collect();
    lines.push(format!("migrated to {}", files.len()));
    lines
}

/// `<workspace>/target`, or the `CARGO_TARGET_DIR` the tests run with.
fn workspace_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("target"),
    }
}

/// Writes the crate (without build.rs) at a fixed place in `root`.
fn create_crate(root: &Path) -> UserCrate {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let user = UserCrate {
        dir: root.join("crate"),
        target: root.join("target"),
    };
    if user.dir.exists() {
        std::fs::remove_dir_all(&user.dir).unwrap();
    }
    std::fs::create_dir_all(user.migrations()).unwrap();
    std::fs::create_dir_all(user.dir.join("src")).unwrap();
    let core = workspace.join("migrate-core");
    let manifest = format!(
        r#"[package]
name = "rebuild-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
migrate-core = {{ path = '{}' }}
rusqlite = {{ version = "0.43", features = ["bundled"] }}

[workspace]
"#,
        core.display()
    );
    user.write("Cargo.toml", &manifest);
    // The workspace's lock file, so that the crate builds with the versions
    // already downloaded (cargo drops the entries it does not need).
    std::fs::copy(workspace.join("Cargo.lock"), user.dir.join("Cargo.lock")).unwrap();
    user.write("src/main.rs", MAIN_RS);
    user
}

#[test]
fn edited_added_and_removed_files_are_embedded_by_the_next_build() {
    let root = workspace_target_dir().join("tests").join("macro-rebuild");
    std::fs::create_dir_all(&root).unwrap();
    // One run at a time: concurrent runs would share the crate and its
    // executable.
    let lock = std::fs::File::create(root.join(".lock")).unwrap();
    lock.lock().unwrap();

    let user = create_crate(&root);
    user.write("migrations/001_create_users.sql", USERS);
    user.write("migrations/002_add_posts.sql", POSTS);
    let mut files = vec![
        ("001_create_users.sql", USERS),
        ("002_add_posts.sql", POSTS),
    ];
    assert_eq!(user.run(), expected(&files));

    // No build.rs yet: only include_str! tells cargo about the files.
    user.write("migrations/002_add_posts.sql", POSTS_EDITED);
    files[1].1 = POSTS_EDITED;
    let lines = user.run();
    assert_eq!(lines, expected(&files));
    assert_ne!(Checksum::of(POSTS), Checksum::of(POSTS_EDITED));

    // With the build.rs line, adding and removing files is seen too.
    user.write("build.rs", BUILD_RS);
    assert_eq!(user.run(), expected(&files));

    user.write("migrations/003_index_posts.sql", INDEX);
    files.push(("003_index_posts.sql", INDEX));
    assert_eq!(user.run(), expected(&files));

    user.remove("migrations/003_index_posts.sql");
    files.pop();
    assert_eq!(user.run(), expected(&files));

    // Without build.rs, the macro itself makes cargo track the lock file:
    // a rebuild (here through an edit) picks the new lock up, and editing
    // the lock then rebuilds and checks again.
    user.remove("build.rs");
    user.write("migrations/migrate.lock", &lock_text(&files));
    user.write("migrations/001_create_users.sql", USERS);
    assert_eq!(user.run(), expected(&files));
    let mut wrong = files.clone();
    wrong[1].1 = POSTS;
    user.write("migrations/migrate.lock", &lock_text(&wrong));
    let stderr = user.failed_build();
    assert!(
        stderr.contains("version 2 was edited after it was released"),
        "{stderr}"
    );
    user.write("migrations/migrate.lock", &lock_text(&files));
    assert_eq!(user.run(), expected(&files));
}

/// A lock file for these files.
fn lock_text(files: &[(&str, &str)]) -> String {
    files
        .iter()
        .enumerate()
        .map(|(i, (name, text))| format!("{} {name} {}\n", i + 1, Checksum::of(text)))
        .collect()
}
