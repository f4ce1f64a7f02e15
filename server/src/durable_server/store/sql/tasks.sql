-- name: task_insert_many
-- Enqueue task runs, ready now, or leased at once to worker $17 where $16 says so (unless the queue is paused); a NULL input is the lane's own input (a foreach item). Returns the leased ones, as claimed tasks.
WITH x AS MATERIALIZED (  -- the pause check once per row, not once per use
    SELECT x.*, x.lease AND NOT EXISTS (SELECT 1 FROM queue_states q
                                         WHERE q.name = x.queue AND q.state = 'paused') AS leasing
    FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::int[], $6::text[],
                $7::float8[], $8::text[], $9::text[], $10::bigint[], $11::int[], $12::text[],
                $13::text[], $14::int[], $16::bool[])
        AS x(execution_id, sequence, step_name, queue, priority, workflow_version, timeout_secs,
             input, kind, group_id, lane, lane_path, compensated_step, compensated_sequence,
             lease)
), ins AS (
    INSERT INTO tasks (execution_id, sequence, step_name, queue, priority, workflow_version,
                       timeout_secs, input, status, available_at, kind, group_id, lane, lane_path,
                       compensated_step, compensated_sequence, lease_token, leased_at,
                       lease_expires_at, worker_id)
    SELECT x.execution_id, x.sequence, x.step_name, x.queue, x.priority, x.workflow_version,
           x.timeout_secs,
           coalesce(x.input::jsonb, (SELECT l.input FROM lanes l
                                     WHERE l.group_id = x.group_id AND l.index = x.lane)),
           CASE WHEN x.leasing THEN 'leased' ELSE 'ready' END, coalesce($15, now()), x.kind,
           x.group_id, x.lane, x.lane_path, x.compensated_step, x.compensated_sequence,
           CASE WHEN x.leasing THEN gen_random_uuid() END,
           CASE WHEN x.leasing THEN coalesce($15, now()) END,
           CASE WHEN x.leasing THEN coalesce($15, now()) + make_interval(secs => least(
               $18::float8, coalesce(x.timeout_secs + $19::float8, $18::float8))) END,
           CASE WHEN x.leasing THEN $17 END
    FROM x
    -- A lane whose group ended earlier in the same transaction (a failing sibling) gets nothing.
    WHERE x.group_id IS NULL OR EXISTS (SELECT 1 FROM groups g WHERE g.id = x.group_id)
    RETURNING id, lease_token, lease_expires_at, execution_id, workflow_version, step_name,
              sequence, attempt, input, timeout_secs, kind, lane_path, compensated_step, memo,
              queue
)
SELECT i.id, i.lease_token::text AS lease_token, i.lease_expires_at,
       i.execution_id::text AS execution_id, e.workflow_name, i.workflow_version, i.step_name,
       i.sequence, i.attempt, i.input::text AS input, e.input::text AS execution_input,
       i.timeout_secs, i.kind, i.lane_path, i.compensated_step, i.memo::text AS memo,
       e.traceparent, 0::float8 AS dispatch_secs, i.queue
FROM ins i JOIN executions e ON e.id = i.execution_id
WHERE i.lease_token IS NOT NULL
ORDER BY i.id;

-- name: task_claim_many
-- Lease up to $3 ready tasks of one queue whose version the worker registered, best first; starts pending executions.
WITH w AS (
    SELECT versions FROM workers WHERE id = $1
), c AS (
    SELECT t.id FROM tasks t, w
    WHERE t.status = 'ready' AND t.queue = $2
      AND t.available_at <= coalesce($4, now())
      AND t.workflow_version = ANY(w.versions)
      AND NOT EXISTS (SELECT 1 FROM queue_states qs WHERE qs.name = $2 AND qs.state = 'paused')
    ORDER BY t.priority DESC, t.available_at, t.id
    LIMIT $3
    FOR UPDATE OF t SKIP LOCKED
), u AS (
    UPDATE tasks t
    SET status = 'leased', lease_token = gen_random_uuid(), leased_at = coalesce($4, now()),
        lease_expires_at = coalesce($4, now()) + make_interval(secs => least($5::float8,
            coalesce(t.timeout_secs + $6::float8, $5::float8))),
        worker_id = $1
    FROM c
    WHERE t.id = c.id
    RETURNING t.id, t.lease_token, t.lease_expires_at, t.execution_id, t.workflow_version,
              t.step_name, t.sequence, t.attempt, t.input, t.timeout_secs, t.kind,
              t.lane_path, t.compensated_step, t.memo,
              greatest(extract(epoch FROM t.leased_at - t.available_at), 0)::float8 AS dispatch_secs
), s AS (
    -- "(e.status || '')" keeps the planner off the index of unfinished executions (it
    -- would read every pending one): the primary key finds the few rows claimed.
    UPDATE executions e SET status = 'running', started_at = coalesce($4, now())
    FROM u WHERE e.id = u.execution_id AND (e.status || '') = 'pending'
)
SELECT u.id, u.lease_token::text AS lease_token, u.lease_expires_at, u.execution_id::text AS execution_id,
       e.workflow_name, u.workflow_version, u.step_name, u.sequence, u.attempt,
       u.input::text AS input, e.input::text AS execution_input, u.timeout_secs, u.kind,
       u.lane_path, u.compensated_step, u.memo::text AS memo, e.traceparent,
       u.dispatch_secs
FROM u JOIN executions e ON e.id = u.execution_id
ORDER BY u.id;

-- name: task_ready_queues
-- Which of the queues $1 have a task available now and are not paused, in the order given: one index probe each.
SELECT q.name
FROM unnest($1::text[]) WITH ORDINALITY AS q(name, position)
WHERE EXISTS (SELECT 1 FROM tasks t
              WHERE t.status = 'ready' AND t.queue = q.name
                AND t.available_at <= coalesce($2, now()))
  AND NOT EXISTS (SELECT 1 FROM queue_states qs WHERE qs.name = q.name AND qs.state = 'paused')
ORDER BY q.position;

-- name: task_queue_lock
-- Serialise claims on one queue until the transaction ends (its concurrency limit holds).
SELECT pg_advisory_xact_lock(hashtext('durable.queue.' || $1));

-- name: task_queue_leased_count
-- How many tasks of a queue are leased; run after task_queue_lock, in a statement of its own,
-- so that its snapshot sees the claims committed while waiting for the lock.
SELECT count(*) AS leased FROM tasks WHERE queue = $1 AND status = 'leased';

-- name: task_poll_idle
-- For a poll that claimed nothing: whether worker $3 is registered, and when the next ready task of these queues that was not available when the claim ran ($2, or with the database's clock $4 s ago) becomes available. One that became available since is in the past: the poll claims again at once.
SELECT EXISTS (SELECT 1 FROM workers WHERE id = $3) AS known,
       (SELECT min(available_at) FROM tasks
        WHERE status = 'ready' AND queue = ANY($1::text[])
          AND available_at > coalesce($2, now() - make_interval(secs => $4::float8))) AS next_available_at;

-- name: task_lock_leased_many
-- Lock the leased tasks whose (id, lease token) match; the ones missing are stale.
SELECT t.id, t.execution_id, t.sequence, t.step_name, t.attempt, t.failures, t.losses,
       t.queue, t.priority, t.workflow_version, t.timeout_secs, t.leased_at, t.worker_id,
       t.kind, t.group_id, t.lane, t.lane_path, t.compensated_step, t.compensated_sequence
FROM tasks t
JOIN unnest($1::bigint[], $2::uuid[]) AS x(id, token) ON t.id = x.id AND t.lease_token = x.token
WHERE t.id = ANY($1::bigint[]) AND t.status = 'leased'
ORDER BY t.id
FOR UPDATE OF t;

-- name: task_delete_many
-- Remove tasks by id.
DELETE FROM tasks WHERE id = ANY($1::bigint[]);

-- name: task_notify_ready
-- Wake the long-polls of other orchestrators: one notification per queue with new ready work.
SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q;

-- name: task_delete_for_executions_except
-- Remove every task of these executions but the listed ones (a failure stops the others).
DELETE FROM tasks WHERE execution_id = ANY($1::uuid[]) AND NOT id = ANY($2::bigint[]) RETURNING id;

-- name: task_delete_for_executions
-- Remove every task of these executions (cancelled, timed out or finished).
DELETE FROM tasks WHERE execution_id = ANY($1::uuid[]) RETURNING id;

-- name: task_requeue_many
-- Make leased tasks ready again after a delay, as their next attempt.
UPDATE tasks t
SET status = 'ready', attempt = t.attempt + x.attempt_step, failures = t.failures + x.failure_step,
    losses = t.losses + x.loss_step,
    available_at = coalesce($6, now()) + make_interval(secs => x.delay_secs),
    lease_token = NULL, leased_at = NULL, lease_expires_at = NULL, worker_id = NULL
FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::float8[])
     AS x(id, attempt_step, failure_step, loss_step, delay_secs)
WHERE t.id = x.id AND t.id = ANY($1::bigint[])
RETURNING t.queue, t.available_at;

-- name: task_release_many
-- Give leased tasks back unrun: ready now, as the same attempt.
UPDATE tasks
SET status = 'ready', available_at = coalesce($2, now()),
    lease_token = NULL, leased_at = NULL, lease_expires_at = NULL, worker_id = NULL
WHERE id = ANY($1::bigint[]) AND status = 'leased'
RETURNING queue, available_at;

-- name: task_heartbeat_many
-- Extend the leases still held (never past the step's timeout), none if one is on a queue outside $6 (NULL: any); returns each held task, its queue and new expiry (NULL: not extended).
-- Rows are locked in id order, as reports lock them, so the two never deadlock.
WITH held AS (
    SELECT t.id, t.queue FROM tasks t
    JOIN unnest($1::bigint[], $2::uuid[]) AS x(id, token) ON t.id = x.id AND t.lease_token = x.token
    WHERE t.id = ANY($1::bigint[]) AND t.status = 'leased'
    ORDER BY t.id
    FOR UPDATE OF t
), extended AS (
    UPDATE tasks t
    SET lease_expires_at = least(coalesce($4, now()) + make_interval(secs => $3::float8),
            coalesce(t.leased_at + make_interval(secs => t.timeout_secs + $5::float8), 'infinity'))
    FROM held
    WHERE t.id = held.id
      AND NOT EXISTS (SELECT 1 FROM held h WHERE NOT h.queue = ANY($6::text[]))
    RETURNING t.id, t.lease_expires_at
)
SELECT held.id, held.queue, extended.lease_expires_at
FROM held LEFT JOIN extended ON extended.id = held.id;

-- name: task_lease_extend_after_outage
-- Give every lease a full length ($3 s) again when the database was out of reach: after an outage this orchestrator saw ($1: from now), and after PostgreSQL (re)started (from its start; with the database's clock only, $2 NULL). Leases a report or heartbeat holds are skipped (they are being settled). Returns the ids extended.
WITH until AS (
    SELECT greatest(
        CASE WHEN $1::boolean THEN coalesce($2::timestamptz, now()) + make_interval(secs => $3::float8) END,
        CASE WHEN $2::timestamptz IS NULL THEN pg_postmaster_start_time() + make_interval(secs => $3::float8) END
    ) AS at
), due AS (
    SELECT t.id FROM tasks t, until
    WHERE t.status = 'leased' AND t.lease_expires_at < until.at
      AND until.at > coalesce($2::timestamptz, now())
    ORDER BY t.id
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE tasks t SET lease_expires_at = until.at
FROM due, until
WHERE t.id = due.id
RETURNING t.id;

-- name: task_lock_expired_many
-- Lock up to $2 leased tasks whose lease has expired, oldest first, saying which ran past their timeout.
SELECT t.id, t.execution_id, t.sequence, t.step_name, t.attempt, t.failures, t.losses,
       t.queue, t.priority, t.workflow_version, t.timeout_secs, t.leased_at, t.worker_id,
       t.kind, t.group_id, t.lane, t.lane_path, t.compensated_step, t.compensated_sequence,
       (t.timeout_secs IS NOT NULL AND
        t.leased_at + make_interval(secs => t.timeout_secs) <= coalesce($1, now())) AS past_timeout
FROM tasks t
WHERE t.status = 'leased' AND t.lease_expires_at <= coalesce($1, now())
ORDER BY t.lease_expires_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: task_next_lease_expiry
-- When the next lease expires.
SELECT min(lease_expires_at) FROM tasks WHERE status = 'leased';

-- name: task_running_for_execution
-- The leased and waiting tasks of an execution, shown as running or waiting attempts.
SELECT step_name, sequence, attempt, worker_id, leased_at, kind, lane_path, status FROM tasks
WHERE execution_id = $1 AND status IN ('leased', 'waiting') ORDER BY sequence;

-- name: task_suspend
-- Park a leased task: no lease, no worker, until its wait is over.
UPDATE tasks SET status = 'waiting', lease_token = NULL, leased_at = NULL,
    lease_expires_at = NULL, worker_id = NULL
WHERE id = $1 AND status = 'leased';

-- name: task_wake_many
-- Record wait outcomes in waiting tasks' memos and make them ready now.
UPDATE tasks t
SET memo = t.memo || jsonb_build_object(x.wait_index::text, x.outcome::jsonb),
    status = 'ready', available_at = coalesce($4, now())
FROM unnest($1::bigint[], $2::int[], $3::text[]) AS x(id, wait_index, outcome)
WHERE t.id = x.id AND t.id = ANY($1::bigint[]) AND t.status = 'waiting'
RETURNING t.queue, t.execution_id;
