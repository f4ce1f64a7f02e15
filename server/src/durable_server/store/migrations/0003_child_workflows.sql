-- 0003_child_workflows: suspended tasks, their waits (child workflows), and wait timeouts.

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('ready', 'leased', 'waiting'));
-- The outcomes of the step run's waits so far, by wait index: {"0": {"ok": ..}, ...}.
ALTER TABLE tasks ADD COLUMN memo jsonb NOT NULL DEFAULT '{}';

-- What a waiting task waits for. A task waits on one thing at a time.
CREATE TABLE waits (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id   uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    task_id        bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    wait_index     integer NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('child')),
    child_id       uuid,
    timeout_value  jsonb,                    -- the outcome on timeout; NULL: a timeout is an error
    UNIQUE (task_id, wait_index)
);
CREATE INDEX waits_child ON waits (child_id) WHERE child_id IS NOT NULL;
CREATE INDEX waits_execution ON waits (execution_id);

-- Timers now also end waits; an execution has at most one timeout timer.
ALTER TABLE timers DROP CONSTRAINT timers_execution_id_kind_key;
ALTER TABLE timers DROP CONSTRAINT timers_kind_check;
ALTER TABLE timers ADD CONSTRAINT timers_kind_check
    CHECK (kind IN ('execution_timeout', 'wait_timeout'));
ALTER TABLE timers ADD COLUMN wait_id bigint REFERENCES waits (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX timers_execution_timeout ON timers (execution_id)
    WHERE kind = 'execution_timeout';
