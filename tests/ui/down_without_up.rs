// A down file for a version that has no up file.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/down_without_up");

fn main() {
    println!("{}", MIGRATIONS.len());
}
