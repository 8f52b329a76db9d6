//! The `embed_migrations!` macro. Use it through `migrate_core::embed_migrations!`.
