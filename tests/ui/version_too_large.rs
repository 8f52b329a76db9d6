// A timestamp version, above PRAGMA user_version's range.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/too_large");

fn main() {
    println!("{}", MIGRATIONS.len());
}
