//! Every broken file rule is a compile error of `embed_migrations!` that
//! points at the macro's argument, names the file(s) and says what to do.
//! Each case is one `tests/ui/*.rs` file with its expected compiler output in
//! the `.stderr` file next to it (regenerate with `TRYBUILD=overwrite` and
//! review the diff).
//!
//! trybuild compiles the cases in a crate it generates under
//! `<target>/tests/trybuild/migrate-tests`, which is then the
//! `CARGO_MANIFEST_DIR` the macro resolves paths against. The test links
//! `fixtures` there to `tests/fixtures`, so that a case's path, such as
//! `"fixtures/compile_fail/duplicate"`, is the same as from this crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target directory trybuild uses: cargo's `target_directory`.
fn target_dir() -> PathBuf {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(manifest_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata failed: {out:?}");
    let json = String::from_utf8(out.stdout).unwrap();
    let key = "\"target_directory\":\"";
    let start = json.find(key).expect("target_directory in cargo metadata") + key.len();
    let end = start + json[start..].find('"').unwrap();
    PathBuf::from(&json[start..end])
}

/// Makes `link` point to `target`, replacing what was there.
fn link_dir(target: &Path, link: &Path) {
    if std::fs::symlink_metadata(link).is_ok() {
        std::fs::remove_file(link)
            .or_else(|_| std::fs::remove_dir_all(link))
            .unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link).unwrap();
    #[cfg(windows)]
    std::os::windows::fs::symlink_dir(target, link).unwrap();
}

/// Creates `<project>/unreadable/001_create_users.sql` with permissions 000
/// and says whether this process indeed cannot read it (a process with
/// root's file capabilities reads any file).
#[cfg(unix)]
fn make_unreadable_dir(project: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let dir = project.join("unreadable");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("001_create_users.sql");
    std::fs::write(&file, "CREATE TABLE users (id INTEGER PRIMARY KEY);\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::read(&file).is_err()
}

#[cfg(not(unix))]
fn make_unreadable_dir(_project: &Path) -> bool {
    false
}

/// Creates `<project>/dangling/001_create_users.sql` as a symbolic link to
/// a file that does not exist: a file the macro cannot read, whoever runs
/// the test.
#[cfg(unix)]
fn make_dangling_dir(project: &Path) -> bool {
    let dir = project.join("dangling");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(dir.join("missing.sql"), dir.join("001_create_users.sql")).unwrap();
    true
}

#[cfg(not(unix))]
fn make_dangling_dir(_project: &Path) -> bool {
    false
}

/// Creates `<project>/dangling_lock/` with a released migration that was
/// edited, and a `migrate.lock` that is a symbolic link to a lock that is
/// not there (kept elsewhere, moved or not checked out).
#[cfg(unix)]
fn make_dangling_lock_dir(project: &Path) -> bool {
    let dir = project.join("dangling_lock");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("001_a.sql"), "CREATE TABLE a (x, y);\n").unwrap();
    // Relative, so that the message does not depend on the target directory.
    std::os::unix::fs::symlink("../shared/migrate.lock", dir.join("migrate.lock")).unwrap();
    true
}

#[cfg(not(unix))]
fn make_dangling_lock_dir(_project: &Path) -> bool {
    false
}

#[test]
fn rule_violations_are_compile_errors() {
    let project = target_dir()
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    std::fs::create_dir_all(&project).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    link_dir(&fixtures, &project.join("fixtures"));

    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    if make_dangling_dir(&project) {
        cases.compile_fail("ui/dangling/dangling_link.rs");
    }
    if make_dangling_lock_dir(&project) {
        cases.compile_fail("ui/dangling_lock/dangling_lock.rs");
    }
    if make_unreadable_dir(&project) {
        cases.compile_fail("ui/unreadable/unreadable_file.rs");
    } else {
        // Permissions cannot make a file unreadable for this process (it
        // runs as root, or not on Unix): the case cannot be set up.
        eprintln!(
            "skipped ui/unreadable/unreadable_file.rs: this process can read a file \
             with permissions 000 (root?)"
        );
    }
}
