// A released (locked) migration edited after it was locked.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/lock_edited");

fn main() {
    let _ = MIGRATIONS.len();
}
