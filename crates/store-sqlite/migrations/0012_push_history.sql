-- What pushes brought each integration, per minute and source: the push history shown beside
-- the sync history. Kept for 30 days.
CREATE TABLE push_minutes (
    integration_id  INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    minute          INTEGER NOT NULL,
    source          TEXT NOT NULL,
    requests        INTEGER NOT NULL DEFAULT 0,
    received        INTEGER NOT NULL DEFAULT 0,
    stored          INTEGER NOT NULL DEFAULT 0,
    duplicates      INTEGER NOT NULL DEFAULT 0,
    other_source    INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, minute, source)
);
