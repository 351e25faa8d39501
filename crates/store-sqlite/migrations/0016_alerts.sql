-- Alert rules, the alerts they raise (one row per episode: pending, firing, then resolved and
-- kept as history) and silences that hold their notifications back.
CREATE TABLE alert_rules (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL DEFAULT '',
    enabled          INTEGER NOT NULL DEFAULT 1,
    metric           TEXT NOT NULL,
    severity         TEXT,
    condition        TEXT NOT NULL,
    threshold        REAL NOT NULL,
    window_minutes   INTEGER NOT NULL,
    for_minutes      INTEGER NOT NULL DEFAULT 0,
    min_requests     INTEGER NOT NULL DEFAULT 0,
    renotify_minutes INTEGER,
    scope            TEXT NOT NULL DEFAULT '{}',
    group_by         TEXT,
    created_by       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    rule_id       INTEGER NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    group_key     TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    value         REAL,
    threshold     REAL NOT NULL,
    pending_since INTEGER NOT NULL,
    fired_at      INTEGER,
    resolved_at   INTEGER,
    notified_at   INTEGER,
    evaluated_at  INTEGER NOT NULL
);
-- At most one open alert per rule and group.
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_by_rule ON alerts (rule_id, id);

CREATE TABLE alert_silences (
    id         INTEGER PRIMARY KEY,
    rule_id    INTEGER REFERENCES alert_rules (id) ON DELETE CASCADE,
    group_key  TEXT,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    created_by TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at);
