-- name: worker_upsert
-- Record a worker's registration: the versions it can run and the queues it polls.
-- Workers not seen for $5 seconds are forgotten (each worker process has its own id).
WITH forgotten AS (
    DELETE FROM workers
    WHERE last_seen_at < coalesce($4, now()) - make_interval(secs => $5::float8) AND id <> $1
)
INSERT INTO workers (id, versions, queues, started_at, last_seen_at)
VALUES ($1, $2, $3, coalesce($4, now()), coalesce($4, now()))
ON CONFLICT (id) DO UPDATE
SET versions = EXCLUDED.versions, queues = EXCLUDED.queues, last_seen_at = EXCLUDED.last_seen_at;

-- name: worker_upsert_adding
-- Record a registration that adds versions (of workflow names $6) and queues to a worker's sets.
-- A version of one of those names already in the set gives way to the new one; others stay.
WITH forgotten AS (
    DELETE FROM workers
    WHERE last_seen_at < coalesce($4, now()) - make_interval(secs => $5::float8) AND id <> $1
)
INSERT INTO workers (id, versions, queues, started_at, last_seen_at)
VALUES ($1, $2, $3, coalesce($4, now()), coalesce($4, now()))
ON CONFLICT (id) DO UPDATE
SET versions = ARRAY(
        SELECT v FROM unnest(workers.versions) AS v
        WHERE v <> ALL(EXCLUDED.versions)
          AND NOT EXISTS (
              SELECT 1 FROM workflow_versions wv WHERE wv.version = v AND wv.name = ANY($6::text[])
          )
    ) || EXCLUDED.versions,
    queues = workers.queues
        || ARRAY(SELECT q FROM unnest(EXCLUDED.queues) AS q WHERE q <> ALL(workers.queues)),
    last_seen_at = EXCLUDED.last_seen_at;

-- name: worker_touch_many
-- Record when workers were last seen (never moving a time back).
UPDATE workers w SET last_seen_at = greatest(w.last_seen_at, x.at)
FROM unnest($1::text[], $2::timestamptz[]) AS x(id, at)
WHERE w.id = x.id AND w.id = ANY($1::text[]);

-- name: worker_list
-- Registered workers, most recently seen first, with how many leases each holds.
SELECT w.id, w.queues, w.versions, w.started_at, w.last_seen_at,
       (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id AND t.status = 'leased') AS leased
FROM workers w
WHERE ($1::text IS NULL OR $1 = ANY(w.queues))
  AND ($2::float8 IS NULL OR w.last_seen_at >= coalesce($3, now()) - make_interval(secs => $2))
ORDER BY w.last_seen_at DESC, w.id;
