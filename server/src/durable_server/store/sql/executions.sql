-- name: execution_insert
-- Insert a pending execution, its first task and its timeout timer; nothing on an idempotency-key conflict.
WITH e AS (
    INSERT INTO executions (id, workflow_name, workflow_version, status, queue, priority, input,
                            idempotency_key, created_at, scheduled_at, schedule_name,
                            schedule_slot, traceparent, deadline_at)
    VALUES ($1, $2, $3, 'pending', $4, $5, $6::jsonb, $7, coalesce($8, now()), $9, $14, $15,
            nullif($16, ''),
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

-- name: execution_insert_many
-- Insert pending executions with first tasks and timeout timers, in one statement; one row per input ($17 ordinals) saying which were created and which queue refused them (draining); notifies $18 for those ready now.
WITH x AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                         $7::text[], $8::timestamptz[], $9::float8[], $10::text[],
                         $11::float8[], $12::text[], $13::text[], $14::bool[])
        WITH ORDINALITY
        AS x(id, workflow_name, workflow_version, queue, priority, input, idempotency_key,
             scheduled_at, timeout_secs, first_step, first_timeout_secs, first_kind,
             traceparent, ready_now, ord)
), refused AS (
    SELECT x.ord, coalesce(nullif(q.reason, ''), 'no reason given') AS reason
    FROM x JOIN queue_states q ON q.name = x.queue AND q.state = 'draining'
), e AS (
    INSERT INTO executions (id, workflow_name, workflow_version, status, queue, priority, input,
                            idempotency_key, created_at, scheduled_at, traceparent, deadline_at)
    SELECT x.id, x.workflow_name, x.workflow_version, 'pending', x.queue, x.priority,
           x.input::jsonb, x.idempotency_key, coalesce($15, now()), x.scheduled_at,
           nullif(x.traceparent, ''),
           greatest(coalesce($15, now()), coalesce(x.scheduled_at, coalesce($15, now())))
               + make_interval(secs => x.timeout_secs)
    FROM x WHERE NOT EXISTS (SELECT 1 FROM refused r WHERE r.ord = x.ord)
    ORDER BY x.ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, input, created_at, scheduled_at, deadline_at
), t AS (
    INSERT INTO tasks (execution_id, sequence, step_name, queue, priority, workflow_version,
                       timeout_secs, input, status, available_at, kind)
    SELECT e.id, 1, x.first_step, x.queue, x.priority, x.workflow_version, x.first_timeout_secs,
           e.input, 'ready', coalesce(e.scheduled_at, e.created_at), x.first_kind
    FROM e JOIN x ON x.id = e.id
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at)
    SELECT e.id, 'execution_timeout', e.deadline_at FROM e WHERE e.deadline_at IS NOT NULL
), n AS (
    SELECT count(pg_notify($16, q.queue)) AS sent
    FROM (SELECT DISTINCT x.queue FROM e JOIN x ON x.id = e.id WHERE x.ready_now) q
)
SELECT x.ord, e.id IS NOT NULL AS created, r.reason AS refused, n.sent
FROM x LEFT JOIN e ON e.id = x.id LEFT JOIN refused r ON r.ord = x.ord CROSS JOIN n
ORDER BY x.ord;

-- name: execution_ids_by_idempotency_keys
-- The executions that hold these idempotency keys.
SELECT idempotency_key, id FROM executions WHERE idempotency_key = ANY($1::text[]);

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
  AND ($11::text IS NULL OR e.schedule_name = $11)
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
  AND ($7::timestamptz IS NULL OR e.created_at < $7)
  AND ($8::text IS NULL OR e.schedule_name = $8);

-- name: execution_status_get
-- The status of one execution, locked until the transaction ends.
SELECT status FROM executions WHERE id = $1 FOR UPDATE;

-- name: execution_finish_many
-- Finish executions (status, result, error) still in one of the allowed statuses; say what each leaves behind to clean up.
-- With a channel ($7), NOTIFY it with the finished ids (comma-separated, 200 a time to keep under the payload limit).
WITH done AS (
    UPDATE executions e
    SET status = x.status, result = x.result::jsonb, error = coalesce(x.error::jsonb, e.error),
        finished_at = coalesce($5, now())
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(id, status, result, error)
    WHERE e.id = x.id AND e.id = ANY($1::uuid[]) AND e.status = ANY($6::text[])
    RETURNING e.id, e.workflow_name, e.parent_id IS NOT NULL AS has_parent,
              EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = e.id) AS has_tasks,
              EXISTS (SELECT 1 FROM groups g WHERE g.execution_id = e.id) AS has_groups,
              EXISTS (SELECT 1 FROM timers m WHERE m.execution_id = e.id) AS has_timers,
              EXISTS (SELECT 1 FROM executions c WHERE c.parent_id = e.id) AS has_children
), notified AS (
    SELECT count(pg_notify($7::text, ids)) AS n FROM (
        SELECT string_agg(id::text, ',') AS ids
        FROM (SELECT id, (row_number() OVER ()) / 200 AS chunk FROM done) c
        WHERE $7::text IS NOT NULL
        GROUP BY chunk) chunks
)
SELECT done.* FROM done, notified;

-- name: execution_sequences_take
-- Hand out the next sequence numbers of executions; returns the last one taken of each.
UPDATE executions e SET step_runs = e.step_runs + x.n
FROM unnest($1::uuid[], $2::int[]) AS x(id, n)
WHERE e.id = x.id AND e.id = ANY($1::uuid[])
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

-- name: execution_insert_children
-- Insert child executions (ids derived from parent, sequence and index) with their first tasks and timeout timers; existing ones are left alone. Returns the ids created.
WITH x AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                         $7::float8[], $8::text[], $9::float8[], $10::text[])
        AS x(id, workflow_name, workflow_version, queue, priority, input, timeout_secs,
             first_step, first_timeout_secs, first_kind)
), e AS (
    INSERT INTO executions (id, workflow_name, workflow_version, status, queue, priority, input,
                            parent_id, created_at, deadline_at)
    SELECT x.id, x.workflow_name, x.workflow_version, 'pending', x.queue, x.priority,
           x.input::jsonb, $11, coalesce($12, now()),
           coalesce($12, now()) + make_interval(secs => x.timeout_secs)
    FROM x
    ON CONFLICT (id) DO NOTHING
    RETURNING id, input, created_at, deadline_at
), t AS (
    INSERT INTO tasks (execution_id, sequence, step_name, queue, priority, workflow_version,
                       timeout_secs, input, status, available_at, kind)
    SELECT e.id, 1, x.first_step, x.queue, x.priority, x.workflow_version, x.first_timeout_secs,
           e.input, 'ready', e.created_at, x.first_kind
    FROM e JOIN x ON x.id = e.id
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at)
    SELECT e.id, 'execution_timeout', e.deadline_at FROM e WHERE e.deadline_at IS NOT NULL
)
SELECT e.id FROM e;

-- name: execution_waiting_mark
-- Mark an execution waiting when none of its tasks is ready or leased.
UPDATE executions e SET status = 'waiting'
WHERE e.id = $1 AND e.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = e.id
                  AND t.status IN ('ready', 'leased'));

-- name: execution_waiting_mark_many
-- Mark running executions waiting when their tasks all wait (the last running branch ended).
-- "(status || '')" keeps the planner on the primary key (see task_claim_many).
UPDATE executions e SET status = 'waiting'
WHERE e.id = ANY($1::uuid[]) AND (e.status || '') = 'running'
  AND EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = e.id AND t.status = 'waiting')
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = e.id
                  AND t.status IN ('ready', 'leased'));

-- name: execution_running_mark_many
-- Mark waiting executions running again (a task woke).
-- "(status || '')" keeps the planner on the primary key (see task_claim_many).
UPDATE executions SET status = 'running' WHERE id = ANY($1::uuid[]) AND (status || '') = 'waiting';

-- name: execution_descendants_active
-- The unfinished executions (status in $2) below these ones (children, their children, ...).
WITH RECURSIVE d AS (
    SELECT c.id, c.status FROM executions c WHERE c.parent_id = ANY($1::uuid[])
    UNION
    SELECT c.id, c.status FROM executions c JOIN d ON c.parent_id = d.id
)
SELECT id FROM d WHERE status = ANY($2::text[]);

-- name: execution_active
-- Whether an execution is still unfinished (its status is one of $2).
SELECT status = ANY($2::text[]) FROM executions WHERE id = $1;

-- name: execution_delete_finished_before
-- Delete up to $2 executions that finished before $1, with their history (cascading); returns how many.
WITH old AS (
    SELECT id FROM executions
    WHERE finished_at < $1 AND status IN ('completed', 'failed', 'cancelled', 'timed_out',
                                          'compensated', 'compensation_failed')
    ORDER BY finished_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM executions e USING old WHERE e.id = old.id;

-- name: execution_oldest_finished
-- When the longest-finished execution still kept finished.
SELECT min(finished_at) FROM executions WHERE finished_at IS NOT NULL;

