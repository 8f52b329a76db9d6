// A migration that is a symbolic link to nothing. The test creates the
// directory `dangling` (relative to the crate trybuild generates) with the
// link, so the case runs whoever the test runs as (root reads any file, so
// permissions alone cannot make one unreadable).
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("dangling");

fn main() {
    println!("{}", MIGRATIONS.len());
}
