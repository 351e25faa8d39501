-- A policy the worker disabled for crossing its time or memory limits again and again.
ALTER TABLE policies ADD COLUMN quarantine_reason TEXT;
ALTER TABLE policies ADD COLUMN quarantined_at INTEGER;
