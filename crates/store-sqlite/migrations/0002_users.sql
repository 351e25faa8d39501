-- People who sign in, and their sessions.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT    NOT NULL,       -- Argon2id PHC string
    role           TEXT    NOT NULL,       -- admin | member | viewer
    created_at     INTEGER NOT NULL,
    last_active_at INTEGER
);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token: a stolen database holds no usable session.
    token_hash   BLOB    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
