//! Code shared by the three benchmark binaries (ours, refinery,
//! rusqlite_migration): the generated migrations, plain rusqlite (the
//! baseline: the same SQL in the same transactions, no bookkeeping), timing,
//! memory and the line protocol the driver reads.
//!
//! Each binary includes this file with `#[path]`, so `rusqlite` below is that
//! binary's own rusqlite (0.43 for ours, 0.40 for the peers) and the plain
//! baseline is the same code in every binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `--key value` and `--flag` arguments after the subcommand.
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    pub fn parse(args: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let key = args[i].trim_start_matches("--").to_owned();
            match args.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    map.insert(key, v.clone());
                    i += 2;
                }
                _ => {
                    map.insert(key, "true".to_owned());
                    i += 1;
                }
            }
        }
        Args { map }
    }
    pub fn str(&self, key: &str) -> Res<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{key}").into())
    }
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.map.get(key).map_or(default, String::as_str)
    }
    pub fn num(&self, key: &str) -> Res<usize> {
        Ok(self.str(key)?.parse()?)
    }
    pub fn num_or(&self, key: &str, default: usize) -> Res<usize> {
        match self.map.get(key) {
            Some(v) => Ok(v.parse()?),
            None => Ok(default),
        }
    }
    pub fn flag(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    pub fn path(&self, key: &str) -> Res<PathBuf> {
        Ok(PathBuf::from(self.str(key)?))
    }
}

// ---------------------------------------------------------------------------
// The generated migrations.

/// `n` small migrations, as a real project's history looks: every fourth
/// creates a table, the others add a column, an index or a few rows to it.
pub fn small_migrations(n: usize) -> Vec<String> {
    (1..=n)
        .map(|v| {
            let t = (v - 1) / 4;
            match (v - 1) % 4 {
                0 => format!(
                    "CREATE TABLE t{t} (\n    id INTEGER PRIMARY KEY,\n    \
                     name TEXT NOT NULL DEFAULT '',\n    created TEXT\n);\n"
                ),
                1 => format!("ALTER TABLE t{t} ADD COLUMN score INTEGER NOT NULL DEFAULT 0;\n"),
                2 => format!("CREATE INDEX t{t}_name ON t{t} (name);\n"),
                _ => format!(
                    "INSERT INTO t{t} (name, created) VALUES ('a', '2024-01-01'), ('b', \
                     '2024-01-02'), ('c', '2024-01-03');\nUPDATE t{t} SET score = id * 2;\n"
                ),
            }
        })
        .collect()
}

/// The big database: version 1 the schema (a parent table, a child table
/// with `ON DELETE CASCADE`, a small settings table), version 2 its rows.
pub fn big_base(rows: usize, child_rows: usize) -> Vec<String> {
    let schema =
        "CREATE TABLE parent (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL,\n    \
                  value INTEGER NOT NULL,\n    created TEXT NOT NULL\n);\n\
                  CREATE INDEX parent_value ON parent (value);\n\
                  CREATE TABLE child (\n    id INTEGER PRIMARY KEY,\n    \
                  parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE,\n    \
                  note TEXT NOT NULL\n);\n\
                  CREATE INDEX child_parent ON child (parent_id);\n\
                  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n\
                  INSERT INTO settings VALUES ('a', '1'), ('b', '2'), ('c', '3');\n"
            .to_owned();
    let fill = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})\n\
         INSERT INTO parent (id, name, value, created)\n\
         SELECT x, 'parent number ' || x, (x * 7919) % 100003, '2024-01-01T00:00:00Z' FROM c;\n\
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {child_rows})\n\
         INSERT INTO child (id, parent_id, note)\n\
         SELECT x, 1 + (x * 31) % {rows}, 'child note ' || x FROM c;\n"
    );
    vec![schema, fill]
}

/// Version 3 for scenario 3: rebuild the parent table (the 12-step
/// procedure: create, copy, drop, rename, re-index).
pub const REBUILD: &str = "CREATE TABLE parent_new (\n    id INTEGER PRIMARY KEY,\n    \
    name TEXT NOT NULL,\n    value INTEGER NOT NULL,\n    created TEXT NOT NULL,\n    \
    flags INTEGER NOT NULL DEFAULT 0\n);\n\
    INSERT INTO parent_new (id, name, value, created) SELECT id, name, value, created FROM parent;\n\
    DROP TABLE parent;\n\
    ALTER TABLE parent_new RENAME TO parent;\n\
    CREATE INDEX parent_value ON parent (value);\n";

/// Version 3 for scenario 5: a small change next to the big tables.
pub const ADD_COLUMN: &str = "ALTER TABLE settings ADD COLUMN note TEXT NOT NULL DEFAULT '';\n";

pub fn big_migrations(rows: usize, child_rows: usize, kind: &str) -> Res<Vec<String>> {
    let mut list = big_base(rows, child_rows);
    list.push(match kind {
        "rebuild" => REBUILD.to_owned(),
        "addcol" => ADD_COLUMN.to_owned(),
        other => return Err(format!("unknown --kind {other}").into()),
    });
    Ok(list)
}

/// The cascade reproduction: a small parent with an `ON DELETE CASCADE`
/// child, then the parent rebuilt.
pub fn cascade_migrations() -> Vec<String> {
    let mut list = big_base(100, 1000);
    list.push(REBUILD.to_owned());
    list
}

// ---------------------------------------------------------------------------
// Plain rusqlite: the limit.

/// Applies the migrations with plain rusqlite: one `BEGIN IMMEDIATE` ...
/// `COMMIT` per migration, or all in one. Foreign keys are turned off
/// around the run, as a careful hand-written runner would (otherwise a
/// table rebuild cascades).
pub fn plain_apply(conn: &Connection, sqls: &[String], single: bool) -> Res<()> {
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    if single {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for sql in sqls {
            conn.execute_batch(sql)?;
        }
        conn.execute_batch("COMMIT")?;
    } else {
        for sql in sqls {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(sql)?;
            conn.execute_batch("COMMIT")?;
        }
    }
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    Ok(())
}

/// The reference floor of a migrator that keeps a history: plain
/// rusqlite's SQL in one transaction, plus (in that transaction) a history
/// row for each file, as the runner writes them, and `user_version`; then,
/// with `check`, that integrity check. Migrations `first..` of `sqls` run
/// (numbered from 1). `create`: the history table's SQL, when the database
/// has none yet. No verification, no foreign-key check.
pub fn plain_with_history(
    conn: &Connection,
    sqls: &[String],
    first: usize,
    create: Option<&str>,
    check: Option<&str>,
) -> Res<()> {
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE")?;
    for sql in &sqls[first - 1..] {
        conn.execute_batch(sql)?;
    }
    if let Some(create) = create {
        conn.execute_batch(create)?;
    }
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO _migrate_history \
             (version, name, checksum, applied_at, duration_us, chain, state) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5, 'applied')",
        )?;
        let hex = "0123456789abcdef".repeat(4);
        for v in first..=sqls.len() {
            stmt.execute(rusqlite::params![
                v as i64,
                format!("m{v}"),
                hex,
                "2026-01-01T00:00:00.000Z",
                hex
            ])?;
        }
    }
    conn.execute_batch(&format!("PRAGMA user_version = {}; COMMIT", sqls.len()))?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    if let Some(pragma) = check {
        let mut stmt = conn.prepare(pragma)?;
        let result: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if result != ["ok"] {
            return Err(format!("{pragma}: {result:?}").into());
        }
    }
    Ok(())
}

/// The warm baseline: the least any check does, one `PRAGMA user_version`.
pub fn plain_user_version(conn: &Connection) -> Res<i64> {
    let mut stmt = conn.prepare_cached("PRAGMA user_version")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// The fresh baseline: open, and one query on the schema (which makes
/// SQLite read and parse the schema, as any real first query does).
pub fn plain_open_and_query(path: &Path) -> Res<Connection> {
    let conn = Connection::open(path)?;
    let _: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    Ok(conn)
}

pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}

pub fn foreign_keys_default() -> Res<i64> {
    let conn = Connection::open_in_memory()?;
    Ok(conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?)
}

pub fn count(conn: &Connection, table: &str) -> Res<i64> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
}

// ---------------------------------------------------------------------------
// Measuring.

pub fn time<T>(f: impl FnOnce() -> Res<T>) -> Res<(f64, T)> {
    let t0 = Instant::now();
    let out = f()?;
    Ok((t0.elapsed().as_secs_f64(), out))
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss() -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmHWM:") {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse()?;
            return Ok(kb * 1024);
        }
    }
    Err("no VmHWM in /proc/self/status".into())
}

/// One measurement for the driver: `S <group> <variant> <value> [<ratio>]`.
pub fn emit(group: &str, variant: &str, value: f64, ratio: Option<f64>) {
    match ratio {
        Some(r) => println!("S\t{group}\t{variant}\t{value:e}\t{r:e}"),
        None => println!("S\t{group}\t{variant}\t{value:e}\t-"),
    }
}

/// A fact for the driver: `I <key> <value>`.
pub fn info(key: &str, value: &str) {
    println!("I\t{key}\t{value}");
}

pub fn remove_db(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Copies a template database (a closed, checkpointed file) to `to`, and
/// flushes the copy to disk: otherwise the first commit's fsync would write
/// the whole copied file and be timed with the migration.
pub fn copy_db(from: &Path, to: &Path) -> Res<()> {
    remove_db(to);
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Rotates `items` by `round`, so that no library always runs first.
pub fn rotate<T: Clone>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    if !v.is_empty() {
        let k = round % v.len();
        v.rotate_left(k);
    }
    v
}

/// The subcommands every binary answers, with the library's own code
/// supplied by the binary.
pub trait Library {
    /// The library's name in the tables.
    fn name(&self) -> &'static str;
    /// The variants scenario 2 runs (e.g. all in one transaction).
    fn variants(&self) -> Vec<&'static str>;
    /// Whether a variant runs all migrations in one transaction (compared
    /// with plain rusqlite's single transaction instead of one each).
    fn single_variant(&self, variant: &str) -> bool;
    /// What the application builds once from its migrations (e.g. the
    /// migration list), before migrating or checking.
    fn prepare(&self, sqls: &[String]) -> Res<Prepared>;
    /// Applies the pending migrations with the library, to the newest
    /// version or to `target`; `variant` picks the options.
    fn migrate(
        &self,
        conn: &mut Connection,
        prepared: &Prepared,
        variant: &str,
        target: Option<usize>,
    ) -> Res<()>;
    /// The library's start-up check on an up-to-date database: what an
    /// application calls at every start (the same call as `migrate`).
    fn check(&self, conn: &mut Connection, prepared: &Prepared) -> Res<()> {
        self.migrate(conn, prepared, self.name(), None)
    }
    /// The SQL of the library's history table (ours only), for the
    /// reference variants that write the same rows with plain rusqlite.
    fn history_table(&self, _prepared: &Prepared) -> Res<Option<String>> {
        Ok(None)
    }
    /// A sketch timed next to the check (ours only): what a constant-time
    /// check costs with plain rusqlite on the same database.
    fn sketch(&self, _conn: &Connection, _prepared: &Prepared) -> Option<Res<()>> {
        None
    }
}

/// An opaque, library-specific object built once (e.g. the migration list).
pub type Prepared = Box<dyn std::any::Any>;

/// Runs the subcommand common to all binaries. Returns false when the
/// subcommand is not a common one.
pub fn run_common(lib: &dyn Library, cmd: &str, args: &Args) -> Res<bool> {
    match cmd {
        "info" => {
            info(&format!("sqlite.{}", lib.name()), sqlite_version());
            info(
                &format!("foreign_keys_default.{}", lib.name()),
                &foreign_keys_default()?.to_string(),
            );
        }
        "setup-check" => {
            let n = args.num("n")?;
            let db = args.path("db")?;
            remove_db(&db);
            let prepared = lib.prepare(&small_migrations(n))?;
            let mut conn = Connection::open(&db)?;
            lib.migrate(&mut conn, &prepared, lib.name(), None)?;
        }
        "check" => check(lib, args)?,
        "fresh" => fresh(lib, args)?,
        "template" => {
            let rows = args.num("rows")?;
            let child = args.num("child")?;
            let db = args.path("db")?;
            remove_db(&db);
            let sqls = big_migrations(rows, child, "rebuild")?;
            let mut conn = Connection::open(&db)?;
            let variant = args.str_or("variant", lib.name()).to_owned();
            if variant == "plain" {
                plain_apply(&conn, &sqls[..2], true)?;
            } else {
                let prepared = lib.prepare(&sqls)?;
                lib.migrate(&mut conn, &prepared, &variant, Some(2))?;
            }
            drop(conn);
        }
        "pending" => pending(lib, args)?,
        "big" => big(lib, args)?,
        "cascade" => cascade(lib)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Times `a` and `b` back to back, in alternating order.
fn pair(
    i: usize,
    mut a: impl FnMut() -> Res<()>,
    mut b: impl FnMut() -> Res<()>,
) -> Res<(f64, f64)> {
    if i.is_multiple_of(2) {
        let (ta, _) = time(&mut a)?;
        let (tb, _) = time(&mut b)?;
        Ok((ta, tb))
    } else {
        let (tb, _) = time(&mut b)?;
        let (ta, _) = time(&mut a)?;
        Ok((ta, tb))
    }
}

/// Scenario 1: the up-to-date check, pairs of (baseline, check) alternated
/// in this process; each call's ratio is to the baseline call next to it.
fn check(lib: &dyn Library, args: &Args) -> Res<()> {
    let n = args.num("n")?;
    let db = args.path("db")?;
    let iters = args.num("iters")?;
    let mode = args.str("mode")?;
    let prepared = lib.prepare(&small_migrations(n))?;
    let group = format!("check.{mode}.{n}");
    let name = lib.name();
    match mode {
        "warm" => {
            let mut conn = Connection::open(&db)?;
            let has_sketch = lib.sketch(&conn, &prepared).is_some();
            // Warm up: caches, prepared statements, the schema.
            for _ in 0..10.min(iters) {
                lib.check(&mut conn, &prepared)?;
                plain_user_version(&conn)?;
            }
            for i in 0..iters {
                let (base, lib_t) = if i.is_multiple_of(2) {
                    let (b, _) = time(|| plain_user_version(&conn))?;
                    let (l, _) = time(|| lib.check(&mut conn, &prepared))?;
                    (b, l)
                } else {
                    let (l, _) = time(|| lib.check(&mut conn, &prepared))?;
                    let (b, _) = time(|| plain_user_version(&conn))?;
                    (b, l)
                };
                emit(&group, "plain", base, None);
                emit(&group, name, lib_t, Some(lib_t / base));
                if has_sketch {
                    let (base, sketch_t) = pair(
                        i,
                        || plain_user_version(&conn).map(|_| ()),
                        || lib.sketch(&conn, &prepared).unwrap_or(Ok(())),
                    )?;
                    emit(&group, "sketch", sketch_t, Some(sketch_t / base));
                }
            }
        }
        "fresh" => {
            let run_lib = || -> Res<()> {
                let mut conn = Connection::open(&db)?;
                lib.check(&mut conn, &prepared)
            };
            let run_base = || -> Res<()> {
                drop(plain_open_and_query(&db)?);
                Ok(())
            };
            let run_sketch = || -> Res<()> {
                let conn = Connection::open(&db)?;
                lib.sketch(&conn, &prepared).unwrap_or(Ok(()))
            };
            let has_sketch = lib.sketch(&Connection::open(&db)?, &prepared).is_some();
            for _ in 0..3.min(iters) {
                run_lib()?;
                run_base()?;
            }
            for i in 0..iters {
                let (base, lib_t) = pair(i, run_base, run_lib)?;
                emit(&group, "plain", base, None);
                emit(&group, name, lib_t, Some(lib_t / base));
                if has_sketch {
                    let (base, sketch_t) = pair(i, run_base, run_sketch)?;
                    emit(&group, "sketch", sketch_t, Some(sketch_t / base));
                }
            }
        }
        other => return Err(format!("unknown --mode {other}").into()),
    }
    Ok(())
}

/// Scenario 2: a new database, all migrations applied; the library's
/// variants and plain rusqlite (a transaction per migration, and all in
/// one) alternate in this process, in a rotating order.
fn fresh(lib: &dyn Library, args: &Args) -> Res<()> {
    let n = args.num("n")?;
    let dir = args.path("dir")?;
    let iters = args.num("iters")?;
    let journal = args.str("journal")?;
    let sqls = small_migrations(n);
    let prepared = lib.prepare(&sqls)?;
    let group = format!("fresh.{journal}.{n}");
    let db = dir.join(format!("fresh-{}.db", lib.name()));
    let open = || -> Res<Connection> {
        remove_db(&db);
        let conn = Connection::open(&db)?;
        if journal == "wal" {
            let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        }
        Ok(conn)
    };
    let mut variants: Vec<&str> = vec!["plain-tx-each", "plain-single"];
    variants.extend(lib.variants());
    let history = lib.history_table(&prepared)?;
    // `--variants a,b` runs only those (for profiling one of them).
    if let Ok(only) = args.str("variants") {
        variants.retain(|v| only.split(',').any(|o| o == *v));
    }
    for i in 0..iters {
        let mut times: HashMap<&str, f64> = HashMap::new();
        for variant in rotate(&variants, i) {
            let mut conn = open()?;
            let (t, _) = time(|| match variant {
                "plain-tx-each" => plain_apply(&conn, &sqls, false),
                "plain-single" => plain_apply(&conn, &sqls, true),
                // References (ours only): what all in one costs with the
                // history rows, and with the whole check as well.
                "plain-single+history" => {
                    plain_with_history(&conn, &sqls, 1, history.as_deref(), None)
                }
                "plain-single+history+check" => plain_with_history(
                    &conn,
                    &sqls,
                    1,
                    history.as_deref(),
                    Some("PRAGMA integrity_check"),
                ),
                _ => lib.migrate(&mut conn, &prepared, variant, None),
            })?;
            if count(&conn, "sqlite_master")? == 0 {
                return Err(format!("{variant} created nothing").into());
            }
            times.insert(variant, t);
        }
        for &variant in &variants {
            let t = times[variant];
            let base = if lib.single_variant(variant) {
                times.get("plain-single")
            } else {
                times.get("plain-tx-each")
            };
            let ratio = match base {
                Some(b) if !matches!(variant, "plain-tx-each" | "plain-single") => Some(t / b),
                _ => None,
            };
            emit(&group, variant, t, ratio);
        }
    }
    remove_db(&db);
    Ok(())
}

/// The variants of the library that the pending scenario runs: ours with
/// the integrity levels a project with a long history would choose, the
/// peers as they are.
fn pending_variants(lib: &dyn Library) -> Vec<&'static str> {
    if lib.name() == "ours" {
        vec!["ours-changed", "ours-off"]
    } else {
        vec![lib.name()]
    }
}

/// One new migration on a database that has the other `n - 1` (a project
/// with a long history deploys a new version): on a copy of a template,
/// a fresh connection that has read the schema, the library's migrate call
/// timed next to plain rusqlite applying the same file to a copy of a
/// plain template, in alternating order in this process.
fn pending(lib: &dyn Library, args: &Args) -> Res<()> {
    let n = args.num("n")?;
    let dir = args.path("dir")?;
    let iters = args.num("iters")?;
    let sqls = small_migrations(n);
    let prepared = lib.prepare(&sqls)?;
    let group = format!("pending.{n}");
    let name = lib.name();
    let lib_template = dir.join(format!("pending-{name}-{n}.tpl"));
    let plain_template = dir.join(format!("pending-plain-{name}-{n}.tpl"));
    for template in [&lib_template, &plain_template] {
        remove_db(template);
        let mut conn = Connection::open(template)?;
        if template == &lib_template {
            lib.migrate(&mut conn, &prepared, name, Some(n - 1))?;
        } else {
            plain_apply(&conn, &sqls[..n - 1], true)?;
        }
    }
    // Every copy made and flushed first, then a pause: a commit's fsync
    // right after a copy's waits for the file system's journal to take the
    // copy, which made the first runs ten times slower than the rest.
    let variants = pending_variants(lib);
    let mut copies = Vec::new();
    for i in 0..iters {
        for (j, _) in variants.iter().enumerate() {
            let lib_copy = dir.join(format!("pending-{name}-{n}-{i}-{j}.db"));
            let plain_copy = dir.join(format!("pending-plain-{name}-{n}-{i}-{j}.db"));
            copy_db(&lib_template, &lib_copy)?;
            copy_db(&plain_template, &plain_copy)?;
            copies.push((lib_copy, plain_copy));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Opened, the schema read: the state of an application that opened
    // its database. Not timed.
    let opened = |db: &Path| -> Res<Connection> {
        let conn = Connection::open(db)?;
        let _: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        Ok(conn)
    };
    let last = &sqls[n - 1..];
    let mut copies = copies.iter();
    for i in 0..iters {
        for variant in rotate(&variants, i) {
            let (lib_copy, plain_copy) = copies.next().ok_or("fewer copies than runs")?;
            let mut lib_conn = opened(lib_copy)?;
            let base_conn = opened(plain_copy)?;
            let (base, lib_t) = pair(
                i,
                || plain_apply(&base_conn, last, false),
                || lib.migrate(&mut lib_conn, &prepared, variant, None),
            )?;
            emit(&group, "plain", base, None);
            emit(&group, variant, lib_t, Some(lib_t / base));
            drop((lib_conn, base_conn));
            remove_db(lib_copy);
            remove_db(plain_copy);
        }
    }
    for db in [&lib_template, &plain_template] {
        remove_db(db);
    }
    Ok(())
}

/// Scenarios 3, 4 and 5: one run of one variant on a copy of a template, in
/// a process of its own; prints the time of the migration and the
/// process's peak memory.
fn big(lib: &dyn Library, args: &Args) -> Res<()> {
    let rows = args.num("rows")?;
    let child = args.num("child")?;
    let kind = args.str("kind")?;
    let template = args.path("template")?;
    let db = args.path("db")?;
    let variant = args.str("variant")?;
    let sqls = big_migrations(rows, child, kind)?;
    // The table the migration changes, for the sketch of a `changed` check.
    let changed = if kind == "rebuild" {
        "parent"
    } else {
        "settings"
    };
    let prepared = lib.prepare(&sqls)?;
    copy_db(&template, &db)?;
    let mut conn = Connection::open(&db)?;
    let children_before = count(&conn, "child")?;
    let (t, _) = match variant {
        "plain" => time(|| plain_apply(&conn, &sqls[2..], false))?,
        // Sketches: plain plus the check a `changed` level would run, or
        // plus a whole-database foreign key check.
        "plain+check(table)" => time(|| {
            plain_apply(&conn, &sqls[2..], false)?;
            let r: String =
                conn.query_row(&format!("PRAGMA integrity_check({changed})"), [], |r| {
                    r.get(0)
                })?;
            if r != "ok" {
                return Err(r.into());
            }
            Ok(())
        })?,
        // On ours' template, which has the history table: plain plus the
        // history row and `user_version` in its transaction, and the check
        // of the changed table, the floor of any `changed` level.
        "plain+history+check(table)" => {
            let check = format!("PRAGMA integrity_check({changed})");
            time(|| plain_with_history(&conn, &sqls, 3, None, Some(&check)))?
        }
        "plain+fk_check" => time(|| {
            plain_apply(&conn, &sqls[2..], false)?;
            let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
            let n = stmt.query_map([], |_| Ok(()))?.count();
            if n != 0 {
                return Err("foreign key violations".into());
            }
            Ok(())
        })?,
        _ => {
            // Peers run with foreign keys off, as rusqlite_migration's docs
            // tell the caller to do for a rebuild (with them on, the
            // rebuild cascades: see the cascade scenario). Ours turns them
            // off itself, and then runs the foreign-key check; its
            // `/fk-off` variants run as the peers do (foreign keys off by
            // the caller: no foreign-key check).
            if !variant.starts_with("ours") || variant.ends_with("/fk-off") {
                conn.execute_batch("PRAGMA foreign_keys = OFF")?;
            }
            let r = time(|| lib.migrate(&mut conn, &prepared, variant, None))?;
            conn.execute_batch("PRAGMA foreign_keys = ON")?;
            r
        }
    };
    let children_after = count(&conn, "child")?;
    if children_after != children_before {
        return Err(format!(
            "{variant}: {children_before} child rows before, {children_after} after"
        )
        .into());
    }
    drop(conn);
    let rss = peak_rss()?;
    remove_db(&db);
    emit(&format!("{kind}.time"), variant, t, None);
    emit(&format!("{kind}.rss"), variant, rss as f64, None);
    Ok(())
}

/// The parent-table rebuild with foreign keys as a new connection has them
/// (ON with rusqlite's bundled SQLite), by the library with its defaults:
/// how many child rows survive.
fn cascade(lib: &dyn Library) -> Res<()> {
    let sqls = cascade_migrations();
    let prepared = lib.prepare(&sqls)?;
    let dir = std::env::temp_dir().join(format!("migrate-bench-cascade-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("cascade.db");
    remove_db(&db);
    let mut conn = Connection::open(&db)?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    lib.migrate(&mut conn, &prepared, lib.name(), Some(2))?;
    let before = count(&conn, "child")?;
    let result = lib.migrate(&mut conn, &prepared, lib.name(), None);
    let after = count(&conn, "child")?;
    let outcome = match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}").replace(['\n', '\t'], " "),
    };
    info(
        &format!("cascade.{}", lib.name()),
        &format!("fk={fk}\tbefore={before}\tafter={after}\tresult={outcome}"),
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
