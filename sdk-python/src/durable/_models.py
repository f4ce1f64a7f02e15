"""Values the client returns: frozen dataclasses, and the enums they use.

No protobuf message reaches the caller: user data (``input``, ``result``) is decoded
from JSON, timestamps are aware UTC datetimes (``None`` when unset) and enums are
:class:`ExecutionStatus`, :class:`StepAttemptStatus`, :class:`TaskKind`,
:class:`InputKind`, :class:`EventWaitMode`, :class:`CatchUp` and :class:`Overlap`. The
conversions from (and to) protobuf live in :mod:`durable._converters`.

:class:`InputField` goes the other way too: a step passes it to ``ctx.wait_for_input``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

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
