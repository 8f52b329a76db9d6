// Versions 1, 2, 4: version 3 is missing.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/gap");

fn main() {
    println!("{}", MIGRATIONS.len());
}
