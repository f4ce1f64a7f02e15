-- 0008_operations: paused and draining queues; the input of a step that failed for good.

CREATE TABLE queue_states (
    name        text PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('paused', 'draining')),
    reason      text NOT NULL DEFAULT '',
    changed_at  timestamptz NOT NULL
);

-- Kept for attempts after which the step was given up, so RetryExecution can run it again.
ALTER TABLE step_attempts ADD COLUMN input jsonb;
