"""Store functions for waits of suspended tasks (``sql/waits.sql``)."""

from __future__ import annotations

from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import WaitRow


async def wait_insert(
    conn: Conn,
    *,
    execution_id: str,
    task_id: int,
    wait_index: int,
    kind: str,
    child_id: str | None,
    timeout_value_json: str | None,
    timeout_secs: float | None,
    now: datetime | None,
) -> int:
    """Park a task on a wait (timing out after ``timeout_secs``); returns the wait id."""
    value = await conn.fetchval(
        Q["wait_insert"],
        execution_id,
        task_id,
        wait_index,
        kind,
        child_id,
        timeout_value_json,
        now,
        timeout_secs,
    )
    return int(value)


async def wait_take_for_children(conn: Conn, *, child_ids: list[str]) -> list[WaitRow]:
    """Take the waits on these (ended) children."""
    if not child_ids:
        return []
    rows = await conn.fetch(Q["wait_take_for_children"], child_ids)
    return [WaitRow.from_record(r) for r in rows]


async def wait_take(conn: Conn, *, wait_id: int) -> WaitRow | None:
    """Take one wait, or None if it is gone."""
    row = await conn.fetchrow(Q["wait_take"], wait_id)
    return WaitRow.from_record(row) if row else None


async def wait_child_outcomes(conn: Conn, *, child_ids: list[str]) -> dict[str, str | None]:
    """{child id: outcome JSON, or None while it runs}, locking the children's rows."""
    rows = await conn.fetch(Q["wait_child_outcomes"], child_ids)
    return {str(r["id"]): r["outcome"] for r in rows}
