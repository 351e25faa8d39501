-- Saved Trace Explorer views: a filter set by name, its owner's or shared with everyone.
-- A view goes with its owner.
CREATE TABLE saved_views (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    owner_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX saved_views_shared ON saved_views (shared) WHERE shared = 1;
