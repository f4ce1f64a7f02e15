-- 0006_step_logs: what each step attempt logged (logging and print), as its worker sent it.
--
-- One row per attempt, not per line: a report's lines go in with one upsert per batch of
-- reports, and the lines of a step that suspends and runs again are appended to its
-- attempt's row, in order. The row exists before the attempt is recorded in
-- step_attempts (a waiting step's earlier runs), so it has no foreign key to it.

CREATE TABLE step_logs (
    execution_id   uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    sequence       integer NOT NULL,
    attempt        integer NOT NULL,
    -- [{"time": ISO 8601, "level": ..., "logger": ..., "message": ...}, ...], oldest first
    lines          jsonb NOT NULL DEFAULT '[]',
    -- UTF-8 bytes of the messages in lines, for the per-attempt cap
    bytes          integer NOT NULL DEFAULT 0,
    -- Lines the orchestrator dropped over its per-attempt cap, their bytes, and the cap
    -- that dropped them (e.g. '262,144 bytes')
    dropped_lines  integer NOT NULL DEFAULT 0,
    dropped_bytes  bigint NOT NULL DEFAULT 0,
    cap            text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (execution_id, sequence, attempt)
);
