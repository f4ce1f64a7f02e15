-- 0002_control_flow: branches, parallel groups, foreach lanes, gotos and compensations.

ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN
    ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'timed_out',
     'compensating', 'compensated', 'compensation_failed'));
-- Sequence numbers handed out so far (every task run takes the next one; the first is 1).
ALTER TABLE executions ADD COLUMN step_runs integer NOT NULL DEFAULT 1;
-- Set when a compensation failed for good (the execution ends compensation_failed).
ALTER TABLE executions ADD COLUMN compensation_failed boolean NOT NULL DEFAULT false;
DROP INDEX executions_active_status;
CREATE INDEX executions_active_status ON executions (status)
    WHERE status IN ('pending', 'running', 'waiting', 'compensating');

-- A running parallel group or foreach. Finished groups are deleted (their output has
-- moved on as the next node's input); deleting one deletes its lanes, its nested groups
-- and their tasks.
CREATE TABLE groups (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id     uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    node_name        text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('parallel', 'foreach')),
    parent_group_id  bigint REFERENCES groups (id) ON DELETE CASCADE,
    parent_lane      integer,
    lane_path        text NOT NULL,           -- the lane the group node runs in
    input            jsonb NOT NULL,          -- the group's input (into receives it as data)
    total            integer NOT NULL,
    started          integer NOT NULL DEFAULT 0,
    finished         integer NOT NULL DEFAULT 0,  -- lanes that ended, completed or failed
    failed           integer NOT NULL DEFAULT 0,
    concurrency      integer NOT NULL,
    fail_fast        boolean NOT NULL,
    collect          boolean NOT NULL         -- outcomes as {"ok": ...} (collect mode or into)
);
CREATE INDEX groups_execution ON groups (execution_id);
CREATE INDEX groups_parent ON groups (parent_group_id) WHERE parent_group_id IS NOT NULL;

-- One lane of a group: a parallel branch or a foreach item.
CREATE TABLE lanes (
    group_id  bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    index     integer NOT NULL,
    name      text,                           -- the parallel branch's name
    status    text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    input     jsonb,                          -- the foreach item (parallel lanes use the group's)
    result    jsonb,
    error     jsonb,
    PRIMARY KEY (group_id, index)
);

ALTER TABLE tasks ADD COLUMN kind text NOT NULL DEFAULT 'step'
    CHECK (kind IN ('step', 'route', 'into', 'compensation'));
ALTER TABLE tasks ADD COLUMN group_id bigint REFERENCES groups (id) ON DELETE CASCADE;
ALTER TABLE tasks ADD COLUMN lane integer;
ALTER TABLE tasks ADD COLUMN lane_path text NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN compensated_step text;
ALTER TABLE tasks ADD COLUMN compensated_sequence integer;
CREATE INDEX tasks_group ON tasks (group_id) WHERE group_id IS NOT NULL;

ALTER TABLE step_attempts ADD COLUMN kind text NOT NULL DEFAULT 'step'
    CHECK (kind IN ('step', 'route', 'into', 'compensation'));
ALTER TABLE step_attempts ADD COLUMN lane_path text NOT NULL DEFAULT '';
