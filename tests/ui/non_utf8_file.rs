// A file saved as Latin-1 instead of UTF-8.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/non_utf8");

fn main() {
    println!("{}", MIGRATIONS.len());
}
