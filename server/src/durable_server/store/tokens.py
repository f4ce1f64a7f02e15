"""Store functions for API tokens (``sql/tokens.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q


async def token_insert(
    conn: Conn,
    *,
    token_id: str,
    name: str,
    role: str,
    queues: Sequence[str],
    secret_hash: bytes,
    created_at: datetime,
    expires_at: datetime | None,
) -> None:
    """Store a new token."""
    await conn.execute(
        Q["token_insert"], token_id, name, role, list(queues), secret_hash, created_at, expires_at
    )


async def token_get_many(conn: Conn, *, token_ids: Sequence[str]) -> list[Record]:
    """The records (with ``secret_hash``) of those of ``token_ids`` that exist."""
    return list(await conn.fetch(Q["token_get_many"], list(token_ids)))


async def token_list(conn: Conn) -> list[Record]:
    """Every token (records without hashes), newest first."""
    return list(await conn.fetch(Q["token_list"]))


async def token_revoke(conn: Conn, *, token_id: str, now: datetime) -> datetime | None:
    """Revoke a token; returns when it was revoked, or None for an unknown id."""
    revoked_at: datetime | None = await conn.fetchval(Q["token_revoke"], token_id, now)
    return revoked_at
