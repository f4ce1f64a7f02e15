-- name: step_attempt_insert_many
-- Record finished attempts (retry_at is now + retry_delay_secs when a retry follows) and delete the tasks $16 that will not run again, in one statement.
-- A final failure keeps its task's input: the subquery still sees the task the CTE deletes.
WITH gone AS (DELETE FROM tasks WHERE id = ANY($16::bigint[]))
INSERT INTO step_attempts (execution_id, sequence, attempt, step_name, status, result, error,
                           worker_id, started_at, finished_at, retry_at, kind, lane_path, input)
SELECT x.execution_id, x.sequence, x.attempt, x.step_name, x.status, x.result::jsonb,
       x.error::jsonb, x.worker_id, x.started_at, coalesce($11, now()),
       coalesce($11, now()) + make_interval(secs => x.retry_delay_secs), x.kind, x.lane_path,
       CASE WHEN x.final THEN (SELECT t.input FROM tasks t WHERE t.id = x.task_id) END
FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::timestamptz[], $10::float8[], $12::text[], $13::text[],
            $14::bigint[], $15::bool[])
     AS x(execution_id, sequence, attempt, step_name, status, result, error, worker_id,
          started_at, retry_delay_secs, kind, lane_path, task_id, final);

-- name: step_attempt_list
-- Every recorded attempt of one execution, in order.
SELECT * FROM step_attempts WHERE execution_id = $1 ORDER BY sequence, attempt;

-- name: step_attempt_last_compensable
-- The latest completed run of one of these steps before a sequence: the next to compensate.
SELECT step_name, sequence, result::text AS result FROM step_attempts
WHERE execution_id = $1 AND kind = 'step' AND status = 'completed'
  AND step_name = ANY($2::text[]) AND sequence < $3
ORDER BY sequence DESC LIMIT 1;

-- name: step_attempt_last_failure
-- The last top-level attempt after which a step was given up, with its input.
SELECT step_name, kind, input::text AS input FROM step_attempts
WHERE execution_id = $1 AND lane_path = '' AND input IS NOT NULL
ORDER BY sequence DESC, attempt DESC LIMIT 1;
