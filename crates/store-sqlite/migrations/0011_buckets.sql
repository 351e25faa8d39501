-- Object-store buckets (R2, S3) that Logpush jobs write to, for sites Cloudflare cannot reach;
-- LangGuard lists and imports them. Each imported object is recorded once, after all of its
-- records are committed (re-reading a file stores nothing twice: its lines' ids are stable).
CREATE TABLE push_buckets (
    id                INTEGER PRIMARY KEY,
    integration_id    INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    endpoint          TEXT NOT NULL,
    bucket            TEXT NOT NULL,
    prefix            TEXT NOT NULL DEFAULT '',
    region            TEXT NOT NULL,
    access_key_id     TEXT NOT NULL,
    secret_sealed     BLOB NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    last_listed_at    INTEGER,
    last_error        TEXT,
    files_imported    INTEGER NOT NULL DEFAULT 0,
    records_imported  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_buckets_integration ON push_buckets (integration_id);

CREATE TABLE push_bucket_objects (
    bucket_id    INTEGER NOT NULL REFERENCES push_buckets(id) ON DELETE CASCADE,
    object_key   TEXT NOT NULL,
    records      INTEGER NOT NULL,
    error        TEXT,
    imported_at  INTEGER NOT NULL,
    PRIMARY KEY (bucket_id, object_key)
);
CREATE INDEX push_bucket_objects_recent ON push_bucket_objects (bucket_id, imported_at);
