// A released (locked) migration whose file was deleted.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/lock_removed");

fn main() {
    let _ = MIGRATIONS.len();
}
