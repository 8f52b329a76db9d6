// A released migration was edited, and the directory's `migrate.lock` is a
// symbolic link to a lock file that is not there (kept elsewhere, moved or
// not checked out). The test creates the directory `dangling_lock`
// (relative to the crate trybuild generates). The build must not pass as
// if there were no lock.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("dangling_lock");

fn main() {
    println!("{}", MIGRATIONS.len());
}
