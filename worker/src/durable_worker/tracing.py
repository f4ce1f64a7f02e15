"""The span of one step attempt, joined to its execution's trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from durable._shared import context_from_traceparent
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb

__all__ = ["attempt_span", "record_outcome"]

_KINDS = {v: k.removeprefix("TASK_KIND_").lower() for k, v in common_pb2.TaskKind.items()}


@contextlib.contextmanager
def attempt_span(tracer: trace.Tracer, task: pb.Task, worker_id: str) -> Iterator[trace.Span]:
    """A span for running ``task``, a child of the execution's StartWorkflow span.

    Attributes follow the messaging conventions where they fit (a task is a message
    processed from a queue) plus ``durable.*`` ones.
    """
    with tracer.start_as_current_span(
        f"durable.step {task.step_name}",
        context=context_from_traceparent(task.traceparent),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "durable",
            "messaging.operation.type": "process",
            "messaging.destination.name": task.workflow_name,
            "messaging.message.id": str(task.task_id),
            "durable.execution_id": task.execution_id,
            "durable.workflow": task.workflow_name,
            "durable.step": task.step_name,
            "durable.task_kind": _KINDS.get(task.kind, "step"),
            "durable.sequence": task.sequence,
            "durable.attempt": task.attempt,
            "durable.lane": task.lane_path,
            "durable.worker_id": worker_id,
        },
    ) as span:
        yield span


def record_outcome(span: trace.Span, report: object) -> None:
    """Mark the span with what the attempt reported."""
    if isinstance(report, pb.TaskCompletion):
        span.set_attribute("durable.outcome", "completed")
    elif isinstance(report, pb.TaskSuspension):
        span.set_attribute("durable.outcome", "suspended")
    elif isinstance(report, pb.TaskFailure):
        outcome = "timed_out" if report.timed_out else "failed"
        span.set_attribute("durable.outcome", outcome)
        span.set_attribute("error.type", report.error.type)
        span.set_status(Status(StatusCode.ERROR, report.error.message[:200]))
