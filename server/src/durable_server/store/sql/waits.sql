-- name: wait_insert
-- Park a task on a wait, with a timeout timer $8 seconds from now when set; returns its id.
WITH w AS (
    INSERT INTO waits (execution_id, task_id, wait_index, kind, child_id, timeout_value)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb)
    RETURNING id, execution_id
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at, wait_id)
    SELECT w.execution_id, 'wait_timeout', coalesce($7, now()) + make_interval(secs => $8), w.id
    FROM w WHERE $8::float8 IS NOT NULL
)
SELECT id FROM w;

-- name: wait_take_for_children
-- Take (delete) the waits on these children: they ended.
DELETE FROM waits WHERE child_id = ANY($1::uuid[])
RETURNING id, execution_id, task_id, wait_index, kind, child_id, timeout_value::text AS timeout_value;

-- name: wait_take
-- Take (delete) one wait, if it still exists (its timeout fired).
DELETE FROM waits WHERE id = $1
RETURNING id, execution_id, task_id, wait_index, kind, child_id, timeout_value::text AS timeout_value;

-- name: wait_child_outcomes
-- The outcome of ended children, as a wait records it; NULL for a child still running.
SELECT e.id,
       CASE WHEN e.status = 'completed' THEN jsonb_build_object('ok', true, 'value', e.result)
            WHEN e.status IN ('pending', 'running', 'waiting', 'compensating') THEN NULL
            ELSE jsonb_build_object('ok', false, 'error', jsonb_build_object(
                'type', 'ChildWorkflowFailed',
                'message', format('child execution %s (%s) ended %s: %s', e.id, e.workflow_name,
                                  e.status, coalesce(e.error->>'message', 'no message')),
                'execution_id', e.id, 'status', e.status, 'cause', e.error))
       END::text AS outcome
FROM executions e WHERE e.id = ANY($1::uuid[])
FOR UPDATE;
