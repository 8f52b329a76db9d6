//! Runs the `migrate` example the way a user does and checks what they see:
//! its output, the database it leaves, `--check` on a drifted database,
//! and one-line errors for bad arguments.
//!
//! `cargo test` builds the package's examples before running its tests;
//! the example binary is `<target>/<profile>/examples/migrate`, next to the
//! `deps/` directory that holds this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use migrations_example::MIGRATIONS;
use rusqlite::Connection;

/// `<target>/<profile>`, from this test binary's `<target>/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn example() -> PathBuf {
    let path = profile_dir()
        .join("examples")
        .join(format!("migrate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the example is not built at {}: run `cargo test -p migrations-example`, which builds it",
        path.display()
    );
    path
}

/// Runs the example with a backtrace asked for, so that a panic would show.
fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(example())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The output lines of one section ("Query plans"...), without the heading.
fn section(text: &str, heading: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A run that must fail: a non-zero status and exactly one line on stderr,
/// `error: ...`, with no panic or backtrace.
fn assert_one_line_error(out: &Output, expected: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "exit status 0, stderr: {err}");
    assert_ne!(
        out.status.code(),
        Some(101),
        "101 is a panic's status: {err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "not one line on stderr: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(expected), "{err:?} lacks {expected:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn first_run_migrates_and_exercises_the_schema_second_run_finds_nothing_pending() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");

    // First run: a new database, every migration applied.
    let first = run(&[&db]);
    let out = stdout(&first);
    assert!(first.status.success(), "{}\n{out}", stderr(&first));
    assert_eq!(stderr(&first), "", "nothing on stderr when all is well");
    assert!(out.starts_with(&format!("migrate demo: {} (new database)", db.display())));
    let migrations = section(&out, "Migrations");
    for m in MIGRATIONS.iter() {
        let line = migrations
            .iter()
            .find(|l| l.starts_with(&format!("  applied {} ", m.version())))
            .unwrap_or_else(|| panic!("migration {} not reported: {out}", m.version()));
        assert!(line.contains(m.name()) && line.ends_with(" ms"), "{line}");
    }
    let latest = MIGRATIONS.latest();
    assert!(migrations.contains(&format!("  now at version {latest} (was 0), integrity ok")));
    assert_aligned(
        &migrations
            .iter()
            .filter(|l| l.ends_with(" ms"))
            .collect::<Vec<_>>(),
    );

    // The connection settings in effect, read back from SQLite.
    let settings = section(&out, "Connection");
    for (name, value) in [
        ("journal_mode", "WAL"),
        ("synchronous", "NORMAL"),
        ("foreign_keys", "ON"),
        ("busy_timeout", "5000 ms"),
        ("cache_size", "-20000"),
        ("temp_store", "MEMORY"),
        ("mmap_size", "128 MiB"),
    ] {
        assert!(
            settings
                .iter()
                .any(|l| l.starts_with(&format!("  {name} ")) && l.contains(value)),
            "{name} is not {value}: {settings:?}"
        );
    }

    let workload = section(&out, "Workload");
    let line = |prefix: &str| {
        workload
            .iter()
            .find(|l| l.starts_with(&format!("  {prefix}")))
            .cloned()
            .unwrap_or_else(|| panic!("no `{prefix}` line: {workload:#?}"))
    };
    let insert = line("insert, one transaction");
    assert!(
        insert.contains("10,000 users") && insert.contains("users/s"),
        "{insert}"
    );
    // The email as a user types it finds the account (NOCASE, migration 6).
    assert!(line("lookup by email").contains("User4242@DEMO.EXAMPLE: user 4242,"));
    assert!(line("update a bio").contains("1 row changed"));
    // The update reached the search index through its trigger.
    assert!(line("search `zeppelins`").contains("   1 user, best match"));
    assert!(!workload.iter().any(|l| l.contains("remove the last run")));
    assert_aligned(&workload.iter().collect::<Vec<_>>());

    // Every query of the application goes through an index.
    let plans = section(&out, "Query plans");
    assert_eq!(plans.len(), 5, "{plans:#?}");
    for expected in [
        "SEARCH users USING INDEX users_email (email=?)",
        "SCAN users USING INDEX users_created_at",
        "SEARCH posts USING INDEX posts_author_published (author_id=?)",
        "SEARCH events USING INDEX events_kind_day (kind=?)",
        "SCAN users_fts VIRTUAL TABLE INDEX",
    ] {
        assert!(
            plans.iter().any(|l| l.contains(expected)),
            "no `{expected}` in {plans:#?}"
        );
    }

    let stats = section(&out, "Database");
    for expected in [
        format!("version                       {latest} of {latest}"),
        "page_size                     8,192 bytes".to_owned(),
        "journal_mode                  WAL".to_owned(),
        "auto_vacuum                   INCREMENTAL".to_owned(),
        "users rows                    10,000".to_owned(),
        "events rows                   10,000".to_owned(),
        "posts rows                    2,000".to_owned(),
    ] {
        assert!(
            stats.iter().any(|l| l.trim_start() == expected),
            "no `{expected}` in {stats:#?}"
        );
    }
    for prefix in ["page_count", "freelist", "file size", "WAL size"] {
        assert!(stats.iter().any(|l| l.trim_start().starts_with(prefix)));
    }
    assert_readable(&out);

    // Second run: nothing pending, and the workload runs again.
    let second = run(&[&db]);
    let out = stdout(&second);
    assert!(second.status.success(), "{}\n{out}", stderr(&second));
    assert!(out.contains("(existing database)"));
    let migrations = section(&out, "Migrations");
    assert_eq!(
        migrations[0],
        format!("  nothing to apply: the database is at version {latest}")
    );
    assert!(!migrations.iter().any(|l| l.starts_with("  applied")));
    let workload = section(&out, "Workload");
    assert!(workload[0].starts_with("  remove the last run's users"));
    assert!(workload[0].contains("10,000 users"));
    // AUTOINCREMENT: the new users got new ids.
    assert!(out.contains("User4242@DEMO.EXAMPLE: user 14242,"), "{out}");
    assert_readable(&out);

    assert_schema(&Connection::open(&db).unwrap());
}

/// The database the demo leaves: what the migrations promise.
fn assert_schema(conn: &Connection) {
    let latest = MIGRATIONS.latest();
    assert_eq!(pragma::<u32>(conn, "user_version"), latest);
    let history: Vec<(u32, String, String)> = conn
        .prepare("SELECT version, checksum, state FROM _migrate_history ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(u32, String, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version(), m.checksum().to_string(), "applied".to_owned()))
        .collect();
    assert_eq!(history, expected);
    MIGRATIONS.verify(conn).unwrap();

    // New-database settings from the migrator, and migration 7.
    assert_eq!(pragma::<i64>(conn, "page_size"), 8192);
    assert_eq!(pragma::<String>(conn, "journal_mode"), "wal");
    assert_eq!(pragma::<i64>(conn, "auto_vacuum"), 2, "INCREMENTAL");
    assert_eq!(pragma::<String>(conn, "integrity_check"), "ok");
    assert_eq!(
        count(conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );

    // STRICT tables.
    for table in ["users", "posts", "events"] {
        let strict: i64 = conn
            .query_row(
                "SELECT strict FROM pragma_table_list WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(strict, 1, "{table} is not STRICT");
    }
    // The indexes the queries need.
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "events_kind_day",
            "events_user",
            "posts_author_published",
            "users_created_at",
            "users_email"
        ]
    );

    // Generated columns: `kind` VIRTUAL (hidden 2), `day` STORED (hidden 3).
    let hidden = |column: &str| -> i64 {
        conn.query_row(
            "SELECT hidden FROM pragma_table_xinfo('events') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((hidden("kind"), hidden("day")), (2, 3));
    let (kind, day): (String, String) = conn
        .query_row("SELECT kind, day FROM events LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kind, "signup");
    assert_eq!(day.len(), "2024-01-31".len());

    // The second run replaced the first run's rows instead of adding to them.
    assert_eq!(count(conn, "SELECT count(*) FROM users"), 10_000);
    assert_eq!(count(conn, "SELECT min(id) FROM users"), 10_001);
    assert_eq!(count(conn, "SELECT count(*) FROM events"), 10_000);

    // The full-text index is in sync with the table.
    conn.execute_batch("INSERT INTO users_fts (users_fts, rank) VALUES ('integrity-check', 1)")
        .unwrap();
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM users_fts WHERE users_fts MATCH 'zeppelins'"
        ),
        1
    );

    // Emails are unique regardless of case, and must look like an email.
    let duplicate = conn.execute(
        "INSERT INTO users (email, name) VALUES ('USER1@Demo.Example', 'Copy')",
        [],
    );
    assert!(duplicate.unwrap_err().to_string().contains("UNIQUE"));
    let no_at = conn.execute("INSERT INTO users (email, name) VALUES ('nobody', 'N')", []);
    assert!(no_at.unwrap_err().to_string().contains("CHECK"));
}

/// The lines' last columns (durations) end at the same column.
fn assert_aligned(lines: &[&String]) {
    let ends: Vec<usize> = lines
        .iter()
        .map(|l| l.find(" ms").map_or(l.len(), |at| at + 3))
        .collect();
    assert!(
        ends.windows(2).all(|w| w[0] == w[1]),
        "durations not aligned: {lines:#?}"
    );
}

/// No debug dumps in the output.
fn assert_readable(out: &str) {
    for dump in ["Some(", "None", "Ok(", "Err(", "{ ", "Duration", "\\n"] {
        assert!(!out.contains(dump), "`{dump}` in the output:\n{out}");
    }
}

#[test]
fn check_passes_on_a_migrated_database_and_fails_on_drift() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    {
        let mut conn = Connection::open(&db).unwrap();
        migrations_example::configure(&conn).unwrap();
        migrations_example::migrator().migrate(&mut conn).unwrap();
    }
    let latest = MIGRATIONS.latest();

    let ok = run(&[OsStr::new("--check"), db.as_os_str()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(
        stdout(&ok),
        format!("ok: {} is at version {latest} of {latest}\n", db.display())
    );

    // Migration 3's file "was edited after it was applied": the database
    // recorded another checksum than the one embedded in the program.
    let recorded = "0".repeat(64);
    let conn = Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE _migrate_history SET checksum = ?1 WHERE version = 3",
        [&recorded],
    )
    .unwrap();
    // Each history row may also record a hash chain over the checksums up
    // to it, which an edit of file 3 changes from row 3 on: change it too,
    // as a program built with the other file 3 would have recorded it.
    let has_chain = count(
        &conn,
        "SELECT count(*) FROM pragma_table_info('_migrate_history') WHERE name = 'chain'",
    ) == 1;
    if has_chain {
        conn.execute(
            "UPDATE _migrate_history SET chain = ?1 WHERE version >= 3",
            [&recorded],
        )
        .unwrap();
    }
    let current = MIGRATIONS.get(3).unwrap().checksum().to_string();

    let drift = run(&[OsStr::new("--check"), db.as_os_str()]);
    assert_one_line_error(
        &drift,
        "migration 3 (003_add_users_bio.sql) was edited after it was applied",
    );
    let message = stderr(&drift);
    assert!(
        message.contains(&recorded) && message.contains(&current),
        "{message}"
    );
    assert_eq!(stdout(&drift), "");

    // The demo itself refuses to run on that database, and writes nothing.
    let demo = run(&[&db]);
    assert_one_line_error(&demo, "was edited after it was applied");
    assert_eq!(count(&conn, "SELECT count(*) FROM users"), 0);
    assert_eq!(pragma::<u32>(&conn, "user_version"), latest);
}

#[test]
fn check_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let out = run(&[OsStr::new("--check"), db.as_os_str()]);
    assert_one_line_error(&out, "there is no database at");
    assert!(!db.exists());
}

#[test]
fn bad_arguments_get_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();

    // A directory.
    let out = run(&[dir.path()]);
    assert_one_line_error(&out, "is a directory");

    // A file that is not a database: refused, and left as it was.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "shopping list: milk, eggs\n").unwrap();
    for args in [
        vec![text.as_os_str()],
        vec![OsStr::new("--check"), text.as_os_str()],
    ] {
        let out = run(&args);
        assert_one_line_error(&out, "is not a SQLite database");
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "shopping list: milk, eggs\n"
    );

    // A path that cannot be created: under a missing directory, or under
    // a file.
    for (path, says) in [
        (
            dir.path().join("missing").join("app.db"),
            "missing does not exist",
        ),
        (text.join("app.db"), "is not a directory"),
    ] {
        let out = run(&[&path]);
        assert_one_line_error(&out, says);
        assert!(!path.exists());
    }

    // Usage errors: status 2.
    for args in [vec!["--frobnicate"], vec!["a.db", "b.db"]] {
        let out = run(&args);
        assert_one_line_error(&out, "usage: migrate [--check] [DATABASE]");
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn without_arguments_the_database_goes_under_the_target_directory() {
    let out = run::<&str>(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let target = profile_dir().parent().unwrap().to_path_buf();
    let expected = Path::new(&target).join("migrate-demo").join("demo.db");
    let first = stdout(&out).lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with(&format!("migrate demo: {} (", expected.display())),
        "{first}"
    );
    assert!(expected.is_file());
}

/// `lock` with every migration already locked writes nothing.
#[test]
fn lock_appends_nothing_when_everything_is_locked() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/migrate.lock");
    let before = std::fs::read(&lock).unwrap();
    let out = run(&["lock"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("nothing to lock: every migration is in "),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(&lock).unwrap(), before);
    let out = run(&["lock", "extra.db"]);
    assert_eq!(out.status.code(), Some(2));
}
