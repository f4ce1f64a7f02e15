"""Durable for Python: durable, resumable workflows on a gRPC orchestrator.

Define a workflow with :class:`Workflow` and its ``step`` decorator (plus :func:`branch`,
:func:`parallel`, :func:`foreach` and :func:`goto` for control flow), run its steps with
``durable-worker``, and start and inspect executions with :class:`Client` (async) or
:class:`SyncClient` (blocking). A step starts child workflows through its
:class:`StepContext` (``ctx.start_workflow``, ``ctx.call_workflow``).
"""

from __future__ import annotations

from durable._client import Client
from durable._context import StepContext
from durable._dsl import Workflow
from durable._durations import days, hours, minutes, seconds
from durable._models import (
    ErrorInfo,
    Execution,
    ExecutionPage,
    ExecutionStatus,
    LogLine,
    StartResult,
    StepAttempt,
    StepAttemptStatus,
    TaskKind,
)
from durable._nodes import Goto, branch, foreach, goto, parallel, step
from durable._retry import RetryPolicy
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
    UnavailableError,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "ChildWorkflowError",
    "Client",
    "DeadlineExceededError",
    "DurableError",
    "ErrorInfo",
    "Execution",
    "ExecutionPage",
    "ExecutionStatus",
    "FailedPreconditionError",
    "Goto",
    "InternalError",
    "InvalidArgumentError",
    "LogLine",
    "NonRetryableError",
    "NotFoundError",
    "RetryPolicy",
    "StartResult",
    "StepAttempt",
    "StepAttemptStatus",
    "StepContext",
    "SyncClient",
    "TaskKind",
    "UnavailableError",
    "Workflow",
    "branch",
    "days",
    "foreach",
    "goto",
    "hours",
    "minutes",
    "parallel",
    "seconds",
    "step",
]
