-- Spend anomalies: per user session (the session key's value, or the hour where a log names
-- none) the spend, kept beside the people rollups and folded with them, and the detector's
-- judgement. `checked_requests` is how far the detector has judged the session: more traffic
-- makes it due again.
ALTER TABLE identity_keys ADD COLUMN session_key TEXT;

CREATE TABLE user_sessions (
    identity          TEXT NOT NULL,
    session           TEXT NOT NULL,
    hour_ms           INTEGER NOT NULL,
    first_ms          INTEGER NOT NULL,
    last_ms           INTEGER NOT NULL,
    requests          INTEGER NOT NULL,
    cost_usd          REAL NOT NULL,
    checked_requests  INTEGER NOT NULL DEFAULT 0,
    flagged_at        INTEGER,
    flag_spend_usd    REAL,
    user_p95_usd      REAL,
    baseline_sessions INTEGER,
    org_p99_usd       REAL,
    PRIMARY KEY (identity, session, hour_ms)
) WITHOUT ROWID;
-- A user's baseline: their sessions by start.
CREATE INDEX user_sessions_by_start ON user_sessions (identity, first_ms);
-- The organisation's p99: the n-th largest session.
CREATE INDEX user_sessions_by_cost ON user_sessions (cost_usd);
-- The sessions due to be judged, a user's together (their baseline is read once).
CREATE INDEX user_sessions_due ON user_sessions (identity, first_ms)
    WHERE requests <> checked_requests;
CREATE INDEX user_sessions_flagged ON user_sessions (last_ms) WHERE flagged_at IS NOT NULL;
-- Sessions leave as the window moves on.
CREATE INDEX user_sessions_by_last ON user_sessions (last_ms);

CREATE TABLE session_pending (
    id       INTEGER PRIMARY KEY,
    identity TEXT NOT NULL,
    session  TEXT NOT NULL,
    hour_ms  INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms  INTEGER NOT NULL
);
