// Two files have version 2.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/duplicate");

fn main() {
    println!("{}", MIGRATIONS.len());
}
