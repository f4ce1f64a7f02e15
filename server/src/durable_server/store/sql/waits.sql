-- name: wait_insert
-- Park a task on a wait; its deadline is $9, or $8 seconds from now, with a timer when set. Returns (id, deadline).
WITH w AS (
    INSERT INTO waits (execution_id, task_id, wait_index, kind, child_id, timeout_value,
                       created_at, deadline_at, event_names, mode, input_name, input_spec,
                       received)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, coalesce($7, now()),
            coalesce($9, coalesce($7, now()) + make_interval(secs => $8)),
            $10, $11, $12, $13::jsonb, coalesce($14::jsonb, '{}'))
    RETURNING id, execution_id, deadline_at
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at, wait_id)
    SELECT w.execution_id, 'wait_timeout', w.deadline_at, w.id FROM w
    WHERE w.deadline_at IS NOT NULL
)
SELECT id, deadline_at FROM w;

-- name: wait_take_for_children
-- Take (delete) the waits on these children: they ended.
DELETE FROM waits WHERE child_id = ANY($1::uuid[])
RETURNING id, execution_id, task_id, wait_index, kind, child_id, timeout_value::text AS timeout_value,
          input_name;

-- name: wait_take
-- Take (delete) one wait, if it still exists (its timeout fired).
DELETE FROM waits WHERE id = $1
RETURNING id, execution_id, task_id, wait_index, kind, child_id, timeout_value::text AS timeout_value,
          input_name;

-- name: wait_child_outcomes
-- The outcome of ended children, as a wait records it; NULL for a child still running (status in $2).
SELECT e.id,
       CASE WHEN e.status = 'completed' THEN jsonb_build_object('ok', true, 'value', e.result)
            WHEN e.status = ANY($2::text[]) THEN NULL
            ELSE jsonb_build_object('ok', false, 'error', jsonb_build_object(
                'type', 'ChildWorkflowFailed',
                'message', format('child execution %s (%s) ended %s: %s', e.id, e.workflow_name,
                                  e.status, coalesce(e.error->>'message', 'no message')),
                'execution_id', e.id, 'status', e.status, 'cause', e.error))
       END::text AS outcome
FROM executions e WHERE e.id = ANY($1::uuid[])
FOR UPDATE;

-- name: wait_event_lock
-- The oldest event wait of an execution that the named event ends or feeds, locked.
SELECT id, task_id, wait_index, mode, event_names, received::text AS received FROM waits
WHERE execution_id = $1 AND kind = 'event' AND $2 = ANY(event_names)
  AND NOT (mode = 'all' AND received ? $2)
ORDER BY id LIMIT 1
FOR UPDATE;

-- name: wait_received_add
-- Add an event's payload to an 'all' wait; returns what it has received so far.
UPDATE waits SET received = received || jsonb_build_object($2::text, $3::jsonb)
WHERE id = $1
RETURNING received::text AS received;

-- name: wait_input_lock
-- The pending input of an execution by name, locked.
SELECT id, task_id, wait_index, input_spec::text AS input_spec FROM waits
WHERE execution_id = $1 AND input_name = $2
FOR UPDATE;

-- name: wait_input_names
-- The names of an execution's pending inputs.
SELECT input_name FROM waits WHERE execution_id = $1 AND input_name IS NOT NULL
ORDER BY input_name;

-- name: wait_list_inputs
-- Pending human inputs, oldest first, after a wait id; filters are optional.
SELECT w.id, w.execution_id, e.workflow_name, t.step_name, w.input_name,
       w.input_spec::text AS input_spec, w.created_at, w.deadline_at
FROM waits w JOIN tasks t ON t.id = w.task_id JOIN executions e ON e.id = w.execution_id
WHERE w.kind = 'input' AND w.id > $1
  AND ($2::uuid IS NULL OR w.execution_id = $2)
  AND ($3::text IS NULL OR e.workflow_name = $3)
  AND ($4::text IS NULL OR w.input_name = $4)
ORDER BY w.id LIMIT $5;

-- name: wait_list_events
-- Pending event waits, oldest first, after a wait id; filters are optional.
SELECT w.id, w.execution_id, e.workflow_name, t.step_name, w.event_names, w.mode,
       ARRAY(SELECT jsonb_object_keys(w.received)) AS received, w.created_at, w.deadline_at
FROM waits w JOIN tasks t ON t.id = w.task_id JOIN executions e ON e.id = w.execution_id
WHERE w.kind = 'event' AND w.id > $1
  AND ($2::uuid IS NULL OR w.execution_id = $2)
  AND ($3::text IS NULL OR e.workflow_name = $3)
  AND ($4::text IS NULL OR $4 = ANY(w.event_names))
ORDER BY w.id LIMIT $5;

-- name: wait_list_for_execution
-- What an execution's suspended tasks wait for now, oldest wait first (with a child's workflow).
SELECT t.step_name, t.kind AS task_kind, t.lane_path, w.kind, w.event_names, w.mode,
       w.input_name, c.workflow_name AS child_workflow, w.deadline_at
FROM waits w JOIN tasks t ON t.id = w.task_id LEFT JOIN executions c ON c.id = w.child_id
WHERE w.execution_id = $1
ORDER BY w.id;
