"""What a step run becomes on the wire: a TaskCompletion, TaskFailure or TaskSuspension.

Pure functions. A step that waits (``ctx.call_workflow`` for a child that has not
ended, ``ctx.sleep``, ``ctx.sleep_until``, ``ctx.wait_for_event``, ``wait_for_any``,
``wait_for_all``, ``wait_for_input``) becomes a TaskSuspension: the child starts it
recorded so far and the wait, in the ``wait`` oneof's field for its kind (``child``,
``sleep``, ``events`` or ``input``).

Failures the worker decides on its own carry these error types, all non-retryable
except ``StepTimeout`` (which follows the step's retry policy):

| type | when |
| --- | --- |
| ``UnknownStep`` | the task names a workflow or step this worker does not have |
| ``VersionMismatch`` | the task's workflow version is not the one this worker registered |
| ``InputDecodeError`` | the task's input (or memo) is not JSON, or too deep to decode |
| ``PayloadTooLarge`` | a result, child input or timeout value is over ``max_payload_bytes`` |
| ``StepTimeout`` | the step ran past its timeout (reported with ``timed_out``) |
| ``UnknownTaskKind`` | the task's kind is newer than this worker |
| ``GotoError`` | a goto out of the step's (an into's: its group's) sequence, or by a compensation |
| ``CallWorkflowOutsideStep`` | an into merge or a compensation called ``ctx.call_workflow`` |
| ``WaitOutsideStep`` | an into merge or a compensation called ``ctx.sleep`` or ``ctx.wait_for_*`` |

Any other failure is the step's own exception: its class name, message and traceback.
That includes what is not an ``Exception``: a step that calls ``sys.exit()`` or raises
``KeyboardInterrupt`` or ``GeneratorExit`` fails its attempt with that type (``SystemExit``,
...), retried by its policy, and the worker goes on (see :class:`StepBaseExceptionError`).

An evaluation (a branch key, a foreach item list) that failed is not a failure of the
task: it is reported in the completion, as an error evaluation that fails its node.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from durable._shared import Evaluation, JSONSerializationError, Wait, loads_json, wait_kind
from durable.errors import NonRetryableError
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_TRACEBACK_CHARS",
    "InputDecodeError",
    "Report",
    "StepBaseExceptionError",
    "child_too_large_failure",
    "completion",
    "decode",
    "error_from_exception",
    "evaluations_to_proto",
    "failure",
    "lease_of",
    "payload_size",
    "suspension",
    "timeout_failure",
    "too_large_failure",
    "worker_failure",
]

Report = pb.TaskCompletion | pb.TaskFailure | pb.TaskSuspension
"""One step run's outcome, as the reporter sends it."""

MAX_MESSAGE_CHARS = 16 * 1024
"""Longer error messages are cut, so a failure report always fits in a call."""
MAX_TRACEBACK_CHARS = 64 * 1024
"""Longer tracebacks keep their end, where the error was raised."""


class InputDecodeError(ValueError):
    """The task's input JSON could not be decoded; running it again will not help."""


class StepBaseExceptionError(Exception):
    """User code raised a BaseException that is not an Exception: it fails the attempt only.

    ``SystemExit`` (``sys.exit()``), ``KeyboardInterrupt``, ``GeneratorExit`` and the like
    would otherwise stop the worker: out of a thread of the pool they reach the event loop,
    whose task machinery re-raises ``SystemExit`` and ``KeyboardInterrupt``. The job runner
    wraps them in this ordinary exception where the user code runs (see
    :mod:`durable_worker.jobs`), and the failure is reported under the original's type.
    The worker's own signals never arrive this way: the ``durable-worker`` command turns
    SIGTERM and SIGINT into a drain (no ``KeyboardInterrupt`` is raised), and Python
    delivers signals to the main thread only, never to a sync step's thread.

    Attributes:
        raised: What the user code raised.
    """

    def __init__(self, raised: BaseException) -> None:
        super().__init__(f"{type(raised).__name__}: {raised}")
        self.raised = raised


def lease_of(task: pb.Task) -> pb.TaskLease:
    """The lease that lets this worker report on ``task``."""
    return pb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)


def decode(text: str, what: str) -> Any:
    """Decode one JSON field of a task; InputDecodeError when it is not JSON."""
    try:
        return loads_json(text)
    except ValueError as exc:
        raise InputDecodeError(f"the task's {what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # Stored by an orchestrator older than the JSON profile's depth limit.
        raise InputDecodeError(f"the task's {what} is JSON nested too deeply to decode") from exc


def payload_size(text: str) -> int:
    """The size of ``text`` in UTF-8 bytes (without encoding it when it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def completion(
    task: pb.Task,
    result_json: str,
    *,
    goto_target: str = "",
    evaluations: Mapping[str, pb.Evaluation] | None = None,
    children: Sequence[pb.ChildStart] = (),
) -> pb.TaskCompletion:
    """The report of a step that returned ``result_json`` (or went to ``goto_target``).

    ``children`` are the child starts the step recorded (``ctx.start_workflow``).
    """
    return pb.TaskCompletion(
        lease=lease_of(task),
        result_json=result_json,
        goto_target=goto_target,
        evaluations=evaluations,
        children=children,
    )


def suspension(task: pb.Task, children: Sequence[pb.ChildStart], wait: Wait) -> pb.TaskSuspension:
    """The report of a parked step: the starts it recorded, and the wait in its oneof field."""
    report = pb.TaskSuspension(lease=lease_of(task), children=children)
    getattr(report, wait_kind(wait)).CopyFrom(wait)
    return report


def evaluations_to_proto(
    evaluations: Mapping[str, Evaluation], max_payload_bytes: int
) -> dict[str, pb.Evaluation]:
    """Evaluations as sent; a value over the payload limit becomes a PayloadTooLarge error."""
    out: dict[str, pb.Evaluation] = {}
    for name, evaluation in evaluations.items():
        if evaluation.error is not None:
            out[name] = pb.Evaluation(error=error_from_exception(evaluation.error))
            continue
        value_json = evaluation.value_json or "null"
        size = payload_size(value_json)
        if size > max_payload_bytes:
            error = common_pb2.ErrorInfo(
                type="PayloadTooLarge",
                message=f"node {name!r} evaluated to {size:,} bytes of JSON, over the limit of "
                f"{max_payload_bytes:,} bytes (max_payload_bytes): return a shorter list of "
                "items, e.g. references to data stored elsewhere",
                non_retryable=True,
            )
            out[name] = pb.Evaluation(error=error)
        else:
            out[name] = pb.Evaluation(value_json=value_json)
    return out


def failure(
    task: pb.Task, error: common_pb2.ErrorInfo, *, timed_out: bool = False
) -> pb.TaskFailure:
    """The report of a step that failed with ``error``."""
    return pb.TaskFailure(lease=lease_of(task), error=error, timed_out=timed_out)


def worker_failure(task: pb.Task, error_type: str, message: str) -> pb.TaskFailure:
    """A non-retryable failure decided by the worker, not raised by the step."""
    return failure(task, common_pb2.ErrorInfo(type=error_type, message=message, non_retryable=True))


def too_large_failure(task: pb.Task, size: int, limit: int) -> pb.TaskFailure:
    """The failure of a step whose encoded result is over the payload limit."""
    return worker_failure(
        task,
        "PayloadTooLarge",
        f"step {task.step_name!r} returned {size:,} bytes of JSON, over the limit of "
        f"{limit:,} bytes (max_payload_bytes): return a smaller value, or store the data "
        "elsewhere and return a reference to it",
    )


def child_too_large_failure(
    task: pb.Task, what: str, start: pb.ChildStart | Wait, size: int, limit: int
) -> pb.TaskFailure:
    """The failure of a step whose child input (or wait's timeout value) is over the limit."""
    call = "child call" if isinstance(start, pb.ChildStart | pb.ChildWait) else "wait"
    return worker_failure(
        task,
        "PayloadTooLarge",
        f"step {task.step_name!r} gave its {call} {start.index} {size:,} bytes of JSON as "
        f"{what}, over the limit of {limit:,} bytes (max_payload_bytes): pass a smaller "
        "value, or store the data elsewhere and pass a reference to it",
    )


def timeout_failure(task: pb.Task, seconds: float) -> pb.TaskFailure:
    """The failure of a step that ran past its timeout."""
    error = common_pb2.ErrorInfo(
        type="StepTimeout", message=f"step {task.step_name} exceeded its timeout of {seconds:g} s"
    )
    return failure(task, error, timed_out=True)


_MACHINERY = ("durable_worker.", "durable._walk", "asyncio.", "concurrent.")


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame outside the worker and the machinery that ran it."""
    first = tb
    while first is not None and str(first.tb_frame.f_globals.get("__name__")).startswith(
        _MACHINERY
    ):
        first = first.tb_next
    return first or tb


def error_from_exception(exc: BaseException) -> common_pb2.ErrorInfo:
    """An exception raised by a step (or while decoding or encoding its data) as ErrorInfo.

    ``NonRetryableError``, ``JSONSerializationError`` and ``InputDecodeError`` are never
    retried: the same code on the same data would fail the same way. A
    :class:`StepBaseExceptionError` is reported as what it wraps, e.g. ``SystemExit``.
    """
    if isinstance(exc, StepBaseExceptionError):
        return _base_exception_error(exc.raised)
    trace = "".join(traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__)))
    message = str(exc)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + " [... cut]"
    if len(trace) > MAX_TRACEBACK_CHARS:
        trace = "[... cut]\n" + trace[-MAX_TRACEBACK_CHARS:]
    return common_pb2.ErrorInfo(
        type=type(exc).__name__,
        message=message,
        traceback=trace,
        non_retryable=isinstance(
            exc, NonRetryableError | JSONSerializationError | InputDecodeError
        ),
    )


def _base_exception_error(raised: BaseException) -> common_pb2.ErrorInfo:
    """ErrorInfo of a SystemExit, KeyboardInterrupt, ... raised by user code; retryable."""
    error = error_from_exception(raised)
    if isinstance(raised, SystemExit):
        what, detail = f"sys.exit({raised.code!r})", ""
    else:
        what, detail = type(raised).__name__, f": {error.message}" if error.message else ""
    message = f"{what} in user code: it fails this attempt, not the worker{detail}"
    error.message = message[:MAX_MESSAGE_CHARS]
    return error
