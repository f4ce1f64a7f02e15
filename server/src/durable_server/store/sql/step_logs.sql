-- name: step_log_sizes
-- Lines and bytes stored, and lines dropped, so far for these attempts (those with a row).
SELECT l.execution_id::text AS execution_id, l.sequence, l.attempt, l.bytes,
       jsonb_array_length(l.lines) AS line_count, l.dropped_lines
FROM unnest($1::uuid[], $2::int[], $3::int[]) AS x(execution_id, sequence, attempt)
JOIN step_logs l USING (execution_id, sequence, attempt);

-- name: step_log_append_many
-- Append lines (JSON arrays) to attempts' logs, creating the rows, with what was dropped.
INSERT INTO step_logs AS l (execution_id, sequence, attempt, lines, bytes, dropped_lines,
                            dropped_bytes, cap, updated_at)
SELECT x.execution_id, x.sequence, x.attempt, x.lines::jsonb, x.bytes, x.dropped_lines,
       x.dropped_bytes, x.cap, coalesce($9, now())
FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::int[], $6::int[], $7::bigint[],
            $8::text[])
     AS x(execution_id, sequence, attempt, lines, bytes, dropped_lines, dropped_bytes, cap)
ON CONFLICT (execution_id, sequence, attempt) DO UPDATE
SET lines = l.lines || EXCLUDED.lines,
    bytes = l.bytes + EXCLUDED.bytes,
    dropped_lines = l.dropped_lines + EXCLUDED.dropped_lines,
    dropped_bytes = l.dropped_bytes + EXCLUDED.dropped_bytes,
    cap = CASE WHEN l.dropped_lines > 0 THEN l.cap ELSE EXCLUDED.cap END,
    updated_at = EXCLUDED.updated_at;

-- name: step_log_list
-- Every attempt's log of one execution, in attempt order.
SELECT sequence, attempt, lines::text AS lines, dropped_lines, dropped_bytes, cap, updated_at
FROM step_logs WHERE execution_id = $1 ORDER BY sequence, attempt;
