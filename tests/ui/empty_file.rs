// A migration file of zero bytes.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/empty_file");

fn main() {
    println!("{}", MIGRATIONS.len());
}
