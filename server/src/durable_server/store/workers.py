"""Store functions for workers (``sql/workers.sql``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q


async def worker_upsert(
    conn: Conn,
    *,
    worker_id: str,
    versions: list[str],
    queues: list[str],
    now: datetime | None,
    forget_after: timedelta,
) -> None:
    """Record a worker's registration; forget workers not seen for ``forget_after``."""
    await conn.execute(
        Q["worker_upsert"], worker_id, versions, queues, now, forget_after.total_seconds()
    )


async def worker_upsert_adding(
    conn: Conn,
    *,
    worker_id: str,
    versions: list[str],
    names: list[str],
    queues: list[str],
    now: datetime | None,
    forget_after: timedelta,
) -> None:
    """Add ``versions`` (of workflows ``names``) and ``queues`` to a worker's registration.

    A version of one of ``names`` the worker registered before is replaced; the worker's
    other versions stay. Workers not seen for ``forget_after`` are forgotten.
    """
    await conn.execute(
        Q["worker_upsert_adding"],
        worker_id,
        versions,
        queues,
        now,
        forget_after.total_seconds(),
        names,
    )


async def worker_touch_many(conn: Conn, *, worker_ids: list[str], times: list[datetime]) -> None:
    """Record when workers were last seen."""
    await conn.execute(Q["worker_touch_many"], worker_ids, times)


async def worker_list(
    conn: Conn, *, queue: str | None, seen_within_secs: float | None, now: datetime | None
) -> list[Record]:
    """Registered workers (records), most recently seen first."""
    return list(await conn.fetch(Q["worker_list"], queue, seen_within_secs, now))
