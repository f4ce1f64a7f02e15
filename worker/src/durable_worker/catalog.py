"""What a task asks this worker to run, and whether this worker can run it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durable import TaskKind, Workflow
from durable._shared import Foreach, Parallel, task_kind_from_proto
from durable.v1 import worker_service_pb2 as pb
from durable_worker import outcome

__all__ = ["Job", "StepCatalog"]


@dataclass(frozen=True)
class Job:
    """One task's work: the user function to call (none for a route) and where it sits.

    Attributes:
        kind: STEP, ROUTE, INTO or COMPENSATION.
        workflow: The workflow the task belongs to.
        node: The task's ``step_name``: the step, the node a route starts at, the
            parallel or foreach an into merges, or the compensation.
        fn: The user function; None for a route.
        takes_context: ``fn`` takes a StepContext as its last parameter.
        is_async: ``fn`` is a coroutine function (run on the event loop, not in a thread).
    """

    kind: TaskKind
    workflow: Workflow
    node: str
    fn: Callable[..., Any] | None
    takes_context: bool = False
    is_async: bool = False


class StepCatalog:
    """The workflows this worker registered, and the work each task names in them.

    Args:
        workflows: The registered workflows.
        versions: Workflow name -> registered version; read on every lookup, so the
            worker can update it when it registers again.
    """

    def __init__(self, workflows: Sequence[Workflow], versions: Mapping[str, str]) -> None:
        self._workflows = {w.name: w for w in workflows}
        self._versions = versions

    def resolve(self, task: pb.Task) -> Job | pb.TaskFailure:
        """The job to run, or the non-retryable failure saying why this worker cannot."""
        name = task.workflow_name
        workflow = self._workflows.get(name)
        if workflow is None:
            return outcome.worker_failure(
                task,
                "UnknownStep",
                f"this worker has no workflow {name!r} (it has: {', '.join(self._workflows)})",
            )
        expected = self._versions.get(name)
        if task.workflow_version and expected and task.workflow_version != expected:
            return outcome.worker_failure(
                task,
                "VersionMismatch",
                f"task {task.task_id} runs version {task.workflow_version[:12]} of workflow "
                f"{name!r}, but this worker registered version {expected[:12]}: the step's "
                "code changed since the execution started",
            )
        try:
            kind = task_kind_from_proto(task.kind)
        except ValueError as exc:
            return outcome.worker_failure(task, "UnknownTaskKind", str(exc))
        job = _job(workflow, kind, task.step_name)
        if job is not None:
            return job
        return outcome.worker_failure(task, "UnknownStep", _unknown(workflow, kind, task))


def _job(workflow: Workflow, kind: TaskKind, node: str) -> Job | None:
    """The job for ``node`` of ``workflow``, or None if the workflow has no such thing."""
    try:
        if kind is TaskKind.STEP or kind is TaskKind.COMPENSATION:
            spec = (
                workflow.get_step(node)
                if kind is TaskKind.STEP
                else workflow.get_compensation(node)
            )
            return Job(kind, workflow, node, spec.fn, spec.takes_context, spec.is_async)
        group = workflow.get_node(node)
    except KeyError:
        return None
    if kind is TaskKind.ROUTE:
        return Job(kind, workflow, node, None)
    if isinstance(group, Parallel | Foreach) and group.into is not None:
        into = group.into
        return Job(kind, workflow, node, into.fn, into.takes_context, into.is_async)
    return None


def _unknown(workflow: Workflow, kind: TaskKind, task: pb.Task) -> str:
    name = task.step_name
    if kind is TaskKind.STEP:
        steps = ", ".join(s.name for s in workflow.steps)
        return (
            f"workflow {workflow.name!r} has no step {name!r} in this worker (its steps: {steps})"
        )
    if kind is TaskKind.COMPENSATION:
        return f"workflow {workflow.name!r} has no compensation {name!r} in this worker"
    if kind is TaskKind.ROUTE:
        return f"workflow {workflow.name!r} has no node {name!r} in this worker"
    return f"workflow {workflow.name!r} has no parallel or foreach {name!r} with an into"
