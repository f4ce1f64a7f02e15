"""Store functions for recorded step attempts (``sql/step_attempts.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from durable_server.engine.transitions import RecordAttempt
from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import StepAttemptRow


async def step_attempt_insert_many(
    conn: Conn, records: Sequence[RecordAttempt], *, now: datetime | None
) -> None:
    """Record finished attempts in one statement."""
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
    )


async def step_attempt_list(conn: Conn, *, execution_id: str) -> list[StepAttemptRow]:
    """Every recorded attempt of one execution, in order."""
    rows = await conn.fetch(Q["step_attempt_list"], execution_id)
    return [StepAttemptRow.from_record(r) for r in rows]
