-- Push ingest (OpenTelemetry, Logpush): the served and requested model, which source a gateway
-- counts and since when, ingest keys bound to an integration, and each integration's RSA key
-- pair for Logpush's encrypted fields.
ALTER TABLE interactions ADD COLUMN requested_model TEXT;

ALTER TABLE gateways ADD COLUMN source TEXT NOT NULL DEFAULT 'logs_api';  -- logs_api | otlp | logpush
ALTER TABLE gateways ADD COLUMN source_since_ms INTEGER;                  -- the handover instant
ALTER TABLE gateways ADD COLUMN previous_source TEXT;                     -- counted before it

ALTER TABLE api_keys ADD COLUMN integration_id INTEGER REFERENCES integrations(id) ON DELETE CASCADE;

ALTER TABLE integrations ADD COLUMN push_public_key TEXT;                 -- PEM (SPKI)
ALTER TABLE integrations ADD COLUMN push_private_key_sealed BLOB;         -- PKCS#8 PEM, sealed
