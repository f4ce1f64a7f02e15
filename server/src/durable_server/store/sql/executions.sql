-- name: execution_insert
-- Insert a pending execution, its first task and its timeout timer; nothing on an idempotency-key conflict.
WITH e AS (
    INSERT INTO executions (id, workflow_name, workflow_version, status, queue, priority, input,
                            idempotency_key, created_at, scheduled_at, deadline_at)
    VALUES ($1, $2, $3, 'pending', $4, $5, $6::jsonb, $7, coalesce($8, now()), $9,
            CASE WHEN $10::float8 IS NULL THEN NULL
                 ELSE greatest(coalesce($8, now()), coalesce($9, coalesce($8, now())))
                      + make_interval(secs => $10::float8) END)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, input, created_at, scheduled_at, deadline_at
), t AS (
    INSERT INTO tasks (execution_id, sequence, step_name, queue, priority, workflow_version,
                       timeout_secs, input, status, available_at, kind)
    SELECT e.id, 1, $11, $4, $5, $3, $12, e.input, 'ready', coalesce(e.scheduled_at, e.created_at),
           $13
    FROM e
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at)
    SELECT e.id, 'execution_timeout', e.deadline_at FROM e WHERE e.deadline_at IS NOT NULL
)
SELECT id FROM e;

-- name: execution_id_by_idempotency_key
-- The execution that holds an idempotency key.
SELECT id FROM executions WHERE idempotency_key = $1;

-- name: execution_get
-- One execution with the step it is on (from its active task, if any).
SELECT e.*, (SELECT t.step_name FROM tasks t WHERE t.execution_id = e.id
             ORDER BY t.sequence DESC LIMIT 1) AS current_step
FROM executions e WHERE e.id = $1;

-- name: execution_list
-- A page of executions, newest first, after an optional (created_at, id) cursor.
SELECT e.*, NULL::text AS current_step
FROM executions e
WHERE ($1::text IS NULL OR e.workflow_name = $1)
  AND (cardinality($2::text[]) = 0 OR e.status = ANY($2))
  AND ($3::text IS NULL OR e.queue = $3)
  AND ($4::uuid IS NULL OR e.parent_id = $4)
  AND (NOT $5::bool OR e.parent_id IS NULL)
  AND ($6::timestamptz IS NULL OR e.created_at >= $6)
  AND ($7::timestamptz IS NULL OR e.created_at < $7)
  AND ($8::timestamptz IS NULL OR (e.created_at, e.id) < ($8, $9::uuid))
ORDER BY e.created_at DESC, e.id DESC
LIMIT $10;

-- name: execution_count
-- How many executions match the same filters as execution_list.
SELECT count(*) FROM executions e
WHERE ($1::text IS NULL OR e.workflow_name = $1)
  AND (cardinality($2::text[]) = 0 OR e.status = ANY($2))
  AND ($3::text IS NULL OR e.queue = $3)
  AND ($4::uuid IS NULL OR e.parent_id = $4)
  AND (NOT $5::bool OR e.parent_id IS NULL)
  AND ($6::timestamptz IS NULL OR e.created_at >= $6)
  AND ($7::timestamptz IS NULL OR e.created_at < $7);

-- name: execution_status_get
-- The status of one execution, locked until the transaction ends.
SELECT status FROM executions WHERE id = $1 FOR UPDATE;

-- name: execution_finish_many
-- Finish executions (status, result, error) that are still in one of the allowed statuses.
UPDATE executions e
SET status = x.status, result = x.result::jsonb, error = coalesce(x.error::jsonb, e.error),
    finished_at = coalesce($5, now())
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(id, status, result, error)
WHERE e.id = x.id AND e.status = ANY($6::text[])
RETURNING e.id;

-- name: execution_sequences_take
-- Hand out the next sequence numbers of executions; returns the last one taken of each.
UPDATE executions e SET step_runs = e.step_runs + x.n
FROM unnest($1::uuid[], $2::int[]) AS x(id, n)
WHERE e.id = x.id
RETURNING e.id, e.step_runs;

-- name: execution_compensation_begin
-- Move a failing execution to compensating, keeping its failure; false if it had ended.
UPDATE executions SET status = 'compensating', error = $2::jsonb
WHERE id = $1 AND status = ANY($3::text[])
RETURNING true;

-- name: execution_compensation_failed_set
-- Note that a compensation failed for good.
UPDATE executions SET compensation_failed = true WHERE id = $1;

-- name: execution_compensation_failed_get
-- Whether any compensation of an execution failed for good.
SELECT compensation_failed FROM executions WHERE id = $1;
