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

-- What admins did, and sign-ins that failed; newest first when read.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER,
    user_email  TEXT,
    action      TEXT    NOT NULL,   -- e.g. integration.created, auth.login_failed
    resource    TEXT,               -- e.g. integration:3
    details     TEXT    NOT NULL,   -- JSON object
    address     TEXT
);

-- API keys: `lgr_…` bearer tokens, stored as SHA-256, shown once.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,  -- first characters, to recognise a key in lists
    token_hash   BLOB    NOT NULL UNIQUE,
    scope        TEXT    NOT NULL,  -- ingest | read | write | admin
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
