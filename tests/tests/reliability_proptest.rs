//! Property tests of the whole product.
//!
//! 1. Random migration sets, some with a failing statement, applied by a
//!    random sequence of runs, each interrupted at a random point (a failing
//!    migration, `SQLITE_FULL` through `max_page_count`, `sqlite3_interrupt`
//!    after a random delay, a target version), with failing migrations
//!    fixed between runs. After every run: `user_version` equals the newest
//!    history row, the history is a prefix of the set, every applied
//!    migration's checksum matches, the database equals a fresh database
//!    migrated to the same version, and a run that failed left nothing of
//!    the failed migration (nothing at all in single-transaction mode).
//! 2. `Migrations::from_dir` on random directory contents (names, contents,
//!    subdirectories, invalid UTF-8) never panics, and either loads a
//!    contiguous set whose checksums match the files or returns
//!    `Error::Source`; a loaded set is then migrated without panicking.
//!
//! Environment: `MIGRATE_FULL=1` runs 256 cases of each property instead of
//! 32 and 64.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use migrate_core::{Checksum, Error, Migrations};
use migrate_tests::{fingerprint, full_size, integrity, open};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rusqlite::Connection;

/// Failing cases are saved here (relative to the `tests` package) and
/// replayed first on every run.
const REGRESSIONS: FileFailurePersistence =
    FileFailurePersistence::Direct("proptest-regressions/reliability_proptest.txt");

fn cases(default: u32) -> u32 {
    if full_size() {
        256
    } else {
        default
    }
}

/// How a migration of a generated set fails, if it does.
#[derive(Debug, Clone, Copy)]
enum Failure {
    MissingTable,
    Unique,
    Syntax,
    Check,
}

#[derive(Debug, Clone)]
struct MigrationSpec {
    rows: u32,
    /// Extra good statements after the first two.
    extra: usize,
    /// The failing statement and where it goes among the statements.
    failure: Option<(Failure, usize)>,
}

impl MigrationSpec {
    fn sql(&self, version: usize) -> String {
        let mut statements = vec![
            format!(
                "CREATE TABLE t{version} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0), \
                 label TEXT UNIQUE)"
            ),
            format!(
                "INSERT INTO t{version} (v, label) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                 SELECT i + 1 FROM n WHERE i < {}) SELECT i * {version}, 'm{version}-' || i FROM n",
                self.rows
            ),
        ];
        for k in 0..self.extra {
            statements.push(match k % 3 {
                0 => format!("CREATE INDEX t{version}_v{k} ON t{version} (v)"),
                1 => format!("UPDATE t{version} SET v = v + {k} WHERE id % 3 = 0"),
                _ => format!("ALTER TABLE t{version} ADD COLUMN extra{k} TEXT DEFAULT 'x'"),
            });
        }
        if let Some((failure, at)) = self.failure {
            let bad = match failure {
                Failure::MissingTable => format!("INSERT INTO no_such_table_{version} VALUES (1)"),
                Failure::Unique => {
                    format!("INSERT INTO t{version} (v, label) VALUES (1, 'dup'), (2, 'dup')")
                }
                Failure::Syntax => "CREATE TABLEE oops (x)".to_owned(),
                Failure::Check => format!("INSERT INTO t{version} (v) VALUES (-1)"),
            };
            let at = at.min(statements.len());
            // A failure before the table exists must still fail.
            statements.insert(at.max(1), bad);
        }
        let mut sql = format!("-- migration {version}\n");
        for s in statements {
            sql.push_str(&s);
            sql.push_str(";\n");
        }
        sql
    }

    fn fixed(&self) -> MigrationSpec {
        MigrationSpec {
            failure: None,
            ..self.clone()
        }
    }
}

fn migration_spec() -> impl Strategy<Value = MigrationSpec> {
    let failure = prop_oneof![
        Just(Failure::MissingTable),
        Just(Failure::Unique),
        Just(Failure::Syntax),
        Just(Failure::Check),
    ];
    (
        1u32..2500,
        0usize..4,
        prop::option::weighted(0.3, (failure, 0usize..6)),
    )
        .prop_map(|(rows, extra, failure)| MigrationSpec {
            rows,
            extra,
            failure,
        })
}

/// One run of the migrator and how it is interrupted.
#[derive(Debug, Clone)]
struct RunSpec {
    /// Fix (remove the failure of) the first failing migration first.
    fix_first_failure: bool,
    single_transaction: bool,
    /// `migrate_to` this version (may be below the database's).
    target: Option<usize>,
    /// `max_page_count` = current page count + this.
    page_room: Option<i64>,
    /// `sqlite3_interrupt` after this many microseconds.
    interrupt_after_us: Option<u64>,
}

fn run_spec(migrations: usize) -> impl Strategy<Value = RunSpec> {
    (
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::option::weighted(0.3, 0..=migrations),
        prop::option::weighted(0.25, 0i64..40),
        prop::option::weighted(0.4, 0u64..4_000),
    )
        .prop_map(
            |(fix_first_failure, single_transaction, target, page_room, interrupt_after_us)| {
                RunSpec {
                    fix_first_failure,
                    single_transaction,
                    target,
                    page_room,
                    interrupt_after_us,
                }
            },
        )
}

fn scenario() -> impl Strategy<Value = (Vec<MigrationSpec>, Vec<RunSpec>)> {
    prop::collection::vec(migration_spec(), 1..7).prop_flat_map(|set| {
        let n = set.len();
        (Just(set), prop::collection::vec(run_spec(n), 1..6))
    })
}

fn write_set(dir: &Path, set: &[MigrationSpec]) -> Migrations {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (i, spec) in set.iter().enumerate() {
        let version = i + 1;
        std::fs::write(
            dir.join(format!("{version:03}_m{version}.sql")),
            spec.sql(version),
        )
        .unwrap();
    }
    Migrations::from_dir(dir).unwrap()
}

fn user_version(conn: &Connection) -> usize {
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    v as usize
}

/// A fresh in-memory database migrated to `version` with `migrations`:
/// what the database under test must equal (without timing columns).
fn reference(migrations: &Migrations, version: usize) -> String {
    let mut conn = Connection::open_in_memory().unwrap();
    if version > 0 {
        migrations
            .migrate_to(&mut conn, u32::try_from(version).unwrap())
            .unwrap();
    }
    fingerprint(&conn, false)
}

fn check_invariants(conn: &Connection, migrations: &Migrations, context: &str) -> usize {
    assert_eq!(integrity(conn), "ok", "{context}");
    let status = migrations.status(conn).unwrap();
    let history = status.history();
    let versions: Vec<u32> = history.iter().map(|r| r.version).collect();
    let k = versions.len();
    assert_eq!(
        versions,
        (1..=u32::try_from(k).unwrap()).collect::<Vec<_>>(),
        "{context}: the history is a prefix of the set"
    );
    assert_eq!(
        user_version(conn),
        k,
        "{context}: user_version equals the newest history row"
    );
    for row in history {
        assert_eq!(row.state, "applied", "{context}");
        let m = migrations.get(row.version).unwrap();
        assert_eq!(
            row.checksum,
            m.checksum().to_string(),
            "{context}: checksum of version {}",
            row.version
        );
    }
    migrations.verify(conn).unwrap();
    k
}

fn run_scenario(set: &[MigrationSpec], runs: &[RunSpec]) {
    let mut set = set.to_vec();
    let n = set.len();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    let db = tmp.path().join("app.db");
    let mut conn = open(&db);
    let mut migrations = write_set(&dir, &set);
    let mut references: HashMap<usize, String> = HashMap::new();

    for (step, run) in runs.iter().enumerate() {
        let k_before = user_version(&conn);
        if run.fix_first_failure {
            // Only a migration not applied yet may change.
            if let Some(i) = set.iter().position(|m| m.failure.is_some()) {
                if i >= k_before {
                    set[i] = set[i].fixed();
                    migrations = write_set(&dir, &set);
                    references.clear();
                }
            }
        }
        let before = fingerprint(&conn, true);
        let context = format!("step {step} ({run:?}) from version {k_before}");

        if let Some(room) = run.page_room {
            let pages: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + room))
                .unwrap();
        }
        let interrupter = run.interrupt_after_us.map(|us| {
            let handle = conn.get_interrupt_handle();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(us));
                handle.interrupt();
            })
        });
        let mut migrator = migrations
            .migrator()
            .single_transaction(run.single_transaction);
        if let Some(target) = run.target {
            migrator = migrator.target(u32::try_from(target).unwrap());
        }
        let result = migrator.migrate(&mut conn);
        if let Some(thread) = interrupter {
            thread.join().unwrap();
        }
        conn.execute_batch("PRAGMA max_page_count = 2147483646")
            .unwrap();
        assert!(conn.is_autocommit(), "{context}: left inside a transaction");

        // Invariants, seen through a fresh connection and this one.
        let k = check_invariants(&open(&db), &migrations, &context);
        assert_eq!(check_invariants(&conn, &migrations, &context), k);
        let expected = references
            .entry(k)
            .or_insert_with(|| reference(&migrations, k));
        assert_eq!(
            &fingerprint(&conn, false),
            expected,
            "{context}: the database must equal a fresh one migrated to version {k}"
        );
        let target = run.target.unwrap_or(n);
        match &result {
            Ok(report) => {
                assert_eq!(report.version() as usize, k, "{context}");
                assert_eq!(k, target.max(k_before), "{context}");
                assert!(
                    target >= k_before,
                    "{context}: a target below the database's version must be refused"
                );
            }
            Err(err) => {
                assert!(
                    k >= k_before && k <= target.max(k_before),
                    "{context}: {err}"
                );
                if let Error::Migration { version, .. } = err {
                    let failed = *version as usize;
                    if run.single_transaction {
                        // All of the run's migrations were rolled back.
                        assert!(failed > k_before && k == k_before, "{context}: {err}");
                    } else {
                        // Those before it stay applied, nothing of it does.
                        assert_eq!(failed, k + 1, "{context}: {err}");
                    }
                }
                let after_commit = err.to_string().contains("integrity");
                if run.single_transaction && !after_commit {
                    assert_eq!(k, k_before, "{context}: single transaction: {err}");
                }
                if k == k_before {
                    assert_eq!(
                        fingerprint(&conn, true),
                        before,
                        "{context}: a failed run must leave the database exactly as before: {err}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(32),
        max_shrink_iters: 200,
        failure_persistence: Some(Box::new(REGRESSIONS)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_sets_and_interruptions_keep_the_invariants((set, runs) in scenario()) {
        run_scenario(&set, &runs);
    }
}

/// One entry of a random migrations directory.
#[derive(Debug, Clone)]
enum Entry {
    File(String, Vec<u8>),
    Dir(String),
}

fn file_name() -> impl Strategy<Value = String> {
    let version = prop_oneof![
        (1u32..6).prop_map(|v| v.to_string()),
        (1u32..6).prop_map(|v| format!("{v:03}")),
        Just("0".to_owned()),
        Just("2147483647".to_owned()),
        Just("2147483648".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just(String::new()),
        "[0-9]{1,4}",
    ];
    let name = prop_oneof![
        Just(String::new()),
        "_[a-z_]{0,8}",
        "_[a-zA-Z0-9 .\\-]{0,8}",
        "[\\-. ][a-z]{0,4}",
        "_\\PC{1,6}",
    ];
    let suffix = prop_oneof![
        Just(".sql"),
        Just(".down.sql"),
        Just(".SQL"),
        Just(".sql.bak"),
        Just(".txt"),
        Just(""),
    ];
    prop_oneof![
        8 => (version, name, suffix).prop_map(|(v, n, s)| format!("{v}{n}{s}")),
        1 => "\\.[a-z0-9_]{0,8}(\\.sql)?",
        1 => "\\PC{1,16}",
    ]
    .prop_filter("a valid file name on this system", |s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && !s.contains('/')
            && !s.contains('\0')
            && s.len() < 200
    })
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        Just("CREATE TABLE a (x);\n".to_owned()),
        Just("CREATE TABLE IF NOT EXISTS b (x);\nINSERT INTO b VALUES (1);\n".to_owned()),
        Just("-- migrate:no-transaction\nCREATE TABLE IF NOT EXISTS c (x);\n".to_owned()),
        Just("-- migrate:no-transactoin\nSELECT 1;\n".to_owned()),
        Just("-- migrate:\nSELECT 1;\n".to_owned()),
        Just("-- only a comment\n".to_owned()),
        Just("/* unterminated comment\nSELECT 1;".to_owned()),
        Just("\u{feff}SELECT 1;\r\nSELECT 2;\r\n".to_owned()),
        Just("SELECT 'unterminated;\n".to_owned()),
        Just("BEGIN;\nCREATE TABLE IF NOT EXISTS d (x);\nCOMMIT;\n".to_owned()),
        Just(String::new()),
        Just("   \n\t\n".to_owned()),
        "\\PC{0,60}",
        "(SELECT [0-9]{1,3}; ?|-- [a-z:\\-]{0,20}\n|/\\* ?\\*/|'é;'|;){0,8}",
    ];
    prop_oneof![
        8 => text.prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(vec![b'S', b'E', b'L', 0xff, 0xfe, b';']),
    ]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        prop_oneof![
            9 => (file_name(), contents()).prop_map(|(n, c)| Entry::File(n, c)),
            1 => file_name().prop_map(Entry::Dir),
        ],
        0..8,
    )
}

fn from_dir_never_panics(entries: &[Entry]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for entry in entries {
        match entry {
            Entry::File(name, bytes) => {
                let path = dir.join(name);
                if path.is_dir() {
                    continue;
                }
                std::fs::write(path, bytes).unwrap();
            }
            Entry::Dir(name) => {
                let path = dir.join(name);
                if path.exists() {
                    continue;
                }
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("001_inside.sql"), "SELECT 1;").unwrap();
            }
        }
    }
    match Migrations::from_dir(dir) {
        Ok(migrations) => {
            let versions: Vec<u32> = migrations.iter().map(|m| m.version()).collect();
            assert_eq!(
                versions,
                (1..=u32::try_from(migrations.len()).unwrap()).collect::<Vec<_>>(),
                "a loaded set is contiguous from 1"
            );
            for m in &migrations {
                let text = std::fs::read_to_string(dir.join(m.file_name())).unwrap();
                assert_eq!(m.sql(), text);
                assert_eq!(m.checksum(), Checksum::of(&text), "{}", m.file_name());
            }
            // Whatever the SQL, migrating returns (Ok or an error), never panics.
            let mut conn = Connection::open_in_memory().unwrap();
            let _ = migrations.migrate(&mut conn);
            assert!(conn.is_autocommit());
        }
        Err(Error::Source { problems, .. }) => {
            assert!(!problems.is_empty());
            assert!(problems.iter().all(|p| !p.trim().is_empty()));
        }
        Err(other) => panic!("from_dir returned {other:?}, not Error::Source"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(64),
        failure_persistence: Some(Box::new(REGRESSIONS)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn from_dir_on_random_directories_never_panics(entries in entries()) {
        from_dir_never_panics(&entries);
    }
}

/// The directory cases found interesting enough to keep, run every time.
#[test]
fn from_dir_on_known_odd_directories() {
    let cases: Vec<Vec<Entry>> = vec![
        vec![],
        vec![Entry::File("1.sql".into(), "\u{feff}SELECT 'é';".into())],
        vec![Entry::File("001_é.sql".into(), "SELECT 1;".into())],
        vec![Entry::File("1_a.sql".into(), vec![0xc3])],
        vec![
            Entry::File("1_a.sql".into(), "SELECT 1;".into()),
            Entry::File("01_b.sql".into(), "SELECT 1;".into()),
        ],
        vec![Entry::Dir("001_dir.sql".into())],
        vec![Entry::File(
            "1_a.sql".into(),
            "SELECT 1; -- é\n/* ü */ SELECT 'ß;';".into(),
        )],
    ];
    for entries in cases {
        from_dir_never_panics(&entries);
    }
}
