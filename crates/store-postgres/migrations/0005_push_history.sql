-- What pushes brought each integration, per minute and source: the push history shown beside
-- the sync history. Kept for 30 days.
CREATE TABLE push_minutes (
    integration_id  BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    minute          BIGINT NOT NULL,
    source          TEXT NOT NULL,
    requests        BIGINT NOT NULL DEFAULT 0,
    received        BIGINT NOT NULL DEFAULT 0,
    stored          BIGINT NOT NULL DEFAULT 0,
    duplicates      BIGINT NOT NULL DEFAULT 0,
    other_source    BIGINT NOT NULL DEFAULT 0,
    rejected        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, minute, source)
);
