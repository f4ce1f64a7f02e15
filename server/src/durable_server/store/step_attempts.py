"""Store functions for recorded step attempts (``sql/step_attempts.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from durable_server.engine.transitions import RecordAttempt
from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import StepAttemptRow


async def step_attempt_insert_many(
    conn: Conn,
    records: Sequence[RecordAttempt],
    *,
    now: datetime | None,
    remove_task_ids: Sequence[int] = (),
) -> None:
    """Record finished attempts, and delete the tasks that will not run again, at once."""
    if not records:
        return
    await conn.execute(
        Q["step_attempt_insert_many"],
        [r.task.execution_id for r in records],
        [r.task.sequence for r in records],
        [r.task.attempt for r in records],
        [r.task.step_name for r in records],
        [r.status.value for r in records],
        [r.result_json for r in records],
        [r.error_json for r in records],
        [r.task.worker_id for r in records],
        [r.task.leased_at for r in records],
        [r.retry_delay_secs for r in records],
        now,
        [r.task.kind for r in records],
        [r.task.lane_path for r in records],
        [r.task.id for r in records],
        [r.final for r in records],
        list(remove_task_ids),
    )


async def step_attempt_list(conn: Conn, *, execution_id: str) -> list[StepAttemptRow]:
    """Every recorded attempt of one execution, in order."""
    rows = await conn.fetch(Q["step_attempt_list"], execution_id)
    return [StepAttemptRow.from_record(r) for r in rows]


async def step_attempt_last_compensable(
    conn: Conn, *, execution_id: str, steps: list[str], before: int
) -> tuple[str, int, str] | None:
    """(step, sequence, result) of the latest completed run of ``steps`` before ``before``."""
    row = await conn.fetchrow(Q["step_attempt_last_compensable"], execution_id, steps, before)
    return (row["step_name"], row["sequence"], row["result"]) if row else None


async def step_attempt_last_failure(
    conn: Conn, *, execution_id: str
) -> tuple[str, str, str] | None:
    """(step, kind, input JSON) of the last top-level step run that was given up."""
    row = await conn.fetchrow(Q["step_attempt_last_failure"], execution_id)
    return (row["step_name"], row["kind"], row["input"]) if row else None
