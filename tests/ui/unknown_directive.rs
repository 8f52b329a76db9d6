// A typo in a directive: `no-transactions`.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/unknown_directive");

fn main() {
    println!("{}", MIGRATIONS.len());
}
