"""Store functions for moving a manual clock (``sql/clock.sql``)."""

from __future__ import annotations

from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q

__all__ = ["clock_due_exists", "clock_next_due"]


async def clock_next_due(conn: Conn, *, execution_id: str | None, now: datetime) -> datetime | None:
    """When something of ``execution_id`` (its children too; None: anything) is next due."""
    value: datetime | None = await conn.fetchval(Q["clock_next_due"], execution_id, now)
    return value


async def clock_due_exists(conn: Conn, *, now: datetime) -> bool:
    """Whether a timer or a schedule's slot is due at ``now`` and not fired yet."""
    return bool(await conn.fetchval(Q["clock_due_exists"], now))
