-- name: queue_state_set
-- Pause or drain a queue (or change its reason); returns the state.
INSERT INTO queue_states (name, state, reason, changed_at)
VALUES ($1, $2, $3, coalesce($4, now()))
ON CONFLICT (name) DO UPDATE
SET state = EXCLUDED.state, reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at
RETURNING state;

-- name: queue_state_clear
-- Make a queue active again.
DELETE FROM queue_states WHERE name = $1;

-- name: queue_state_get
-- A queue's state: 'paused', 'draining', or no row when active.
SELECT state, reason FROM queue_states WHERE name = $1;

-- name: queue_stats
-- Every queue with tasks or a state: counts by task state and the oldest due task.
WITH t AS (
    SELECT queue,
           count(*) FILTER (WHERE status = 'ready' AND available_at <= coalesce($1, now())) AS ready,
           count(*) FILTER (WHERE status = 'leased') AS leased,
           count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (WHERE status = 'ready' AND available_at > coalesce($1, now())) AS delayed,
           min(available_at) FILTER (WHERE status = 'ready'
                                       AND available_at <= coalesce($1, now())) AS oldest
    FROM tasks GROUP BY queue
)
SELECT coalesce(t.queue, q.name) AS name, q.state, coalesce(q.reason, '') AS reason,
       coalesce(t.ready, 0) AS ready, coalesce(t.leased, 0) AS leased,
       coalesce(t.waiting, 0) AS waiting, coalesce(t.delayed, 0) AS delayed, t.oldest
FROM t FULL JOIN queue_states q ON q.name = t.queue
ORDER BY 1;

-- name: execution_stuck_list
-- Unfinished executions nothing can move forward, each with its problem (see Diagnose).
WITH alive AS (
    SELECT queues, versions FROM workers
    WHERE last_seen_at >= coalesce($1, now()) - make_interval(secs => $2)
), active AS (
    SELECT * FROM executions WHERE status IN ('pending', 'running', 'waiting', 'compensating')
)
SELECT * FROM (
    SELECT e.id, e.workflow_name, e.status, 'no_task' AS problem, '' AS queue,
           coalesce(e.started_at, e.created_at) AS since
    FROM active e WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = e.id)
    UNION ALL
    SELECT DISTINCT ON (e.id) e.id, e.workflow_name, e.status, 'waiting_on_nothing', t.queue,
           coalesce(t.leased_at, e.created_at)
    FROM active e JOIN tasks t ON t.execution_id = e.id
    WHERE t.status = 'waiting' AND NOT EXISTS (SELECT 1 FROM waits w WHERE w.task_id = t.id)
    UNION ALL
    SELECT DISTINCT ON (e.id) e.id, e.workflow_name, e.status, 'queue_paused', t.queue,
           t.available_at
    FROM active e JOIN tasks t ON t.execution_id = e.id
    JOIN queue_states q ON q.name = t.queue AND q.state = 'paused'
    WHERE t.status = 'ready'
    UNION ALL
    SELECT DISTINCT ON (e.id) e.id, e.workflow_name, e.status, 'no_worker_for_queue', t.queue,
           t.available_at
    FROM active e JOIN tasks t ON t.execution_id = e.id
    WHERE t.status = 'ready' AND t.available_at <= coalesce($1, now())
      AND NOT EXISTS (SELECT 1 FROM alive a WHERE t.queue = ANY(a.queues))
    UNION ALL
    SELECT DISTINCT ON (e.id) e.id, e.workflow_name, e.status, 'no_worker_for_version',
           t.queue, t.available_at
    FROM active e JOIN tasks t ON t.execution_id = e.id
    WHERE t.status = 'ready' AND t.available_at <= coalesce($1, now())
      AND EXISTS (SELECT 1 FROM alive a WHERE t.queue = ANY(a.queues))
      AND NOT EXISTS (SELECT 1 FROM alive a WHERE t.queue = ANY(a.queues)
                      AND t.workflow_version = ANY(a.versions))
) found
ORDER BY since, id
LIMIT $3;

-- name: execution_reopen
-- Make a failed execution running again (RetryExecution); false when it is not failed.
-- A workflow timeout ($3 seconds) starts again from now ($4), with its timer.
WITH e AS (
    UPDATE executions SET status = 'running', error = NULL, result = NULL, finished_at = NULL,
        deadline_at = coalesce($4, now()) + make_interval(secs => $3::float8)
    WHERE id = $1 AND status = ANY($2::text[])
    RETURNING id, deadline_at
), tm AS (
    INSERT INTO timers (execution_id, kind, due_at)
    SELECT e.id, 'execution_timeout', e.deadline_at FROM e WHERE e.deadline_at IS NOT NULL
)
SELECT true FROM e;
