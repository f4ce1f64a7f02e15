"""Durable for Python: durable, resumable workflows on a gRPC orchestrator.

Define a workflow with :class:`Workflow` and its ``step`` decorator (plus :func:`branch`,
:func:`parallel`, :func:`foreach` and :func:`goto` for control flow), run its steps with
``durable-worker``, and start and inspect executions with :class:`Client` (async) or
:class:`SyncClient` (blocking). A step starts child workflows through its
:class:`StepContext` (``ctx.start_workflow``, ``ctx.call_workflow``) and waits for time
(``ctx.sleep``, ``ctx.sleep_until`` with :func:`next_business_day`, :func:`next_weekday`,
:func:`end_of_day`), events (``ctx.wait_for_event``, ``wait_for_any``, ``wait_for_all``;
``client.send_event``) and people (``ctx.wait_for_input``; ``client.provide_input``).
Workflows run on cron schedules declared with them (``Workflow(..., schedule=Cron(...))``)
or created with ``client.create_schedule``.
"""

from __future__ import annotations

from durable._calendar import end_of_day, next_business_day, next_weekday
from durable._channel import TLSConfig
from durable._client import Client
from durable._context import StepContext
from durable._dsl import Workflow
from durable._durations import days, hours, minutes, seconds
from durable._models import (
    CatchUp,
    ErrorInfo,
    Event,
    EventWaitMode,
    Execution,
    ExecutionPage,
    ExecutionStatus,
    Finding,
    InputField,
    InputKind,
    LogLine,
    Overlap,
    PendingEventPage,
    PendingEventWait,
    PendingInput,
    PendingInputPage,
    QueueInfo,
    Schedule,
    SchedulePage,
    StartResult,
    StepAttempt,
    StepAttemptStatus,
    TaskKind,
)
from durable._nodes import Goto, branch, foreach, goto, parallel, step
from durable._retry import RetryPolicy
from durable._schedules import Cron
from durable._serde import UndecodableJSON
from durable._sync_client import SyncClient
from durable.errors import (
    AbortedError,
    AlreadyExistsError,
    ChildWorkflowError,
    DeadlineExceededError,
    DurableError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NonRetryableError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
    WaitError,
    WaitTimeoutError,
)
from durable.secrets import mark_secret

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CatchUp",
    "ChildWorkflowError",
    "Client",
    "Cron",
    "DeadlineExceededError",
    "DurableError",
    "ErrorInfo",
    "Event",
    "EventWaitMode",
    "Execution",
    "ExecutionPage",
    "ExecutionStatus",
    "FailedPreconditionError",
    "Finding",
    "Goto",
    "InputField",
    "InputKind",
    "InternalError",
    "InvalidArgumentError",
    "LogLine",
    "NonRetryableError",
    "NotFoundError",
    "Overlap",
    "PendingEventPage",
    "PendingEventWait",
    "PendingInput",
    "PendingInputPage",
    "PermissionDeniedError",
    "QueueInfo",
    "RetryPolicy",
    "Schedule",
    "SchedulePage",
    "StartResult",
    "StepAttempt",
    "StepAttemptStatus",
    "StepContext",
    "SyncClient",
    "TLSConfig",
    "TaskKind",
    "UnauthenticatedError",
    "UnavailableError",
    "UndecodableJSON",
    "WaitError",
    "WaitTimeoutError",
    "Workflow",
    "branch",
    "days",
    "end_of_day",
    "foreach",
    "goto",
    "hours",
    "mark_secret",
    "minutes",
    "next_business_day",
    "next_weekday",
    "parallel",
    "seconds",
    "step",
]
