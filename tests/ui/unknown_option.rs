// An option the macro does not know.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/lock_edited", lock = "sometimes");

fn main() {
    println!("{}", MIGRATIONS.len());
}
