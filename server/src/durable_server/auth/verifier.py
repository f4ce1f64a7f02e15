"""Who is calling: the bearer token in a call's metadata, checked against the tokens table.

Verified records are cached for ``cache_secs`` (``DURABLE_AUTH_CACHE_SECONDS``, 5 s by
default), so the hot path (polls, reports, heartbeats) costs no query per call. Expiry is
checked on every call against the orchestrator's clock; a revocation takes effect within
``cache_secs``. Unknown ids are cheap: a malformed token needs no query, an id found
missing is remembered as missing, and uncached ids are looked up in batches, one query
at a time, so made-up tokens cannot hold the connection pool or grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from durable_server.auth.lookups import BatchedLookups
from durable_server.auth.tokens import Role, parse_token, secret_matches
from durable_server.clock import Clock
from durable_server.errors import UnauthenticatedError

__all__ = ["Principal", "TokenRecord", "TokenVerifier", "bearer_token"]

MAX_KNOWN = 10_000  # records of existing tokens remembered (least recently used go first)
MAX_UNKNOWN = 10_000  # ids found not to exist remembered (oldest go first)

T = TypeVar("T")

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
        """The record of a ``token_get_many`` row."""
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

    What it remembers, for ``cache_secs`` each (measured on ``clock`` from when the query
    that fetched it started):

    - the records of tokens that exist: the hot path makes no query, and a revocation
      takes effect within ``cache_secs``; at most ``MAX_KNOWN``, least recently used
      forgotten first. Only ids in the tokens table get here, so made-up ids cannot
      push real ones out.
    - the ids the database does not know: at most ``MAX_UNKNOWN``, oldest forgotten first.

    A malformed token is refused without a query; the ids that are not cached are fetched
    in batches, one query at a time (:class:`~durable_server.auth.lookups.BatchedLookups`).

    Args:
        load: Fetches the records of some token ids (an unknown id is left out).
        clock: The orchestrator's clock: expiry and cache age are measured on it.
        cache_secs: How long a fetched record (or its absence) is reused.
    """

    def __init__(
        self,
        load: Callable[[Sequence[str]], Awaitable[Mapping[str, TokenRecord]]],
        clock: Clock,
        cache_secs: float,
    ) -> None:
        self._load = load
        self._clock = clock
        self._cache_secs = cache_secs
        self._known: OrderedDict[str, tuple[datetime, TokenRecord]] = OrderedDict()
        self._unknown: OrderedDict[str, datetime] = OrderedDict()
        self._lookups = BatchedLookups(self._fetch)

    @property
    def cached(self) -> tuple[int, int]:
        """How many known and unknown token ids are remembered now."""
        return len(self._known), len(self._unknown)

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
        known = self._known.get(token_id)
        if known is not None:
            if self._fresh(known[0], now):
                self._known.move_to_end(token_id)
                return known[1]
            return await self._lookups.get(token_id, urgent=True)
        unknown_since = self._unknown.get(token_id)
        if unknown_since is not None and self._fresh(unknown_since, now):
            return None
        return await self._lookups.get(token_id)

    def _fresh(self, fetched_at: datetime, now: datetime) -> bool:
        return 0 <= (now - fetched_at).total_seconds() < self._cache_secs

    async def _fetch(self, token_ids: Sequence[str]) -> Mapping[str, TokenRecord]:
        """Load a batch and remember what it found, as of the query's start."""
        now = self._clock.now()
        records = await self._load(token_ids)
        for token_id in token_ids:
            record = records.get(token_id)
            if record is None:
                self._known.pop(token_id, None)
                _put(self._unknown, token_id, now, MAX_UNKNOWN)
            else:
                self._unknown.pop(token_id, None)
                _put(self._known, token_id, (now, record), MAX_KNOWN)
        return records


def _put(cache: OrderedDict[str, T], key: str, value: T, limit: int) -> None:
    """Store ``key`` as the newest entry, dropping the oldest beyond ``limit``."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)
