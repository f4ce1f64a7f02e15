"""Who is calling: the bearer token in a call's metadata, checked against the tokens table.

Verified records are cached for ``cache_secs`` (a few seconds), so the hot path (polls,
reports, heartbeats) costs no query per call. Expiry is checked on every call against
the orchestrator's clock; a revocation takes effect within ``cache_secs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durable_server.auth.tokens import Role, parse_token, secret_matches
from durable_server.clock import Clock
from durable_server.errors import UnauthenticatedError

__all__ = ["Principal", "TokenRecord", "TokenVerifier", "bearer_token"]

MAX_CACHED = 10_000  # token ids remembered (known or not) before the oldest are forgotten

_MISSING = "this orchestrator requires a token: send the metadata 'authorization: Bearer <token>'"


@dataclass(frozen=True)
class Principal:
    """The verified caller: its token's id, name, role and queues (empty: every queue)."""

    token_id: str
    name: str
    role: Role
    queues: frozenset[str]


@dataclass(frozen=True)
class TokenRecord:
    """What the verifier needs of a stored token."""

    principal: Principal
    secret_hash: bytes
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        """The record of a ``token_get`` row."""
        principal = Principal(row["id"], row["name"], Role(row["role"]), frozenset(row["queues"]))
        return cls(principal, bytes(row["secret_hash"]), row["expires_at"], row["revoked_at"])


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the ``authorization: Bearer <token>`` metadata, if there is one."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class TokenVerifier:
    """Turns a call's metadata into a :class:`Principal`, or raises UnauthenticatedError.

    Args:
        load: Fetches a token's record by id (None when there is no such token).
        clock: The orchestrator's clock: expiry and cache age are measured on it.
        cache_secs: How long a fetched record (or its absence) is reused.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[TokenRecord | None]],
        clock: Clock,
        cache_secs: float,
    ) -> None:
        self._load = load
        self._clock = clock
        self._cache_secs = cache_secs
        self._cache: dict[str, tuple[datetime, TokenRecord | None]] = {}
        self._loading: dict[str, asyncio.Future[TokenRecord | None]] = {}

    async def verify(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """The caller named by the metadata's bearer token."""
        token = bearer_token(metadata)
        if token is None:
            raise UnauthenticatedError(_MISSING)
        parsed = parse_token(token)
        if parsed is None:
            raise UnauthenticatedError("the token is malformed: expected dur_<id>_<secret>")
        token_id, secret = parsed
        record = await self._record(token_id)
        if record is None or not secret_matches(secret, record.secret_hash):
            raise UnauthenticatedError("the token is not valid")
        if record.revoked_at is not None:
            raise UnauthenticatedError(f"token {token_id} was revoked")
        if record.expires_at is not None and self._clock.now() >= record.expires_at:
            raise UnauthenticatedError(f"token {token_id} has expired")
        return record.principal

    async def _record(self, token_id: str) -> TokenRecord | None:
        now = self._clock.now()
        cached = self._cache.get(token_id)
        if cached is not None and 0 <= (now - cached[0]).total_seconds() < self._cache_secs:
            return cached[1]
        pending = self._loading.get(token_id)
        if pending is None:  # one query per token id, however many calls wait for it
            pending = asyncio.ensure_future(self._fetch(token_id, now))
            self._loading[token_id] = pending
            pending.add_done_callback(lambda done: self._loaded(token_id, done))
        return await asyncio.shield(pending)

    async def _fetch(self, token_id: str, now: datetime) -> TokenRecord | None:
        record = await self._load(token_id)
        self._cache.pop(token_id, None)
        self._cache[token_id] = (now, record)
        while len(self._cache) > MAX_CACHED:
            del self._cache[next(iter(self._cache))]  # the oldest entry
        return record

    def _loaded(self, token_id: str, done: asyncio.Future[TokenRecord | None]) -> None:
        self._loading.pop(token_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody awaits is not reported
