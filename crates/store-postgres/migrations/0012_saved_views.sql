-- Saved Trace Explorer views: a filter set by name, its owner's or shared with everyone.
-- A view goes with its owner.
CREATE TABLE saved_views (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    owner_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX saved_views_shared ON saved_views (shared) WHERE shared;
