-- Per-chat order (a target handled with it delivers the jobs of one chat
-- one at a time, in the order they were enqueued). chat_key is
-- {accountId}\0{chatId}, seq the job's place in that order (the enqueuing
-- process's clock in nanoseconds, made strictly increasing). Jobs stored
-- before this migration have chat_key '' and are delivered without order.
ALTER TABLE outbox_jobs ADD COLUMN chat_key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_jobs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- An ordered claim's check "an earlier live job of this chat": live jobs
-- only, like outbox_jobs_due.
CREATE INDEX outbox_jobs_chat_live ON outbox_jobs (target, chat_key, seq, id) WHERE due_at IS NOT NULL;
