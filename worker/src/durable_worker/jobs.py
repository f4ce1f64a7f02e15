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
| INTO | ``into(data, results[, ctx])`` | its result (a goto's data) | after the group (target) |
| COMPENSATION | ``compensation(result[, ctx])`` | its result | nowhere |

Child workflows and waits: the user function's StepContext records the children it
starts; they go with the result (:attr:`Done.children`). A step whose wait
(``ctx.call_workflow``, ``ctx.sleep``, ``ctx.sleep_until``, ``ctx.wait_for_event``,
``wait_for_any``, ``wait_for_all``, ``wait_for_input``) raised
:class:`~durable._shared.StepSuspended` ends as :class:`Suspended` instead, with the
wait and the starts recorded so far, no result and no evaluations, even when the step
caught the suspension and went on.

User code that raises a BaseException other than an Exception (``sys.exit()``,
``KeyboardInterrupt``, ``GeneratorExit``) fails the attempt, never the worker: the run
wraps it in :class:`~durable_worker.outcome.StepBaseExceptionError` before it can leave
the thread or reach the event loop. Only the worker's own cancellation of an async step
(its timeout, a lost lease, a drain) goes through as ``asyncio.CancelledError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable import Goto, StepContext, TaskKind
from durable._shared import (
    Evaluation,
    StepSuspended,
    Wait,
    dumps_json,
    evaluate,
    needs_evaluation,
    recorded_children,
    suspension_of,
)
from durable.errors import NonRetryableError
from durable.v1 import worker_service_pb2 as pb
from durable_worker import outcome
from durable_worker.catalog import Job

__all__ = ["Done", "GotoError", "Suspended", "arguments", "run_async", "run_sync"]

log = logging.getLogger(__name__)


class GotoError(NonRetryableError):
    """A goto the workflow cannot follow (its target is not in the step's sequence)."""


@dataclass(frozen=True)
class Done:
    """A job that ran to its end: what to report for it.

    Attributes:
        result_json: The result as JSON text.
        goto_target: The node to continue at instead of the next one; ``""`` for the next.
        evaluations: Control node name -> its evaluation, for the orchestrator.
        children: The child starts the user function recorded, in call order.
    """

    result_json: str
    goto_target: str = ""
    evaluations: Mapping[str, Evaluation] = field(default_factory=dict)
    children: tuple[pb.ChildStart, ...] = ()


@dataclass(frozen=True)
class Suspended:
    """A job that must wait (a child, a sleep, events, an input): park it (SuspendTasks).

    Attributes:
        children: The child starts recorded up to the wait (a waited child included).
        wait: The wait: a ChildWait, SleepWait, EventWait or InputWait.
        method: The StepContext method that waits, e.g. ``"call_workflow"``.
    """

    children: tuple[pb.ChildStart, ...]
    wait: Wait
    method: str = "call_workflow"


def _context(job: Job, task: pb.Task) -> StepContext:
    memo = outcome.decode(task.memo_json, "memo")
    if memo is None:
        memo = {}
    if not isinstance(memo, dict):
        raise outcome.InputDecodeError(
            f"the task's memo must be a JSON object, got {task.memo_json[:200]}"
        )
    return StepContext(
        execution_id=task.execution_id,
        workflow_name=task.workflow_name,
        step_name=task.step_name,
        sequence=task.sequence,
        attempt=task.attempt,
        input=outcome.decode(task.execution_input_json, "execution input"),
        lane_path=task.lane_path,
        kind=job.kind,
        memo=memo,
        idempotency_key=task.idempotency_key,  # empty from an older orchestrator: derived
    )


def arguments(job: Job, task: pb.Task) -> tuple[tuple[Any, ...], StepContext | None]:
    """The user function's arguments, and the StepContext among them if it takes one.

    The arguments are the decoded input(s), then the context.
    """
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
    if not job.takes_context:
        return args, None
    ctx = _context(job, task)
    return (*args, ctx), ctx


def run_sync(job: Job, task: pb.Task) -> Done | Suspended:
    """Run a job whose user code is sync (or a route); runs in a worker thread."""
    try:
        if job.fn is None:
            return Done(task.input_json, "", _walk(job, job.node, task.input_json, inclusive=True))
        args, ctx = arguments(job, task)
        try:
            value = job.fn(*args)
        except StepSuspended as exc:
            return _suspended(job, ctx, exc)
        except BaseException:
            if ctx is None or suspension_of(ctx) is None:
                raise
            return _suspended(job, ctx, None)
        return _finish(job, value, ctx)
    except Exception:
        raise
    except BaseException as exc:
        raise outcome.StepBaseExceptionError(exc) from None


async def run_async(job: Job, task: pb.Task) -> Done | Suspended:
    """Run a job whose user code is async; runs on the event loop."""
    assert job.fn is not None
    try:
        args, ctx = arguments(job, task)
        try:
            value = await job.fn(*args)
        except StepSuspended as exc:
            return _suspended(job, ctx, exc)
        except asyncio.CancelledError as exc:
            if _cancelled_by_worker():
                raise
            if ctx is None or suspension_of(ctx) is None:
                raise outcome.StepBaseExceptionError(exc) from None
            return _suspended(job, ctx, None)
        except BaseException:
            if ctx is None or suspension_of(ctx) is None:
                raise
            return _suspended(job, ctx, None)
        return _finish(job, value, ctx)
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise outcome.StepBaseExceptionError(exc) from None


def _cancelled_by_worker() -> bool:
    """Whether the running task was cancelled (by the worker: a timeout, a lost lease, a stop).

    A CancelledError that user code raised, or got from a future it awaited that was
    cancelled, leaves the task uncancelled: that is the step's own failure.
    """
    current = asyncio.current_task()
    return current is None or current.cancelling() > 0


def _suspended(job: Job, ctx: StepContext | None, raised: StepSuspended | None) -> Suspended:
    """The run's first suspension; ``raised`` is what reached the worker, if one did.

    A step that caught its suspension and went on (or raised something else) is
    suspended all the same, at its first wait: nothing after that wait should have run.
    """
    first = suspension_of(ctx) if ctx is not None else None
    if first is None:
        assert raised is not None  # a StepSuspended made without a context: use it as is
        first = raised
    if raised is not first:
        log.warning(
            "%s %r caught the suspension that ctx.%s raised (call %d) instead of "
            "letting it through; it is suspended at that call all the same (a step that "
            "catches BaseException must re-raise it)",
            job.kind.value,
            job.node,
            first.method,
            first.wait.index,
        )
    return Suspended(first.children, first.wait, first.method)


def _finish(job: Job, value: Any, ctx: StepContext | None) -> Done | Suspended:
    """Encode the user function's return value and walk to the next step."""
    if ctx is not None and suspension_of(ctx) is not None:
        return _suspended(job, ctx, None)
    children = recorded_children(ctx) if ctx is not None else ()
    if isinstance(value, Goto):
        _check_goto(job, value)
        result_json = dumps_json(value.data)
        walked = _walk(job, value.target, result_json, True)
        return Done(result_json, value.target, walked, children)
    result_json = dumps_json(value)
    if job.kind is TaskKind.COMPENSATION:
        return Done(result_json, children=children)
    return Done(result_json, "", _walk(job, job.node, result_json, inclusive=False), children)


def _check_goto(job: Job, value: Goto) -> None:
    """Refuse a goto the orchestrator could not follow.

    A step's goto, or an into merge's (the group has ended: the walk goes on from the
    group's place), stays in that sequence; a compensation cannot jump.
    """
    what = f"{job.kind.value} {job.node!r}"
    if job.kind is TaskKind.COMPENSATION:
        raise GotoError(
            f"{what} returned {value!r}: only a step or an into merge can go to another node"
        )
    if not job.workflow.layout.same_sequence(job.node, value.target):
        own = "step's own sequence" if job.kind is TaskKind.STEP else "sequence of its group"
        who = f"step {job.node!r}" if job.kind is TaskKind.STEP else f"into merge of {job.node!r}"
        raise GotoError(
            f"{who} returned goto({value.target!r}), but the target must be a "
            f"node of the {own}: {_sequence_names(job)}"
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
