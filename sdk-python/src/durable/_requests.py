"""The requests both clients send: one builder per RPC, arguments checked here.

:class:`~durable.Client` and :class:`~durable.SyncClient` call these, so both send the
same requests: user data (inputs, payloads) is encoded as JSON here, names are checked
against the orchestrator's rules and datetimes must be timezone-aware (ValueError
otherwise, before any call is made).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypedDict

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from durable import _serde
from durable._converters import (
    catch_up_to_proto,
    execution_status_to_proto,
    overlap_to_proto,
)
from durable._dsl import Workflow
from durable._models import (
    CatchUp,
    CatchUpName,
    ExecutionStatus,
    Overlap,
    OverlapName,
)
from durable._nodes import check_name
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import workflow_service_pb2 as pb

__all__ = [
    "MAX_STARTS_PER_CALL",
    "UNSET",
    "GraphFormatName",
    "ScheduleChanges",
    "cancel_request",
    "children_request",
    "create_schedule_request",
    "diagnose_request",
    "get_request",
    "graph_request",
    "list_request",
    "list_schedules_request",
    "pending_events_request",
    "pending_inputs_request",
    "provide_input_request",
    "send_event_request",
    "start_many_requests",
    "start_request",
    "trigger_schedule_request",
    "update_schedule_request",
    "wait_request",
]


def _timestamp(name: str, value: datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime; ValueError for a naive one (its zone is unknown)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _workflow_name(workflow: str | Workflow) -> str:
    return workflow.name if isinstance(workflow, Workflow) else workflow


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""The default of an argument that was not given (``trigger_schedule``'s ``input``)."""


class ScheduleChanges(TypedDict, total=False):
    """The keyword arguments of ``update_schedule``: the fields to change, and their values.

    ``queue=None`` (or ``""``) goes back to the workflow's queue.
    """

    workflow: str | Workflow
    cron: str
    timezone: str
    input: Any
    queue: str | None
    priority: int
    enabled: bool
    catch_up: CatchUp | CatchUpName
    catch_up_limit: int
    overlap: Overlap | OverlapName
    max_failures: int


# update_schedule's keyword -> (the Schedule field it sets, how its value is written there)
_SCHEDULE_CHANGES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "workflow": ("workflow_name", _workflow_name),
    "cron": ("cron", lambda v: v),
    "timezone": ("timezone", lambda v: v),
    "input": ("input_json", _serde.dumps),
    "queue": ("queue", lambda v: v or ""),
    "priority": ("priority", lambda v: v),
    "enabled": ("enabled", lambda v: v),
    "catch_up": ("catch_up", catch_up_to_proto),
    "catch_up_limit": ("catch_up_limit", lambda v: v),
    "overlap": ("overlap", overlap_to_proto),
    "max_failures": ("max_failures", lambda v: v),
}


def start_request(
    workflow: str | Workflow,
    input: Any,
    *,
    queue: str | None,
    priority: int,
    scheduled_at: datetime | None,
    idempotency_key: str | None,
) -> pb.StartWorkflowRequest:
    """The StartWorkflow request; the input is encoded as JSON here."""
    return pb.StartWorkflowRequest(
        workflow_name=_workflow_name(workflow),
        input_json=_serde.dumps(input),
        queue=queue or "",
        priority=priority,
        scheduled_at=_timestamp("scheduled_at", scheduled_at),
        idempotency_key=idempotency_key or "",
    )


MAX_STARTS_PER_CALL = 1000
"""Starts per StartWorkflows call; ``start_many`` splits longer lists."""


def start_many_requests(
    workflow: str | Workflow,
    inputs: Sequence[Any],
    *,
    queue: str | None,
    priority: int,
    idempotency_keys: Sequence[str] | None,
) -> list[pb.StartWorkflowsRequest]:
    """The StartWorkflows requests for ``inputs``, at most ``MAX_STARTS_PER_CALL`` each."""
    if idempotency_keys is not None and len(idempotency_keys) != len(inputs):
        raise ValueError(
            f"idempotency_keys has {len(idempotency_keys)} keys for {len(inputs)} inputs"
        )
    one = [
        start_request(
            workflow,
            data,
            queue=queue,
            priority=priority,
            scheduled_at=None,
            idempotency_key=idempotency_keys[i] if idempotency_keys is not None else None,
        )
        for i, data in enumerate(inputs)
    ]
    return [
        pb.StartWorkflowsRequest(requests=one[i : i + MAX_STARTS_PER_CALL])
        for i in range(0, len(one), MAX_STARTS_PER_CALL)
    ]


def get_request(
    execution_id: str, *, include_steps: bool, include_logs: bool
) -> pb.GetExecutionRequest:
    """The GetExecution request."""
    return pb.GetExecutionRequest(
        execution_id=execution_id, include_steps=include_steps, include_logs=include_logs
    )


def list_request(
    *,
    workflow: str | Workflow | None,
    statuses: Iterable[ExecutionStatus | str] | None,
    queue: str | None,
    parent_execution_id: str | None,
    top_level_only: bool,
    created_after: datetime | None,
    created_before: datetime | None,
    page_size: int,
    page_token: str | None,
    schedule: str | None = None,
) -> pb.ListExecutionsRequest:
    """The ListExecutions request; ValueError for an unknown status name."""
    if isinstance(statuses, str):  # a lone "running" would otherwise iterate its letters
        statuses = [statuses]
    return pb.ListExecutionsRequest(
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        statuses=[execution_status_to_proto(s) for s in statuses or ()],
        queue=queue or "",
        parent_execution_id=parent_execution_id or "",
        top_level_only=top_level_only,
        created_after=_timestamp("created_after", created_after),
        created_before=_timestamp("created_before", created_before),
        page_size=page_size,
        page_token=page_token or "",
        schedule_name=schedule or "",
    )


def children_request(
    parent_execution_id: str,
    *,
    statuses: Iterable[ExecutionStatus | str] | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListChildrenRequest:
    """The ListChildren request; ValueError for an unknown status name."""
    if isinstance(statuses, str):  # a lone "running" would otherwise iterate its letters
        statuses = [statuses]
    return pb.ListChildrenRequest(
        parent_execution_id=parent_execution_id,
        statuses=[execution_status_to_proto(s) for s in statuses or ()],
        page_size=page_size,
        page_token=page_token or "",
    )


def cancel_request(execution_id: str, *, reason: str) -> pb.CancelExecutionRequest:
    """The CancelExecution request."""
    return pb.CancelExecutionRequest(execution_id=execution_id, reason=reason)


def wait_request(execution_id: str, wait_secs: float) -> pb.WaitExecutionRequest:
    """The WaitExecution request: park up to ``wait_secs`` for the execution to finish."""
    request = pb.WaitExecutionRequest(execution_id=execution_id)
    request.timeout.FromTimedelta(timedelta(seconds=wait_secs))
    return request


def send_event_request(
    execution_id: str, name: str, payload: Any, event_id: str | None = None
) -> pb.SendEventRequest:
    """The SendEvent request; the payload is encoded as JSON here.

    Raises:
        ValueError: ``name`` breaks the rule of names (the orchestrator's rule, checked
            here so the call is not made).
    """
    return pb.SendEventRequest(
        execution_id=execution_id,
        name=check_name("event", name),
        payload_json=_serde.dumps(payload),
        event_id=event_id or "",
    )


def provide_input_request(execution_id: str, name: str, value: Any) -> pb.ProvideInputRequest:
    """The ProvideInput request; the value is encoded as JSON here.

    Raises:
        ValueError: ``name`` breaks the rule of names.
    """
    return pb.ProvideInputRequest(
        execution_id=execution_id,
        name=check_name("input", name),
        value_json=_serde.dumps(value),
    )


def pending_inputs_request(
    *,
    execution_id: str | None,
    workflow: str | Workflow | None,
    name: str | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListPendingInputsRequest:
    """The ListPendingInputs request."""
    return pb.ListPendingInputsRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        name=name or "",
        page_size=page_size,
        page_token=page_token or "",
    )


def pending_events_request(
    *,
    execution_id: str | None,
    workflow: str | Workflow | None,
    name: str | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListPendingEventsRequest:
    """The ListPendingEvents request."""
    return pb.ListPendingEventsRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        name=name or "",
        page_size=page_size,
        page_token=page_token or "",
    )


GraphFormatName = Literal["mermaid", "dot"]
"""A graph's text format: a Mermaid flowchart or Graphviz DOT."""

_GRAPH_FORMATS: dict[str, pb.GraphFormat.ValueType] = {
    "mermaid": pb.GRAPH_FORMAT_MERMAID,
    "dot": pb.GRAPH_FORMAT_DOT,
}


def graph_request(
    execution_id: str | None, *, workflow: str | Workflow | None, format: str
) -> pb.GetExecutionGraphRequest:
    """The GetExecutionGraph request; ValueError unless exactly one of the two is given."""
    if (execution_id is None) == (workflow is None):
        raise ValueError("give an execution_id or a workflow (not both)")
    if format not in _GRAPH_FORMATS:
        raise ValueError(f"format must be one of {sorted(_GRAPH_FORMATS)}, got {format!r}")
    return pb.GetExecutionGraphRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        format=_GRAPH_FORMATS[format],
    )


def create_schedule_request(
    name: str,
    workflow: str | Workflow,
    cron: str,
    *,
    timezone: str,
    input: Any,
    queue: str | None,
    priority: int,
    enabled: bool,
    catch_up: CatchUp | CatchUpName,
    catch_up_limit: int,
    overlap: Overlap | OverlapName,
    max_failures: int,
) -> spb.CreateScheduleRequest:
    """The CreateSchedule request; ValueError for an unknown catch-up or overlap name."""
    return spb.CreateScheduleRequest(
        schedule=spb.Schedule(
            name=name,
            workflow_name=_workflow_name(workflow),
            cron=cron,
            timezone=timezone,
            input_json=_serde.dumps(input),
            queue=queue or "",
            priority=priority,
            enabled=enabled,
            catch_up=catch_up_to_proto(catch_up),
            catch_up_limit=catch_up_limit,
            overlap=overlap_to_proto(overlap),
            max_failures=max_failures,
        )
    )


def list_schedules_request(
    *,
    enabled: bool | None,
    workflow: str | Workflow | None,
    queue: str | None,
    page_size: int,
    page_token: str | None,
) -> spb.ListSchedulesRequest:
    """The ListSchedules request."""
    request = spb.ListSchedulesRequest(
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        queue=queue or "",
        page_size=page_size,
        page_token=page_token or "",
    )
    if enabled is not None:
        request.enabled = enabled
    return request


def update_schedule_request(name: str, changes: ScheduleChanges) -> spb.UpdateScheduleRequest:
    """The UpdateSchedule request: the given fields, and the mask naming them.

    Raises:
        TypeError: A keyword that is not a field one can change.
        ValueError: No change at all, or an unknown catch-up or overlap name.
    """
    unknown = sorted(set(changes) - set(_SCHEDULE_CHANGES))
    if unknown:
        raise TypeError(
            f"update_schedule() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it changes {', '.join(_SCHEDULE_CHANGES)}"
        )
    if not changes:
        raise ValueError(
            f"update_schedule() needs something to change: {', '.join(_SCHEDULE_CHANGES)}"
        )
    schedule = spb.Schedule(name=name)
    mask = []
    for key, value in changes.items():
        field, write = _SCHEDULE_CHANGES[key]
        setattr(schedule, field, write(value))
        mask.append(field)
    return spb.UpdateScheduleRequest(schedule=schedule, update_mask=mask)


def trigger_schedule_request(name: str, input: Any) -> spb.TriggerScheduleRequest:
    """The TriggerSchedule request; ``input`` :data:`UNSET` means the schedule's input."""
    return spb.TriggerScheduleRequest(
        name=name, input_json="" if input is UNSET else _serde.dumps(input)
    )


def diagnose_request(*, limit: int, worker_alive_within: timedelta | None) -> opb.DiagnoseRequest:
    """The Diagnose request; ValueError for a negative limit or a non-positive duration."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    request = opb.DiagnoseRequest(limit=limit)
    if worker_alive_within is not None:
        if worker_alive_within <= timedelta(0):
            raise ValueError(f"worker_alive_within must be positive, got {worker_alive_within}")
        duration = Duration()
        duration.FromTimedelta(worker_alive_within)
        request.worker_alive_within.CopyFrom(duration)
    return request
