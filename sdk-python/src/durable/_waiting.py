"""How both clients wait for an execution: the deadline of a ``wait`` and its polls."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from durable.errors import DeadlineExceededError, DurableError, UnavailableError

__all__ = ["LONG_POLL_SECS", "MAX_POLL_INTERVAL", "WaitDeadline", "is_unimplemented"]

MAX_POLL_INTERVAL = 1.0
"""The longest pause between two polls of :meth:`Client.wait`, in seconds."""

LONG_POLL_SECS = 60.0
"""The longest a WaitExecution call parks on the orchestrator before the client asks again."""


def is_unimplemented(error: DurableError) -> bool:
    """Whether ``error`` says the orchestrator lacks the RPC (an older version)."""
    return getattr(error, "code", None) == grpc.StatusCode.UNIMPLEMENTED


class WaitDeadline:
    """The deadline of one ``wait`` call, and how long each call in it may take.

    ``wait`` long-polls WaitExecution, each call parked on the orchestrator for up to
    :data:`LONG_POLL_SECS` (:meth:`server_wait`). Against an orchestrator without it,
    ``wait`` polls GetExecution: polls start ``poll_interval`` apart and grow by half
    each time up to :data:`MAX_POLL_INTERVAL`, so a long wait does not hammer it.

    Args:
        execution_id: The execution waited for (named in the error).
        timeout: Seconds to wait in all; ``None`` waits forever.
        poll_interval: Seconds between the first polls.
        now: A monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        execution_id: str,
        timeout: float | None,
        poll_interval: float,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must not be negative, got {timeout}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self._execution_id = execution_id
        self._timeout = timeout
        self._now = now
        self._deadline = None if timeout is None else now() + timeout
        self._interval = poll_interval
        self._max_interval = max(poll_interval, MAX_POLL_INTERVAL)

    def expired(self) -> DeadlineExceededError:
        """The error to raise when the wait is over."""
        return DeadlineExceededError(
            f"execution {self._execution_id} did not finish within {self._timeout}s"
        )

    def is_over(self) -> bool:
        """True once the deadline has passed."""
        return self._deadline is not None and self._now() >= self._deadline

    def server_wait(self) -> float:
        """Seconds the next WaitExecution may park: the time left, at most LONG_POLL_SECS."""
        if self._deadline is None:
            return LONG_POLL_SECS
        return max(min(LONG_POLL_SECS, self._deadline - self._now()), 0.0)

    def asks_again_after(self, exc: DurableError) -> bool:
        """Whether ``wait`` asks again after its WaitExecution failed with ``exc``.

        It does after UNAVAILABLE (the orchestrator or its database is down, and the
        channel's own retries, at most 5 in about 8 s, ran out) and DEADLINE_EXCEEDED (a
        long poll retried by the channel parks past its gRPC deadline), until the wait's
        own deadline: an outage longer than the channel rides out must not end a wait
        that may last minutes, so this is one loop gRPC's retry policy cannot replace.
        """
        return isinstance(exc, UnavailableError | DeadlineExceededError) and not self.is_over()

    def rpc_timeout(self, default: float) -> float:
        """The deadline of the next poll: the client's own, cut to the time left."""
        if self._deadline is None:
            return default
        return max(min(default, self._deadline - self._now()), 0.001)

    def next_delay(self) -> float:
        """Seconds to pause before the next poll; raises DeadlineExceededError when time is up."""
        delay = self._interval
        if self._deadline is not None:
            remaining = self._deadline - self._now()
            if remaining <= 0:
                raise self.expired()
            delay = min(delay, remaining)
        self._interval = min(self._interval * 1.5, self._max_interval)
        return delay
