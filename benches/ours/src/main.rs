//! Benchmarks of migrate (ours) and plain rusqlite, in one binary so that
//! their ratios are measured in the same process; and `drive`, which runs
//! every scenario for every library and prints the tables.
//!
//! `benches/run.sh` builds the three runners and calls `drive`.

#[path = "../../common/mod.rs"]
mod common;
mod drive;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Args, Library, Prepared, Res};
use migrate_core::{IntegrityCheck, Migrations};
use rusqlite::Connection;

struct Ours;

/// The integrity level a variant names.
fn level(variant: &str) -> Res<IntegrityCheck> {
    Ok(match variant {
        "ours" | "ours-single" | "ours-full" => IntegrityCheck::Full,
        "ours-quick" => IntegrityCheck::Quick,
        "ours-changed" | "ours-single-changed" | "ours-changed/fk-off" => IntegrityCheck::Changed,
        "ours-off" | "ours-single-off" | "ours-off/fk-off" => IntegrityCheck::Off,
        other => return Err(format!("unknown variant {other}").into()),
    })
}

/// Writes the migrations as files and loads them with the public loader
/// (the same `Migrations` the macro builds, with the checksums computed
/// once, before anything is timed).
fn load(sqls: &[String]) -> Res<Migrations> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "migrate-bench-migrations-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (i, sql) in sqls.iter().enumerate() {
        let v = i + 1;
        std::fs::write(dir.join(format!("{v:04}_m{v}.sql")), sql)?;
    }
    let loaded = Migrations::from_dir(&dir);
    std::fs::remove_dir_all(&dir)?;
    Ok(loaded?)
}

impl Library for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }
    fn variants(&self) -> Vec<&'static str> {
        vec![
            "ours",
            "ours-changed",
            "ours-off",
            "ours-single",
            "ours-single-changed",
            "ours-single-off",
            // References: plain rusqlite all in one with the history rows,
            // and with the full check too (`common::plain_with_history`).
            "plain-single+history",
            "plain-single+history+check",
        ]
    }
    fn single_variant(&self, variant: &str) -> bool {
        variant.starts_with("ours-single") || variant.starts_with("plain-single")
    }
    fn prepare(&self, sqls: &[String]) -> Res<Prepared> {
        Ok(Box::new(load(sqls)?))
    }
    fn migrate(
        &self,
        conn: &mut Connection,
        prepared: &Prepared,
        variant: &str,
        target: Option<usize>,
    ) -> Res<()> {
        let migrations = prepared
            .downcast_ref::<Migrations>()
            .ok_or("not our Migrations")?;
        let mut migrator = migrations
            .migrator()
            .integrity_check(level(variant)?)
            .single_transaction(self.single_variant(variant));
        if let Some(v) = target {
            migrator = migrator.target(u32::try_from(v)?);
        }
        migrator.migrate(conn)?;
        Ok(())
    }
    /// What a constant-time check could cost: one cached statement that
    /// reads `user_version` and the newest history row in one implicit read
    /// transaction, compared with the newest migration's checksum.
    fn history_table(&self, prepared: &Prepared) -> Res<Option<String>> {
        // The table as the runner creates it: from a database it migrated.
        let migrations = prepared
            .downcast_ref::<Migrations>()
            .ok_or("not our Migrations")?;
        let mut conn = Connection::open_in_memory()?;
        migrations
            .migrator()
            .target(1)
            .integrity_check(IntegrityCheck::Off)
            .migrate(&mut conn)?;
        let sql: String = conn.query_row(
            "SELECT sql FROM sqlite_master WHERE name = '_migrate_history'",
            [],
            |r| r.get(0),
        )?;
        Ok(Some(sql))
    }
    fn sketch(&self, conn: &Connection, prepared: &Prepared) -> Option<Res<()>> {
        let migrations = prepared.downcast_ref::<Migrations>()?;
        let run = || -> Res<()> {
            let mut stmt = conn.prepare_cached(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                 (SELECT checksum FROM _migrate_history ORDER BY version DESC LIMIT 1)",
            )?;
            let (version, checksum): (i64, Option<String>) =
                stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let latest = migrations.iter().last().ok_or("no migrations")?;
            if version != i64::from(latest.version())
                || checksum.as_deref().map(str::as_bytes)
                    != Some(latest.checksum().to_string().as_bytes())
            {
                return Err("sketch: not up to date".into());
            }
            Ok(())
        };
        Some(run())
    }
}

/// The cascade reproduction for plain rusqlite as a hand-written runner
/// does it: each migration in a transaction, foreign keys left as a new
/// connection has them.
fn cascade_plain() -> Res<()> {
    let sqls = common::cascade_migrations();
    let dir = std::env::temp_dir().join(format!("migrate-bench-cascade-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("plain.db");
    common::remove_db(&db);
    let conn = Connection::open(&db)?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    for sql in &sqls[..2] {
        conn.execute_batch(&format!("BEGIN; {sql} COMMIT;"))?;
    }
    let before = common::count(&conn, "child")?;
    conn.execute_batch(&format!("BEGIN; {} COMMIT;", sqls[2]))?;
    let after = common::count(&conn, "child")?;
    common::info(
        "cascade.plain (foreign keys left on)",
        &format!("fk={fk}\tbefore={before}\tafter={after}\tresult=ok"),
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What the whole-database checks cost on a large database: `rows` parent
/// rows and twice as many child rows (with a foreign key to the parent).
fn cost(args: &Args) -> Res<()> {
    let rows = args.num("rows")?;
    let reps = args.num_or("reps", 3)?;
    let db = args.path("db")?;
    common::remove_db(&db);
    let conn = Connection::open(&db)?;
    let sqls = common::big_base(rows, rows * 2);
    common::plain_apply(&conn, &sqls, true)?;
    drop(conn);
    let size = std::fs::metadata(&db)?.len();
    common::info("cost.size_bytes", &size.to_string());
    let conn = Connection::open(&db)?;
    let checks = [
        ("integrity_check", "PRAGMA integrity_check"),
        ("quick_check", "PRAGMA quick_check"),
        ("foreign_key_check", "PRAGMA foreign_key_check"),
        (
            "integrity_check(settings)",
            "PRAGMA integrity_check(settings)",
        ),
        ("integrity_check(child)", "PRAGMA integrity_check(child)"),
        (
            "foreign_key_check(settings)",
            "PRAGMA foreign_key_check(settings)",
        ),
    ];
    for i in 0..reps {
        for (name, sql) in common::rotate(&checks, i) {
            let (t, out) = common::time(|| {
                let mut stmt = conn.prepare(sql)?;
                let rows: Vec<String> = stmt
                    .query_map([], |r| r.get::<_, Option<String>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect();
                Ok(rows)
            })?;
            let ok = if name.starts_with("foreign") {
                out.is_empty()
            } else {
                out == ["ok"]
            };
            if !ok {
                return Err(format!("{name}: {out:?}").into());
            }
            common::emit("cost", name, t, None);
        }
    }
    drop(conn);
    common::remove_db(&db);
    Ok(())
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    let args = Args::parse(argv.get(1..).unwrap_or(&[]));
    match cmd.as_str() {
        "drive" => drive::drive(&args),
        "cascade-plain" => cascade_plain(),
        "cost" => cost(&args),
        _ => {
            if !common::run_common(&Ours, &cmd, &args)? {
                return Err(format!(
                    "unknown subcommand {cmd:?}; try `drive` (see {})",
                    Path::new("benches/run.sh").display()
                )
                .into());
            }
            Ok(())
        }
    }
}
