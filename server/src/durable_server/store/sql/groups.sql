-- name: group_insert_parallel
-- Start a parallel group: one running lane per branch, in order; its id, or none if the parent lane is gone.
WITH g AS (
    INSERT INTO groups (execution_id, node_name, kind, parent_group_id, parent_lane, lane_path,
                        input, total, started, concurrency, fail_fast, collect)
    SELECT $1, $2, 'parallel', $3, $4, $5, $6::jsonb, cardinality($7::text[]),
           cardinality($7::text[]), cardinality($7::text[]), $8, $9
    WHERE $3::bigint IS NULL OR EXISTS (SELECT 1 FROM groups p WHERE p.id = $3)
    RETURNING id
), l AS (
    INSERT INTO lanes (group_id, index, name, status)
    SELECT g.id, b.ord - 1, b.name, 'running'
    FROM g, unnest($7::text[]) WITH ORDINALITY AS b(name, ord)
)
SELECT id FROM g;

-- name: group_insert_foreach
-- Start a foreach: one pending lane per item; returns (id, total), or no row if items is not an array.
WITH g AS (
    INSERT INTO groups (execution_id, node_name, kind, parent_group_id, parent_lane, lane_path,
                        input, total, concurrency, fail_fast, collect)
    SELECT $1, $2, 'foreach', $3, $4, $5, $6::jsonb, jsonb_array_length($7::jsonb), $8, $9, $10
    WHERE jsonb_typeof($7::jsonb) = 'array'
      AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM groups p WHERE p.id = $3))
    RETURNING id, total
), l AS (
    INSERT INTO lanes (group_id, index, status, input)
    SELECT g.id, i.ord - 1, 'pending', i.item
    FROM g, jsonb_array_elements($7::jsonb) WITH ORDINALITY AS i(item, ord)
)
SELECT id, total FROM g;

-- name: group_lanes_start
-- Mark lanes [$2, $3) of a group running and count them as started.
WITH l AS (
    UPDATE lanes SET status = 'running'
    WHERE group_id = $1 AND index >= $2 AND index < $3 AND status = 'pending'
    RETURNING index
)
UPDATE groups SET started = greatest(started, $3) WHERE id = $1
RETURNING (SELECT count(*) FROM l) AS started_now;

-- name: group_lane_finish
-- Record a running lane's end (completed or failed) and return its group's counters after it.
WITH l AS (
    UPDATE lanes SET status = $3, result = $4::jsonb, error = $5::jsonb
    WHERE group_id = $1 AND index = $2 AND status = 'running'
    RETURNING status
)
UPDATE groups g
SET finished = g.finished + (SELECT count(*) FROM l),
    failed = g.failed + (SELECT count(*) FROM l WHERE l.status = 'failed')
WHERE g.id = $1
RETURNING g.id, g.execution_id, g.node_name, g.kind, g.parent_group_id, g.parent_lane,
          g.lane_path, g.total, g.started, g.finished, g.failed, g.concurrency, g.fail_fast,
          g.collect, (SELECT count(*) FROM l) AS changed;

-- name: group_output
-- A finished group's input and output (lane results by branch name, or in item order).
SELECT g.input::text AS input,
       (CASE WHEN g.kind = 'parallel' THEN
            (SELECT coalesce(jsonb_object_agg(l.name, CASE
                 WHEN NOT g.collect THEN l.result
                 WHEN l.status = 'completed' THEN jsonb_build_object('ok', true, 'value', l.result)
                 ELSE jsonb_build_object('ok', false, 'error', l.error) END), '{}'::jsonb)
             FROM lanes l WHERE l.group_id = g.id)
        ELSE
            (SELECT coalesce(jsonb_agg(CASE
                 WHEN NOT g.collect THEN l.result
                 WHEN l.status = 'completed' THEN jsonb_build_object('ok', true, 'value', l.result)
                 ELSE jsonb_build_object('ok', false, 'error', l.error) END
                 ORDER BY l.index), '[]'::jsonb)
             FROM lanes l WHERE l.group_id = g.id)
        END)::text AS output
FROM groups g WHERE g.id = $1;

-- name: group_delete
-- Drop a group with its lanes, nested groups and their tasks.
DELETE FROM groups WHERE id = $1;

-- name: group_delete_for_executions
-- Drop every group of these executions (with lanes and tasks).
DELETE FROM groups WHERE execution_id = ANY($1::uuid[]);
