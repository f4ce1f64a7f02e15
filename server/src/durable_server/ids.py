"""Execution ids: UUIDv7, time-ordered so inserts stay at the right edge of the index."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["child_execution_id", "new_execution_id"]

# The namespace of child ids (RFC 4122's URL namespace; the SDK derives the same ids).
CHILD_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def new_execution_id() -> str:
    """A new UUIDv7 (RFC 9562) as text."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 68) << 64  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def child_execution_id(parent_id: str, sequence: int, index: int) -> str:
    """The id of the child a parent's step run starts at ``index``: the same on every re-run."""
    return str(uuid.uuid5(CHILD_NAMESPACE, f"{parent_id}/{sequence}/{index}"))
