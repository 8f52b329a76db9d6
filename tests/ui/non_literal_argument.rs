// The argument must be one string literal: a constant, a macro call, no
// argument, two arguments or a byte string are refused without a panic.
use migrate_core::{embed_migrations, Migrations};

const DIR: &str = "migrations";

static FROM_CONST: Migrations = embed_migrations!(DIR);
static FROM_MACRO: Migrations = embed_migrations!(concat!("migr", "ations"));
static NOTHING: Migrations = embed_migrations!();
static TWO: Migrations = embed_migrations!("migrations", "more");
static BYTES: Migrations = embed_migrations!(b"migrations");

fn main() {
    println!("{}", FROM_CONST.len() + FROM_MACRO.len() + NOTHING.len() + TWO.len() + BYTES.len());
}
