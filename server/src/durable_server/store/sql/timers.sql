-- name: timer_fire_due
-- Take up to $2 due timers, deleting them; each fires once across replicas.
DELETE FROM timers
WHERE id IN (SELECT id FROM timers WHERE due_at <= coalesce($1, now())
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING id, execution_id, kind, due_at, wait_id;

-- name: timer_next_due
-- When the next timer is due.
SELECT min(due_at) FROM timers;

-- name: timer_delete_for_executions
-- Remove the timers of finished executions.
DELETE FROM timers WHERE execution_id = ANY($1::uuid[]);
