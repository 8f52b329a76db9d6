-- An activity log: one row per thing a user did, with its details as JSON.
--
-- Generated columns turn parts of the JSON into columns that can be indexed
-- and queried like any other:
-- - `kind` is VIRTUAL: computed when read, it takes no space in the row;
--   the index on it stores it once, in the index.
-- - `day` is STORED: computed once on insert and kept in the row, for a
--   value that is read far more often than written.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    payload     TEXT    NOT NULL CHECK (json_valid(payload)),
    occurred_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind        TEXT    GENERATED ALWAYS AS (payload ->> '$.kind') VIRTUAL,
    day         TEXT    GENERATED ALWAYS AS (substr(occurred_at, 1, 10)) STORED
) STRICT;

-- "How many sign-ups today?": an index on the generated columns.
CREATE INDEX events_kind_day ON events (kind, day);

-- A user's activity, and the index the foreign key needs (see 002).
CREATE INDEX events_user ON events (user_id, occurred_at);
