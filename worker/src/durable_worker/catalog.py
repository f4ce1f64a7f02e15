"""Which step a task names, and whether this worker can run it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from durable._dsl import StepSpec, Workflow
from durable.v1 import worker_service_pb2 as pb
from durable_worker import outcome

__all__ = ["StepCatalog"]


class StepCatalog:
    """The steps of the workflows this worker registered, looked up by task.

    Args:
        workflows: The registered workflows.
        versions: Workflow name -> registered version; read on every lookup, so the
            worker can update it when it registers again.
    """

    def __init__(self, workflows: Sequence[Workflow], versions: Mapping[str, str]) -> None:
        self._workflows = {w.name: w for w in workflows}
        self._versions = versions

    def resolve(self, task: pb.Task) -> StepSpec | pb.TaskFailure:
        """The step to run, or the non-retryable failure saying why this worker cannot."""
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
            return workflow.get_step(task.step_name)
        except KeyError:
            steps = ", ".join(s.name for s in workflow.steps)
            return outcome.worker_failure(
                task,
                "UnknownStep",
                f"workflow {name!r} has no step {task.step_name!r} in this worker "
                f"(its steps: {steps})",
            )
