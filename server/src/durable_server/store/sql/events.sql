-- name: event_insert
-- Keep an event for a later wait.
INSERT INTO events (execution_id, name, payload, sent_at)
VALUES ($1, $2, $3::jsonb, coalesce($4, now()));

-- name: event_take_oldest
-- Take the oldest kept event with one of these names.
DELETE FROM events WHERE id = (
    SELECT id FROM events WHERE execution_id = $1 AND name = ANY($2::text[])
    ORDER BY id LIMIT 1 FOR UPDATE)
RETURNING name, payload::text AS payload;

-- name: event_take_each
-- Take the oldest kept event of each of these names.
DELETE FROM events WHERE id IN (
    SELECT DISTINCT ON (name) id FROM events WHERE execution_id = $1 AND name = ANY($2::text[])
    ORDER BY name, id)
RETURNING name, payload::text AS payload;

-- name: event_list_for_execution
-- The events kept for an execution, oldest first.
SELECT name, payload::text AS payload, sent_at FROM events WHERE execution_id = $1 ORDER BY id;

-- name: event_receipt_get
-- Whether the send with this event id was delivered to a wait; no row if it is new.
SELECT delivered FROM event_receipts WHERE execution_id = $1 AND event_id = $2;

-- name: event_receipt_insert
-- Remember a send's event id and what became of it.
INSERT INTO event_receipts (execution_id, event_id, delivered, received_at)
VALUES ($1, $2, $3, coalesce($4, now()));
