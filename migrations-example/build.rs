//! Rebuild when a migration file is added or removed (editing one is
//! tracked by `embed_migrations!` itself).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
