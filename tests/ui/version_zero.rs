// A file numbered 000.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/zero");

fn main() {
    println!("{}", MIGRATIONS.len());
}
