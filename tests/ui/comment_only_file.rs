// A migration file with only comments and whitespace.
use migrate_core::{embed_migrations, Migrations};

static MIGRATIONS: Migrations = embed_migrations!("fixtures/compile_fail/comment_only");

fn main() {
    println!("{}", MIGRATIONS.len());
}
