// The directory does not exist.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/does_not_exist");

fn main() {
    println!("{}", MIGRATIONS.len());
}
