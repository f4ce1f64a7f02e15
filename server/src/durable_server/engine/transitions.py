"""Pure decisions: given a task's outcome and its definition, what happens next.

Each ``decide_*`` function returns a :class:`Decision`: a tuple of effects that
``engine.py`` applies through the store in one transaction. Nothing here does I/O.
Moving through the workflow's graph is ``walk``: from a node, with an input and the
evaluations a worker sent, to the next task, group, or the end of the lane.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from durable import RetryPolicy
from durable._shared import NO_RETRY, retry_delay
from durable_server.engine.definitions import (
    BranchDef,
    Definition,
    ForeachDef,
    NodeDef,
    ParallelDef,
    Seq,
    StepDef,
    canonical_key,
)
from durable_server.engine.states import ExecutionStatus, StepAttemptStatus, TaskKind
from durable_server.store.rows import LeasedTask

__all__ = [
    "ROOT",
    "CompensationDone",
    "Decision",
    "EndLane",
    "EnqueueTask",
    "Evaluation",
    "FailLane",
    "FinishExecution",
    "Lane",
    "Origin",
    "RecordAttempt",
    "RemoveTask",
    "RetryTask",
    "StartGroup",
    "StepError",
    "decide_lease_expired",
    "decide_step_completed",
    "decide_step_failed",
    "lane_start",
    "walk",
    "workflow_version_of",
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
class Evaluation:
    """A worker's answer for a control node: a value (JSON text) or the error it raised."""

    value_json: str | None = None
    error: StepError | None = None


@dataclass(frozen=True)
class Lane:
    """Where work runs: the top level, or one lane (``index``) of a group."""

    group_id: int | None = None
    index: int | None = None
    path: str = ""

    @property
    def is_root(self) -> bool:
        """Whether this is the execution's top level."""
        return self.group_id is None


ROOT = Lane()


@dataclass(frozen=True)
class Origin:
    """The execution new tasks belong to, and where they queue."""

    execution_id: str
    queue: str
    priority: int
    workflow_version: str

    @classmethod
    def of(cls, task: LeasedTask) -> Origin:
        """The origin of a task's execution."""
        return cls(task.execution_id, task.queue, task.priority, task.workflow_version)


def lane_of(task: LeasedTask) -> Lane:
    """The lane a task runs in."""
    if task.group_id is None:
        return ROOT
    return Lane(task.group_id, task.lane, task.lane_path)


@dataclass(frozen=True)
class RecordAttempt:
    """Record a finished attempt; ``retry_delay_secs`` is set when a retry follows."""

    task: LeasedTask
    status: StepAttemptStatus
    result_json: str | None = None
    error_json: str | None = None
    retry_delay_secs: float | None = None
    final: bool = False  # the step is given up: keep its input (RetryExecution)


@dataclass(frozen=True)
class EnqueueTask:
    """Make a task ready; ``input_json`` None means the lane's own input (a foreach item)."""

    origin: Origin
    lane: Lane
    kind: TaskKind
    name: str
    input_json: str | None
    timeout_secs: float | None = None
    compensated_step: str | None = None
    compensated_sequence: int | None = None


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
class StartGroup:
    """Start a parallel group or a foreach in ``lane``; ``items_json`` for a foreach."""

    origin: Origin
    lane: Lane
    node: ParallelDef | ForeachDef
    input_json: str
    items_json: str | None = None


@dataclass(frozen=True)
class EndLane:
    """A lane ran to its end with ``result_json``; at the top level, the execution did."""

    origin: Origin
    lane: Lane
    result_json: str


@dataclass(frozen=True)
class FailLane:
    """A lane failed for good; at the top level, the execution fails (or compensates)."""

    origin: Origin
    lane: Lane
    error_json: str


@dataclass(frozen=True)
class CompensationDone:
    """A compensation ended (``failed`` for good or not); the next one runs, or the end."""

    origin: Origin
    compensated_sequence: int
    failed: bool


@dataclass(frozen=True)
class FinishExecution:
    """End an execution; ``error_json`` None keeps the error it has."""

    execution_id: str
    status: ExecutionStatus
    result_json: str | None = None
    error_json: str | None = None


Effect = (
    RecordAttempt
    | EnqueueTask
    | RetryTask
    | RemoveTask
    | StartGroup
    | EndLane
    | FailLane
    | CompensationDone
    | FinishExecution
)


def workflow_version_of(effect: Effect) -> str | None:
    """The workflow version whose definition applying ``effect`` needs (None: none)."""
    if isinstance(effect, RecordAttempt):
        return effect.task.workflow_version
    if isinstance(effect, RetryTask | RemoveTask | FinishExecution):
        return None
    return effect.origin.workflow_version


@dataclass(frozen=True)
class Decision:
    """What to apply for one task outcome."""

    effects: tuple[Effect, ...]


# -- walking the graph -------------------------------------------------------------------


def lane_start(origin: Origin, lane: Lane, body: Seq, input_json: str | None) -> EnqueueTask:
    """The first task of a new lane: its first step, or a route task for a control node."""
    first = body.nodes[0]
    if isinstance(first, StepDef):
        return EnqueueTask(origin, lane, TaskKind.STEP, first.name, input_json, first.timeout_secs)
    return EnqueueTask(origin, lane, TaskKind.ROUTE, first.name, input_json)


def _keys(branch: BranchDef) -> str:
    return ", ".join(branch.cases) or "none"


def walk(
    definition: Definition,
    node: NodeDef | None,
    data_json: str,
    evaluations: Mapping[str, Evaluation],
    origin: Origin,
    lane: Lane,
) -> tuple[EnqueueTask | StartGroup | EndLane | FailLane]:
    """From ``node`` (None: past the lane's end) with ``data_json``: what happens next.

    Branch keys and foreach items come from ``evaluations``; a control node without one
    becomes a ROUTE task, so a worker evaluates it.
    """
    while True:
        if node is None:
            return (EndLane(origin, lane, data_json),)
        if isinstance(node, StepDef):
            return (
                EnqueueTask(origin, lane, TaskKind.STEP, node.name, data_json, node.timeout_secs),
            )
        if isinstance(node, ParallelDef):
            return (StartGroup(origin, lane, node, data_json),)
        evaluation = evaluations.get(node.name)
        if evaluation is None:
            return (EnqueueTask(origin, lane, TaskKind.ROUTE, node.name, data_json),)
        if evaluation.error is not None:
            what = "on function" if isinstance(node, BranchDef) else "items function"
            error = StepError(
                "BranchError" if isinstance(node, BranchDef) else "ForeachItemsError",
                f"{type(node).__name__[:-3].lower()} {node.name!r}: its {what} raised "
                f"{evaluation.error.type}: {evaluation.error.message}",
                evaluation.error.traceback,
            )
            return (FailLane(origin, lane, error.to_json(node=node.name)),)
        value = evaluation.value_json or "null"
        if isinstance(node, ForeachDef):
            return (StartGroup(origin, lane, node, data_json, value),)
        case = node.cases.get(value)  # canonical text already, as most writers send it
        if case is None:
            case = node.cases.get(canonical_key(value), node.default)
        if case is None:
            error = StepError(
                "BranchNoMatch",
                f"branch {node.name!r} has no case for key {value} and no default "
                f"(cases: {_keys(node)})",
            )
            return (FailLane(origin, lane, error.to_json(node=node.name)),)
        node = case.nodes[0] if case.nodes else definition.after(node.name)


# -- decisions on task outcomes ------------------------------------------------------------


def policy_for(definition: Definition, task: LeasedTask) -> RetryPolicy:
    """The retry policy of what a task runs."""
    if task.kind == TaskKind.STEP:
        return definition.step(task.step_name).retry
    if task.kind == TaskKind.COMPENSATION:
        return definition.compensations[task.step_name].retry
    return NO_RETRY


def decide_step_completed(
    definition: Definition,
    task: LeasedTask,
    result_json: str,
    *,
    goto_target: str = "",
    evaluations: Mapping[str, Evaluation] | None = None,
) -> Decision:
    """A task returned ``result_json``: move on through the graph."""
    record = RecordAttempt(task, StepAttemptStatus.COMPLETED, result_json=result_json)
    done = RemoveTask(task.id)
    origin, lane, evals = Origin.of(task), lane_of(task), evaluations or {}
    kind = TaskKind(task.kind)
    nxt: tuple[Effect, ...]
    if kind == TaskKind.COMPENSATION:
        assert task.compensated_sequence is not None
        nxt = (CompensationDone(origin, task.compensated_sequence, failed=False),)
    elif kind == TaskKind.ROUTE:
        nxt = walk(definition, definition.node(task.step_name), result_json, evals, origin, lane)
    elif goto_target:
        # A step's goto, or an into merge's (from its group's place: the group has ended).
        what = "step" if kind == TaskKind.STEP else "into merge of"
        if kind not in (TaskKind.STEP, TaskKind.INTO) or not definition.same_sequence(
            task.step_name, goto_target
        ):
            error = StepError(
                "GotoError",
                f"{what} {task.step_name!r} jumped to {goto_target!r}, which is not a node of "
                "the same sequence: a goto stays within its sequence (forward or back)",
            )
            nxt = (FailLane(origin, lane, error.to_json(step=task.step_name)),)
        else:
            target = definition.node(goto_target)
            nxt = walk(definition, target, result_json, evals, origin, lane)
    else:  # a step, or the into merge of the group named step_name
        following = definition.after(task.step_name)
        nxt = walk(definition, following, result_json, evals, origin, lane)
    return Decision((record, done, *nxt))


def decide_step_failed(
    definition: Definition,
    task: LeasedTask,
    error: StepError,
    *,
    timed_out: bool = False,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """A task raised (or timed out): retry it per its policy, or fail its lane."""
    policy = policy_for(definition, task)
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
    return Decision(
        (
            RecordAttempt(task, status, error_json=error.to_json(), final=True),
            RemoveTask(task.id),
            _gave_up(task, error, f"failed on attempt {task.attempt} and {reason}"),
        )
    )


def _gave_up(task: LeasedTask, error: StepError, why: str) -> Effect:
    origin = Origin.of(task)
    if task.kind == TaskKind.COMPENSATION:
        assert task.compensated_sequence is not None
        return CompensationDone(origin, task.compensated_sequence, failed=True)
    what = {"step": "step", "route": "routing at", "into": "into merge of"}[task.kind]
    where = f" (lane {task.lane_path})" if task.lane_path else ""
    execution_error = error.to_json(
        step=task.step_name,
        attempts=task.attempt,
        message=f"{what} {task.step_name!r}{where} {why}: {error.message}",
    )
    return FailLane(origin, lane_of(task), execution_error)


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
                RecordAttempt(task, StepAttemptStatus.LOST, error_json=lost.to_json(), final=True),
                RemoveTask(task.id),
                _gave_up(task, error, "was lost too often"),
            )
        )
    return Decision(
        (
            RecordAttempt(task, StepAttemptStatus.LOST, error_json=lost.to_json()),
            RetryTask(task.id, 0.0, failure=False, loss=True),
        )
    )
