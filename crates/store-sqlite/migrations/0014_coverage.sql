-- Import coverage: per gateway and hour, what Cloudflare's analytics counted and what
-- LangGuard holds, how often the hour was read again to close a gap, and when it was given up
-- on as short. Per integration, when coverage was last checked and why it could not be.
CREATE TABLE coverage_hours (
    integration_id  INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    gateway         TEXT NOT NULL,
    hour_ms         INTEGER NOT NULL,
    cloudflare      INTEGER NOT NULL,
    stored          INTEGER NOT NULL,
    rereads         INTEGER NOT NULL DEFAULT 0,
    checked_at      INTEGER NOT NULL,
    degraded_at     INTEGER,
    PRIMARY KEY (integration_id, gateway, hour_ms)
);
ALTER TABLE integrations ADD COLUMN coverage_checked_at INTEGER;
ALTER TABLE integrations ADD COLUMN coverage_error TEXT;
