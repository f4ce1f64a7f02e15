"""The caller of the call being served, and the checks servicers make themselves.

The auth interceptor sets the caller for the duration of each call; without
authentication there is none, and every check passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar

from durable.v1 import definition_pb2
from durable_server.auth.verifier import Principal
from durable_server.errors import PermissionDeniedError

__all__ = [
    "acting_as",
    "allowed_queues",
    "check_queues",
    "check_registration",
    "current_principal",
    "may_use_queue",
]

_CALLER: ContextVar[Principal | None] = ContextVar("durable_caller", default=None)


def current_principal() -> Principal | None:
    """The verified caller of the current call; None when authentication is off."""
    return _CALLER.get()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Serve the code inside the block on behalf of ``principal``."""
    token = _CALLER.set(principal)
    try:
        yield
    finally:
        _CALLER.reset(token)


def allowed_queues() -> frozenset[str] | None:
    """The queues the caller's token is limited to; None when it may use every queue."""
    caller = _CALLER.get()
    return caller.queues if caller is not None and caller.queues else None


def may_use_queue(queue: str) -> bool:
    """Whether the caller's token may use ``queue``."""
    allowed = allowed_queues()
    return allowed is None or queue in allowed


def check_queues(queues: Iterable[str]) -> None:
    """Refuse (PERMISSION_DENIED) queues outside those the caller's token is limited to."""
    caller = _CALLER.get()
    if caller is None or not caller.queues:
        return
    outside = sorted(set(queues) - caller.queues)
    if outside:
        raise PermissionDeniedError(
            f"token {caller.token_id} may use queue(s) {', '.join(sorted(caller.queues))} "
            f"only, not {', '.join(outside)}"
        )


def check_registration(
    queues: Sequence[str], workflows: Sequence[definition_pb2.WorkflowDefinition]
) -> None:
    """Refuse a registration that polls, or sends executions to, queues outside the token's.

    A worker limited to some queues must not register a workflow (or a schedule) that
    starts on another queue: it would take over that workflow's executions.
    """
    check_queues(
        [
            *queues,
            *(w.queue or "default" for w in workflows),
            *(s.queue for w in workflows for s in w.schedules if s.queue),
        ]
    )
