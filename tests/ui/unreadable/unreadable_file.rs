// A file the compiler cannot read. The test creates the directory
// `unreadable` (relative to the crate trybuild generates) with a file whose
// permissions are 000, and runs this case only when that makes it unreadable
// (not as root).
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("unreadable");

fn main() {
    println!("{}", MIGRATIONS.len());
}
