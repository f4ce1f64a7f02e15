"""Errors raised by the Durable SDK, and the one that step code raises.

The tree::

    DurableError                  an API call failed; ``.code`` is its gRPC status name
    ├── InvalidArgumentError      INVALID_ARGUMENT: bad input (malformed JSON, too large, bad name)
    ├── NotFoundError             NOT_FOUND: unknown workflow or execution
    ├── AlreadyExistsError        ALREADY_EXISTS
    ├── FailedPreconditionError   FAILED_PRECONDITION: wrong state (finished execution, stale lease)
    ├── AbortedError              ABORTED: a conflict that did not resolve; try again
    ├── UnavailableError          UNAVAILABLE: the orchestrator or its database is unreachable
    ├── DeadlineExceededError     DEADLINE_EXCEEDED
    ├── UnauthenticatedError      UNAUTHENTICATED: no token, or a malformed, wrong, expired or
    │                             revoked one
    ├── PermissionDeniedError     PERMISSION_DENIED: the token's role or queues do not allow it
    └── InternalError             INTERNAL and anything else

    NonRetryableError             raised by a step: fail it now, whatever its retry policy says
    ├── ChildWorkflowError        raised by ``ctx.call_workflow``: the child failed, was
    │                             cancelled or timed out, or the wait for it timed out
    └── WaitError                 raised by ``ctx.sleep``, ``ctx.wait_for_*``: the wait
        │                         ended without a value
        └── WaitTimeoutError      its timeout elapsed and it has no ``timeout_value``
"""

from __future__ import annotations

import grpc

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "ChildWorkflowError",
    "DeadlineExceededError",
    "DurableError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NonRetryableError",
    "NotFoundError",
    "PermissionDeniedError",
    "UnauthenticatedError",
    "UnavailableError",
    "WaitError",
    "WaitTimeoutError",
    "from_rpc_error",
]


class DurableError(Exception):
    """An API call to the orchestrator failed."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class InvalidArgumentError(DurableError):
    """The request is malformed: fix the input and send it again."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(DurableError):
    """The named workflow or execution does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(DurableError):
    """The thing to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(DurableError):
    """The target is not in a state that allows this call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(DurableError):
    """The call conflicted with a concurrent change; it may be retried."""

    code = grpc.StatusCode.ABORTED


class UnavailableError(DurableError):
    """The orchestrator or its database is unreachable; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(DurableError):
    """The call did not finish before its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnauthenticatedError(DurableError):
    """The orchestrator requires a valid token: pass ``token=`` (or set DURABLE_TOKEN)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(DurableError):
    """The token's role (or the queues it is limited to) does not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class InternalError(DurableError):
    """The orchestrator failed unexpectedly."""

    code = grpc.StatusCode.INTERNAL


class NonRetryableError(Exception):
    """Raised by step code to fail the step at once, without further retries."""


class ChildWorkflowError(NonRetryableError):
    """A child workflow called with ``ctx.call_workflow`` did not give a result.

    The child failed, was cancelled or timed out, or the wait for it timed out without a
    ``timeout_value``. It is a :class:`NonRetryableError`: a retry of the calling step
    waits on the same child (its id is derived from the step run) and would meet the
    same outcome. Catch it in the step to carry on without the child's result.

    Attributes:
        message: What happened, as the orchestrator recorded it.
        type: The orchestrator's name for the outcome, e.g. ``"ChildWorkflowFailed"``
            (the child ended failed, cancelled, timed out, compensated, ...) or
            ``"ChildTimeout"`` (the wait's own timeout elapsed; the child was cancelled).
        child_execution_id: The child execution's id.
        status: The child's final status (e.g. ``"failed"``), when the orchestrator says.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "ChildWorkflowFailed",
        child_execution_id: str | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.child_execution_id = child_execution_id
        self.status = status


class WaitError(NonRetryableError):
    """A wait (``ctx.sleep``, ``ctx.wait_for_event``, ...) ended without a value.

    The orchestrator recorded an error as the wait's outcome. It is a
    :class:`NonRetryableError`: the outcome is kept with the step run, so a retry of the
    step would meet it again. Catch it in the step to carry on without the value.

    Attributes:
        message: What happened, as the orchestrator recorded it.
        type: The orchestrator's name for the outcome, e.g. ``"EventTimeout"``.
        index: The wait's position among the step run's waits and child calls.
    """

    def __init__(self, message: str, *, type: str = "WaitError", index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.index = index


class WaitTimeoutError(WaitError):
    """A wait's ``timeout`` elapsed and it has no ``timeout_value``.

    ``type`` is ``"EventTimeout"`` (``wait_for_event``, ``wait_for_any``,
    ``wait_for_all``) or ``"InputTimeout"`` (``wait_for_input``).
    """


_BY_CODE: dict[grpc.StatusCode, type[DurableError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        AbortedError,
        UnavailableError,
        DeadlineExceededError,
        UnauthenticatedError,
        PermissionDeniedError,
        InternalError,
    )
}


def from_rpc_error(err: grpc.RpcError) -> DurableError:
    """The typed error for a failed gRPC call."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, InternalError)
    error = cls(details or None)
    error.code = code
    return error
