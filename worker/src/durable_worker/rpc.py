"""How the worker reads a failed gRPC call: retry it, re-register, or drop stale leases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc
import grpc.aio

__all__ = [
    "ERROR_TRAILER",
    "STALE_TRAILER",
    "TRANSIENT_CODES",
    "describe",
    "is_transient",
    "is_unknown_worker",
    "stale_task_ids",
]

STALE_TRAILER = "durable-stale-task-ids"
"""Trailing metadata key listing the task ids whose leases a batched call found stale."""

ERROR_TRAILER = "durable-error"
"""Trailing metadata key naming the cause of a refusal, e.g. ``worker-unknown``."""

_WORKER_UNKNOWN = "worker-unknown"

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
    """True when the orchestrator does not know this worker id and wants it to register.

    The orchestrator says so in the ``durable-error: worker-unknown`` trailer; one that
    predates the trailer only in words (FAILED_PRECONDITION, "... is unknown ...").
    """
    if not (
        isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
    ):
        return False
    causes = _trailer_values(exc, ERROR_TRAILER)
    if causes:
        return _WORKER_UNKNOWN in causes
    return "unknown" in (exc.details() or "").lower()


def stale_task_ids(exc: BaseException) -> frozenset[int]:
    """The task ids a FAILED_PRECONDITION error lists as stale; empty when there are none."""
    if not (
        isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.FAILED_PRECONDITION
    ):
        return frozenset()
    ids: set[int] = set()
    for text in _trailer_values(exc, STALE_TRAILER):
        ids.update(int(part) for part in text.split(",") if part.strip().isdigit())
    return frozenset(ids)


def _trailer_values(exc: grpc.aio.AioRpcError, key: str) -> list[str]:
    """The values of trailing metadata ``key`` on a failed call, in order."""
    # grpc.aio returns a Metadata object that iterates as (key, value) pairs; the stubs
    # type it as the sync API's tuple of _Metadatum, hence the cast.
    pairs = cast(Iterable[tuple[str, str | bytes]], exc.trailing_metadata() or ())
    return [value.decode() if isinstance(value, bytes) else value for k, value in pairs if k == key]


def describe(exc: BaseException) -> str:
    """A one-line description of a failed call for the log: ``CODE: details``."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
