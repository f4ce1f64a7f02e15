"""How the worker reads a failed gRPC call: retry it, re-register, or drop stale leases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc
import grpc.aio

__all__ = [
    "STALE_TRAILER",
    "TRANSIENT_CODES",
    "describe",
    "is_transient",
    "is_unknown_worker",
    "stale_task_ids",
]

STALE_TRAILER = "durable-stale-task-ids"
"""Trailing metadata key listing the task ids whose leases a batched call found stale."""

# ABORTED: the orchestrator lost a race with a concurrent change even after retrying it;
# sending the same call again is right.
TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
"""Status codes that mean "the orchestrator is unreachable or slow right now": try again."""


def is_transient(exc: BaseException) -> bool:
    """True when the call may succeed if sent again unchanged.

    That is UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, or a connection error raised outside
    gRPC.
    """
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in TRANSIENT_CODES
    return isinstance(exc, ConnectionError | TimeoutError)


def is_unknown_worker(exc: BaseException) -> bool:
    """True when the orchestrator does not know this worker id and wants it to register."""
    return (
        isinstance(exc, grpc.aio.AioRpcError)
        and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
        and "unknown" in (exc.details() or "").lower()
    )


def stale_task_ids(exc: BaseException) -> frozenset[int]:
    """The task ids a FAILED_PRECONDITION error lists as stale; empty when there are none."""
    if not (
        isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
    ):
        return frozenset()
    # grpc.aio returns a Metadata object that iterates as (key, value) pairs; the stubs
    # type it as the sync API's tuple of _Metadatum, hence the cast.
    pairs = cast(Iterable[tuple[str, str | bytes]], exc.trailing_metadata() or ())
    ids: set[int] = set()
    for key, value in pairs:
        if key != STALE_TRAILER:
            continue
        text = value.decode() if isinstance(value, bytes) else value
        ids.update(int(part) for part in text.split(",") if part.strip().isdigit())
    return frozenset(ids)


def describe(exc: BaseException) -> str:
    """A one-line description of a failed call for the log: ``CODE: details``."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
