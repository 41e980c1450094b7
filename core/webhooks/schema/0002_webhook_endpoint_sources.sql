-- An endpoint's sources filter (JSON, like events and accounts): who caused
-- the events it gets. Endpoints stored before it existed get every source,
-- what they got before for the sources the pipeline's webhooks stage let
-- through, and now also what rules and plugins cause.
ALTER TABLE webhook_endpoints ADD COLUMN sources TEXT NOT NULL DEFAULT '["*"]';
