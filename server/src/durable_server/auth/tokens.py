"""API tokens: their format, the hash kept of their secret, and issuing one.

A token reads ``dur_<id>_<secret>``: the id finds the stored record, the secret is
checked against its SHA-256 hash in constant time. The secret is 256 random bits, so a
plain hash is enough (a slow KDF protects guessable passwords, not random keys); the
secret itself is shown once, when the token is issued, and never stored.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from durable_server.store import tokens as token_store
from durable_server.store.db import Conn

__all__ = [
    "IssuedToken",
    "Role",
    "hash_secret",
    "issue_token",
    "parse_token",
    "secret_matches",
]

PREFIX = "dur"
_FORMAT = re.compile(r"^dur_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


class Role(enum.StrEnum):
    """What a token is for: see ``auth/permissions.py`` for what each may call."""

    WORKER = "worker"
    CLIENT = "client"
    ADMIN = "admin"


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: ``token`` is the only copy of its secret."""

    id: str
    token: str
    role: Role
    queues: tuple[str, ...]
    expires_at: datetime | None


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None."""
    match = _FORMAT.match(token)
    return (match[1], match[2]) if match else None


def hash_secret(secret: str) -> bytes:
    """The SHA-256 digest stored in place of a secret."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    """Whether ``secret`` hashes to ``stored_hash`` (a constant-time comparison)."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


async def issue_token(
    conn: Conn,
    *,
    role: Role,
    name: str = "",
    queues: Sequence[str] = (),
    now: datetime,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Create and store a token; the returned value holds its secret (shown once)."""
    if queues and role is not Role.WORKER:
        raise ValueError("only worker tokens are limited to queues")
    if expires_at is not None and expires_at <= now:
        raise ValueError("a token must expire in the future")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    await token_store.token_insert(
        conn,
        token_id=token_id,
        name=name,
        role=role.value,
        queues=sorted(set(queues)),
        secret_hash=hash_secret(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return IssuedToken(
        token_id, f"{PREFIX}_{token_id}_{secret}", role, tuple(sorted(set(queues))), expires_at
    )
