-- Failed sign-ins per account and per address, for throttling: in the database, so several
-- processes (or instances) count the same attempts.
CREATE TABLE login_attempts (
    key           TEXT    PRIMARY KEY,
    attempts      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL
) WITHOUT ROWID;
