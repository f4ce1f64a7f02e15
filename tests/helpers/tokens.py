"""API tokens for tests: issued straight in the database, and channels that send them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import grpc

from durable._channel import BearerTokenInterceptor
from durable_server.auth.tokens import Role, issue_token


async def issue(
    database_url: str,
    role: Role | str,
    *,
    now: datetime,
    queues: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> str:
    """A new token of ``role`` (the whole ``dur_<id>_<secret>`` string)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "durable"})
    try:
        issued = await issue_token(
            conn, role=Role(role), queues=queues, now=now, expires_at=expires_at
        )
    finally:
        await conn.close()
    return issued.token


async def revoke(database_url: str, token: str, when: datetime) -> None:
    """Mark ``token`` revoked, as ``durable token revoke`` does."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE durable.tokens SET revoked_at = $2 WHERE id = $1", token.split("_")[1], when
        )
    finally:
        await conn.close()


def channel(address: str, token: str | None) -> grpc.aio.Channel:
    """A plain-text channel that sends ``token`` with every call (none when None)."""
    interceptors = [BearerTokenInterceptor(token)] if token else None
    return grpc.aio.insecure_channel(address, interceptors=interceptors)
