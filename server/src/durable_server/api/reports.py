"""Workers' reports (completions, failures, suspensions): proto → engine values, validated.

Each function checks what it converts and raises INVALID_ARGUMENT naming the task and the
field; ``*_payloads`` name the JSON values of a report, for ``validate.naming_bad_json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from durable.v1 import worker_service_pb2 as pb
from durable_server.api import convert, validate
from durable_server.auth import access
from durable_server.engine.children import ChildStart
from durable_server.engine.engine import NextTasks, Suspension, TaskOutcome
from durable_server.engine.transitions import Evaluation
from durable_server.errors import InvalidArgumentError

__all__ = [
    "MAX_BATCH",
    "MAX_TASKS",
    "completion_payloads",
    "completions_from_proto",
    "failures_from_proto",
    "leases_from_proto",
    "next_tasks_from_proto",
    "suspension_payloads",
    "suspensions_from_proto",
]

MAX_TASKS = 1000
MAX_BATCH = 5000


def leases_from_proto(items: Iterable[Any]) -> list[tuple[int, str]]:
    """(task id, lease token) of each lease: at most ``MAX_BATCH``, no task twice."""
    leases = [(lease.task_id, lease.lease_token) for lease in items]
    if len(leases) > MAX_BATCH:
        raise InvalidArgumentError(f"at most {MAX_BATCH} items per call, got {len(leases)}")
    if len({i for i, _ in leases}) != len(leases):
        raise InvalidArgumentError("a task id appears twice in one call")
    for task_id, token in leases:
        if not token:
            raise InvalidArgumentError(f"task {task_id}: lease_token is required")
        validate.check_execution_id(token, "lease_token")
    return leases


def next_tasks_from_proto(worker_id: str, request: pb.CompleteTasksRequest) -> NextTasks | None:
    """The worker's room for the tasks its report makes ready; None when it asks for none."""
    if not 0 <= request.max_next_tasks <= MAX_TASKS:
        raise InvalidArgumentError(f"max_next_tasks must be within 0..{MAX_TASKS}")
    if not request.max_next_tasks:
        return None
    queues = validate.check_queues(request.queues)
    access.check_queues(queues)
    return NextTasks(worker_id, queues, request.max_next_tasks)


def completions_from_proto(
    completions: Sequence[pb.TaskCompletion], max_bytes: int
) -> list[TaskOutcome]:
    """The reported results."""
    leases = leases_from_proto(c.lease for c in completions)
    return [
        TaskOutcome(
            task_id,
            token,
            result_json=validate.check_payload(
                f"result_json of task {task_id}", c.result_json, max_bytes
            ),
            goto_target=validate.check_goto(c.goto_target),
            evaluations=_evaluations(task_id, c.evaluations, max_bytes),
            children=_children(task_id, c.children, max_bytes),
            logs=convert.logs_from_proto(c.logs),
        )
        for (task_id, token), c in zip(leases, completions, strict=True)
    ]


def completion_payloads(outcomes: Sequence[TaskOutcome]) -> dict[str, str]:
    """The JSON values of reported results, by name."""
    payloads = {}
    for o in outcomes:
        payloads[f"result_json of task {o.task_id}"] = o.result_json or ""
    for o in outcomes:
        for name, ev in o.evaluations.items():
            if ev.value_json is not None:
                payloads[f"evaluation {name!r} of task {o.task_id}"] = ev.value_json
    return payloads


def failures_from_proto(failures: Sequence[pb.TaskFailure]) -> list[TaskOutcome]:
    """The reported failures."""
    leases = leases_from_proto(f.lease for f in failures)
    return [
        TaskOutcome(
            task_id,
            token,
            error=convert.step_error_from_proto(f.error),
            timed_out=f.timed_out,
            logs=convert.logs_from_proto(f.logs),
        )
        for (task_id, token), f in zip(leases, failures, strict=True)
    ]


def suspensions_from_proto(
    suspensions: Sequence[pb.TaskSuspension], max_bytes: int
) -> list[Suspension]:
    """The reported suspensions: each task's wait, and the children it starts."""
    leases = leases_from_proto(s.lease for s in suspensions)
    out = []
    for (task_id, token), x in zip(leases, suspensions, strict=True):
        children = _children(task_id, x.children, max_bytes)
        wait = convert.wait_from_proto(task_id, x)
        if wait.index < 0:
            raise InvalidArgumentError(f"task {task_id}: a wait's index must be >= 0")
        timeout_value = wait.timeout_value_json
        if timeout_value is not None:
            validate.check_payload(
                f"timeout_value_json of task {task_id}", timeout_value, max_bytes
            )
        out.append(Suspension(task_id, token, children, wait, convert.logs_from_proto(x.logs)))
    return out


def suspension_payloads(suspensions: Sequence[Suspension]) -> dict[str, str]:
    """The JSON values of reported suspensions, by name."""
    payloads = {
        f"input_json of child {c.index} of task {x.task_id}": c.input_json
        for x in suspensions
        for c in x.children
    }
    for parked in suspensions:
        value = parked.wait.timeout_value_json
        if value is not None:
            payloads[f"timeout_value_json of task {parked.task_id}"] = value
    return payloads


def _evaluations(task_id: int, evaluations: Any, max_bytes: int) -> dict[str, Evaluation]:
    """Reported evaluations, their values within the size limit and the JSON profile."""
    out = convert.evaluations_from_proto(evaluations)
    for name, ev in out.items():
        if ev.value_json is not None:
            validate.check_payload(
                f"evaluation {name!r} of task {task_id}", ev.value_json, max_bytes
            )
    return out


def _children(task_id: int, starts: Any, max_bytes: int) -> list[ChildStart]:
    """The children a step run starts: indexes unique and >= 0, inputs within the limit."""
    out = []
    for c in starts:
        if c.index < 0:
            raise InvalidArgumentError(f"task {task_id}: child index must be >= 0")
        out.append(
            ChildStart(
                index=c.index,
                workflow_name=validate.check_name("child workflow_name", c.workflow_name),
                input_json=validate.check_payload(
                    f"input_json of child {c.index} of task {task_id}", c.input_json, max_bytes
                ),
                queue=validate.check_name("child queue", c.queue) if c.queue else None,
                priority=c.priority,
            )
        )
    if len({c.index for c in out}) != len(out):
        raise InvalidArgumentError(f"task {task_id}: two children with the same index")
    return out
