-- The notification channels a rule's alerts go to (a JSON array of webhook ids); empty: every
-- enabled channel subscribed to alert events.
ALTER TABLE alert_rules ADD COLUMN channel_ids TEXT NOT NULL DEFAULT '[]';
