// A .sql file whose name does not fit the pattern (`-` instead of `_`).
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/bad_name");

fn main() {
    println!("{}", MIGRATIONS.len());
}
