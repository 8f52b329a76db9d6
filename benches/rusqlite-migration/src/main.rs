//! Benchmark runner for rusqlite_migration, driven by `migrate-bench drive`.

#[path = "../../common/mod.rs"]
mod common;

use common::{Args, Library, Prepared, Res};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

struct RusqliteMigration;

impl Library for RusqliteMigration {
    fn name(&self) -> &'static str {
        "rusqlite_migration"
    }
    fn variants(&self) -> Vec<&'static str> {
        // It has one mode: all pending migrations in one transaction.
        vec!["rusqlite_migration"]
    }
    fn single_variant(&self, _variant: &str) -> bool {
        true
    }
    fn prepare(&self, sqls: &[String]) -> Res<Prepared> {
        // M::up takes &'static str: leak the generated SQL (built once).
        let list: Vec<M<'static>> = sqls
            .iter()
            .map(|s| M::up(Box::leak(s.clone().into_boxed_str())))
            .collect();
        Ok(Box::new(Migrations::new(list)))
    }
    fn migrate(
        &self,
        conn: &mut Connection,
        prepared: &Prepared,
        _variant: &str,
        target: Option<usize>,
    ) -> Res<()> {
        let migrations = prepared
            .downcast_ref::<Migrations<'static>>()
            .ok_or("not rusqlite_migration's Migrations")?;
        match target {
            Some(v) => migrations.to_version(conn, v)?,
            None => migrations.to_latest(conn)?,
        }
        Ok(())
    }
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    let args = Args::parse(argv.get(1..).unwrap_or(&[]));
    if !common::run_common(&RusqliteMigration, &cmd, &args)? {
        return Err(format!("unknown subcommand {cmd:?}").into());
    }
    Ok(())
}
