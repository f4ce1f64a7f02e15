"""Pure decisions: given a task's outcome and its definition, what happens next.

Each ``decide_*`` function returns a :class:`Decision`: a tuple of effects that
``engine.py`` applies through the store in one transaction. Nothing here does I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from durable._retry import retry_delay
from durable_server.engine.definitions import Definition, StepDef
from durable_server.engine.states import ExecutionStatus, StepAttemptStatus
from durable_server.store.rows import LeasedTask

__all__ = [
    "Decision",
    "EnqueueStep",
    "FinishExecution",
    "RecordAttempt",
    "RemoveTask",
    "RetryTask",
    "StepError",
    "decide_lease_expired",
    "decide_step_completed",
    "decide_step_failed",
]


@dataclass(frozen=True)
class StepError:
    """A step failure as reported by a worker (or made up by the engine)."""

    type: str
    message: str
    traceback: str = ""
    non_retryable: bool = False

    def to_json(self, **extra: object) -> str:
        """The error as stored in ``step_attempts.error`` / ``executions.error``."""
        doc: dict[str, object] = {"type": self.type, "message": self.message}
        if self.traceback:
            doc["traceback"] = self.traceback
        if self.non_retryable:
            doc["non_retryable"] = True
        doc.update(extra)
        return json.dumps(doc)


@dataclass(frozen=True)
class RecordAttempt:
    """Record a finished attempt; ``retry_delay_secs`` is set when a retry follows."""

    task: LeasedTask
    status: StepAttemptStatus
    result_json: str | None = None
    error_json: str | None = None
    retry_delay_secs: float | None = None


@dataclass(frozen=True)
class EnqueueStep:
    """Make the next step run ready."""

    task: LeasedTask
    step: StepDef
    input_json: str


@dataclass(frozen=True)
class RetryTask:
    """Put a leased task back as its next attempt after a delay."""

    task_id: int
    delay_secs: float
    failure: bool
    loss: bool


@dataclass(frozen=True)
class RemoveTask:
    """Delete a task that will not run again."""

    task_id: int


@dataclass(frozen=True)
class FinishExecution:
    """End an execution."""

    execution_id: str
    status: ExecutionStatus
    result_json: str | None = None
    error_json: str | None = None


Effect = RecordAttempt | EnqueueStep | RetryTask | RemoveTask | FinishExecution


@dataclass(frozen=True)
class Decision:
    """What to apply for one task outcome."""

    effects: tuple[Effect, ...]


def decide_step_completed(definition: Definition, task: LeasedTask, result_json: str) -> Decision:
    """A step returned ``result_json``: run the next step, or complete the execution."""
    record = RecordAttempt(task, StepAttemptStatus.COMPLETED, result_json=result_json)
    done = RemoveTask(task.id)
    following = definition.after(task.step_name)
    if following is not None:
        return Decision((record, done, EnqueueStep(task, following, result_json)))
    finish = FinishExecution(task.execution_id, ExecutionStatus.COMPLETED, result_json=result_json)
    return Decision((record, done, finish))


def decide_step_failed(
    definition: Definition,
    task: LeasedTask,
    error: StepError,
    *,
    timed_out: bool = False,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """A step raised (or timed out): retry it per its policy, or fail the execution."""
    step = definition.step(task.step_name)
    policy = step.retry
    failures = task.failures + 1
    status = StepAttemptStatus.TIMED_OUT if timed_out else StepAttemptStatus.FAILED
    retryable = (
        not error.non_retryable
        and error.type not in policy.non_retryable_errors
        and failures < policy.max_attempts
    )
    if retryable:
        delay = retry_delay(policy, failures, rand=rand).total_seconds()
        return Decision(
            (
                RecordAttempt(task, status, error_json=error.to_json(), retry_delay_secs=delay),
                RetryTask(task.id, delay, failure=True, loss=False),
            )
        )
    reason = "is not retryable" if failures < policy.max_attempts else "has no attempts left"
    execution_error = error.to_json(
        step=task.step_name,
        attempts=task.attempt,
        message=f"step {task.step_name!r} failed on attempt {task.attempt} and {reason}: "
        f"{error.message}",
    )
    return Decision(
        (
            RecordAttempt(task, status, error_json=error.to_json()),
            RemoveTask(task.id),
            FinishExecution(task.execution_id, ExecutionStatus.FAILED, error_json=execution_error),
        )
    )


def decide_lease_expired(
    definition: Definition,
    task: LeasedTask,
    *,
    past_timeout: bool,
    max_losses: int,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """A lease ran out: past the step's timeout it is a failure, otherwise a loss."""
    if past_timeout:
        error = StepError(
            "StepTimeout",
            f"step {task.step_name!r} did not finish within its timeout of "
            f"{task.timeout_secs or 0:g}s (its worker stopped answering)",
        )
        return decide_step_failed(definition, task, error, timed_out=True, rand=rand)
    lost = StepError(
        "LeaseExpired",
        f"worker {task.worker_id!r} stopped heartbeating while running step "
        f"{task.step_name!r}; the step runs again",
    )
    if task.losses + 1 > max_losses:
        error = StepError(
            "StepLost",
            f"step {task.step_name!r} was lost {task.losses + 1} times: each worker that "
            "took it died or stalled",
        )
        return Decision(
            (
                RecordAttempt(task, StepAttemptStatus.LOST, error_json=lost.to_json()),
                RemoveTask(task.id),
                FinishExecution(
                    task.execution_id,
                    ExecutionStatus.FAILED,
                    error_json=error.to_json(step=task.step_name),
                ),
            )
        )
    return Decision(
        (
            RecordAttempt(task, StepAttemptStatus.LOST, error_json=lost.to_json()),
            RetryTask(task.id, 0.0, failure=False, loss=True),
        )
    )
