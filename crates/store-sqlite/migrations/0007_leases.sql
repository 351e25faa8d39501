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
