"""Retry policies and their backoff maths (pure: no I/O, no clock).

The orchestrator uses :func:`retry_delay` to schedule the next attempt of a failed
step; the SDK turns :class:`RetryPolicy` into its protobuf form for registration.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from durable.v1 import common_pb2

__all__ = ["BackoffKind", "RetryPolicy", "retry_delay"]

BackoffKind = Literal["fixed", "linear", "exponential"]

_BACKOFF_TO_PROTO: dict[str, common_pb2.Backoff.ValueType] = {
    "fixed": common_pb2.BACKOFF_FIXED,
    "linear": common_pb2.BACKOFF_LINEAR,
    "exponential": common_pb2.BACKOFF_EXPONENTIAL,
}
_PROTO_TO_BACKOFF: dict[int, BackoffKind] = {
    common_pb2.BACKOFF_FIXED: "fixed",
    common_pb2.BACKOFF_LINEAR: "linear",
    common_pb2.BACKOFF_EXPONENTIAL: "exponential",
    common_pb2.BACKOFF_UNSPECIFIED: "exponential",
}

DEFAULT_INITIAL_DELAY = timedelta(seconds=1)
DEFAULT_MAX_DELAY = timedelta(minutes=5)
DEFAULT_MULTIPLIER = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed step runs again.

    Args:
        max_attempts: Total attempts including the first (1 means no retry).
        backoff: ``"fixed"``, ``"linear"`` or ``"exponential"``.
        initial_delay: Delay before the first retry.
        max_delay: Upper bound on any delay.
        multiplier: Growth factor for exponential backoff.
        jitter: Random spread as a fraction of the delay (0 disables it).
        non_retryable_errors: Exception class names that are never retried.
    """

    max_attempts: int = 3
    backoff: BackoffKind = "exponential"
    initial_delay: timedelta = DEFAULT_INITIAL_DELAY
    max_delay: timedelta = DEFAULT_MAX_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: float = 0.2
    non_retryable_errors: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff not in _BACKOFF_TO_PROTO:
            raise ValueError(
                f"RetryPolicy.backoff must be one of {sorted(_BACKOFF_TO_PROTO)}, "
                f"got {self.backoff!r}"
            )
        if self.initial_delay < timedelta(0) or self.max_delay < timedelta(0):
            raise ValueError("RetryPolicy delays must not be negative")
        if self.multiplier < 1.0:
            raise ValueError(f"RetryPolicy.multiplier must be >= 1.0, got {self.multiplier}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")
        object.__setattr__(self, "non_retryable_errors", tuple(self.non_retryable_errors))

    def to_proto(self) -> common_pb2.RetryPolicy:
        """The protobuf form registered with the orchestrator."""
        msg = common_pb2.RetryPolicy(
            max_attempts=self.max_attempts,
            backoff=_BACKOFF_TO_PROTO[self.backoff],
            multiplier=self.multiplier,
            jitter=self.jitter,
            non_retryable_errors=list(self.non_retryable_errors),
        )
        msg.initial_delay.FromTimedelta(self.initial_delay)
        msg.max_delay.FromTimedelta(self.max_delay)
        return msg

    @classmethod
    def from_proto(cls, msg: common_pb2.RetryPolicy) -> RetryPolicy:
        """Read a policy back from its protobuf form, filling defaults for unset fields."""
        return cls(
            max_attempts=max(msg.max_attempts, 1),
            backoff=_PROTO_TO_BACKOFF.get(msg.backoff, "exponential"),
            initial_delay=(
                msg.initial_delay.ToTimedelta()
                if msg.HasField("initial_delay")
                else DEFAULT_INITIAL_DELAY
            ),
            max_delay=msg.max_delay.ToTimedelta()
            if msg.HasField("max_delay")
            else DEFAULT_MAX_DELAY,
            multiplier=msg.multiplier or DEFAULT_MULTIPLIER,
            jitter=msg.jitter,
            non_retryable_errors=tuple(msg.non_retryable_errors),
        )


NO_RETRY = RetryPolicy(max_attempts=1, jitter=0.0)


def retry_delay(
    policy: RetryPolicy, failures: int, *, rand: Callable[[], float] = random.random
) -> timedelta:
    """The delay before the next attempt after ``failures`` failed attempts (>= 1).

    The base delay is ``initial_delay`` (fixed), ``initial_delay * failures`` (linear) or
    ``initial_delay * multiplier ** (failures - 1)`` (exponential); jitter spreads it
    uniformly over ``[d * (1 - jitter), d * (1 + jitter)]``; the result never exceeds
    ``max_delay``. ``rand`` returns a float in [0, 1) and is injectable for tests.
    """
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    initial = policy.initial_delay.total_seconds()
    cap = policy.max_delay.total_seconds()
    if policy.backoff == "fixed":
        base = initial
    elif policy.backoff == "linear":
        base = initial * failures
    else:
        # Bound the exponent so huge attempt counts cannot overflow a float.
        base = initial * policy.multiplier ** min(failures - 1, 1000)
    base = min(base, cap)
    if policy.jitter:
        base *= 1.0 - policy.jitter + 2.0 * policy.jitter * rand()
    return timedelta(seconds=min(base, cap))
