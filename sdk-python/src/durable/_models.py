"""Values the client returns: frozen dataclasses converted from protobuf.

No protobuf message reaches the caller: user data (``input``, ``result``) is decoded
from JSON through :mod:`durable._serde`, timestamps become aware UTC datetimes (``None``
when unset) and enums become :class:`ExecutionStatus`, :class:`StepAttemptStatus`,
:class:`TaskKind`, :class:`InputKind`, :class:`EventWaitMode`, :class:`CatchUp` and
:class:`Overlap`.

:class:`InputField` goes the other way too: a step passes it to ``ctx.wait_for_input``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from durable import _serde
from durable._enums import ProtoEnum
from durable.v1 import (
    common_pb2,
    operations_service_pb2,
    schedule_service_pb2,
    workflow_service_pb2,
)

__all__ = [
    "INPUT_FIELD_TYPES",
    "CatchUp",
    "CatchUpName",
    "ErrorInfo",
    "Event",
    "EventWaitMode",
    "Execution",
    "ExecutionPage",
    "ExecutionStatus",
    "Finding",
    "InputField",
    "InputKind",
    "LogLine",
    "Overlap",
    "OverlapName",
    "PendingEventPage",
    "PendingEventWait",
    "PendingInput",
    "PendingInputPage",
    "QueueInfo",
    "QueueStateName",
    "Schedule",
    "SchedulePage",
    "StartResult",
    "StepAttempt",
    "StepAttemptStatus",
    "TaskKind",
    "catch_up_from_proto",
    "catch_up_to_proto",
    "error_info_from_proto",
    "event_from_proto",
    "event_wait_mode_from_proto",
    "event_wait_mode_to_proto",
    "execution_from_proto",
    "execution_page_from_proto",
    "execution_status_from_proto",
    "execution_status_to_proto",
    "finding_from_proto",
    "input_field_from_proto",
    "input_field_to_proto",
    "input_kind_from_proto",
    "input_kind_to_proto",
    "log_line_from_proto",
    "overlap_from_proto",
    "overlap_to_proto",
    "pending_event_page_from_proto",
    "pending_event_wait_from_proto",
    "pending_input_from_proto",
    "pending_input_page_from_proto",
    "queue_info_from_proto",
    "queue_state_from_proto",
    "schedule_from_proto",
    "schedule_page_from_proto",
    "start_result_from_proto",
    "step_attempt_from_proto",
    "step_attempt_status_from_proto",
    "task_kind_from_proto",
    "timedelta_from_proto",
    "timestamp_from_proto",
]


class ExecutionStatus(enum.StrEnum):
    """The life-cycle state of an execution; the value is the proto name, lower case."""

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

    @property
    def is_terminal(self) -> bool:
        """True for a status the execution never leaves."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.COMPENSATED,
        ExecutionStatus.COMPENSATION_FAILED,
    }
)


class StepAttemptStatus(enum.StrEnum):
    """The outcome of one attempt at a step."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    TIMED_OUT = "timed_out"
    WAITING = "waiting"
    """Suspended on a wait (a child workflow called with ``ctx.call_workflow``), holding no
    worker; the step runs again when the wait is over."""


class TaskKind(enum.StrEnum):
    """What a step attempt ran: a step, a route, an into merge or a compensation."""

    STEP = "step"
    """A step function."""
    ROUTE = "route"
    """No user step: branch keys and foreach items evaluated for the orchestrator."""
    INTO = "into"
    """The ``into`` merge of a parallel group or a foreach."""
    COMPENSATION = "compensation"
    """A compensation, undoing a completed step."""


class InputKind(enum.StrEnum):
    """What answer a human input (``ctx.wait_for_input``) expects."""

    APPROVAL = "approval"
    """``true`` or ``false``, or ``{"approved": bool, "comment": str}``."""
    SINGLE_CHOICE = "single_choice"
    """One of the choices (a string)."""
    MULTI_CHOICE = "multi_choice"
    """A list of distinct choices."""
    FREE_TEXT = "free_text"
    """A string."""
    FORM = "form"
    """An object with the fields; required fields must be present."""


class EventWaitMode(enum.StrEnum):
    """Which events end an event wait."""

    ONE = "one"
    """The one named event (``ctx.wait_for_event``): the wait's value is its payload."""
    ANY = "any"
    """The first of the named events (``ctx.wait_for_any``)."""
    ALL = "all"
    """Every named event (``ctx.wait_for_all``)."""


class CatchUp(enum.StrEnum):
    """What a schedule does about slots missed while no orchestrator ran."""

    ONCE = "once"
    """Run once for everything missed (the default)."""
    SKIP = "skip"
    """Skip the missed slots; run from the next one."""
    ALL = "all"
    """Run each missed slot, up to ``catch_up_limit`` of them (the latest)."""


class Overlap(enum.StrEnum):
    """What a slot does when the schedule's previous run is still running."""

    ALLOW = "allow"
    """Start another run anyway (the default)."""
    SKIP = "skip"
    """Skip this slot."""
    CANCEL_PREVIOUS = "cancel_previous"
    """Cancel the previous run, then start."""


CatchUpName = Literal["once", "skip", "all"]
"""The values of :class:`CatchUp`, which the client and the DSL also take as strings."""
OverlapName = Literal["allow", "skip", "cancel_previous"]
"""The values of :class:`Overlap`, which the client and the DSL also take as strings."""


QueueStateName = Literal["active", "paused", "draining"]
"""A queue's state: its tasks are handed out and new executions accepted (``active``),
no task is handed out (``paused``), or new executions are refused (``draining``)."""


INPUT_FIELD_TYPES = frozenset({"string", "number", "integer", "boolean", "any"})
"""The types a form field may have (``"any"`` accepts any JSON value)."""


# Built from the member names so the Python and proto enums cannot drift apart silently:
# a member without a proto value fails here, at import.
_EXECUTION_STATUS = ProtoEnum(
    ExecutionStatus, common_pb2.ExecutionStatus, "EXECUTION_STATUS_", "execution status"
)
_STEP_ATTEMPT_STATUS = ProtoEnum(
    StepAttemptStatus, common_pb2.StepAttemptStatus, "STEP_ATTEMPT_STATUS_", "step attempt status"
)
# An older orchestrator sends no kind: a step.
_TASK_KIND = ProtoEnum(TaskKind, common_pb2.TaskKind, "TASK_KIND_", "task kind", TaskKind.STEP)
_INPUT_KIND = ProtoEnum(InputKind, common_pb2.InputKind, "INPUT_KIND_", "input kind")
_EVENT_WAIT_MODE = ProtoEnum(
    EventWaitMode, common_pb2.EventWaitMode, "EVENT_WAIT_MODE_", "event wait mode"
)
_CATCH_UP = ProtoEnum(
    CatchUp, common_pb2.CatchUp, "CATCH_UP_", "catch-up policy", CatchUp.ONCE, name="catch_up"
)
_OVERLAP = ProtoEnum(
    Overlap, common_pb2.Overlap, "OVERLAP_", "overlap policy", Overlap.ALLOW, name="overlap"
)

_QUEUE_STATE_FROM_PROTO: dict[int, QueueStateName] = {
    operations_service_pb2.QUEUE_STATE_UNSPECIFIED: "active",
    operations_service_pb2.QUEUE_STATE_ACTIVE: "active",
    operations_service_pb2.QUEUE_STATE_PAUSED: "paused",
    operations_service_pb2.QUEUE_STATE_DRAINING: "draining",
}


def execution_status_from_proto(value: int) -> ExecutionStatus:
    """The status for a proto enum value; ValueError for UNSPECIFIED or an unknown value."""
    return _EXECUTION_STATUS.from_proto(value)


def execution_status_to_proto(
    status: ExecutionStatus | str,
) -> common_pb2.ExecutionStatus.ValueType:
    """The proto enum value for a status or its name (``"running"``); ValueError if unknown."""
    return common_pb2.ExecutionStatus.ValueType(_EXECUTION_STATUS.to_proto(status))


def step_attempt_status_from_proto(value: int) -> StepAttemptStatus:
    """The step attempt status for a proto enum value; ValueError if unknown."""
    return _STEP_ATTEMPT_STATUS.from_proto(value)


def task_kind_from_proto(value: int) -> TaskKind:
    """The task kind for a proto enum value; UNSPECIFIED (an older orchestrator) is a step."""
    return _TASK_KIND.from_proto(value)


def input_kind_to_proto(kind: InputKind | str) -> common_pb2.InputKind.ValueType:
    """The proto enum value for an input kind or its name; ValueError if unknown."""
    return common_pb2.InputKind.ValueType(_INPUT_KIND.to_proto(kind))


def input_kind_from_proto(value: int) -> InputKind:
    """The input kind for a proto enum value; ValueError for UNSPECIFIED or an unknown value."""
    return _INPUT_KIND.from_proto(value)


def event_wait_mode_to_proto(mode: EventWaitMode | str) -> common_pb2.EventWaitMode.ValueType:
    """The proto enum value for an event wait mode or its name; ValueError if unknown."""
    return common_pb2.EventWaitMode.ValueType(_EVENT_WAIT_MODE.to_proto(mode))


def event_wait_mode_from_proto(value: int) -> EventWaitMode:
    """The event wait mode for a proto enum value; ValueError for UNSPECIFIED or unknown."""
    return _EVENT_WAIT_MODE.from_proto(value)


def catch_up_to_proto(catch_up: CatchUp | str) -> common_pb2.CatchUp.ValueType:
    """The proto enum value for a catch-up policy or its name; ValueError if unknown."""
    return common_pb2.CatchUp.ValueType(_CATCH_UP.to_proto(catch_up))


def catch_up_from_proto(value: int) -> CatchUp:
    """The catch-up policy for a proto enum value; UNSPECIFIED is the default, ``once``."""
    return _CATCH_UP.from_proto(value)


def overlap_to_proto(overlap: Overlap | str) -> common_pb2.Overlap.ValueType:
    """The proto enum value for an overlap policy or its name; ValueError if unknown."""
    return common_pb2.Overlap.ValueType(_OVERLAP.to_proto(overlap))


def overlap_from_proto(value: int) -> Overlap:
    """The overlap policy for a proto enum value; UNSPECIFIED is the default, ``allow``."""
    return _OVERLAP.from_proto(value)


def queue_state_from_proto(value: int) -> QueueStateName:
    """The queue state for a proto enum value; UNSPECIFIED is ``active``."""
    try:
        return _QUEUE_STATE_FROM_PROTO[value]
    except KeyError:
        raise ValueError(
            f"the orchestrator sent an unknown queue state ({value}); "
            "is this SDK older than the orchestrator?"
        ) from None


@dataclass(frozen=True)
class ErrorInfo:
    """Why a step attempt or an execution failed.

    Attributes:
        type: The error's type, e.g. the exception class name (``"ValueError"``).
        message: The error message.
        traceback: The formatted traceback, or ``""``.
        non_retryable: True when the failure was not to be retried whatever the policy.
        cause: The error behind this one, or ``None``: a fail-fast parallel or foreach
            group fails with ``ParallelFailed`` / ``ForeachFailed``, caused by the
            failing lane's error.
    """

    type: str
    message: str
    traceback: str = ""
    non_retryable: bool = False
    cause: ErrorInfo | None = None


@dataclass(frozen=True)
class LogLine:
    """One log record captured while a step attempt ran."""

    time: datetime | None
    level: str
    message: str
    logger: str


@dataclass(frozen=True)
class StepAttempt:
    """One try at one step of an execution.

    Attributes:
        step_name: The step's name.
        sequence: Position of this step run in the execution, from 1.
        attempt: Attempt number for this step run, from 1.
        status: The attempt's outcome so far.
        result: The step's result, decoded from JSON (``None`` when it has none).
        error: Why the attempt failed, or ``None``.
        worker_id: The worker that ran it.
        started_at: When it was claimed.
        finished_at: When it was reported, or ``None``.
        retry_at: When the next attempt is due, for a failed attempt that will be retried.
        logs: Captured log lines (only when requested).
        kind: What ran: a step, a route, an into merge or a compensation (whose
            ``step_name`` is the compensation's name).
        lane_path: Where it ran: ``""`` at the top level, else the lanes from the
            outside in, e.g. ``"checks/fraud"`` or ``"notify/17"`` (foreach item 17).
    """

    step_name: str
    sequence: int
    attempt: int
    status: StepAttemptStatus
    result: Any
    error: ErrorInfo | None
    worker_id: str
    started_at: datetime | None
    finished_at: datetime | None
    retry_at: datetime | None
    logs: tuple[LogLine, ...] = ()
    kind: TaskKind = TaskKind.STEP
    lane_path: str = ""


@dataclass(frozen=True)
class Event:
    """An event sent to an execution (``send_event``) that no wait has taken yet.

    Attributes:
        name: The event's name.
        payload: Its payload, decoded from JSON.
        sent_at: When the orchestrator received it.
    """

    name: str
    payload: Any
    sent_at: datetime | None


@dataclass(frozen=True)
class Execution:
    """One run of a workflow, as the orchestrator last saw it.

    Attributes:
        id: The execution id.
        workflow_name: The workflow's name.
        workflow_version: Content hash of the definition it runs on.
        status: Its life-cycle state.
        queue: The queue its steps run on.
        priority: Higher runs first among ready work on the same queue.
        input: The input, decoded from JSON.
        result: The last step's result when completed, decoded from JSON, else ``None``.
        error: Why it failed, was cancelled or timed out, or ``None``.
        parent_execution_id: The parent's id for a child execution, else ``""``.
        idempotency_key: The key it was started with, or ``""``.
        current_step: The step running or due next; ``""`` when finished.
        created_at: When it was accepted.
        scheduled_at: Not started before this time, if set.
        started_at: When its first step was claimed, if yet.
        finished_at: When it reached a terminal status, if yet.
        deadline_at: When its workflow timeout fires, if it has one.
        steps: Every attempt of every step, in order (only when requested).
        unconsumed_events: Events sent to it that no wait has taken (yet), oldest first
            (only with the steps).
        schedule_name: The schedule that started it, or ``""``.
        schedule_slot: The slot it ran for, if a schedule started it.
    """

    id: str
    workflow_name: str
    workflow_version: str
    status: ExecutionStatus
    queue: str
    priority: int
    input: Any
    result: Any
    error: ErrorInfo | None
    parent_execution_id: str
    idempotency_key: str
    current_step: str
    created_at: datetime | None
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None
    steps: tuple[StepAttempt, ...] = ()
    unconsumed_events: tuple[Event, ...] = ()
    schedule_name: str = ""
    schedule_slot: datetime | None = None


@dataclass(frozen=True)
class ExecutionPage:
    """One page of :meth:`Client.list_executions` or :meth:`Client.list_children`.

    Attributes:
        executions: The executions on this page: newest first (``list_executions``) or
            oldest first (``list_children``).
        next_page_token: Pass as ``page_token`` for the next page; ``""`` on the last one.
        total_count: Executions matching the filters, over all pages; ``None`` when the
            call does not count them (``list_children``).
    """

    executions: tuple[Execution, ...]
    next_page_token: str
    total_count: int | None = None


@dataclass(frozen=True)
class InputField:
    """One field of a form input (``ctx.wait_for_input(..., kind="form", fields=[...])``).

    Attributes:
        name: The field's key in the answer (a name: letters, digits, ``_``, ``-``, ``.``).
        type: ``"string"``, ``"number"``, ``"integer"``, ``"boolean"`` or ``"any"``.
        required: The answer must have this field.
        label: What to show the person (``""``: the name).
    """

    name: str
    type: str = "any"
    required: bool = True
    label: str = ""


@dataclass(frozen=True)
class PendingInput:
    """A human input an execution waits for (``ctx.wait_for_input``).

    Answer it with ``provide_input(execution_id, name, value)``.

    Attributes:
        execution_id: The waiting execution.
        workflow_name: Its workflow.
        step_name: The waiting step.
        name: The input's name, unique among the execution's pending inputs.
        kind: What answer it expects.
        prompt: What to ask.
        choices: The options of a choice input.
        fields: The fields of a form.
        requested_at: When the step began to wait.
        deadline_at: When the wait times out, if it has a timeout.
    """

    execution_id: str
    workflow_name: str
    step_name: str
    name: str
    kind: InputKind
    prompt: str
    choices: tuple[str, ...]
    fields: tuple[InputField, ...]
    requested_at: datetime | None
    deadline_at: datetime | None


@dataclass(frozen=True)
class PendingEventWait:
    """A step waiting for events (``ctx.wait_for_event``, ``wait_for_any``, ``wait_for_all``).

    Attributes:
        execution_id: The waiting execution.
        workflow_name: Its workflow.
        step_name: The waiting step.
        names: The events it waits for.
        mode: Whether one, any or all of them end the wait.
        received: The events of an ``all`` wait that arrived already.
        waiting_since: When the step began to wait.
        deadline_at: When the wait times out, if it has a timeout.
    """

    execution_id: str
    workflow_name: str
    step_name: str
    names: tuple[str, ...]
    mode: EventWaitMode
    received: tuple[str, ...]
    waiting_since: datetime | None
    deadline_at: datetime | None


@dataclass(frozen=True)
class PendingInputPage:
    """One page of :meth:`Client.list_pending_inputs`, oldest first.

    Attributes:
        inputs: The pending inputs on this page.
        next_page_token: Pass as ``page_token`` for the next page; ``""`` on the last one.
    """

    inputs: tuple[PendingInput, ...]
    next_page_token: str


@dataclass(frozen=True)
class PendingEventPage:
    """One page of :meth:`Client.list_pending_events`, oldest first.

    Attributes:
        waits: The event waits on this page.
        next_page_token: Pass as ``page_token`` for the next page; ``""`` on the last one.
    """

    waits: tuple[PendingEventWait, ...]
    next_page_token: str


@dataclass(frozen=True)
class Schedule:
    """A cron schedule that starts a workflow (see :meth:`Client.create_schedule`).

    Attributes:
        name: Unique among all schedules.
        workflow_name: The workflow each run starts.
        cron: The cron expression: five fields (minute hour day-of-month month
            day-of-week), six with seconds first, or an alias such as ``@daily``.
        timezone: The IANA time zone its wall clock follows; ``""`` means UTC.
        input: The input of each run, decoded from JSON.
        queue: The queue its runs go to; ``""`` means the workflow's.
        priority: The runs' priority.
        enabled: False while it does not fire.
        catch_up: What it does about slots missed while no orchestrator ran.
        catch_up_limit: With ``catch_up="all"``, at most this many missed slots run.
        overlap: What a slot does while the previous run is still running.
        max_failures: Consecutive failures to start a run before it disables itself.
        next_fire_at: Its next slot, if enabled.
        last_fire_at: Its last slot that fired, if any.
        last_execution_id: The execution its last slot started, or ``""``.
        consecutive_failures: Failures to start a run since the last success.
        last_error: Why the last start failed, or ``""``.
        disabled_reason: Why it disabled itself, or ``""``.
        declared: True for a schedule declared in a workflow's code (``Workflow(...,
            schedule=Cron(...))``), which the workers' registrations own.
        created_at: When it was created.
        updated_at: When it last changed.
    """

    name: str
    workflow_name: str
    cron: str
    timezone: str
    input: Any
    queue: str
    priority: int
    enabled: bool
    catch_up: CatchUp
    catch_up_limit: int
    overlap: Overlap
    max_failures: int
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_execution_id: str
    consecutive_failures: int
    last_error: str
    disabled_reason: str
    declared: bool
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class SchedulePage:
    """One page of :meth:`Client.list_schedules`, by name.

    Attributes:
        schedules: The schedules on this page.
        next_page_token: Pass as ``page_token`` for the next page; ``""`` on the last one.
    """

    schedules: tuple[Schedule, ...]
    next_page_token: str


@dataclass(frozen=True)
class StartResult:
    """The outcome of starting an execution.

    Attributes:
        execution_id: The id of the new execution, or of the existing one.
        created: False when the idempotency key matched an existing execution.
    """

    execution_id: str
    created: bool


@dataclass(frozen=True)
class QueueInfo:
    """One queue's state and load (see :meth:`Client.list_queues`).

    Attributes:
        name: The queue's name.
        state: ``"active"``, ``"paused"`` (no task is handed out; new executions are
            accepted) or ``"draining"`` (tasks are handed out; new executions are refused).
        reason: Why it was paused or drained, or ``""``.
        ready: Tasks due now, waiting for a worker.
        leased: Tasks a worker runs now.
        waiting: Tasks of suspended steps (sleeping, waiting for events, inputs or
            children).
        delayed: Ready tasks not due yet (retry backoff, scheduled starts).
        oldest_ready_age: How long the oldest due task has waited for a worker, or
            ``None`` when none is due.
        concurrency_limit: Its concurrency limit, 0 for none.
    """

    name: str
    state: QueueStateName
    reason: str
    ready: int
    leased: int
    waiting: int
    delayed: int
    oldest_ready_age: timedelta | None
    concurrency_limit: int


@dataclass(frozen=True)
class Finding:
    """An unfinished execution that nothing can move forward (see :meth:`Client.diagnose`).

    Attributes:
        execution_id: The stuck execution.
        workflow_name: Its workflow.
        status: Its status name, e.g. ``"running"``.
        problem: What kind of problem: ``"no_task"``, ``"waiting_on_nothing"``,
            ``"no_worker_for_queue"``, ``"no_worker_for_version"`` or ``"queue_paused"``.
        detail: What is wrong and what to do, in words.
        since: Since when, if known.
    """

    execution_id: str
    workflow_name: str
    status: str
    problem: str
    detail: str
    since: datetime | None


def timedelta_from_proto(message: Message, field: str) -> timedelta | None:
    """The timedelta in ``message.<field>`` (a Duration), or ``None`` when it is unset."""
    if not message.HasField(field):
        return None
    duration: Duration = getattr(message, field)
    return duration.ToTimedelta()


def timestamp_from_proto(message: Message, field: str) -> datetime | None:
    """The aware UTC datetime in ``message.<field>``, or ``None`` when the field is unset."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC)


def error_info_from_proto(
    message: workflow_service_pb2.Execution | workflow_service_pb2.StepAttempt,
) -> ErrorInfo | None:
    """The ``error`` field of an execution or step attempt, or ``None`` when unset."""
    if not message.HasField("error"):
        return None
    return _error_info(message.error)


def _error_info(info: common_pb2.ErrorInfo) -> ErrorInfo:
    return ErrorInfo(
        type=info.type,
        message=info.message,
        traceback=info.traceback,
        non_retryable=info.non_retryable,
        cause=_error_info(info.cause) if info.HasField("cause") else None,
    )


def log_line_from_proto(msg: common_pb2.LogLine) -> LogLine:
    """A captured log line."""
    return LogLine(
        time=timestamp_from_proto(msg, "time"),
        level=msg.level,
        message=msg.message,
        logger=msg.logger,
    )


def step_attempt_from_proto(msg: workflow_service_pb2.StepAttempt) -> StepAttempt:
    """A step attempt, with its result decoded."""
    return StepAttempt(
        step_name=msg.step_name,
        sequence=msg.sequence,
        attempt=msg.attempt,
        status=step_attempt_status_from_proto(msg.status),
        result=_serde.loads_or_raw(msg.result_json),
        error=error_info_from_proto(msg),
        worker_id=msg.worker_id,
        started_at=timestamp_from_proto(msg, "started_at"),
        finished_at=timestamp_from_proto(msg, "finished_at"),
        retry_at=timestamp_from_proto(msg, "retry_at"),
        logs=tuple(log_line_from_proto(line) for line in msg.logs),
        kind=task_kind_from_proto(msg.kind),
        lane_path=msg.lane_path,
    )


def execution_from_proto(msg: workflow_service_pb2.Execution) -> Execution:
    """An execution, with its input and result decoded."""
    return Execution(
        id=msg.id,
        workflow_name=msg.workflow_name,
        workflow_version=msg.workflow_version,
        status=execution_status_from_proto(msg.status),
        queue=msg.queue,
        priority=msg.priority,
        input=_serde.loads_or_raw(msg.input_json),
        result=_serde.loads_or_raw(msg.result_json),
        error=error_info_from_proto(msg),
        parent_execution_id=msg.parent_execution_id,
        idempotency_key=msg.idempotency_key,
        current_step=msg.current_step,
        created_at=timestamp_from_proto(msg, "created_at"),
        scheduled_at=timestamp_from_proto(msg, "scheduled_at"),
        started_at=timestamp_from_proto(msg, "started_at"),
        finished_at=timestamp_from_proto(msg, "finished_at"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
        steps=tuple(step_attempt_from_proto(s) for s in msg.steps),
        unconsumed_events=tuple(event_from_proto(e) for e in msg.unconsumed_events),
        schedule_name=msg.schedule_name,
        schedule_slot=timestamp_from_proto(msg, "schedule_slot"),
    )


def event_from_proto(msg: workflow_service_pb2.Event) -> Event:
    """An event, with its payload decoded."""
    return Event(
        name=msg.name,
        payload=_serde.loads_or_raw(msg.payload_json),
        sent_at=timestamp_from_proto(msg, "sent_at"),
    )


def input_field_from_proto(msg: common_pb2.InputField) -> InputField:
    """A form field (an empty type is ``"any"``)."""
    return InputField(name=msg.name, type=msg.type or "any", required=msg.required, label=msg.label)


def input_field_to_proto(field: InputField) -> common_pb2.InputField:
    """A form field as sent."""
    return common_pb2.InputField(
        name=field.name, type=field.type, required=field.required, label=field.label
    )


def pending_input_from_proto(msg: workflow_service_pb2.PendingInput) -> PendingInput:
    """A pending human input."""
    return PendingInput(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        step_name=msg.step_name,
        name=msg.name,
        kind=input_kind_from_proto(msg.kind),
        prompt=msg.prompt,
        choices=tuple(msg.choices),
        fields=tuple(input_field_from_proto(f) for f in msg.fields),
        requested_at=timestamp_from_proto(msg, "requested_at"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
    )


def pending_event_wait_from_proto(msg: workflow_service_pb2.PendingEventWait) -> PendingEventWait:
    """A pending event wait."""
    return PendingEventWait(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        step_name=msg.step_name,
        names=tuple(msg.names),
        mode=event_wait_mode_from_proto(msg.mode),
        received=tuple(msg.received),
        waiting_since=timestamp_from_proto(msg, "waiting_since"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
    )


def pending_input_page_from_proto(
    msg: workflow_service_pb2.ListPendingInputsResponse,
) -> PendingInputPage:
    """A page of pending inputs."""
    return PendingInputPage(
        inputs=tuple(pending_input_from_proto(i) for i in msg.inputs),
        next_page_token=msg.next_page_token,
    )


def pending_event_page_from_proto(
    msg: workflow_service_pb2.ListPendingEventsResponse,
) -> PendingEventPage:
    """A page of pending event waits."""
    return PendingEventPage(
        waits=tuple(pending_event_wait_from_proto(w) for w in msg.waits),
        next_page_token=msg.next_page_token,
    )


def execution_page_from_proto(
    msg: workflow_service_pb2.ListExecutionsResponse | workflow_service_pb2.ListChildrenResponse,
) -> ExecutionPage:
    """A page of executions (``total_count`` is ``None`` for a page of children)."""
    return ExecutionPage(
        executions=tuple(execution_from_proto(e) for e in msg.executions),
        next_page_token=msg.next_page_token,
        total_count=msg.total_count
        if isinstance(msg, workflow_service_pb2.ListExecutionsResponse)
        else None,
    )


def start_result_from_proto(msg: workflow_service_pb2.StartWorkflowResponse) -> StartResult:
    """The id of the started (or matched) execution and whether it is new."""
    return StartResult(execution_id=msg.execution_id, created=msg.created)


def schedule_from_proto(msg: schedule_service_pb2.Schedule) -> Schedule:
    """A schedule, with its input decoded."""
    return Schedule(
        name=msg.name,
        workflow_name=msg.workflow_name,
        cron=msg.cron,
        timezone=msg.timezone,
        input=_serde.loads_or_raw(msg.input_json),
        queue=msg.queue,
        priority=msg.priority,
        enabled=msg.enabled,
        catch_up=catch_up_from_proto(msg.catch_up),
        catch_up_limit=msg.catch_up_limit,
        overlap=overlap_from_proto(msg.overlap),
        max_failures=msg.max_failures,
        next_fire_at=timestamp_from_proto(msg, "next_fire_at"),
        last_fire_at=timestamp_from_proto(msg, "last_fire_at"),
        last_execution_id=msg.last_execution_id,
        consecutive_failures=msg.consecutive_failures,
        last_error=msg.last_error,
        disabled_reason=msg.disabled_reason,
        declared=msg.declared,
        created_at=timestamp_from_proto(msg, "created_at"),
        updated_at=timestamp_from_proto(msg, "updated_at"),
    )


def schedule_page_from_proto(msg: schedule_service_pb2.ListSchedulesResponse) -> SchedulePage:
    """A page of schedules."""
    return SchedulePage(
        schedules=tuple(schedule_from_proto(s) for s in msg.schedules),
        next_page_token=msg.next_page_token,
    )


def queue_info_from_proto(msg: operations_service_pb2.QueueInfo) -> QueueInfo:
    """A queue's state and load."""
    return QueueInfo(
        name=msg.name,
        state=queue_state_from_proto(msg.state),
        reason=msg.reason,
        ready=msg.ready,
        leased=msg.leased,
        waiting=msg.waiting,
        delayed=msg.delayed,
        oldest_ready_age=timedelta_from_proto(msg, "oldest_ready_age"),
        concurrency_limit=msg.concurrency_limit,
    )


def finding_from_proto(msg: operations_service_pb2.Finding) -> Finding:
    """A diagnosed execution."""
    return Finding(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        status=msg.status,
        problem=msg.problem,
        detail=msg.detail,
        since=timestamp_from_proto(msg, "since"),
    )
