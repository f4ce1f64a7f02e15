"""Statuses and their allowed transitions: the one place that defines them.

Two machines: an execution's status (``EXECUTION_TRANSITIONS``) and a task row's
(``TASK_TRANSITIONS``). Both are drawn in ``docs/states.md``, which a test renders from
these tables.

The SQL guards take their ``allowed_from`` sets and the unfinished statuses
(``ACTIVE_STATUS_VALUES``) as parameters from here, so Python and SQL cannot disagree.
Where SQL keeps a literal status (a partial index's predicate, which a parameter cannot
match, and the single-status guards of the hot task queries), a test checks each literal
transition and status list against these tables. The migration's CHECK constraints list
the same values and a test keeps the three (Python, SQL, proto) equal.
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
    """State of a row in the task queue (a task that ran to its end is deleted)."""

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
ACTIVE_STATUS_VALUES: Final[list[str]] = sorted(s.value for s in ACTIVE_STATUSES)
"""The unfinished statuses as SQL takes them (``status = ANY($n::text[])``)."""

T = TaskStatus

TASK_TRANSITIONS: Final[Mapping[TaskStatus, frozenset[TaskStatus]]] = {
    # A worker claims it (task_claim_many).
    T.READY: frozenset({T.LEASED}),
    # Its attempt is retried or its lease lost (task_requeue_many), given back unrun
    # (task_release_many), or it waits for a child, a timer, an event or an input.
    T.LEASED: frozenset({T.READY, T.WAITING}),
    # What it waited for came (task_wake_many).
    T.WAITING: frozenset({T.READY}),
}
"""Moves between task statuses. A task is inserted ready (or leased, when handed straight
to the reporting worker), and deleted from any status: when its attempt ends for good
(completed or given up) or its execution ends or compensates."""

TASK_INITIAL_STATUSES: Final = frozenset({T.READY, T.LEASED})
"""The statuses a task is inserted with (task_insert_many)."""


def can_transition(current: ExecutionStatus, new: ExecutionStatus) -> bool:
    """Whether an execution may move from ``current`` to ``new``."""
    return new in EXECUTION_TRANSITIONS[current]


def can_task_transition(current: TaskStatus, new: TaskStatus) -> bool:
    """Whether a task may move from ``current`` to ``new``."""
    return new in TASK_TRANSITIONS[current]


def allowed_from(new: ExecutionStatus) -> list[str]:
    """The statuses an execution may be in to move to ``new`` (the SQL guard)."""
    return sorted(s.value for s, nxt in EXECUTION_TRANSITIONS.items() if new in nxt)
