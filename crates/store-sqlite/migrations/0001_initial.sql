-- LangGuard's SQLite schema. Times are Unix milliseconds (UTC).

CREATE TABLE integrations (
    id                    INTEGER PRIMARY KEY,
    kind                  TEXT    NOT NULL DEFAULT 'cloudflare',
    name                  TEXT    NOT NULL UNIQUE,
    account_id            TEXT    NOT NULL,
    -- AES-256-GCM sealed API token; plaintext never reaches the database.
    api_token_sealed      BLOB    NOT NULL,
    enabled               INTEGER NOT NULL DEFAULT 1,
    sync_interval_minutes INTEGER NOT NULL DEFAULT 15,
    lookback_days         INTEGER,            -- NULL: import all history on the first sync
    status                TEXT    NOT NULL DEFAULT 'pending',
    status_message        TEXT,
    last_sync_at          INTEGER,
    interactions_synced   INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE gateways (
    integration_id  INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    gateway_id      TEXT    NOT NULL,
    -- created_at of the newest imported log; moves in the transaction that stores the rows.
    cursor_ms       INTEGER,
    discovered_at   INTEGER NOT NULL,
    last_synced_at  INTEGER,
    PRIMARY KEY (integration_id, gateway_id)
) WITHOUT ROWID;

CREATE TABLE interactions (
    id              INTEGER PRIMARY KEY,
    integration_id  INTEGER NOT NULL,
    gateway         TEXT    NOT NULL,
    log_id          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    path            TEXT,
    status_code     INTEGER,
    success         INTEGER NOT NULL,
    cached          INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    tokens_in       INTEGER,
    tokens_out      INTEGER,
    cost_usd        REAL,
    cost_source     TEXT,
    metadata        TEXT,
    imported_at     INTEGER NOT NULL
);
-- A gateway log is stored once, whatever happens.
CREATE UNIQUE INDEX interactions_source ON interactions (integration_id, gateway, log_id);
-- Trace listings, newest first, with keyset pagination on (created_at, id); also serves the
-- sync's trailing-window counts (ten minutes of rows, filtered by gateway). Each index costs
-- ingest speed (measured: ~25 % apiece), so there is no per-gateway copy of it.
CREATE INDEX interactions_time ON interactions (created_at, id);

CREATE TABLE rollups_minute (
    minute_ms       INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    gateway         TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    requests        INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    cache_hits      INTEGER NOT NULL,
    rate_limited    INTEGER NOT NULL,
    tokens_in       INTEGER NOT NULL,
    tokens_out      INTEGER NOT NULL,
    cost_usd        REAL    NOT NULL,
    unpriced        INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    latency_sketch  BLOB    NOT NULL,
    PRIMARY KEY (minute_ms, integration_id, gateway, provider, model)
) WITHOUT ROWID;

-- Hourly rollups beside the per-minute ones, written in the same transaction: a dashboard
-- over 30 days reads ~720 hours per group instead of ~43,200 minutes.
CREATE TABLE rollups_hour (
    hour_ms         INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    gateway         TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    requests        INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    cache_hits      INTEGER NOT NULL,
    rate_limited    INTEGER NOT NULL,
    tokens_in       INTEGER NOT NULL,
    tokens_out      INTEGER NOT NULL,
    cost_usd        REAL    NOT NULL,
    unpriced        INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    latency_sketch  BLOB    NOT NULL,
    PRIMARY KEY (hour_ms, integration_id, gateway, provider, model)
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id                  INTEGER PRIMARY KEY,
    integration_id      INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    trigger             TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    gateways            INTEGER NOT NULL DEFAULT 0,
    api_calls           INTEGER NOT NULL DEFAULT 0,
    items_fetched       INTEGER NOT NULL DEFAULT 0,
    items_ingested      INTEGER NOT NULL DEFAULT 0,
    duplicates_skipped  INTEGER NOT NULL DEFAULT 0,
    rate_limit_waits    INTEGER NOT NULL DEFAULT 0,
    retries             INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    hint                TEXT,
    -- The process running it: a run left `running` by a process that is gone was cut short.
    owner_pid           INTEGER
);
CREATE INDEX sync_runs_integration ON sync_runs (integration_id, id);
