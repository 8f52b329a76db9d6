//! Benchmark runner for refinery, driven by `migrate-bench drive`.

#[path = "../../common/mod.rs"]
mod common;

use common::{Args, Library, Prepared, Res};
use refinery::{Migration, Runner, Target};
use rusqlite::Connection;

struct Refinery;

/// The migrations as `embed_migrations!` holds them: (name, SQL) pairs that
/// its generated `runner()` turns into `Migration`s at each call.
struct Embedded(Vec<(String, String)>);

impl Embedded {
    /// What the macro's `runner()` does: parse each name, hash each file.
    fn runner(&self) -> Res<Runner> {
        let mut migrations = Vec::with_capacity(self.0.len());
        for (name, sql) in &self.0 {
            migrations.push(Migration::unapplied(name, sql)?);
        }
        Ok(Runner::new(&migrations))
    }
}

impl Library for Refinery {
    fn name(&self) -> &'static str {
        "refinery"
    }
    fn variants(&self) -> Vec<&'static str> {
        vec!["refinery", "refinery-grouped"]
    }
    fn single_variant(&self, variant: &str) -> bool {
        variant == "refinery-grouped"
    }
    fn prepare(&self, sqls: &[String]) -> Res<Prepared> {
        let list = sqls
            .iter()
            .enumerate()
            .map(|(i, sql)| (format!("V{}__m{}", i + 1, i + 1), sql.clone()))
            .collect();
        Ok(Box::new(Embedded(list)))
    }
    fn migrate(
        &self,
        conn: &mut Connection,
        prepared: &Prepared,
        variant: &str,
        target: Option<usize>,
    ) -> Res<()> {
        let embedded = prepared
            .downcast_ref::<Embedded>()
            .ok_or("not refinery's migrations")?;
        let mut runner = embedded
            .runner()?
            .set_grouped(variant == "refinery-grouped");
        if let Some(v) = target {
            runner = runner.set_target(Target::Version(i32::try_from(v)?));
        }
        runner.run(conn)?;
        Ok(())
    }
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    let args = Args::parse(argv.get(1..).unwrap_or(&[]));
    if !common::run_common(&Refinery, &cmd, &args)? {
        return Err(format!("unknown subcommand {cmd:?}").into());
    }
    Ok(())
}
