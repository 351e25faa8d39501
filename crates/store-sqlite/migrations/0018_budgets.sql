-- Budgets: an amount per day, week or month in a time zone, over a scope, optionally per
-- group; and what the evaluator last made of each group (spend, forecast, the threshold
-- announced), so a threshold is announced once per period and a restart carries on.
CREATE TABLE budgets (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    amount_usd REAL NOT NULL,
    period     TEXT NOT NULL,
    time_zone  TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT '{}',
    group_by   TEXT,
    thresholds TEXT NOT NULL DEFAULT '[50,80,100]',
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE budget_groups (
    budget_id        INTEGER NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    group_key        TEXT NOT NULL,
    period_start     INTEGER NOT NULL,
    spent_usd        REAL NOT NULL,
    forecast_usd     REAL NOT NULL,
    notified_percent INTEGER NOT NULL DEFAULT 0,
    evaluated_at     INTEGER NOT NULL,
    PRIMARY KEY (budget_id, group_key)
);
