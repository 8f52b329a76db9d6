// Every problem of a directory is reported, not only the first.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/several_problems");

fn main() {
    println!("{}", MIGRATIONS.len());
}
