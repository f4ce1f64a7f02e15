-- Time as a test moves it (a manual clock): what is due next, and whether anything is due now.

-- name: clock_next_due
-- When something of execution $1 and its descendants (NULL: of anything) is next due after $2: a timer, a task ready later (backoff, scheduled start), a cron slot.
WITH RECURSIVE tree AS (
    SELECT id FROM executions WHERE id = $1::uuid
    UNION
    SELECT e.id FROM executions e JOIN tree ON e.parent_id = tree.id
)
SELECT least(
    (SELECT min(m.due_at) FROM timers m
     WHERE $1::uuid IS NULL OR m.execution_id IN (SELECT id FROM tree)),
    (SELECT min(t.available_at) FROM tasks t
     WHERE ($1::uuid IS NULL OR t.execution_id IN (SELECT id FROM tree))
       AND t.status = 'ready' AND t.available_at > $2),
    (SELECT min(s.next_fire_at) FROM schedules s WHERE $1::uuid IS NULL AND s.enabled));

-- name: clock_due_exists
-- Whether a timer or an enabled schedule's slot is due at $1 (not fired yet, or firing now).
SELECT EXISTS (SELECT 1 FROM timers WHERE due_at <= $1)
    OR EXISTS (SELECT 1 FROM schedules WHERE enabled AND next_fire_at <= $1);
