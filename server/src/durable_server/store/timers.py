"""Store functions for timers (``sql/timers.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q


@dataclass(frozen=True)
class DueTimer:
    """A timer taken for firing."""

    id: int
    execution_id: str
    kind: str
    due_at: datetime
    wait_id: int | None = None


async def timer_fire_due(conn: Conn, *, now: datetime | None, limit: int) -> list[DueTimer]:
    """Take (delete) up to ``limit`` due timers."""
    rows = await conn.fetch(Q["timer_fire_due"], now, limit)
    return [
        DueTimer(r["id"], str(r["execution_id"]), r["kind"], r["due_at"], r["wait_id"])
        for r in rows
    ]


async def timer_next_due(conn: Conn) -> datetime | None:
    """When the next timer is due, or None."""
    value: datetime | None = await conn.fetchval(Q["timer_next_due"])
    return value


async def timer_delete_for_executions(conn: Conn, *, execution_ids: list[str]) -> None:
    """Remove the timers of these executions."""
    await conn.execute(Q["timer_delete_for_executions"], execution_ids)
