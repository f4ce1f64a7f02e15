"""StepContext: what a step may ask about the run it belongs to, and the children it starts.

A step starts child workflows through its context: :meth:`StepContext.start_workflow`
(fire and forget) and :meth:`StepContext.call_workflow` (wait for the child's result).
Neither does any I/O. Each call takes the next index of the step run (0, 1, 2, ... in
call order, shared by both methods) and records a ``ChildStart``; the worker sends the
starts with the step's result, or with its suspension when ``call_workflow`` has to wait.
The child's id is derived from the parent's id, the step run's sequence and the index,
so however often the step runs again (a retry, a re-run after a wait, a crash) it names
the same child, and the orchestrator creates each child once.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from durable import _serde
from durable._dsl import Workflow
from durable._models import TaskKind
from durable._nodes import check_name
from durable.errors import ChildWorkflowError, NonRetryableError
from durable.v1 import worker_service_pb2 as pb

__all__ = [
    "CHILD_NAMESPACE",
    "StepContext",
    "StepSuspended",
    "child_execution_id",
    "recorded_children",
    "suspension_of",
]

CHILD_NAMESPACE: Final = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
"""The uuid5 namespace of child execution ids (RFC 4122's URL namespace)."""

_MISSING: Any = object()
"""``call_workflow``'s ``timeout_value`` when none is given (``None`` is a value)."""

_PRIORITY_RANGE = range(-(2**31), 2**31)


def child_execution_id(execution_id: str, sequence: int, index: int) -> str:
    """The id of the child that step run ``sequence`` of ``execution_id`` starts at ``index``.

    ``uuid5(CHILD_NAMESPACE, "<execution id>/<sequence>/<index>")``: the orchestrator
    derives the same id, so the step knows it before the child exists.
    """
    return str(uuid.uuid5(CHILD_NAMESPACE, f"{execution_id}/{sequence}/{index}"))


class StepSuspended(BaseException):
    """Raised by :meth:`StepContext.call_workflow` to park the step until the child ends.

    It derives from ``BaseException``, not ``Exception``, so that ``except Exception`` in
    step code lets it through to the worker, which reports the step as waiting instead of
    failed. Step code that catches ``BaseException`` (or uses a bare ``except:``) must
    re-raise it. (A worker that sees the step swallow it still suspends the step.)

    Attributes:
        wait: What the step waits for.
        children: Every child start the step run recorded up to here, the waited one
            included.
    """

    def __init__(self, wait: pb.ChildWait, children: tuple[pb.ChildStart, ...]) -> None:
        super().__init__(f"the step waits for the child workflow of its call {wait.index}")
        self.wait = wait
        self.children = children


class _Calls:
    """The mutable part of a step run's context: its call counter and what it recorded."""

    __slots__ = ("counter", "starts", "suspension")

    def __init__(self) -> None:
        self.counter = itertools.count()  # next() is atomic: no index is taken twice
        self.starts: list[pb.ChildStart] = []
        self.suspension: StepSuspended | None = None


def _workflow_name(workflow: str | Workflow) -> str:
    name = workflow.name if isinstance(workflow, Workflow) else workflow
    return check_name("workflow", name)


@dataclass(frozen=True)
class StepContext:
    """Passed as the optional last parameter of a step, compensation or into function.

    Attributes:
        execution_id: The execution this step runs in.
        workflow_name: The workflow's name.
        step_name: This step's name (a compensation's own name; for an into merge, the
            name of its parallel or foreach node).
        sequence: Position of this step run in the execution, from 1.
        attempt: The attempt number, from 1.
        input: The execution's original input (decoded from JSON).
        lane_path: Where this run is: ``""`` at the top level, else the lanes from the
            outside in, e.g. ``"checks/fraud"`` or ``"notify/17"`` (foreach item 17).
        kind: What runs: :attr:`TaskKind.STEP`, :attr:`TaskKind.INTO` or
            :attr:`TaskKind.COMPENSATION`.
        memo: The outcomes of this step run's earlier child calls by call index (as
            text), each ``{"ok": true, "value": ...}`` or ``{"ok": false, "error":
            {...}}``. :meth:`call_workflow` answers from it; empty on a first run.
    """

    execution_id: str
    workflow_name: str
    step_name: str
    sequence: int
    attempt: int
    input: Any
    lane_path: str = ""
    kind: TaskKind = TaskKind.STEP
    memo: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)
    _calls: _Calls = field(default_factory=_Calls, init=False, repr=False, compare=False)

    @property
    def idempotency_key(self) -> str:
        """A key unique to this step run, stable across its retries: use it for side effects."""
        return f"{self.execution_id}:{self.sequence}:{self.step_name}"

    def start_workflow(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
    ) -> str:
        """Start a child execution of ``workflow`` (fire and forget); return its id.

        Nothing is sent yet: the child is created with the step's result, so a step that
        fails starts no child. The id is derived from this step run and the call's
        position in it, so a retry or re-run of the step names the same child and the
        orchestrator creates it once. The child is listed by ``list_children`` and is
        cancelled with its parent.

        Args:
            workflow: The child workflow, or its name (it must be registered by a worker).
            input: The child's input; it crosses the JSON boundary here.
            queue: Queue to run it on; ``None`` means the child workflow's queue.
            priority: Higher runs first among ready work on the same queue.

        Raises:
            ValueError: A bad workflow or queue name, or a priority out of range.
            JSONSerializationError: The input cannot be written as JSON.
        """
        index = next(self._calls.counter)
        self._child_start(index, workflow, input, queue, priority)
        return child_execution_id(self.execution_id, self.sequence, index)

    def call_workflow(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        timeout: timedelta | None = None,
        timeout_value: Any = _MISSING,
        queue: str | None = None,
        priority: int = 0,
    ) -> Any:
        """Run ``workflow`` as a child execution and return its result.

        The step does not hold a worker while the child runs: the call raises
        :class:`StepSuspended` (a ``BaseException``, which ``except Exception`` does not
        catch), the worker reports the step as waiting, and when the child ends the step
        **runs again from the top**. This time the call returns the child's result at
        once, and so does every earlier call of this step run: code before the call
        runs once more per call, so it must be safe to repeat (make its side effects
        idempotent, e.g. with :attr:`idempotency_key`). Calls are told apart by their
        order: make the same calls in the same order on every run. A retry of the step
        waits on the same child, it does not start another. Works the same in
        sync and async steps (there is nothing to await). Only a step may wait: in a
        compensation or an into merge the call fails the task.

        Args:
            workflow: The child workflow, or its name (it must be registered by a worker).
            input: The child's input; it crosses the JSON boundary here.
            timeout: Stop waiting after this long: the child is cancelled and the call
                returns ``timeout_value``, or without one raises ChildWorkflowError
                (type ``"ChildTimeout"``). ``None`` waits as long as the child runs.
            timeout_value: The call's result when ``timeout`` elapses (it crosses the JSON
                boundary too: a tuple comes back as a list).
            queue: Queue to run the child on; ``None`` means the child workflow's queue.
            priority: Higher runs first among ready work on the same queue.

        Returns:
            The child's result (decoded from JSON), or ``timeout_value`` on a timeout.

        Raises:
            ChildWorkflowError: The child failed, was cancelled or timed out, or the wait
                timed out without a ``timeout_value``.
            ValueError: A bad workflow or queue name, priority or timeout.
            JSONSerializationError: The input or timeout value cannot be written as JSON.
        """
        has_timeout_value = timeout_value is not _MISSING
        if timeout is not None and (not isinstance(timeout, timedelta) or timeout <= timedelta(0)):
            raise ValueError(
                f"call_workflow: timeout must be a positive timedelta, got {timeout!r}"
            )
        if has_timeout_value and timeout is None:
            raise ValueError("call_workflow: timeout_value is only used with a timeout")
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            return self._replay(index, self.memo[key])
        wait = pb.ChildWait(index=index)
        if timeout is not None:
            wait.timeout.FromTimedelta(timeout)
        if has_timeout_value:
            wait.timeout_value_json = _serde.dumps(timeout_value)
            wait.has_timeout_value = True
        self._child_start(index, workflow, input, queue, priority)
        suspension = StepSuspended(wait, tuple(self._calls.starts))
        if self._calls.suspension is None:  # the first wait wins, should the step go on
            self._calls.suspension = suspension
        raise suspension

    def _child_start(
        self, index: int, workflow: str | Workflow, input: Any, queue: str | None, priority: int
    ) -> None:
        """Check and record the child start of call ``index``."""
        name = _workflow_name(workflow)
        if queue:
            check_name("queue", queue)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority must be an int, got {priority!r}")
        if priority not in _PRIORITY_RANGE:
            raise ValueError(f"priority must fit in 32 bits, got {priority}")
        input_json = _serde.dumps(input)
        start = pb.ChildStart(
            index=index,
            workflow_name=name,
            input_json=input_json,
            queue=queue or "",
            priority=priority,
        )
        self._calls.starts.append(start)

    def _replay(self, index: int, outcome: Any) -> Any:
        """The recorded outcome of call ``index``: its value, or ChildWorkflowError."""
        doc: dict[str, Any] = outcome if isinstance(outcome, dict) else {}
        if doc.get("ok") is True and "value" in doc:
            return doc["value"]
        error = doc.get("error")
        if doc.get("ok") is not False or not isinstance(error, dict):
            raise NonRetryableError(
                f"the orchestrator recorded a malformed outcome for child call {index}: "
                f"{str(outcome)[:200]}"
            )
        child_id = error.get("execution_id") or child_execution_id(
            self.execution_id, self.sequence, index
        )
        status = error.get("status")
        raise ChildWorkflowError(
            str(error.get("message") or "the child workflow ended without a result"),
            type=str(error.get("type") or "ChildWorkflowFailed"),
            child_execution_id=str(child_id),
            status=str(status) if status else None,
        )


def recorded_children(ctx: StepContext) -> tuple[pb.ChildStart, ...]:
    """Every child start the step run recorded so far, in call order (for the worker)."""
    return tuple(ctx._calls.starts)


def suspension_of(ctx: StepContext) -> StepSuspended | None:
    """The first suspension ``call_workflow`` raised in this step run, if any (for the worker).

    Set even when the step caught it, so a step cannot swallow its own wait.
    """
    return ctx._calls.suspension
