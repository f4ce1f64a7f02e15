-- name: schedule_insert
-- Create a schedule; nothing when the name is taken. Returns the row.
INSERT INTO schedules (name, workflow_name, cron, timezone, input, queue, priority, enabled,
                       catch_up, catch_up_limit, overlap, max_failures, next_fire_at,
                       declared_by, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14,
        coalesce($15, now()), coalesce($15, now()))
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: schedule_get
-- One schedule by name.
SELECT * FROM schedules WHERE name = $1;

-- name: schedule_lock
-- One schedule by name, locked until the transaction ends.
SELECT * FROM schedules WHERE name = $1 FOR UPDATE;

-- name: schedule_list
-- Schedules by name after a cursor, with optional filters.
SELECT * FROM schedules
WHERE name > $1
  AND ($2::bool IS NULL OR enabled = $2)
  AND ($3::text IS NULL OR workflow_name = $3)
  AND ($4::text IS NULL OR queue = $4)
ORDER BY name LIMIT $5;

-- name: schedule_save
-- Write every settable field and the bookkeeping of a schedule; returns the row.
UPDATE schedules
SET workflow_name = $2, cron = $3, timezone = $4, input = $5::jsonb, queue = $6, priority = $7,
    enabled = $8, catch_up = $9, catch_up_limit = $10, overlap = $11, max_failures = $12,
    next_fire_at = $13, last_fire_at = $14, last_execution_id = $15,
    consecutive_failures = $16, last_error = $17, disabled_reason = $18,
    updated_at = coalesce($19, now())
WHERE name = $1
RETURNING *;

-- name: schedule_delete
-- Delete a schedule; returns its name when it existed.
DELETE FROM schedules WHERE name = $1 RETURNING name;

-- name: schedule_lock_due
-- Lock up to $2 enabled schedules whose next slot is due, oldest first; other replicas skip them.
SELECT * FROM schedules
WHERE enabled AND next_fire_at <= coalesce($1, now())
ORDER BY next_fire_at LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: schedule_next_due
-- When the next enabled schedule is due.
SELECT min(next_fire_at) FROM schedules WHERE enabled;

-- name: schedule_fire_insert
-- Record a fired slot; false when it was fired already (by any replica).
INSERT INTO schedule_fires (schedule_name, slot, outcome, execution_id, fired_at)
VALUES ($1, $2, $3, $4, coalesce($5, now()))
ON CONFLICT (schedule_name, slot) DO NOTHING
RETURNING true;

-- name: schedule_declared_names
-- The schedules a workflow's code declared.
SELECT name FROM schedules WHERE declared_by = $1;

-- name: schedule_fire_delete_before
-- Forget schedule firings older than $1 (each slot is kept until then so it fires once).
DELETE FROM schedule_fires WHERE fired_at < $1;
