"""Durable for Python: durable, resumable workflows on a gRPC orchestrator.

Define a workflow with :class:`Workflow` and its ``step`` decorator, run its steps with
``durable-worker``, and start and inspect executions with :class:`Client`.
"""

from __future__ import annotations

from durable._context import StepContext
from durable._durations import days, hours, minutes, seconds
from durable._dsl import Workflow
from durable._retry import RetryPolicy
from durable.errors import (
    DurableError,
    FailedPreconditionError,
    InvalidArgumentError,
    NonRetryableError,
    NotFoundError,
    UnavailableError,
)

__all__ = [
    "DurableError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NonRetryableError",
    "NotFoundError",
    "RetryPolicy",
    "StepContext",
    "UnavailableError",
    "Workflow",
    "days",
    "hours",
    "minutes",
    "seconds",
]
