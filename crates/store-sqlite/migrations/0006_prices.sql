-- An admin's prices per model (Settings → Cost Estimates), USD per 1,000 tokens; they price
-- logs Cloudflare could not, ahead of the bundled table.
CREATE TABLE model_prices (
    model          TEXT PRIMARY KEY,
    input_per_1k   REAL    NOT NULL,
    output_per_1k  REAL    NOT NULL,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
