//! The lock file of released migrations at run time: `from_dir` checks it,
//! `check_source` checks it and catches stale builds, `lock::append` only
//! appends, `lock::replace_released_checksum` is the explicit override.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

use migrate_core::{lock, Error, Migrations};
use migrate_tests::migrations_dir;

const A: &str = "CREATE TABLE a (x);";
const B: &str = "CREATE TABLE b (x);";

fn released() -> tempfile::TempDir {
    let dir = migrations_dir(&[("001_a.sql", A), ("002_b.sql", B)]);
    assert_eq!(lock::append(dir.path()).unwrap(), [1, 2]);
    dir
}

#[test]
fn from_dir_refuses_an_edited_released_migration() {
    let dir = released();
    Migrations::from_dir(dir.path()).unwrap();
    fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a (x, y);").unwrap();
    let err = Migrations::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Source { .. }));
    let text = err.to_string();
    assert!(
        text.contains("001_a.sql: version 1 was edited after it was released"),
        "{text}"
    );
    assert!(
        text.contains("revert the edit and put the change in a new migration"),
        "{text}"
    );
    // CRLF and BOM are not changes (a file of several lines, so that the
    // copy really has CRLF inside).
    let dir = migrations_dir(&[(
        "001_a.sql",
        "CREATE TABLE a (x);\nCREATE INDEX a_x ON a (x);\n",
    )]);
    lock::append(dir.path()).unwrap();
    let windows = "\u{feff}CREATE TABLE a (x);\r\nCREATE INDEX a_x ON a (x);\r\n";
    assert!(windows.contains("\r\n"));
    fs::write(dir.path().join("001_a.sql"), windows).unwrap();
    Migrations::from_dir(dir.path()).unwrap();
}

#[test]
fn append_keeps_existing_lines_byte_identical() {
    let dir = released();
    let path = dir.path().join("migrate.lock");
    let before = fs::read(&path).unwrap();
    assert!(lock::append(dir.path()).unwrap().is_empty());
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "nothing new: nothing written"
    );
    fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c (x);").unwrap();
    assert_eq!(lock::append(dir.path()).unwrap(), [3]);
    let after = fs::read(&path).unwrap();
    assert!(after.starts_with(&before));
    let added = String::from_utf8(after[before.len()..].to_vec()).unwrap();
    let checksum = migrate_core::Checksum::of("CREATE TABLE c (x);");
    assert_eq!(added, format!("3 003_c.sql {checksum}\n"));

    // An edited released file: append refuses and writes nothing.
    fs::write(dir.path().join("002_b.sql"), "CREATE TABLE b (x, y);").unwrap();
    fs::write(dir.path().join("004_d.sql"), "CREATE TABLE d (x);").unwrap();
    let err = lock::append(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("version 2 was edited after it was released"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), after);
}

#[test]
fn replace_released_checksum_changes_one_line_only() {
    let dir = released();
    fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c (x);").unwrap();
    assert_eq!(lock::append(dir.path()).unwrap(), [3]);
    let path = dir.path().join("migrate.lock");
    let before = fs::read_to_string(&path).unwrap();
    fs::write(dir.path().join("002_b.sql"), "CREATE TABLE b (x, y);").unwrap();
    assert!(Migrations::from_dir(dir.path()).is_err());
    lock::replace_released_checksum(dir.path(), 2).unwrap();
    Migrations::from_dir(dir.path()).unwrap();
    let after = fs::read_to_string(&path).unwrap();
    // The whole file is the old one with that one line replaced (the lines
    // after it too).
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("2 002_b.sql "))
            .unwrap()
            .to_owned()
    };
    assert_ne!(line(&before), line(&after));
    assert_eq!(after, before.replace(&line(&before), &line(&after)));
    // A version the lock does not list: the lock is left as it was.
    let err = lock::replace_released_checksum(dir.path(), 9).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "migrate.lock: cannot replace the checksum of version 9: the lock does not list it, \
             or its file is missing; pass a version the lock lists"
        ),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), after);
}

/// The repair `replace_released_checksum`'s documentation gives for a
/// database that ran the old file: one `UPDATE` of its history row.
#[test]
fn a_database_fixed_as_replace_released_checksum_says_starts_again() {
    let dir = released();
    let db = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(db.path().join("app.db")).unwrap();
    Migrations::from_dir(dir.path())
        .unwrap()
        .migrate(&mut conn)
        .unwrap();
    fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a (x, y);").unwrap();
    lock::replace_released_checksum(dir.path(), 1).unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    let err = migrations.verify(&conn).unwrap_err();
    assert!(matches!(err, Error::Drift { version: 1, .. }), "{err:?}");

    let checksum = migrations.get(1).unwrap().checksum();
    conn.execute(
        &format!("UPDATE main._migrate_history SET checksum = '{checksum}' WHERE version = 1;"),
        [],
    )
    .unwrap();
    migrations.verify(&conn).unwrap();
    assert!(migrations.migrate(&mut conn).unwrap().applied().is_empty());

    // The next migration applies as usual, and the database stays verified.
    fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c (x);").unwrap();
    let migrations = Migrations::from_dir(dir.path()).unwrap();
    assert_eq!(migrations.migrate(&mut conn).unwrap().version(), 3);
    migrations.verify(&conn).unwrap();
    assert!(migrations.migrate(&mut conn).unwrap().applied().is_empty());
}

#[test]
fn malformed_lock_is_a_clear_error_naming_the_line() {
    let dir = released();
    let path = dir.path().join("migrate.lock");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("3 003_c.sql not-a-checksum\n");
    fs::write(&path, &text).unwrap();
    let line = text.lines().count();
    let err = Migrations::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "migrate.lock:{line}: \"not-a-checksum\" is not a SHA-256 checksum"
        )),
        "{err}"
    );
}

#[test]
fn check_source_catches_stale_builds() {
    let dir = migrations_dir(&[("001_a.sql", A), ("002_b.sql", B)]);
    let built = Migrations::from_dir(dir.path()).unwrap(); // what the binary embedded
    built.check_source(dir.path()).unwrap();

    fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c (x);").unwrap();
    let err = built.check_source(dir.path()).unwrap_err();
    match &err {
        Error::Stale { differences, .. } => assert_eq!(differences, &["003_c.sql was added"]),
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("rebuild it"), "{text}");
    // The directory as the caller named it, not a fixed one.
    assert!(
        text.contains(&format!("cargo:rerun-if-changed={}", dir.path().display())),
        "{text}"
    );

    fs::remove_file(dir.path().join("003_c.sql")).unwrap();
    fs::write(dir.path().join("002_b.sql"), "CREATE TABLE b (x, y);").unwrap();
    assert!(
        matches!(built.check_source(dir.path()), Err(Error::Stale { differences, .. }) if differences == ["002_b.sql was edited"])
    );

    fs::remove_file(dir.path().join("002_b.sql")).unwrap();
    assert!(
        matches!(built.check_source(dir.path()), Err(Error::Stale { differences, .. }) if differences == ["002_b.sql was removed"])
    );
}

/// Down files count too: one added, edited or removed since the build is
/// a stale build (`migrate_to` a lower version would run another file, or
/// say a file is missing that is there). A CRLF copy is not an edit.
#[test]
fn check_source_catches_stale_down_files() {
    let dir = migrations_dir(&[("001_a.sql", A), ("002_b.sql", B)]);
    let built = Migrations::from_dir(dir.path()).unwrap();
    let down = dir.path().join("002_b.down.sql");
    fs::write(&down, "DROP TABLE b;\n").unwrap();
    let stale = |built: &Migrations| match built.check_source(dir.path()) {
        Err(Error::Stale { differences, .. }) => differences,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(stale(&built), ["002_b.down.sql was added"]);

    let built = Migrations::from_dir(dir.path()).unwrap();
    built.check_source(dir.path()).unwrap();
    fs::write(&down, "DROP TABLE b;\r\n").unwrap();
    built.check_source(dir.path()).unwrap();
    fs::write(&down, "DELETE FROM a;\nDROP TABLE b;\n").unwrap();
    assert_eq!(stale(&built), ["002_b.down.sql was edited"]);
    fs::remove_file(&down).unwrap();
    assert_eq!(stale(&built), ["002_b.down.sql was removed"]);
}

#[test]
fn check_source_reports_lock_problems_with_the_compile_time_message() {
    let dir = released();
    let built = Migrations::from_dir(dir.path()).unwrap();
    fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a (x, y);").unwrap();
    let err = built.check_source(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("001_a.sql: version 1 was edited after it was released"),
        "{err}"
    );
}

/// New migrations beyond the lock compile: only released ones are frozen.
static LOCKED_WITH_NEW: Migrations = migrate_core::embed_migrations!("fixtures/locked_with_new");

#[test]
fn a_build_with_new_unlocked_migrations_passes() {
    assert_eq!(LOCKED_WITH_NEW.len(), 2);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/locked_with_new");
    LOCKED_WITH_NEW.check_source(&dir).unwrap();
}

/// `lock = "test"`: the build does not check the lock (here, one whose
/// version 2 was edited), and `check_source` in a test fails instead, with
/// the compile-time message.
static LOCK_CHECKED_IN_TEST: Migrations =
    migrate_core::embed_migrations!("fixtures/compile_fail/lock_edited", lock = "test");

#[test]
fn lock_checked_by_a_test_instead_of_the_build() {
    assert_eq!(LOCK_CHECKED_IN_TEST.len(), 2);
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/compile_fail/lock_edited");
    let err = LOCK_CHECKED_IN_TEST.check_source(&dir).unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err:?}");
    let compile_time = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/locked_file_edited.stderr"),
    )
    .unwrap();
    let message = compile_time
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("error: fixtures/compile_fail/lock_edited/");
    assert!(
        err.to_string().contains(message),
        "{err}\nshould contain\n{message}"
    );
}

/// Two processes appending at once (two test binaries at release time, or
/// a build reading the lock meanwhile): writers take turns, and the file
/// is replaced in one step, so a reader never sees half of it and no line
/// or header is lost.
#[test]
fn concurrent_appends_and_reads_see_whole_lock_files() {
    let files: Vec<(String, String)> = (1..=40)
        .map(|v| {
            (
                format!("{v:03}_t{v}.sql"),
                format!("CREATE TABLE t{v} (x);"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let dir = migrations_dir(&refs[..39]);
    lock::append(dir.path()).unwrap();
    fs::write(dir.path().join(&files[39].0), &files[39].1).unwrap();
    let path = dir.path().join("migrate.lock");
    let expected = {
        let scratch = migrations_dir(&refs);
        lock::append(scratch.path()).unwrap();
        fs::read_to_string(scratch.path().join("migrate.lock")).unwrap()
    };
    let released = fs::read_to_string(&path).unwrap();
    for _ in 0..30 {
        fs::write(&path, &released).unwrap();
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..2)
                .map(|_| s.spawn(|| lock::append(dir.path()).unwrap()))
                .collect();
            let reader = s.spawn(|| {
                for _ in 0..20 {
                    Migrations::from_dir(dir.path()).unwrap();
                }
            });
            let added: Vec<Vec<u32>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
            reader.join().unwrap();
            // One of the two added version 40; the other found it there.
            assert_eq!(added.concat(), [40]);
        });
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }
}

/// `append` writes the lock file in place: its permissions stay, and a
/// lock kept elsewhere behind a symbolic link is the one updated; a
/// missing directory is named as such.
#[cfg(unix)]
#[test]
fn append_writes_the_lock_file_in_place() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = released();
    let path = dir.path().join("migrate.lock");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    fs::write(dir.path().join("003_c.sql"), "CREATE TABLE c (x);").unwrap();
    assert_eq!(lock::append(dir.path()).unwrap(), [3]);
    assert_eq!(mode(&path), 0o664);

    let elsewhere = tempfile::tempdir().unwrap();
    let real = elsewhere.path().join("migrate.lock");
    fs::rename(&path, &real).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    fs::write(dir.path().join("004_d.sql"), "CREATE TABLE d (x);").unwrap();
    assert_eq!(lock::append(dir.path()).unwrap(), [4]);
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real)
        .unwrap()
        .contains("\n4 004_d.sql "));
    Migrations::from_dir(dir.path()).unwrap();

    let missing = dir.path().join("missing");
    let err = lock::append(&missing).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists());
}

/// A lock kept elsewhere behind a symbolic link whose target is gone
/// (moved, not checked out) is an error, not "no lock": an edited released
/// migration does not load, and `append` does not make a new lock from the
/// edited file.
#[cfg(unix)]
#[test]
fn a_lock_that_is_a_symbolic_link_to_nothing_is_an_error() {
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
    ]);
    let shared = tempfile::tempdir().unwrap();
    let target = shared.path().join("migrate.lock");
    fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("migrate.lock")).unwrap();
    assert_eq!(lock::append(dir.path()).unwrap(), [1, 2]);
    fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a (x, y);").unwrap();
    assert!(matches!(
        Migrations::from_dir(dir.path()),
        Err(Error::Source { .. })
    ));

    fs::remove_file(&target).unwrap();
    let err = Migrations::from_dir(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Source { .. })
            && text.contains("migrate.lock")
            && text.contains("symbolic link"),
        "{text}"
    );
    let appended = lock::append(dir.path());
    assert!(
        matches!(&appended, Err(Error::Source { .. })),
        "{appended:?}"
    );
    assert!(
        !target.exists(),
        "append made a new lock at the link's target"
    );
    assert!(lock::replace_released_checksum(dir.path(), 1).is_err());
    assert!(!target.exists());
}

/// `replace_released_checksum` rewrites the lock while builds read it
/// without taking its lock: no read may see fewer released versions (an
/// empty or cut lock), so an edited released migration never loads
/// meanwhile.
#[test]
fn a_reader_never_sees_the_lock_shrink_while_a_checksum_is_replaced() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let dir = migrations_dir(&[
        ("001_a.sql", "CREATE TABLE a (x);"),
        ("002_b.sql", "CREATE TABLE b (x);"),
    ]);
    lock::append(dir.path()).unwrap();
    // Version 1 is edited: every load must refuse it, whatever happens to
    // the line of version 2.
    fs::write(dir.path().join("001_a.sql"), "CREATE TABLE a (x, y);").unwrap();
    assert!(Migrations::from_dir(dir.path()).is_err());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (Arc::clone(&stop), dir.path().to_owned());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // Version 2 fixed by hand and the lock told so, renamed
                // too (the line's length changes), and back.
                let (from, to) = if n.is_multiple_of(2) {
                    ("002_b.sql", "002_bee.sql")
                } else {
                    ("002_bee.sql", "002_b.sql")
                };
                fs::rename(path.join(from), path.join(to)).unwrap();
                lock::replace_released_checksum(&path, 2).unwrap();
                n += 1;
            }
            n
        })
    };
    let started = Instant::now();
    let mut reads = 0;
    let mut loaded = 0;
    while started.elapsed() < Duration::from_secs(1) {
        reads += 1;
        if Migrations::from_dir(dir.path()).is_ok() {
            loaded += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let replaced = writer.join().unwrap();
    assert!(replaced > 10, "only {replaced} replacements");
    assert_eq!(
        loaded, 0,
        "{loaded} of {reads} loads accepted the edited released 001_a.sql while the lock was \
         rewritten {replaced} times"
    );
}
