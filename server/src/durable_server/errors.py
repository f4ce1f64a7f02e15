"""Errors the orchestrator raises; the interceptor maps each to a gRPC status.

The tree::

    DurableError                  -> INTERNAL (the message names no internals)
    ├── InvalidArgumentError      -> INVALID_ARGUMENT   malformed JSON, oversize payload, bad names
    │   └── InvalidJsonError                           a payload PostgreSQL refused as JSON
    ├── NotFoundError             -> NOT_FOUND          unknown workflow, execution or worker
    ├── AlreadyExistsError        -> ALREADY_EXISTS
    ├── FailedPreconditionError   -> FAILED_PRECONDITION stale lease, finished execution
    ├── AbortedError              -> ABORTED            a conflict that persisted after retrying
    ├── UnavailableError          -> UNAVAILABLE        database unreachable, server draining
    ├── UnauthenticatedError      -> UNAUTHENTICATED    no token, or a malformed, wrong, expired
    │                                                   or revoked one
    └── PermissionDeniedError     -> PERMISSION_DENIED  the token's role or queues do not allow it

Servicers raise these and never call ``context.abort`` themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "DurableError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "InvalidJsonError",
    "NotFoundError",
    "PermissionDeniedError",
    "UnauthenticatedError",
    "UnavailableError",
]


class DurableError(Exception):
    """The orchestrator failed to handle the request."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(
        self, message: str | None = None, *, trailers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.trailers = tuple(trailers)
        super().__init__(self.message)


class InvalidArgumentError(DurableError):
    """The request is malformed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidJsonError(InvalidArgumentError):
    """PostgreSQL refused a JSON payload (the API layer names the field)."""


class NotFoundError(DurableError):
    """The named thing does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(DurableError):
    """The thing to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(DurableError):
    """The target is not in a state that allows this request."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(DurableError):
    """The request conflicted with a concurrent change; try again."""

    code = grpc.StatusCode.ABORTED


class UnavailableError(DurableError):
    """The orchestrator cannot serve the request now; try again later."""

    code = grpc.StatusCode.UNAVAILABLE


class UnauthenticatedError(DurableError):
    """The call carries no valid token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(DurableError):
    """The caller's token does not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED
