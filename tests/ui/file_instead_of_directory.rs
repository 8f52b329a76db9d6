// A migration file given where the directory is expected.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/file_instead_of_dir/001_create_users.sql");

fn main() {
    println!("{}", MIGRATIONS.len());
}
