-- An endpoint's batch option: several deliveries posted as one JSON array
-- (off by default, and for every endpoint stored before it existed).
ALTER TABLE webhook_endpoints ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;
