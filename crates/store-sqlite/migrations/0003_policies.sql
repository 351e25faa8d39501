-- Governance: policies (Rego, versioned), the violations they find, the policy worker's cursor.

CREATE TABLE policies (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,   -- lowercase_underscores; the Rego package is langguard.<name>
    display_name  TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    category      TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    config        TEXT    NOT NULL DEFAULT '{}',
    rego          TEXT    NOT NULL,
    builtin_id    TEXT,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Every text a policy has had (the current one included).
CREATE TABLE policy_versions (
    policy_id   INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    rego        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version)
) WITHOUT ROWID;

-- Built-ins installed once: one an admin deletes stays deleted.
CREATE TABLE installed_builtins (
    builtin_id    TEXT PRIMARY KEY,
    installed_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE violations (
    id              INTEGER PRIMARY KEY,
    policy_id       INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    interaction_id  INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    severity        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    evidence        TEXT    NOT NULL,
    -- Same policy, interaction and finding: stored once, however often it is evaluated.
    fingerprint     BLOB    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'new',
    notes           TEXT,
    occurred_at     INTEGER NOT NULL,   -- the interaction's time
    detected_at     INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX violations_finding ON violations (policy_id, interaction_id, fingerprint);
CREATE INDEX violations_interaction ON violations (interaction_id);
CREATE INDEX violations_time ON violations (occurred_at, id);

-- Every interaction with id <= cursor has been evaluated.
CREATE TABLE policy_progress (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    cursor        INTEGER NOT NULL,
    evaluated_at  INTEGER
);
INSERT INTO policy_progress (id, cursor) VALUES (1, 0);
