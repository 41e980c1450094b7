-- One row per (event, target) delivery job. Times are unix milliseconds,
-- UTC. attempt_log and payload are JSON and never filtered on.
CREATE TABLE outbox_jobs (
    id               TEXT    NOT NULL PRIMARY KEY,  -- {eventId}|{target}
    event_id         TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    account_id       TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'processing', 'done', 'deadletter')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_at           INTEGER NOT NULL,
    first_attempt_at INTEGER,
    lease_until      INTEGER,
    owner            TEXT    NOT NULL DEFAULT '',
    claim_id         TEXT    NOT NULL DEFAULT '',
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    attempt_log      TEXT    NOT NULL DEFAULT '[]',
    payload          TEXT    NOT NULL,
    -- When a live job may be claimed: its run_at while pending, the end of
    -- its lease while processing (its worker died); NULL once finished.
    due_at           INTEGER GENERATED ALWAYS AS (
        CASE state WHEN 'pending' THEN run_at WHEN 'processing' THEN lease_until END
    ) VIRTUAL
) STRICT;

-- Claim: a target's live jobs by due time. Partial, so it holds only the
-- live jobs, however many finished ones are kept.
CREATE INDEX outbox_jobs_due ON outbox_jobs (target, due_at) WHERE due_at IS NOT NULL;

-- List, newest first by (created_at, id) — the cursor — unfiltered or by
-- one filter. The state one also answers the oldest pending job, Replay and
-- Purge.
CREATE INDEX outbox_jobs_created ON outbox_jobs (created_at, id);
CREATE INDEX outbox_jobs_state_created ON outbox_jobs (state, created_at, id);
CREATE INDEX outbox_jobs_target_created ON outbox_jobs (target, created_at, id);
CREATE INDEX outbox_jobs_account_created ON outbox_jobs (account_id, created_at, id);
CREATE INDEX outbox_jobs_event ON outbox_jobs (event_id, created_at, id);

-- Stats: depth per state and target, counted from this index alone.
CREATE INDEX outbox_jobs_state_target ON outbox_jobs (state, target);
