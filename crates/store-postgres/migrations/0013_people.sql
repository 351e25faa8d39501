-- People and teams: the metadata key naming each kind of identity, and rollups per identity
-- kept at ingest for those keys. `backfill_below` is the id under which stored logs are still
-- to be counted by the background backfill (NULL once all are).
CREATE TABLE identity_keys (
    kind           TEXT PRIMARY KEY,
    meta_key       TEXT NOT NULL,
    backfill_below BIGINT,
    set_at         BIGINT NOT NULL
);

-- Per identity and UTC day: spend over time and active days.
CREATE TABLE identity_days (
    kind       TEXT NOT NULL,
    identity   TEXT NOT NULL,
    day_ms     BIGINT NOT NULL,
    requests   BIGINT NOT NULL,
    errors     BIGINT NOT NULL,
    cache_hits BIGINT NOT NULL,
    tokens_in  BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    cost_usd   DOUBLE PRECISION NOT NULL,
    first_ms   BIGINT NOT NULL,
    last_ms    BIGINT NOT NULL,
    PRIMARY KEY (kind, identity, day_ms)
);
-- The window's rollover subtracts whole days.
CREATE INDEX identity_days_by_day ON identity_days (day_ms);

-- Per identity, day and model: the top model and provider.
CREATE TABLE identity_models (
    kind     TEXT NOT NULL,
    identity TEXT NOT NULL,
    day_ms   BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model    TEXT NOT NULL,
    requests BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, identity, day_ms, provider, model)
);

-- The rolling 30-day summary per identity (first and last seen are all-time). It holds the
-- days from `people_window.start_day`; moving the start subtracts the days it passes.
CREATE TABLE people (
    kind          TEXT NOT NULL,
    identity      TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    cache_hits    BIGINT NOT NULL,
    tokens_in     BIGINT NOT NULL,
    tokens_out    BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    PRIMARY KEY (kind, identity)
);
CREATE INDEX people_by_spend ON people (kind, cost_usd DESC, identity);

CREATE TABLE people_window (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    start_day BIGINT NOT NULL
);
INSERT INTO people_window (id, start_day) VALUES (1, 0);

-- Additions of stored logs not yet folded into the tables above, one row per identity, day and
-- model of each ingest batch: ingest appends here (in order, cheap) and the upkeep folds them
-- each minute, so a busy minute updates each identity's rows once, not once per batch.
CREATE TABLE identity_pending (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    identity   TEXT NOT NULL,
    day_ms     BIGINT NOT NULL,
    provider   TEXT NOT NULL,
    model      TEXT NOT NULL,
    requests   BIGINT NOT NULL,
    errors     BIGINT NOT NULL,
    cache_hits BIGINT NOT NULL,
    tokens_in  BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL,
    cost_usd   DOUBLE PRECISION NOT NULL,
    first_ms   BIGINT NOT NULL,
    last_ms    BIGINT NOT NULL
);
