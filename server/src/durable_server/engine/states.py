"""Statuses and their allowed transitions: the one place that defines them.

The SQL guards take their ``allowed_from`` sets from these tables (see ``engine.py``),
so Python and SQL cannot disagree; the migration's CHECK constraints list the same values
and a test keeps the three (Python, SQL, proto) equal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class ExecutionStatus(enum.StrEnum):
    """Life-cycle state of an execution."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"


class StepAttemptStatus(enum.StrEnum):
    """Outcome of one attempt at a step (``running`` is a leased task, never a row)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    TIMED_OUT = "timed_out"
    WAITING = "waiting"


class TaskKind(enum.StrEnum):
    """What a task asks a worker to run."""

    STEP = "step"
    ROUTE = "route"
    INTO = "into"
    COMPENSATION = "compensation"


class TaskStatus(enum.StrEnum):
    """State of a row in the task queue."""

    READY = "ready"
    LEASED = "leased"
    WAITING = "waiting"


E = ExecutionStatus

EXECUTION_TRANSITIONS: Final[Mapping[ExecutionStatus, frozenset[ExecutionStatus]]] = {
    E.PENDING: frozenset({E.RUNNING, E.CANCELLED, E.TIMED_OUT, E.FAILED}),
    E.RUNNING: frozenset(
        {E.WAITING, E.COMPLETED, E.FAILED, E.CANCELLED, E.TIMED_OUT, E.COMPENSATING}
    ),
    E.WAITING: frozenset({E.RUNNING, E.CANCELLED, E.TIMED_OUT, E.FAILED, E.COMPENSATING}),
    E.COMPENSATING: frozenset({E.COMPENSATED, E.COMPENSATION_FAILED, E.CANCELLED, E.TIMED_OUT}),
    E.COMPLETED: frozenset(),
    E.FAILED: frozenset(),
    E.CANCELLED: frozenset(),
    E.TIMED_OUT: frozenset(),
    E.COMPENSATED: frozenset(),
    E.COMPENSATION_FAILED: frozenset(),
}

# RetryExecution, an operator's action, reopens these (back to running); nothing else does.
REOPENABLE: Final = frozenset({E.FAILED.value})

ACTIVE_STATUSES: Final = frozenset(s for s, nxt in EXECUTION_TRANSITIONS.items() if nxt)
TERMINAL_STATUSES: Final = frozenset(s for s, nxt in EXECUTION_TRANSITIONS.items() if not nxt)


def can_transition(current: ExecutionStatus, new: ExecutionStatus) -> bool:
    """Whether an execution may move from ``current`` to ``new``."""
    return new in EXECUTION_TRANSITIONS[current]


def allowed_from(new: ExecutionStatus) -> list[str]:
    """The statuses an execution may be in to move to ``new`` (the SQL guard)."""
    return sorted(s.value for s, nxt in EXECUTION_TRANSITIONS.items() if new in nxt)
