-- Posts, written by users. Deleting a user deletes their posts
-- (ON DELETE CASCADE): the application opens every connection with
-- `PRAGMA foreign_keys = ON`, without which SQLite does not enforce
-- foreign keys at all.
CREATE TABLE posts (
    id           INTEGER PRIMARY KEY,
    author_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    published_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- A user's page lists their posts, newest first. The index also serves the
-- foreign key: without an index on `author_id`, deleting a user scans every
-- post to find the ones to cascade to.
CREATE INDEX posts_author_published ON posts (author_id, published_at);
