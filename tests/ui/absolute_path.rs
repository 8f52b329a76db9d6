// An absolute path works only on the machine that wrote it.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("/var/lib/app/migrations");

fn main() {
    println!("{}", MIGRATIONS.len());
}
