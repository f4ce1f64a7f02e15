"""Store functions for the health check and the metrics gauges (``sql/monitoring.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q


@dataclass(frozen=True)
class Backlog:
    """What ``monitoring_backlog`` reads."""

    waiting_executions: int
    timer_lag_secs: float
    active_workers: int


async def monitoring_ping(conn: Conn) -> None:
    """Raise unless the database answers."""
    await conn.fetchval(Q["monitoring_ping"])


async def monitoring_queue_depth(conn: Conn, *, now: datetime | None) -> dict[str, dict[str, int]]:
    """{queue: {state: tasks}} for the states ready, delayed, leased and waiting."""
    rows = await conn.fetch(Q["monitoring_queue_depth"], now)
    return {
        r["queue"]: {s: int(r[s]) for s in ("ready", "delayed", "leased", "waiting")} for r in rows
    }


async def monitoring_backlog(
    conn: Conn, *, now: datetime | None, active_within_secs: float
) -> Backlog:
    """Waiting executions, the oldest due timer's lag, and the recently seen workers."""
    r = await conn.fetchrow(Q["monitoring_backlog"], now, active_within_secs)
    assert r is not None  # aggregates: always one row
    return Backlog(
        waiting_executions=int(r["waiting_executions"]),
        timer_lag_secs=max(float(r["timer_lag_secs"]), 0.0),
        active_workers=int(r["active_workers"]),
    )
