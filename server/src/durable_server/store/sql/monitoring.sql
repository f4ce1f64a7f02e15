-- name: monitoring_ping
-- Whether the database answers at all (the health check).
SELECT 1;

-- name: monitoring_queue_depth
-- Tasks per queue and state: ready now, ready later (delayed), leased, waiting.
SELECT queue,
       count(*) FILTER (WHERE status = 'ready' AND available_at <= coalesce($1, now())) AS ready,
       count(*) FILTER (WHERE status = 'ready' AND available_at > coalesce($1, now())) AS delayed,
       count(*) FILTER (WHERE status = 'leased') AS leased,
       count(*) FILTER (WHERE status = 'waiting') AS waiting
FROM tasks
GROUP BY queue
ORDER BY queue;

-- name: monitoring_backlog
-- Waiting executions, how overdue the oldest due timer is (0 if none), and the workers seen within $2 seconds.
SELECT (SELECT count(*) FROM executions WHERE status = 'waiting') AS waiting_executions,
       coalesce(extract(epoch FROM coalesce($1, now())
                        - (SELECT min(due_at) FROM timers WHERE due_at <= coalesce($1, now()))),
                0)::float8 AS timer_lag_secs,
       (SELECT count(*) FROM workers
        WHERE last_seen_at >= coalesce($1, now()) - make_interval(secs => $2::float8))
           AS active_workers;
