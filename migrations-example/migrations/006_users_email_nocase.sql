-- Emails become case-insensitive: `Ada@Example.com` and `ada@example.com`
-- are one account, and sign-in finds it either way. Also, an email must
-- contain an `@`.
--
-- SQLite's ALTER TABLE cannot change a column's collation or add a CHECK,
-- so the table is rebuilt, following "Making Other Kinds Of Table Schema
-- Changes" in SQLite's ALTER TABLE documentation: create the new table,
-- copy the rows, drop the old table, rename the new one, then recreate the
-- old table's indexes and triggers, which DROP TABLE removed. In that
-- order: renaming the old table out of the way first would make SQLite
-- rewrite the REFERENCES clauses of `posts` and `events` to follow it.
--
-- `posts` and `events` reference `users` with ON DELETE CASCADE. With
-- foreign keys on, the DROP TABLE below would delete every post and event.
-- The migration framework turns `foreign_keys` off for the run (SQLite
-- ignores that pragma inside a transaction, so the file cannot do it
-- itself) and runs `PRAGMA foreign_key_check` before committing.
--
-- Existing emails that differ only in case would make the unique index
-- fail and the whole migration roll back: merge such accounts first.

CREATE TABLE new_users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL COLLATE NOCASE CHECK (email LIKE '%_@_%'),
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    bio        TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Same ids, so posts, events and the search index still point at the
-- right users.
INSERT INTO new_users (id, email, name, created_at, bio)
SELECT id, email, name, created_at, bio FROM users;

-- Copying the rows sets the new table's AUTOINCREMENT counter to the
-- highest id copied. Keep the old counter instead: ids of users deleted
-- before the rebuild must not be given out again.
DELETE FROM sqlite_sequence WHERE name = 'new_users';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'new_users', seq FROM sqlite_sequence WHERE name = 'users';

DROP TABLE users;
ALTER TABLE new_users RENAME TO users;

-- The unique index now follows the column's NOCASE collation.
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_created_at ON users (created_at);

-- The search index (004) reads `users` by name and keeps working; its
-- triggers were dropped with the old table.
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, name, bio) VALUES (new.id, new.name, new.bio);
END;

CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name, bio)
    VALUES ('delete', old.id, old.name, old.bio);
END;

CREATE TRIGGER users_fts_update AFTER UPDATE OF name, bio ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name, bio)
    VALUES ('delete', old.id, old.name, old.bio);
    INSERT INTO users_fts (rowid, name, bio) VALUES (new.id, new.name, new.bio);
END;
