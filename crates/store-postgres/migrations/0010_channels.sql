-- Notification channels are webhook rows of a kind: signed webhooks (as before), Slack and
-- Teams incoming webhooks, PagerDuty Events API v2, email over SMTP. They share the outbox,
-- its retries and its delivery log.
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE webhooks ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
