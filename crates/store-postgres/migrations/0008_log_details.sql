-- Cloudflare's log fields beyond the core columns (event id, request type, feedback, score,
-- DLP action and profiles, guardrail results, user agent, cached and reasoning tokens, BYOK),
-- as one JSON object; NULL when a log carries none of them.
ALTER TABLE interactions ADD COLUMN details TEXT;
