"""Store functions for workflow definitions (``sql/workflows.sql``)."""

from __future__ import annotations

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q


async def workflow_version_insert(
    conn: Conn, *, version: str, name: str, definition: bytes
) -> bool:
    """Store a definition version; True if it was new."""
    return bool(await conn.fetchval(Q["workflow_version_insert"], version, name, definition))


async def workflow_latest_upsert(conn: Conn, *, name: str, version: str) -> None:
    """Make ``version`` the one new executions of ``name`` use."""
    await conn.execute(Q["workflow_latest_upsert"], name, version)


async def workflow_claim(conn: Conn, *, name: str, version: str) -> bool:
    """Record ``name``, registered for the first time, at ``version``; False if it existed."""
    return bool(await conn.fetchval(Q["workflow_claim"], name, version))


async def workflow_latest_lock(conn: Conn, *, name: str) -> str | None:
    """The version new executions of ``name`` use, locked until the transaction ends."""
    value = await conn.fetchval(Q["workflow_latest_lock"], name)
    return str(value) if value is not None else None


async def workflow_latest_get(conn: Conn, *, name: str) -> str | None:
    """The version new executions of ``name`` use, or None."""
    value = await conn.fetchval(Q["workflow_latest_get"], name)
    return str(value) if value is not None else None


async def workflow_version_get(conn: Conn, *, version: str) -> bytes | None:
    """The serialised definition of ``version``, or None."""
    row = await conn.fetchrow(Q["workflow_version_get"], version)
    return bytes(row["definition"]) if row else None
