-- Per-chat order (a target handled with it delivers the jobs of one chat
-- one at a time, in the order they were enqueued). chat_key is
-- {accountId}\0{chatId}, seq the job's place in that order (the enqueuing
-- process's clock in nanoseconds, made strictly increasing). Only jobs of
-- ordered targets have them; the others, and jobs stored before this
-- migration, have chat_key '' and are delivered without order.
ALTER TABLE outbox_jobs ADD COLUMN chat_key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_jobs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- An ordered claim's check "an earlier live job of this chat": live jobs
-- of ordered targets only, so the jobs of the others never touch it.
CREATE INDEX outbox_jobs_chat_live ON outbox_jobs (target, chat_key, seq, id) WHERE due_at IS NOT NULL AND chat_key <> '';
