-- Webhooks: endpoints, their deliveries (an outbox: rows are written before sending, so none is
-- lost when the process stops), and how far event detection has come.

CREATE TABLE webhooks (
    id                    INTEGER PRIMARY KEY,
    url                   TEXT    NOT NULL,
    secret_sealed         BLOB    NOT NULL,
    events                TEXT    NOT NULL,   -- JSON array of event names
    min_severity          TEXT    NOT NULL DEFAULT 'low',
    enabled               INTEGER NOT NULL DEFAULT 1,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event            TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    response_code    INTEGER,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

CREATE TABLE event_progress (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    violation_id        INTEGER NOT NULL,
    sync_finished_at    INTEGER NOT NULL,
    sync_run_id         INTEGER NOT NULL
);
-- Events start from now: history before the first start is not replayed.
INSERT INTO event_progress (id, violation_id, sync_finished_at, sync_run_id)
VALUES (1, (SELECT IFNULL(MAX(id), 0) FROM violations),
        (SELECT IFNULL(MAX(finished_at), 0) FROM sync_runs), 0);

CREATE TABLE event_seen_status (
    integration_id  INTEGER PRIMARY KEY,
    status          TEXT    NOT NULL
);
INSERT INTO event_seen_status (integration_id, status) SELECT id, status FROM integrations;
