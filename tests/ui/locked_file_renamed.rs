// A released (locked) migration whose file was renamed.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/lock_renamed");

fn main() {
    let _ = MIGRATIONS.len();
}
