-- name: worker_upsert
-- Record a worker's registration: the versions it can run and the queues it polls.
INSERT INTO workers (id, versions, queues, started_at, last_seen_at)
VALUES ($1, $2, $3, coalesce($4, now()), coalesce($4, now()))
ON CONFLICT (id) DO UPDATE
SET versions = EXCLUDED.versions, queues = EXCLUDED.queues, last_seen_at = EXCLUDED.last_seen_at;

-- name: worker_touch
-- Note that a worker is alive; returns nothing for an unregistered worker.
UPDATE workers SET last_seen_at = coalesce($2, now()) WHERE id = $1 RETURNING id;
