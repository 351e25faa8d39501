-- How far behind its cursor a sync looks again for logs that became visible late: chosen per
-- integration, and widened per gateway on its own once logs later than that were seen.
ALTER TABLE integrations ADD COLUMN trailing_window_minutes INTEGER NOT NULL DEFAULT 30;
ALTER TABLE gateways ADD COLUMN late_window_ms INTEGER;
