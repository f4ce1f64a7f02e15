"""Store functions for operators: queue states, statistics, stuck executions."""

from __future__ import annotations

from datetime import datetime

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q


async def queue_state_set(
    conn: Conn, *, name: str, state: str, reason: str, now: datetime | None
) -> None:
    """Pause or drain a queue."""
    await conn.execute(Q["queue_state_set"], name, state, reason, now)


async def queue_state_clear(conn: Conn, *, name: str) -> None:
    """Make a queue active again."""
    await conn.execute(Q["queue_state_clear"], name)


async def queue_state_get(conn: Conn, *, name: str) -> tuple[str, str] | None:
    """(state, reason) of a paused or draining queue; None when it is active."""
    row = await conn.fetchrow(Q["queue_state_get"], name)
    return (row["state"], row["reason"]) if row else None


async def queue_stats(conn: Conn, *, now: datetime | None) -> list[Record]:
    """Every queue with tasks or a state (records)."""
    return list(await conn.fetch(Q["queue_stats"], now))


async def execution_stuck_list(
    conn: Conn, *, now: datetime | None, alive_secs: float, limit: int
) -> list[Record]:
    """Unfinished executions nothing can move forward (records with ``problem``)."""
    return list(await conn.fetch(Q["execution_stuck_list"], now, alive_secs, limit))


async def execution_reopen(
    conn: Conn,
    *,
    execution_id: str,
    allowed_from: list[str],
    timeout_secs: float | None,
    now: datetime | None,
) -> bool:
    """Make a failed execution running again; False when its status does not allow it.

    Its workflow timeout (``timeout_secs``), if any, runs again from ``now``.
    """
    return bool(
        await conn.fetchval(Q["execution_reopen"], execution_id, allowed_from, timeout_secs, now)
    )
