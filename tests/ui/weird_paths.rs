// Paths no file system accepts, and paths that leave the crate, are compile
// errors, never a panic of the macro.
use migrate_core::{embed_migrations, Migrations};

static NUL_BYTE: Migrations = embed_migrations!("migr\0ations");
static OUTSIDE: Migrations = embed_migrations!("../../../../../../../../../../no/such/dir/");
static DOTS: Migrations = embed_migrations!("fixtures/compile_fail/zero/../gap/");

fn main() {
    println!("{}", NUL_BYTE.len() + OUTSIDE.len() + DOTS.len());
}
