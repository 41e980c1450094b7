-- An endpoint's ordered option: the deliveries of one chat one at a time,
-- in order (off by default, and for every endpoint stored before it
-- existed).
ALTER TABLE webhook_endpoints ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
