"""Store functions for events kept until a wait takes them (``sql/events.sql``)."""

from __future__ import annotations

from datetime import datetime

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q


async def event_insert(
    conn: Conn, *, execution_id: str, name: str, payload_json: str, now: datetime | None
) -> None:
    """Keep an event for a later wait."""
    await conn.execute(Q["event_insert"], execution_id, name, payload_json, now)


async def event_take_oldest(
    conn: Conn, *, execution_id: str, names: list[str]
) -> tuple[str, str] | None:
    """Take the oldest kept event with one of ``names``: (name, payload JSON)."""
    r = await conn.fetchrow(Q["event_take_oldest"], execution_id, names)
    return (r["name"], r["payload"]) if r else None


async def event_take_each(conn: Conn, *, execution_id: str, names: list[str]) -> dict[str, str]:
    """Take the oldest kept event of each of ``names``: {name: payload JSON}."""
    rows = await conn.fetch(Q["event_take_each"], execution_id, names)
    return {r["name"]: r["payload"] for r in rows}


async def event_list_for_execution(
    conn: Conn, *, execution_id: str
) -> list[tuple[str, str, datetime]]:
    """(name, payload JSON, sent at) of the events kept for an execution, oldest first."""
    rows = await conn.fetch(Q["event_list_for_execution"], execution_id)
    return [(r["name"], r["payload"], r["sent_at"]) for r in rows]


async def event_receipt_get(conn: Conn, *, execution_id: str, event_id: str) -> bool | None:
    """Whether the send with ``event_id`` was delivered; None if none had that id."""
    delivered: bool | None = await conn.fetchval(Q["event_receipt_get"], execution_id, event_id)
    return delivered


async def event_receipt_insert(
    conn: Conn, *, execution_id: str, event_id: str, delivered: bool, now: datetime | None
) -> None:
    """Remember that the send with ``event_id`` was received (and delivered or kept)."""
    await conn.execute(Q["event_receipt_insert"], execution_id, event_id, delivered, now)
