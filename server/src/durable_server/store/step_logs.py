"""Store functions for the captured logs of step attempts (``sql/step_logs.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q

AttemptKey = tuple[str, int, int]
"""(execution id, sequence, attempt)."""


@dataclass(frozen=True)
class LogSize:
    """What an attempt's log holds so far."""

    lines: int
    bytes: int
    dropped_lines: int


@dataclass(frozen=True)
class LogAppend:
    """Lines to append to one attempt's log, and the lines dropped from them over the cap."""

    key: AttemptKey
    lines_json: str
    bytes: int
    dropped_lines: int = 0
    dropped_bytes: int = 0
    cap: str = ""


@dataclass(frozen=True)
class StepLogRow:
    """One attempt's stored log."""

    sequence: int
    attempt: int
    lines_json: str
    dropped_lines: int
    dropped_bytes: int
    cap: str
    updated_at: datetime


async def step_log_sizes(conn: Conn, *, keys: Sequence[AttemptKey]) -> dict[AttemptKey, LogSize]:
    """Lines, bytes and drops stored so far for the attempts of ``keys`` that have a log."""
    if not keys:
        return {}
    rows = await conn.fetch(
        Q["step_log_sizes"], [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    return {
        (r["execution_id"], r["sequence"], r["attempt"]): LogSize(
            r["line_count"], r["bytes"], r["dropped_lines"]
        )
        for r in rows
    }


async def step_log_append_many(
    conn: Conn, appends: Sequence[LogAppend], *, now: datetime | None
) -> None:
    """Append to attempts' logs (creating them) in one statement."""
    if not appends:
        return
    await conn.execute(
        Q["step_log_append_many"],
        [a.key[0] for a in appends],
        [a.key[1] for a in appends],
        [a.key[2] for a in appends],
        [a.lines_json for a in appends],
        [a.bytes for a in appends],
        [a.dropped_lines for a in appends],
        [a.dropped_bytes for a in appends],
        [a.cap for a in appends],
        now,
    )


async def step_log_list(conn: Conn, *, execution_id: str) -> list[StepLogRow]:
    """Every stored attempt log of one execution, in attempt order."""
    rows = await conn.fetch(Q["step_log_list"], execution_id)
    return [
        StepLogRow(
            r["sequence"],
            r["attempt"],
            r["lines"],
            r["dropped_lines"],
            r["dropped_bytes"],
            r["cap"],
            r["updated_at"],
        )
        for r in rows
    ]
