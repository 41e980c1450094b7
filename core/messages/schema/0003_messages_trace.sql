-- The pipeline's trace of the message's event (package pipeline, Trace):
-- JSON, sealed like the text when encryption at rest is on. It is set by
-- the same UPDATE as the done mark, so it costs no statement of its own,
-- and cleared by the trace sweep once it is older than outbox.retention.
ALTER TABLE messages ADD COLUMN trace TEXT;
ALTER TABLE messages ADD COLUMN trace_at INTEGER; -- Unix milliseconds
CREATE INDEX messages_trace_at ON messages (trace_at) WHERE trace_at IS NOT NULL;
