-- Who holds what, until when: one process syncs an integration (`sync:<id>`, with the run it
-- covers), one runs each background worker. A holder that dies stops renewing; once its lease
-- expires another takes over. Replaces the process ids on sync runs, which only meant
-- something on one machine.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    run_id      INTEGER,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Finished runs in the order they finished: webhook detection follows `(finished_at, id)`, and
-- each finish reads the latest finish time to stay after it.
CREATE INDEX sync_runs_finished ON sync_runs (finished_at, id);
