-- Users: the accounts of the application.
--
-- STRICT tables (SQLite 3.37+) reject a value of the wrong type instead of
-- storing it anyway, the way other databases do.
--
-- AUTOINCREMENT makes ids never come back: a deleted user's id is not given
-- to the next sign-up, so links and logs that kept an old id can never point
-- at a different person. (It costs a lookup in `sqlite_sequence` per insert;
-- a table without that need should use a plain INTEGER PRIMARY KEY.)
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    -- UTC, ISO 8601, so that text order is time order.
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Sign-in looks a user up by email: one unique index serves the lookup and
-- enforces that no two accounts share an address.
CREATE UNIQUE INDEX users_email ON users (email);

-- The admin page lists the newest sign-ups first.
CREATE INDEX users_created_at ON users (created_at);
