"""Run one job's user code and what follows from it, in one place (a thread, for sync code).

After the user's function returns, its result is encoded (through the one JSON boundary)
and the control nodes met on the way to the next step are evaluated with it, as the
next step would see it: branch keys and foreach item lists are user code too, so they
run where the step ran. A step that returned :func:`durable.goto` completes with the
goto's data as its result and the walk starts at the goto's target.

| kind | calls | result | evaluations walked from |
| --- | --- | --- | --- |
| STEP | ``step(input[, ctx])`` | its result (a goto's data) | after the step (the target) |
| ROUTE | nothing | the input, unchanged | the node itself |
| INTO | ``into(data, results[, ctx])`` | its result | after the group |
| COMPENSATION | ``compensation(result[, ctx])`` | its result | nowhere |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable import _serde
from durable._context import StepContext
from durable._models import TaskKind
from durable._nodes import Goto
from durable._walk import Evaluation, evaluate, needs_evaluation
from durable.errors import NonRetryableError
from durable.v1 import worker_service_pb2 as pb
from durable_worker import outcome
from durable_worker.catalog import Job

__all__ = ["Done", "GotoError", "arguments", "run_async", "run_sync"]


class GotoError(NonRetryableError):
    """A goto the workflow cannot follow (its target is not in the step's sequence)."""


@dataclass(frozen=True)
class Done:
    """A job that ran to its end: what to report for it.

    Attributes:
        result_json: The result as JSON text.
        goto_target: The node to continue at instead of the next one; ``""`` for the next.
        evaluations: Control node name -> its evaluation, for the orchestrator.
    """

    result_json: str
    goto_target: str = ""
    evaluations: Mapping[str, Evaluation] = field(default_factory=dict)


def _context(job: Job, task: pb.Task) -> StepContext:
    return StepContext(
        execution_id=task.execution_id,
        workflow_name=task.workflow_name,
        step_name=task.step_name,
        sequence=task.sequence,
        attempt=task.attempt,
        input=outcome.decode(task.execution_input_json, "execution input"),
        lane_path=task.lane_path,
        kind=job.kind,
    )


def arguments(job: Job, task: pb.Task) -> tuple[Any, ...]:
    """The user function's arguments: the decoded input(s), and a StepContext if it takes one."""
    data = outcome.decode(task.input_json, "input")
    if job.kind is TaskKind.INTO:
        if not isinstance(data, dict) or "data" not in data or "results" not in data:
            raise outcome.InputDecodeError(
                f"the input of the into task of {job.node!r} must be an object with "
                f'"data" and "results", got {task.input_json[:200]}'
            )
        args: tuple[Any, ...] = (data["data"], data["results"])
    else:
        args = (data,)
    return (*args, _context(job, task)) if job.takes_context else args


def run_sync(job: Job, task: pb.Task) -> Done:
    """Run a job whose user code is sync (or a route); runs in a worker thread."""
    if job.fn is None:
        return Done(task.input_json, "", _walk(job, job.node, task.input_json, inclusive=True))
    return _finish(job, job.fn(*arguments(job, task)))


async def run_async(job: Job, task: pb.Task) -> Done:
    """Run a job whose user code is async; runs on the event loop."""
    assert job.fn is not None
    return _finish(job, await job.fn(*arguments(job, task)))


def _finish(job: Job, value: Any) -> Done:
    """Encode the user function's return value and walk to the next step."""
    if isinstance(value, Goto):
        _check_goto(job, value)
        result_json = _serde.dumps(value.data)
        return Done(result_json, value.target, _walk(job, value.target, result_json, True))
    result_json = _serde.dumps(value)
    if job.kind is TaskKind.COMPENSATION:
        return Done(result_json)
    return Done(result_json, "", _walk(job, job.node, result_json, inclusive=False))


def _check_goto(job: Job, value: Goto) -> None:
    what = f"{job.kind.value} {job.node!r}"
    if job.kind is not TaskKind.STEP:
        raise GotoError(f"{what} returned {value!r}: only a step can go to another node")
    if not job.workflow.layout.same_sequence(job.node, value.target):
        raise GotoError(
            f"step {job.node!r} returned goto({value.target!r}), but the target must be a "
            f"node of the step's own sequence: {_sequence_names(job)}"
        )


def _sequence_names(job: Job) -> str:
    place = job.workflow.layout.place(job.node)
    return ", ".join(repr(node.name) for node in place.sequence)


def _walk(job: Job, name: str, result_json: str, inclusive: bool) -> dict[str, Evaluation]:
    """Evaluate the control nodes from ``name`` with the result as the next node sees it."""
    if not needs_evaluation(job.workflow, name, inclusive=inclusive):
        return {}
    data = outcome.decode(result_json, "input")
    return evaluate(job.workflow, name, data, inclusive=inclusive)
