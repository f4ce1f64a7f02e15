"""Store functions for recorded step attempts (``sql/step_attempts.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import StepAttemptRow


class NewAttempt(NamedTuple):
    """A finished attempt for :func:`step_attempt_insert_many`, in the statement's column order.

    A named tuple rather than a frozen dataclass: one is built for every report, and
    ``zip(*records)`` turns a batch into the statement's columns.
    """

    execution_id: str
    sequence: int
    attempt: int
    step_name: str
    status: str
    result_json: str | None
    error_json: str | None
    worker_id: str | None
    started_at: datetime | None
    retry_delay_secs: float | None  # set when a retry follows: retry_at is now + this
    kind: str
    lane_path: str
    task_id: int
    final: bool  # the step is given up: keep its task's input


async def step_attempt_insert_many(
    conn: Conn,
    records: Sequence[NewAttempt],
    *,
    now: datetime | None,
    remove_task_ids: Sequence[int] = (),
) -> None:
    """Record finished attempts, and delete the tasks that will not run again, at once."""
    if not records:
        return
    (
        execution_ids,
        sequences,
        attempts,
        step_names,
        statuses,
        results,
        errors,
        worker_ids,
        started_ats,
        retry_delays,
        kinds,
        lane_paths,
        task_ids,
        finals,
    ) = [list(column) for column in zip(*records, strict=True)]
    await conn.execute(
        Q["step_attempt_insert_many"],
        execution_ids,
        sequences,
        attempts,
        step_names,
        statuses,
        results,
        errors,
        worker_ids,
        started_ats,
        retry_delays,
        now,
        kinds,
        lane_paths,
        task_ids,
        finals,
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
