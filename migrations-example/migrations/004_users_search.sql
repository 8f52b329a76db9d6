-- Full-text search over users' names and bios, with FTS5.
--
-- An external-content table: the index stores only the tokens, and reads
-- the text from `users` by rowid, so the text is not stored twice. SQLite
-- does not keep such an index up to date by itself: the three triggers
-- below do, in the same transaction as the change to `users`.
CREATE VIRTUAL TABLE users_fts USING fts5 (
    name,
    bio,
    content = 'users',
    content_rowid = 'id',
    -- Case- and accent-insensitive matching.
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, name, bio) VALUES (new.id, new.name, new.bio);
END;

-- An external-content index forgets a row by being told its old values.
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name, bio)
    VALUES ('delete', old.id, old.name, old.bio);
END;

CREATE TRIGGER users_fts_update AFTER UPDATE OF name, bio ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name, bio)
    VALUES ('delete', old.id, old.name, old.bio);
    INSERT INTO users_fts (rowid, name, bio) VALUES (new.id, new.name, new.bio);
END;

-- Index the users that existed before this migration.
INSERT INTO users_fts (users_fts) VALUES ('rebuild');
