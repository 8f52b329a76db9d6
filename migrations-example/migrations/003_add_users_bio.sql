-- A short profile text, shown on the user's page and searched (see 004).
--
-- ADD COLUMN is instant in SQLite: existing rows are not rewritten, they
-- read the default until they are updated. A NOT NULL column needs a
-- default for that reason.
ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
