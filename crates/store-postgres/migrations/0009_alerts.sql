-- Alert rules, the alerts they raise (one row per episode: pending, firing, then resolved and
-- kept as history) and silences that hold their notifications back.
CREATE TABLE alert_rules (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL DEFAULT '',
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    metric           TEXT NOT NULL,
    severity         TEXT,
    condition        TEXT NOT NULL,
    threshold        DOUBLE PRECISION NOT NULL,
    window_minutes   BIGINT NOT NULL,
    for_minutes      BIGINT NOT NULL DEFAULT 0,
    min_requests     BIGINT NOT NULL DEFAULT 0,
    renotify_minutes BIGINT,
    scope            TEXT NOT NULL DEFAULT '{}',
    group_by         TEXT,
    created_by       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE alerts (
    id            BIGSERIAL PRIMARY KEY,
    rule_id       BIGINT NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    group_key     TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    value         DOUBLE PRECISION,
    threshold     DOUBLE PRECISION NOT NULL,
    pending_since BIGINT NOT NULL,
    fired_at      BIGINT,
    resolved_at   BIGINT,
    notified_at   BIGINT,
    evaluated_at  BIGINT NOT NULL
);
-- At most one open alert per rule and group.
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_by_rule ON alerts (rule_id, id);

CREATE TABLE alert_silences (
    id         BIGSERIAL PRIMARY KEY,
    rule_id    BIGINT REFERENCES alert_rules (id) ON DELETE CASCADE,
    group_key  TEXT,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at);
