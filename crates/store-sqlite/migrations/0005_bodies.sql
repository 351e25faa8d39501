-- Request and response bodies fetched from Cloudflare for the policies that read them, per an
-- integration setting, kept for a retention period.

ALTER TABLE integrations ADD COLUMN bodies_mode TEXT NOT NULL DEFAULT 'off';   -- off | sampled | all
ALTER TABLE integrations ADD COLUMN bodies_sample_percent INTEGER NOT NULL DEFAULT 10;
ALTER TABLE integrations ADD COLUMN bodies_retention_days INTEGER NOT NULL DEFAULT 30;

CREATE TABLE interaction_bodies (
    interaction_id  INTEGER PRIMARY KEY,
    integration_id  INTEGER NOT NULL,
    request         TEXT,            -- NULL: Cloudflare kept no payload
    response        TEXT,
    fetched_at      INTEGER NOT NULL
);
CREATE INDEX interaction_bodies_age ON interaction_bodies (integration_id, fetched_at);
